// Package kubernetes is the embedded default membership backend: an active member gets
// the RBAC access that the ScimConfig names, and the API server's own authorizer is the
// proof (`kubectl auth can-i --as <userName>`).
//
// # Layout
//
// Every (member, role) pair is one binding with one subject:
//
//   - spec.backend.kubernetes.clusterRoles: a ClusterRoleBinding per member and ClusterRole;
//   - spec.backend.kubernetes.roles: a RoleBinding per member and role in the role's
//     namespace (roleRef kind Role or ClusterRole).
//
// The subject is rbacv1.Subject{Kind: "User", Name: userName}, the userName exactly as the
// identity provider sent it last (the authenticator, for example OIDC, must present the
// same string). Binding names are deterministic: "scim-u-" + a hash of the config's
// namespace and name, the case-folded userName and the role, so an ensure never creates
// twice and a roleRef never changes under a name. Every binding is labeled
//
//	scim.operator.dev/config=<config name>
//	scim.operator.dev/config-namespace=<config namespace>
//	scim.operator.dev/member=<hash of the folded userName>   (member bindings)
//	scim.operator.dev/team=<hash of the team name>           (team bindings)
//
// so that a member's bindings, a team's bindings and all of a config's bindings are one
// label selector away. One binding per member keeps every object small (thousands of
// members never meet the API server's object size limit) and makes each add or removal
// a write of one small object, with no read-modify-write races between members.
//
// Bindings carry no ownerReference to OrgMembers: the controllers decide the deletion
// policy (and a cluster-scoped binding cannot be owned by a namespaced object anyway).
//
// That is the Bindings layout (spec.backend.kubernetes.grantLayout: Bindings, the
// default). In the Webhook layout every grant is instead an OrgGrant (scim.operator.dev)
// in the ScimConfig's own namespace, otherwise identical (name, labels, owner, user-name
// annotation), whose spec names the subject, the real role and its scope (spec.namespace;
// empty: cluster-wide). RBAC never reads an OrgGrant. The operator's authorization
// webhook, beside RBAC in the API server's AuthorizationConfiguration
// (config/samples/authorization-config.yaml), allows a request when an OrgGrant names the
// user or one of its groups, its ScimConfig exists with the Webhook layout and still lists
// the role, and the role's rules allow it; otherwise it has no opinion. RBAC walks every
// ClusterRoleBinding on every request (10,000 per-member bindings made an unrelated
// SubjectAccessReview 5.8x slower), and every RoleBinding of the request's namespace on a
// request it does not allow cluster-wide, so the grants must be neither: OrgGrants cost
// other requests nothing. Failure: with the webhook's failurePolicy NoOpinion,
// Webhook-layout access fails closed while no manager replica answers. Trust: whoever may
// create OrgGrants in the ScimConfig's namespace can grant that config's roles; the
// install gives that right to nobody but the manager (it is not aggregated into admin or
// edit, and the tenant ServiceAccount needs none: see below), so a hand-written OrgGrant
// takes cluster-admin-level rights. A grant of the other layout is not a grant of this one: after a
// layout change each owner's next ensure writes the new layout's grant and deletes the old
// one, the sweep does the same for orphans, and deletions by name look in both places.
//
// # Identity
//
// Lookups are case-insensitive: the member label is a hash of the folded userName. The
// subject keeps the case the identity provider sent, and a later EnsureMember with a
// different case rewrites it.
//
// # Teams
//
// An OrgGroup (team) becomes a binding per role whose subject is
// rbacv1.Subject{Kind: "Group", Name: team}, named "scim-g-" + hash. Group membership in
// Kubernetes comes from the authenticator (for example the OIDC groups claim), not from
// RBAC, so EnsureTeamMember and EnsureTeamMemberAbsent are no-op successes and
// ObserveTeam reports no members.
//
// # Names
//
// The "system:" prefix is reserved by Kubernetes for its own users and groups
// (system:authenticated is every signed-in user, system:masters is cluster-admin), so a
// userName or team starting with it is refused with a Permanent "InvalidUser" /
// "InvalidTeam" error: an identity provider must not be able to grant roles to them.
//
// # Whose rights a binding is written with: the tenant's
//
// The API server lets a client create a binding only when it already holds every
// permission of the bound role, or when it has the "bind" verb on that role. The manager
// serves every namespace, so if it wrote bindings with its own rights, a namespaced
// ScimConfig could hand out whatever the manager may bind (the confused deputy). Instead a
// Backend built with ActAs creates and patches bindings through a client that impersonates
// a ServiceAccount of the ScimConfig's namespace (spec.backend.kubernetes.serviceAccountName,
// or the manager's --default-service-account), and the API server's own escalation check
// judges each binding with that ServiceAccount's rights: a ScimConfig grants no more than
// its tenant could grant directly. A refused binding is a Permanent "NotAllowedToBind"
// error naming the role and the ServiceAccount, and Check finds it first with a
// server-side dry-run as the ServiceAccount. In the Webhook layout no escalation check
// runs on an OrgGrant, so every OrgGrant write and Check first dry-run the real binding
// as the ServiceAccount (an allowed dry-run stands for the role's writes of the next
// bindCheckReuse), and the manager then writes the OrgGrant with its own rights: an
// OrgGrant is written only when its tenant could have written the binding itself. The
// ServiceAccount holds no rights on OrgGrants (if it did, whoever runs a pod as it could
// write one by hand for a role it may not bind, and nothing would judge it).
//
// Reads (the labelled bindings, through the manager's cache) and deletions stay with the
// manager: taking access away never escalates, and it must not depend on the tenant still
// holding its rights (a revoked tenant, a namespace being deleted). See
// docs/kubernetes-backend.md and docs/rbac.md.
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// The manager reads (cache: list, watch) and deletes bindings; it never creates or patches
// one with its own rights, so it needs neither create/update/patch nor "bind": those are
// the impersonated ServiceAccount's. It reads the configured roles and the ServiceAccount
// once per Check (get, uncached), and may impersonate only ServiceAccounts named
// DefaultServiceAccountName (add names to the ClusterRole to allow others; docs/rbac.md).
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings;rolebindings,verbs=list;watch;delete
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orggrants,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;roles,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=impersonate,resourceNames=scim-provisioner

// Labels on every binding this backend writes.
const (
	// LabelConfig is the ScimConfig's name (the same key OrgMembers carry).
	LabelConfig = scimv1.LabelConfig
	// LabelConfigNamespace is the ScimConfig's namespace: ClusterRoleBindings are
	// cluster-wide, and two namespaces may hold configs of one name.
	LabelConfigNamespace = "scim.operator.dev/config-namespace"
	// LabelMember is a hash of the member's folded userName (see MemberHash).
	LabelMember = "scim.operator.dev/member"
	// LabelTeam is a hash of the team name (see TeamHash).
	LabelTeam = "scim.operator.dev/team"
	// AnnotationUserName records the userName a member binding was written for.
	AnnotationUserName = "scim.operator.dev/user-name"
	// LabelOwnerUID is the UID of the OrgMember or OrgGroup that wants the binding: what an
	// owner holds is found by it, whatever name the owner carries now.
	LabelOwnerUID = "scim.operator.dev/owner-uid"
	// LabelOwnerKind is "OrgMember" or "OrgGroup".
	LabelOwnerKind = "scim.operator.dev/owner-kind"
	// LabelOrphaned marks a binding a policy left in place when its owner went (the value
	// says which policy): the sweep leaves it, and a member of the same identity claims it.
	LabelOrphaned = "scim.operator.dev/orphaned"
)

// DefaultFieldOwner is the server-side apply field manager of the bindings.
const DefaultFieldOwner = "scim-operator"

// Reason words of this backend's Permanent errors.
const (
	ReasonNoRoles          = "NoRolesConfigured"
	ReasonRoleNotFound     = "RoleNotFound"
	ReasonNotAllowedToBind = "NotAllowedToBind"
	ReasonForbidden        = "Forbidden"
	ReasonInvalid          = "Invalid"
	ReasonInvalidUser      = "InvalidUser"
	ReasonInvalidTeam      = "InvalidTeam"
	ReasonNamespace        = "NamespaceNotFound"
	// ReasonServiceAccountMissing: the ServiceAccount the config acts as does not exist.
	ReasonServiceAccountMissing = "ServiceAccountMissing"
	// ReasonImpersonationForbidden: the manager may not impersonate that ServiceAccount.
	ReasonImpersonationForbidden = "ImpersonationForbidden"
)

// DefaultServiceAccountName is the ServiceAccount name the shipped install passes to the
// manager's --default-service-account and lets the manager impersonate (the RBAC marker
// above): a tenant creates a ServiceAccount of this name in its namespace and grants it
// what its ScimConfigs may hand out.
const DefaultServiceAccountName = "scim-provisioner"

// Option configures a Backend.
type Option func(*Backend)

// WithFieldOwner sets the server-side apply field manager (default DefaultFieldOwner).
func WithFieldOwner(owner string) Option { return func(b *Backend) { b.owner = owner } }

// ActAs makes the backend create and patch bindings (and dry-run them in Check) through w,
// a client that impersonates the ServiceAccount serviceAccount of the ScimConfig's
// namespace (Impersonator.For builds one): the API server then judges every binding with
// that ServiceAccount's rights. Reads and deletions stay on the client given to New.
func ActAs(serviceAccount string, w client.Client) Option {
	return func(b *Backend) { b.sa, b.w = serviceAccount, w }
}

// WithClock sets the clock the backend judges a bind check's age by (bindCheckReuse;
// default: the real clock).
func WithClock(c clock.PassiveClock) Option { return func(b *Backend) { b.binds.clock = c } }

// WithLiveReader makes Check read the configured roles and the ServiceAccount through r
// (the manager's API reader: uncached, so the manager needs only "get" on them) instead of
// the client given to New.
func WithLiveReader(r client.Reader) Option { return func(b *Backend) { b.live = r } }

// ServiceAccountOf is the ServiceAccount the backend of cfg acts as: its
// spec.backend.kubernetes.serviceAccountName, else def (the manager's
// --default-service-account); empty means the manager's own identity.
func ServiceAccountOf(cfg *scimv1.ScimConfig, def string) string {
	if k := cfg.Spec.Backend.Kubernetes; k != nil && k.ServiceAccountName != "" {
		return k.ServiceAccountName
	}
	return def
}

// Backend grants a ScimConfig's RBAC access to its members. It is safe for concurrent use.
type Backend struct {
	// c reads bindings (a cache is fine) and deletes them: the manager's own identity.
	c client.Client
	// indexed: c reads from a cache with GrantIndex (WithGrantIndex).
	indexed bool
	// webhookKnown: WithAuthorizationWebhook told whether the manager serves the webhook
	// (webhookServed).
	webhookKnown, webhookServed bool
	// w creates and patches bindings: the impersonated ServiceAccount (c without ActAs).
	w client.Client
	// live reads the roles and the ServiceAccount for Check (c without WithLiveReader).
	live client.Reader
	// sa is the ServiceAccount w impersonates, in namespace cfgNS ("" : the manager).
	sa        string
	owner     string
	cfgName   string
	cfgNS     string
	roles     []roleRef
	baseLabel map[string]string
	// webhook: the Webhook grant layout (OrgGrants in cfgNS), else Bindings.
	webhook bool
	// binds remembers the Webhook layout's allowed bind checks for bindCheckReuse.
	binds *bindChecks
}

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.OwnerLedger = (*Backend)(nil)
	_ backend.NoUserTeams = (*Backend)(nil)
)

// roleRef is one configured grant: a ClusterRole cluster-wide (namespace empty) or a Role
// or ClusterRole in a namespace.
type roleRef struct {
	namespace string
	kind      string
	name      string
}

func (r roleRef) String() string {
	if r.namespace == "" {
		return fmt.Sprintf("ClusterRole %q", r.name)
	}
	return fmt.Sprintf("%s %q in namespace %q", r.kind, r.name, r.namespace)
}

func (r roleRef) key() string { return r.namespace + "/" + r.kind + "/" + r.name }

// Webhook tells whether the backend writes the Webhook grant layout.
func (b *Backend) Webhook() bool { return b.webhook }

// placement is the namespace a grant of r lives in in the backend's layout: the
// config's namespace for an OrgGrant; the role's namespace ("" : a ClusterRoleBinding)
// for an RBAC binding.
func (b *Backend) placement(r roleRef) string {
	if b.webhook {
		return b.cfgNS
	}
	return r.namespace
}

// place is where a grant lives: an OrgGrant (ledger) or an RBAC binding, in namespace
// ("" : a ClusterRoleBinding).
type place struct {
	ledger    bool
	namespace string
}

// placements are the places a grant of r may live in in either layout: a deletion by
// name looks in both, so that a grant left by the other layout (and not yet in the cache)
// goes too.
func (b *Backend) placements(r roleRef) []place {
	return []place{{ledger: false, namespace: r.namespace}, {ledger: true, namespace: b.cfgNS}}
}

// key is the map key of a grant in the lists: RBAC bindings "<namespace>/<name>",
// OrgGrants "OrgGrant:<namespace>/<name>" (an OrgGrant and a RoleBinding may share a name).
func key(ledger bool, namespace, name string) string {
	if ledger {
		return "OrgGrant:" + namespace + "/" + name
	}
	return namespace + "/" + name
}

// New returns the backend of cfg. It reads cfg once: a changed ScimConfig needs a new
// Backend (the registry makes one per generation). c reads bindings, which may come from
// a cache (a stale read only causes a create refused as existing, then an idempotent
// apply), and writes to the API server:
// every write without ActAs, deletions only with it.
func New(c client.Client, cfg *scimv1.ScimConfig, opts ...Option) *Backend {
	b := &Backend{c: c, owner: DefaultFieldOwner, cfgName: cfg.Name, cfgNS: cfg.Namespace,
		webhook: cfg.Spec.Backend.Kubernetes.Layout() == scimv1.GrantLayoutWebhook,
		binds:   &bindChecks{clock: clock.RealClock{}, allowed: map[string]map[string]time.Time{}, failed: map[string]time.Time{}}}
	if k := cfg.Spec.Backend.Kubernetes; k != nil {
		seen := map[string]bool{}
		add := func(r roleRef) {
			if !seen[r.key()] {
				seen[r.key()] = true
				b.roles = append(b.roles, r)
			}
		}
		for _, n := range k.ClusterRoles {
			add(roleRef{kind: "ClusterRole", name: n})
		}
		for _, r := range k.Roles {
			kind := r.Kind
			if kind == "" {
				kind = "Role"
			}
			add(roleRef{namespace: r.Namespace, kind: kind, name: r.Name})
		}
	}
	for _, o := range opts {
		o(b)
	}
	if b.w == nil {
		b.w, b.sa = c, ""
	}
	if b.live == nil {
		b.live = c
	}
	b.baseLabel = map[string]string{LabelConfig: b.cfgName, LabelConfigNamespace: b.cfgNS}
	return b
}

// ServiceAccount is the ServiceAccount the backend writes bindings as, in the config's
// namespace; empty when it writes them as the manager.
func (b *Backend) ServiceAccount() string { return b.sa }

// MemberHash is the value of LabelMember for a userName (case-insensitive).
func MemberHash(userName string) string { return digest(naming.FoldUserName(userName)) }

// TeamHash is the value of LabelTeam for a team (Kubernetes group names are
// case-sensitive, so the team name is hashed as it is).
func TeamHash(team string) string { return digest(team) }

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// bindingName is deterministic for (config, subject, role): "scim-u-..." for members and
// "scim-g-..." for teams. Bindings written for an owner are named by ownerName instead.
func (b *Backend) bindingName(prefix, subjectHash string, r roleRef) string {
	return prefix + digest(b.cfgNS, b.cfgName, subjectHash, r.key())
}

// ownerName is deterministic for (config, owner UID, role): a renamed owner keeps its
// bindings and only their subject changes, in the same write that takes the old name's
// access away.
func (b *Backend) ownerName(prefix string, o backend.Owner, r roleRef) string {
	return prefix + digest(b.cfgNS, b.cfgName, "owner:"+o.UID, r.key())
}

// ---------------------------------------------------------------------------------------
// Check

// Check verifies that the ServiceAccount the backend acts as exists, that every configured
// role exists, that the ServiceAccount (or, without one, the manager) may bind it (a
// server-side dry-run of a binding as that identity, which runs the API server's
// escalation check and writes nothing), and that the manager may delete such bindings
// (a dry-run deletion).
func (b *Backend) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	if len(b.roles) == 0 {
		return b.noRoles()
	}
	if err := b.checkWebhookServed(); err != nil {
		return err
	}
	if b.sa != "" {
		if err := b.checkServiceAccount(ctx); err != nil {
			return err
		}
	}
	deletable := map[string]bool{}
	for _, r := range b.roles {
		// The real binding, in both layouts: no escalation check runs on an OrgGrant, so
		// only the real binding proves the ServiceAccount may grant the role.
		if err := b.checkRole(ctx, r); err != nil {
			return err
		}
		// deletion rights are per kind of grant and namespace
		p := place{ledger: b.webhook, namespace: b.placement(r)}
		k := key(p.ledger, p.namespace, "")
		if deletable[k] {
			continue
		}
		if err := b.checkDelete(ctx, p); err != nil {
			return err
		}
		deletable[k] = true
	}
	return nil
}

// saRef names the ServiceAccount for messages.
func (b *Backend) saRef() string {
	return fmt.Sprintf("ServiceAccount %q in namespace %q", b.sa, b.cfgNS)
}

func (b *Backend) checkServiceAccount(ctx context.Context) error {
	err := b.live.Get(ctx, client.ObjectKey{Namespace: b.cfgNS, Name: b.sa}, &corev1.ServiceAccount{})
	if apierrors.IsNotFound(err) {
		return b.saMissing(err)
	}
	if err != nil {
		return classify(err, "reading "+b.saRef(), roleRef{})
	}
	return nil
}

func (b *Backend) saMissing(err error) error {
	return backend.NewPermanent(ReasonServiceAccountMissing, fmt.Errorf(
		"%s does not exist: the operator creates this ScimConfig's bindings as that ServiceAccount "+
			"(spec.backend.kubernetes.serviceAccountName, or the manager's --default-service-account); "+
			"create it and grant it the roles it may hand out, see docs/kubernetes-backend.md: %w", b.saRef(), err))
}

// checkDelete dry-runs the deletion of a grant that does not exist: the API server
// authorizes before it looks, so NotFound means the manager may delete such grants.
func (b *Backend) checkDelete(ctx context.Context, p place) error {
	namespace := p.namespace
	r := roleRef{namespace: namespace}
	obj := emptyObject(p)
	kind := "ClusterRoleBindings"
	switch {
	case p.ledger:
		kind = fmt.Sprintf("OrgGrants in namespace %q", namespace)
	case namespace != "":
		kind = fmt.Sprintf("RoleBindings in namespace %q", namespace)
	}
	obj.SetNamespace(namespace)
	obj.SetName(b.bindingName("scim-check-", "scim-check", r))
	err := b.c.Delete(ctx, obj, client.DryRunAll)
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsForbidden(err) {
		return backend.NewPermanent(ReasonForbidden, fmt.Errorf(
			"the operator may not delete %s, so it could not take access away: its ClusterRole needs "+
				"\"delete\" on them, see docs/rbac.md: %w", kind, err))
	}
	return classify(err, "deleting "+kind+" (dry-run)", r)
}

func (b *Backend) noRoles() error {
	return backend.NewPermanent(ReasonNoRoles, errors.New(
		"spec.backend.kubernetes names no clusterRoles and no roles: there is no access to grant"))
}

func (b *Backend) checkRole(ctx context.Context, r roleRef) error {
	var err error
	if r.kind == "ClusterRole" {
		err = b.live.Get(ctx, client.ObjectKey{Name: r.name}, &rbacv1.ClusterRole{})
	} else {
		err = b.live.Get(ctx, client.ObjectKey{Namespace: r.namespace, Name: r.name}, &rbacv1.Role{})
	}
	if apierrors.IsNotFound(err) {
		return backend.NewPermanent(ReasonRoleNotFound, fmt.Errorf("%s does not exist", r))
	}
	if err != nil {
		return classify(err, fmt.Sprintf("reading %s", r), r)
	}
	probe := b.rbacConfig(b.bindingName("scim-check-", "scim-check", r), rbacv1.UserKind, "scim-operator:bind-check", nil, r)
	if err := b.w.Apply(ctx, probe, client.FieldOwner(b.owner), client.ForceOwnership, client.DryRunAll); err != nil {
		b.binds.forget(r)
		return b.writeError(ctx, err, fmt.Sprintf("binding %s", r), r)
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Members

// applyConfig builds the binding for one subject and role, named name, in the backend's
// layout.
func (b *Backend) applyConfig(name, kind, subject string, extra map[string]string, r roleRef) runtime.ApplyConfiguration {
	if b.webhook {
		return b.ledgerConfig(name, kind, subject, extra, r)
	}
	return b.rbacConfig(name, kind, subject, extra, r)
}

// bindingMeta is the labels and annotations every binding of the subject carries.
func (b *Backend) bindingMeta(kind, subject string, extra map[string]string) (lbl, ann map[string]string) {
	lbl = map[string]string{}
	maps.Copy(lbl, b.baseLabel)
	maps.Copy(lbl, extra)
	ann = map[string]string{}
	if kind == rbacv1.UserKind {
		ann[AnnotationUserName] = subject
	}
	return lbl, ann
}

// ledgerConfig is the Webhook layout's grant: an OrgGrant in the config's namespace naming
// the subject, the real role and its scope.
func (b *Backend) ledgerConfig(name, kind, subject string, extra map[string]string, r roleRef) runtime.ApplyConfiguration {
	lbl, ann := b.bindingMeta(kind, subject, extra)
	meta := map[string]any{"name": name, "namespace": b.cfgNS, "labels": toAny(lbl)}
	if len(ann) > 0 {
		meta["annotations"] = toAny(ann)
	}
	spec := map[string]any{
		"subject": map[string]any{"kind": kind, "name": subject},
		"role":    map[string]any{"kind": r.kind, "name": r.name},
	}
	if r.namespace != "" {
		spec["namespace"] = r.namespace
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": scimv1.GroupVersion.String(), "kind": "OrgGrant", "metadata": meta, "spec": spec,
	}}
	return client.ApplyConfigurationFromUnstructured(u)
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// rbacConfig is the Bindings layout's binding: the role itself bound to the subject.
func (b *Backend) rbacConfig(name, kind, subject string, extra map[string]string, r roleRef) runtime.ApplyConfiguration {
	lbl, ann := b.bindingMeta(kind, subject, extra)
	if len(ann) == 0 {
		ann = nil
	}
	subj := rbacv1ac.Subject().WithKind(kind).WithAPIGroup(rbacv1.GroupName).WithName(subject)
	ref := rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind(r.kind).WithName(r.name)
	if r.namespace == "" {
		return rbacv1ac.ClusterRoleBinding(name).WithLabels(lbl).WithAnnotations(ann).WithRoleRef(ref).WithSubjects(subj)
	}
	return rbacv1ac.RoleBinding(name, r.namespace).WithLabels(lbl).WithAnnotations(ann).WithRoleRef(ref).WithSubjects(subj)
}

// existing returns the grants (ClusterRoleBindings, RoleBindings and OrgGrants) matching
// extra on top of the config labels, keyed by key.
func (b *Backend) existing(ctx context.Context, extra map[string]string) (map[string]binding, error) {
	sel := labels.SelectorFromSet(labels.Merge(b.baseLabel, extra))
	if idx := b.indexedBy(extra); idx != nil {
		return b.list(ctx, sel, idx)
	}
	return b.list(ctx, sel)
}

// binding is the part of a ClusterRoleBinding, RoleBinding or OrgGrant this backend reads.
type binding struct {
	namespace, name string
	labels          map[string]string
	subjects        []rbacv1.Subject
	// grant is the role the binding grants: its roleRef for an RBAC binding, its spec for
	// an OrgGrant.
	grant roleRef
	// ledger: an OrgGrant of the Webhook layout.
	ledger bool
}

func (e binding) place() place { return place{ledger: e.ledger, namespace: e.namespace} }

// readBinding reads what an RBAC binding grants.
func readBinding(namespace, name string, lbl map[string]string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) binding {
	return binding{namespace: namespace, name: name, labels: lbl, subjects: subjects,
		grant: roleRef{namespace: namespace, kind: ref.Kind, name: ref.Name}}
}

// readGrant reads what an OrgGrant grants.
func readGrant(g *scimv1.OrgGrant) binding {
	return binding{namespace: g.Namespace, name: g.Name, labels: g.Labels, ledger: true,
		subjects: []rbacv1.Subject{{Kind: string(g.Spec.Subject.Kind), APIGroup: rbacv1.GroupName, Name: g.Spec.Subject.Name}},
		grant:    roleRef{namespace: g.Spec.Namespace, kind: string(g.Spec.Role.Kind), name: g.Spec.Role.Name}}
}

// list lists the config's grants that sel selects; more narrows the listing first (an
// index lookup). It reads the cache's own objects (UnsafeDisableDeepCopy): a drift pass
// lists every grant of the config once an interval, and a deep copy made 100,000
// OrgGrants of garbage each time at 100,000 members. A binding keeps the objects' labels and subjects
// only to read them (whoever changes labels clones them first).
func (b *Backend) list(ctx context.Context, sel labels.Selector, more ...client.ListOption) (map[string]binding, error) {
	out := map[string]binding{}
	opts := append([]client.ListOption{client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy}, more...)
	var crbs rbacv1.ClusterRoleBindingList
	if err := b.c.List(ctx, &crbs, opts...); err != nil {
		return nil, classify(err, "listing ClusterRoleBindings", roleRef{})
	}
	for _, o := range crbs.Items {
		out[key(false, "", o.Name)] = readBinding("", o.Name, o.Labels, o.RoleRef, o.Subjects)
	}
	var rbs rbacv1.RoleBindingList
	if err := b.c.List(ctx, &rbs, opts...); err != nil {
		return nil, classify(err, "listing RoleBindings", roleRef{})
	}
	for _, o := range rbs.Items {
		out[key(false, o.Namespace, o.Name)] = readBinding(o.Namespace, o.Name, o.Labels, o.RoleRef, o.Subjects)
	}
	// OrgGrants live only in the config's namespace (the authorizer honours no other)
	var ogs scimv1.OrgGrantList
	if err := b.c.List(ctx, &ogs, append([]client.ListOption{client.InNamespace(b.cfgNS)}, opts...)...); err != nil {
		return nil, classify(err, "listing OrgGrants", roleRef{})
	}
	for i := range ogs.Items {
		o := &ogs.Items[i]
		out[key(true, o.Namespace, o.Name)] = readGrant(o)
	}
	return out, nil
}

// matches tells whether an existing binding already grants r to the subject in the
// backend's layout (a grant of the other layout is moved by the next ensure).
func (b *Backend) matches(e binding, kind, subject string, r roleRef) bool {
	return e.grant == r && e.ledger == b.webhook && e.namespace == b.placement(r) &&
		len(e.subjects) == 1 && e.subjects[0].Kind == kind && e.subjects[0].Name == subject
}

func validName(kind, name string) error {
	reason, what := ReasonInvalidUser, "userName"
	if kind == rbacv1.GroupKind {
		reason, what = ReasonInvalidTeam, "team name"
	}
	if strings.TrimSpace(name) == "" {
		return backend.NewPermanent(reason, fmt.Errorf("empty %s", what))
	}
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(name)), "system:") {
		return backend.NewPermanent(reason, fmt.Errorf(
			"%s %q starts with \"system:\", which Kubernetes reserves for its own identities; refusing to bind roles to it", what, name))
	}
	return nil
}

// ObserveMember reports the member's bindings: StateMember when every configured role is
// bound to the userName (case-insensitively found) by a binding of this config; otherwise
// StateAbsent, with BackendID set when some leftover binding still names the person.
// Managed says whether any binding of this config names the person.
func (b *Backend) ObserveMember(ctx context.Context, userName string) (backend.Member, error) {
	if err := ctx.Err(); err != nil {
		return backend.Member{}, backend.NewTransient("Cancelled", err)
	}
	h := MemberHash(userName)
	have, err := b.existing(ctx, map[string]string{LabelMember: h})
	if err != nil {
		return backend.Member{}, err
	}
	return b.member(userName, have), nil
}

// member summarizes the bindings of one member hash.
func (b *Backend) member(userName string, have map[string]binding) backend.Member {
	m := backend.Member{UserName: userName, State: backend.StateAbsent, Managed: len(have) > 0}
	subject := ""
	for _, e := range have {
		if len(e.subjects) == 1 && e.subjects[0].Kind == rbacv1.UserKind {
			subject = e.subjects[0].Name
			break
		}
	}
	if subject == "" {
		return m
	}
	m.BackendID = subject
	if strings.Contains(subject, "@") {
		m.Email = subject
	}
	if len(b.roles) == 0 {
		return m
	}
	if b.grantsAll(have, rbacv1.UserKind, subject) {
		m.State = backend.StateMember
	}
	return m
}

// grantsAll tells whether every configured role is bound to the subject by one of have.
func (b *Backend) grantsAll(have map[string]binding, kind, subject string) bool {
	for _, r := range b.roles {
		if !slices.ContainsFunc(mapValues(have), func(e binding) bool { return b.matches(e, kind, subject, r) }) {
			return false
		}
	}
	return true
}

func mapValues(m map[string]binding) []binding {
	out := make([]binding, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// EnsureMember binds every configured role to the userName. With an Owner the bindings are
// named and labelled by the owner's UID: a renamed member's bindings get the new subject,
// the owner's bindings of roles no longer configured are deleted, and bindings of the same
// person that no live member owns (orphaned, or written before owners were recorded) are
// claimed: replaced by the owner's. Without an Owner the bindings are named by the person.
// DesiredMember.Role and Email are not used: the access is the ScimConfig's.
func (b *Backend) EnsureMember(ctx context.Context, want backend.DesiredMember) (backend.Member, error) {
	if err := ctx.Err(); err != nil {
		return backend.Member{}, backend.NewTransient("Cancelled", err)
	}
	if err := validName(rbacv1.UserKind, want.UserName); err != nil {
		return backend.Member{}, err
	}
	if len(b.roles) == 0 {
		return backend.Member{}, b.noRoles()
	}
	g := grant{prefix: "scim-u-", kind: rbacv1.UserKind, subject: want.UserName,
		hashLabel: LabelMember, hash: MemberHash(want.UserName), owner: want.Owner}
	if err := b.ensure(ctx, g); err != nil {
		return backend.Member{}, err
	}
	return backend.Member{UserName: want.UserName, BackendID: want.UserName, Email: emailOf(want.UserName),
		State: backend.StateMember, Managed: true}, nil
}

// grant is one subject's access: every configured role bound to it.
type grant struct {
	prefix, kind, subject string
	hashLabel, hash       string
	owner                 backend.Owner
}

func (b *Backend) grantName(g grant, r roleRef) string {
	if g.owner.UID != "" {
		return b.ownerName(g.prefix, g.owner, r)
	}
	return b.bindingName(g.prefix, g.hash, r)
}

func (b *Backend) grantLabels(g grant) map[string]string {
	l := map[string]string{g.hashLabel: g.hash}
	if g.owner.UID != "" {
		l[LabelOwnerUID] = g.owner.UID
		l[LabelOwnerKind] = g.owner.Kind
	}
	return l
}

// ensure makes the grant's bindings exist and deletes what the grant replaces: the
// owner's other bindings, and the subject's bindings no live owner holds.
func (b *Backend) ensure(ctx context.Context, g grant) error {
	have, err := b.existing(ctx, map[string]string{g.hashLabel: g.hash})
	if err != nil {
		return err
	}
	if g.owner.UID != "" {
		mine, err := b.existing(ctx, map[string]string{LabelOwnerUID: g.owner.UID})
		if err != nil {
			return err
		}
		maps.Copy(have, mine)
	}
	lbl := b.grantLabels(g)
	wanted := map[string]bool{}
	var writes []write
	for _, r := range b.roles {
		name := b.grantName(g, r)
		k := key(b.webhook, b.placement(r), name)
		wanted[k] = true
		e, ok := have[k]
		if ok && b.matches(e, g.kind, g.subject, r) && labelsHold(e.labels, lbl) {
			continue
		}
		writes = append(writes, write{r: r, name: name, old: e, existed: ok})
	}
	// Several grants to write: dry-run them all first, so that a refused one (a role the
	// ServiceAccount may not grant) leaves none of the others written either. In the
	// Webhook layout every write is preceded by a dry-run of the real binding as well (or
	// stands on an allowed one of the role sent less than bindCheckReuse ago: bindCheck):
	// no escalation check runs on an OrgGrant, so only the real binding proves that the
	// ServiceAccount could grant the role itself. A single write is not tried first:
	// the write itself is its own all-or-nothing (one request fewer per member).
	what := func(w write) string {
		return fmt.Sprintf("binding %s to %s %q", w.r, strings.ToLower(g.kind), g.subject)
	}
	for _, w := range writes {
		if b.webhook {
			check := b.rbacConfig(b.bindingName("scim-check-", "scim-check", w.r), g.kind, g.subject, lbl, w.r)
			if err := b.bindCheck(ctx, g.kind, w.r, check); err != nil {
				return b.writeError(ctx, err, what(w), w.r)
			}
		}
		if len(writes) > 1 {
			// the write itself, tried: all of them or none
			if err := b.apply(ctx, b.applyConfig(w.name, g.kind, g.subject, lbl, w.r), b.webhook, client.DryRunAll); err != nil {
				return b.writeError(ctx, err, what(w), w.r)
			}
		}
	}
	for _, w := range writes {
		// a fresh configuration each time: Apply writes the server's answer into it
		ac := b.applyConfig(w.name, g.kind, g.subject, lbl, w.r)
		write := b.apply
		if !w.existed {
			write = b.create
		}
		if err := write(ctx, ac, b.webhook); err != nil {
			return b.writeError(ctx, err, what(w), w.r)
		}
	}
	for _, w := range writes {
		if _, orphaned := w.old.labels[LabelOrphaned]; w.existed && orphaned {
			// The orphan mark was written by a merge patch, a field the apply above does
			// not own: take it off explicitly (an owner re-ensuring its orphaned binding,
			// after its config was deleted under Orphan and created again).
			if err := b.unorphan(ctx, w.old); err != nil {
				return err
			}
		}
	}
	for k, e := range have {
		owner := e.labels[LabelOwnerUID]
		if wanted[k] || (owner != "" && owner != g.owner.UID) {
			continue // another owner's binding of the same name: the sweep decides about it
		}
		if err := b.deleteBinding(ctx, e.place(), e.name); err != nil {
			return err
		}
	}
	return nil
}

// writer is the client that writes a grant: the ServiceAccount's (b.w) for an RBAC
// binding, so that the API server's escalation check judges it; the manager's own (b.c)
// for an OrgGrant, which no escalation check judges: the tenant ServiceAccount holds no
// rights on OrgGrants, and every OrgGrant write is preceded by a dry-run of the real
// binding as the ServiceAccount (ensure, where an allowed one of the last bindCheckReuse
// may stand for it; moveOrphans).
func (b *Backend) writer(ledger bool) client.Client {
	if ledger {
		return b.c
	}
	return b.w
}

// apply server-side applies a grant with the writer of its kind (ledger: an OrgGrant, as
// ledgerConfig builds it; else an RBAC binding).
func (b *Backend) apply(ctx context.Context, ac runtime.ApplyConfiguration, ledger bool, opts ...client.ApplyOption) error {
	err := b.writer(ledger).Apply(ctx, ac, append([]client.ApplyOption{client.FieldOwner(b.owner), client.ForceOwnership}, opts...)...)
	return b.ledgerError(err, ledger)
}

// create writes a grant the reader does not show yet (ac, as applyConfig builds it) with a
// plain create, which costs the API server less than an apply that creates: no read of
// the object before the write, no merge of field sets. The fields are then the field
// owner's as an Update; a later apply (ForceOwnership) owns the fields it sets as well,
// and takes over those whose values it changes, but it never removes a field the Update
// owns. None needs removing: the grant's name fixes which fields it has (the subject's
// kind, hence the user-name annotation; the role and its scope, hence spec.namespace;
// the owner, hence the owner labels), and only values change (the subject's case, the
// member label's hash), which an apply sets. The orphan mark, written by a merge patch,
// is taken off explicitly (unorphan). Where the grant exists after all (a reader that
// lags), the apply does the write.
func (b *Backend) create(ctx context.Context, ac runtime.ApplyConfiguration, ledger bool, opts ...client.ApplyOption) error {
	raw, err := json.Marshal(ac)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil {
		return err
	}
	err = b.writer(ledger).Create(ctx, u, client.FieldOwner(b.owner))
	if apierrors.IsAlreadyExists(err) {
		return b.apply(ctx, ac, ledger, opts...)
	}
	return b.ledgerError(err, ledger)
}

// bindCheckReuse is how long an allowed dry-run of a real binding (the API server's
// escalation check of the ServiceAccount, for one role and kind of subject) stands for the
// Webhook layout's next grants of that role. An organization's initial sync grants the
// same role to thousands of members within seconds; the check asked once per member was
// a sixth of the API server's requests in `make bench`'s full sync. The escalation check
// judges the ServiceAccount's rights over the role (what it holds, the role's rules), not
// the subject, and the API server's RBAC authorizer answers from its own watch of the
// bindings: a check sent this long ago stands for a grant whose checks begin now, so a
// ServiceAccount that lost the right to bind a role (or a role that gained rules it does
// not hold) gets no new grant of it once this long has passed. A refused check, here or
// in Check, ends the reuse of the role's allowed ones and is never remembered.
//
// The dry-run also runs the API server's admission on the binding; an admission policy
// that judges a binding's subject therefore sees one member's binding per role and
// window, not every member's. This backend's promise is the escalation check (a grant
// its ServiceAccount could not make itself is never made); a policy on the Webhook
// layout's subjects belongs on OrgGrants, which are written one per member and role
// (docs/kubernetes-backend.md).
const bindCheckReuse = 2 * time.Second

// bindChecks remembers when a bind check (of a role, for a kind of subject) was last sent
// and allowed, and when a check of a role last failed.
type bindChecks struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	// allowed is by role key (roleRef.key), then by the subject's kind
	allowed map[string]map[string]time.Time
	// failed is by role key: an allowance sent before it is not kept (a check in flight
	// while another was refused answers with what it saw before)
	failed map[string]time.Time
}

// bindCheck dry-runs the real binding check (as the ServiceAccount) unless a check of the
// role for this kind of subject was sent less than bindCheckReuse ago and allowed.
func (b *Backend) bindCheck(ctx context.Context, kind string, r roleRef, check runtime.ApplyConfiguration) error {
	role := r.key()
	c := b.binds
	c.mu.Lock()
	at, ok := c.allowed[role][kind]
	c.mu.Unlock()
	if ok && c.clock.Since(at) < bindCheckReuse {
		return nil
	}
	sent := c.clock.Now()
	if err := b.apply(ctx, check, false, client.DryRunAll); err != nil {
		c.forget(r)
		return err
	}
	c.mu.Lock()
	if sent.After(c.allowed[role][kind]) && sent.After(c.failed[role]) {
		if c.allowed[role] == nil {
			c.allowed[role] = map[string]time.Time{}
		}
		c.allowed[role][kind] = sent
	}
	c.mu.Unlock()
	return nil
}

// forget drops what was remembered of r: a check of it that failed, here or in Check,
// ends the reuse of an allowed one sent before it (by another worker), and keeps one
// still in flight from being remembered.
func (c *bindChecks) forget(r roleRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed[r.key()] = c.clock.Now()
	delete(c.allowed, r.key())
}

// ledgerError blames a refused OrgGrant write on the manager's own RBAC, not on the
// ServiceAccount (writeError passes a classified error through).
func (b *Backend) ledgerError(err error, ledger bool) error {
	if !ledger || !apierrors.IsForbidden(err) {
		return err
	}
	return backend.NewPermanent(ReasonForbidden, fmt.Errorf(
		"the manager may not write OrgGrants in namespace %q: its ClusterRole needs \"create\" and \"patch\" on "+
			"orggrants (scim.operator.dev), see docs/rbac.md: %w", b.cfgNS, err))
}

// write is one grant ensure must apply.
type write struct {
	old     binding // what exists under the name, when existed
	existed bool
	r       roleRef
	name    string
}

// labelsHold tells whether have carries every label of want and is not marked orphaned.
func labelsHold(have, want map[string]string) bool {
	if _, orphaned := have[LabelOrphaned]; orphaned {
		return false
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func emailOf(userName string) string {
	if strings.Contains(userName, "@") {
		return userName
	}
	return ""
}

// deleteStale deletes the listed bindings that are not wanted.
func (b *Backend) deleteStale(ctx context.Context, have map[string]binding, wanted map[string]bool) error {
	for k, e := range have {
		if wanted[k] {
			continue
		}
		if err := b.deleteBinding(ctx, e.place(), e.name); err != nil {
			return err
		}
	}
	return nil
}

// emptyObject is an object of the kind that lives at p: an OrgGrant, a RoleBinding or a
// ClusterRoleBinding.
func emptyObject(p place) client.Object {
	switch {
	case p.ledger:
		return &scimv1.OrgGrant{}
	case p.namespace != "":
		return &rbacv1.RoleBinding{}
	default:
		return &rbacv1.ClusterRoleBinding{}
	}
}

func (b *Backend) deleteBinding(ctx context.Context, p place, name string) error {
	obj := emptyObject(p)
	obj.SetNamespace(p.namespace)
	obj.SetName(name)
	err := b.c.Delete(ctx, obj)
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	what := fmt.Sprintf("deleting ClusterRoleBinding %q", name)
	switch {
	case p.ledger:
		what = fmt.Sprintf("deleting OrgGrant %s/%s", p.namespace, name)
	case p.namespace != "":
		what = fmt.Sprintf("deleting RoleBinding %s/%s", p.namespace, name)
	}
	return classify(err, what, roleRef{})
}

// EnsureMemberAbsent deletes every binding of this config that names the person: the
// configured ones by their deterministic names (so a binding a stale cache has not shown
// yet is still removed) and any other labeled with the person's hash.
func (b *Backend) EnsureMemberAbsent(ctx context.Context, userName string) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	h := MemberHash(userName)
	return b.removeAll(ctx, "scim-u-", h, map[string]string{LabelMember: h})
}

func (b *Backend) removeAll(ctx context.Context, prefix, h string, extra map[string]string) error {
	for _, r := range b.roles {
		for _, p := range b.placements(r) {
			if err := b.deleteBinding(ctx, p, b.bindingName(prefix, h, r)); err != nil {
				return err
			}
		}
	}
	have, err := b.existing(ctx, extra)
	if err != nil {
		return err
	}
	return b.deleteStale(ctx, have, nil)
}

// ListMembers lists every person that holds a binding of this config: StateMember when
// all configured roles are bound, StateAbsent for leftovers (see ObserveMember), with the
// UIDs of the OrgMembers owning those bindings (Owners). It reads the manager's cache of
// the labelled bindings (cachepolicy): a drift pass costs the API server nothing.
func (b *Backend) ListMembers(ctx context.Context) ([]backend.Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, backend.NewTransient("Cancelled", err)
	}
	all, err := b.listWith(ctx, LabelMember)
	if err != nil {
		return nil, err
	}
	byHash := map[string]map[string]binding{}
	for k, e := range all {
		h := e.labels[LabelMember]
		if byHash[h] == nil {
			byHash[h] = map[string]binding{}
		}
		byHash[h][k] = e
	}
	out := make([]backend.Member, 0, len(byHash))
	for _, have := range byHash {
		m := b.member("", have)
		if m.BackendID == "" {
			continue
		}
		m.UserName = m.BackendID
		for _, e := range have {
			if uid := e.labels[LabelOwnerUID]; uid != "" && e.labels[LabelOwnerKind] == "OrgMember" &&
				!slices.Contains(m.Owners, uid) {
				m.Owners = append(m.Owners, uid)
			}
		}
		slices.Sort(m.Owners)
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, c backend.Member) int { return strings.Compare(a.UserName, c.UserName) })
	return out, nil
}

// listWith lists the config's bindings that carry the label key.
func (b *Backend) listWith(ctx context.Context, key string) (map[string]binding, error) {
	req, err := labels.NewRequirement(key, selection.Exists, nil)
	if err != nil {
		return nil, backend.NewPermanent(ReasonInvalid, err)
	}
	return b.list(ctx, labels.SelectorFromSet(b.baseLabel).Add(*req))
}

// ---------------------------------------------------------------------------------------
// Teams

// ObserveTeam returns the team when every configured role is bound to its Group subject,
// nil otherwise. Members is always empty (group membership comes from the authenticator).
func (b *Backend) ObserveTeam(ctx context.Context, team string) (*backend.Team, error) {
	return b.ObserveTeamOwned(ctx, backend.Owner{}, team)
}

// ObserveTeamOwned is ObserveTeam for an OrgGroup: the team exists for it when its own
// bindings grant every role to the Group.
func (b *Backend) ObserveTeamOwned(ctx context.Context, owner backend.Owner, team string) (*backend.Team, error) {
	if err := ctx.Err(); err != nil {
		return nil, backend.NewTransient("Cancelled", err)
	}
	if len(b.roles) == 0 {
		return nil, nil
	}
	extra := map[string]string{LabelTeam: TeamHash(team)}
	if owner.UID != "" {
		extra = map[string]string{LabelOwnerUID: owner.UID}
	}
	have, err := b.existing(ctx, extra)
	if err != nil {
		return nil, err
	}
	if !b.grantsAll(have, rbacv1.GroupKind, team) {
		return nil, nil
	}
	return &backend.Team{Name: team}, nil
}

// EnsureTeam binds every configured role to the Group named team.
func (b *Backend) EnsureTeam(ctx context.Context, team string) error {
	return b.EnsureTeamOwned(ctx, backend.Owner{}, team)
}

// EnsureTeamOwned is EnsureTeam for an OrgGroup: the bindings carry its UID, so a renamed
// group's bindings get the new Group subject and the old one loses access.
func (b *Backend) EnsureTeamOwned(ctx context.Context, owner backend.Owner, team string) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	if err := validName(rbacv1.GroupKind, team); err != nil {
		return err
	}
	if len(b.roles) == 0 {
		return b.noRoles()
	}
	return b.ensure(ctx, grant{prefix: "scim-g-", kind: rbacv1.GroupKind, subject: team,
		hashLabel: LabelTeam, hash: TeamHash(team), owner: owner})
}

// EnsureTeamAbsent deletes every binding of the Group named team.
func (b *Backend) EnsureTeamAbsent(ctx context.Context, team string) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	h := TeamHash(team)
	return b.removeAll(ctx, "scim-g-", h, map[string]string{LabelTeam: h})
}

// EnsureTeamMember succeeds without doing anything: Kubernetes group membership comes from
// the authenticator (for example the OIDC groups claim), not from RBAC.
func (b *Backend) EnsureTeamMember(ctx context.Context, _, _ string) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	return nil
}

// EnsureTeamMemberAbsent succeeds without doing anything (see EnsureTeamMember).
func (b *Backend) EnsureTeamMemberAbsent(ctx context.Context, _, _ string) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	return nil
}

// NoUserTeams says that a team here is a Group grant, not a list of people: a per-user
// team hint must not create it (backend.NoUserTeams).
func (b *Backend) NoUserTeams() {}

// ---------------------------------------------------------------------------------------
// Owners (backend.OwnerLedger)

// EnsureOwnerAbsent deletes every binding the owner holds: the configured ones by their
// deterministic names (a binding the cache has not shown yet is still removed) and any
// other labelled with its UID, whatever subject they name.
func (b *Backend) EnsureOwnerAbsent(ctx context.Context, owner backend.Owner, subject string) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	if owner.UID == "" {
		return backend.NewPermanent(ReasonInvalid, errors.New("no owner UID"))
	}
	for _, prefix := range []string{"scim-u-", "scim-g-"} {
		for _, r := range b.roles {
			for _, p := range b.placements(r) {
				if err := b.deleteBinding(ctx, p, b.ownerName(prefix, owner, r)); err != nil {
					return err
				}
			}
		}
	}
	have, err := b.existing(ctx, map[string]string{LabelOwnerUID: owner.UID})
	if err != nil {
		return err
	}
	if subject != "" {
		sel := map[string]string{LabelMember: MemberHash(subject)}
		if owner.Kind == "OrgGroup" {
			sel = map[string]string{LabelTeam: TeamHash(subject)}
		}
		same, err := b.existing(ctx, sel)
		if err != nil {
			return err
		}
		for k, e := range same {
			if e.labels[LabelOwnerUID] == "" {
				have[k] = e
			}
		}
	}
	return b.deleteStale(ctx, have, nil)
}

// OwnerHolds tells whether any binding of the config carries the owner's UID (read from
// the client given to New: the manager's cache).
func (b *Backend) OwnerHolds(ctx context.Context, owner backend.Owner) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, backend.NewTransient("Cancelled", err)
	}
	if owner.UID == "" {
		return false, nil
	}
	have, err := b.existing(ctx, map[string]string{LabelOwnerUID: owner.UID})
	return len(have) > 0, err
}

// OrphanOwner marks the owner's bindings orphaned: the owner label goes, the access stays.
func (b *Backend) OrphanOwner(ctx context.Context, owner backend.Owner, why string) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	have, err := b.existing(ctx, map[string]string{LabelOwnerUID: owner.UID})
	if err != nil {
		return err
	}
	return b.orphan(ctx, have, why)
}

// orphan relabels bindings as the ServiceAccount: the API server runs its escalation check
// on every update of a binding, labels included, so this is a write like an apply (an
// OrgGrant, like every OrgGrant write, is the manager's: see writer).
func (b *Backend) orphan(ctx context.Context, have map[string]binding, why string) error {
	patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:null,%q:%q}}}`, LabelOwnerUID, LabelOrphaned, labelValue(why)))
	for _, e := range have {
		obj := emptyObject(e.place())
		obj.SetNamespace(e.namespace)
		obj.SetName(e.name)
		err := b.ledgerError(b.writer(e.ledger).Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(b.owner)), e.ledger)
		if err != nil && !apierrors.IsNotFound(err) {
			r := e.grant
			return b.writeError(ctx, err, "marking binding "+e.name+" orphaned", r)
		}
	}
	return nil
}

// unorphan removes the orphan mark from a binding.
func (b *Backend) unorphan(ctx context.Context, e binding) error {
	obj := emptyObject(e.place())
	obj.SetNamespace(e.namespace)
	obj.SetName(e.name)
	patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, LabelOrphaned))
	if err := b.ledgerError(b.writer(e.ledger).Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(b.owner)), e.ledger); err != nil &&
		!apierrors.IsNotFound(err) {
		r := e.grant
		return b.writeError(ctx, err, "unmarking binding "+e.name, r)
	}
	return nil
}

// labelValue makes why a valid label value (CamelCase words pass unchanged).
func labelValue(why string) string {
	out := make([]rune, 0, len(why))
	for _, c := range why {
		if c == '-' || c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			out = append(out, c)
		}
	}
	if len(out) > 63 {
		out = out[:63]
	}
	if len(out) == 0 {
		return "true"
	}
	return string(out)
}

// Sweep deletes the config's owned bindings whose owner is not live, and moves orphaned
// bindings of the other grant layout to the backend's (see moveOrphans).
func (b *Backend) Sweep(ctx context.Context, live func(uid string) bool) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, backend.NewTransient("Cancelled", err)
	}
	all, err := b.listWith(ctx, LabelOwnerUID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range all {
		if live(e.labels[LabelOwnerUID]) {
			continue
		}
		if err := b.deleteBinding(ctx, e.place(), e.name); err != nil {
			return n, err
		}
		n++
	}
	return n, b.moveOrphans(ctx)
}

// moveOrphans rewrites, in the backend's grant layout, every orphaned binding of the other
// layout whose role the config still names, and deletes the old one: nothing owns an
// orphan, so no ensure moves it after a grantLayout change, and an orphaned OrgGrant
// grants nothing once the config leaves the Webhook layout. An orphan of a role the config
// no longer names stays as it is (moving it into the ledger would take its access away,
// moving it out would give access back). The write is the ServiceAccount's, like any
// other (and in the Webhook layout the real binding is dry-run first).
func (b *Backend) moveOrphans(ctx context.Context) error {
	orphans, err := b.listWith(ctx, LabelOrphaned)
	if err != nil {
		return err
	}
	for _, e := range orphans {
		if e.ledger == b.webhook || e.labels[LabelOwnerUID] != "" || len(e.subjects) != 1 ||
			!slices.Contains(b.roles, e.grant) {
			continue
		}
		extra := maps.Clone(e.labels)
		kind, subject := e.subjects[0].Kind, e.subjects[0].Name
		what := fmt.Sprintf("moving orphaned binding %s of %s to %s %q", e.name, e.grant, strings.ToLower(kind), subject)
		if b.webhook {
			probe := b.rbacConfig(b.bindingName("scim-check-", "scim-check", e.grant), kind, subject, extra, e.grant)
			if err := b.w.Apply(ctx, probe, client.FieldOwner(b.owner), client.ForceOwnership, client.DryRunAll); err != nil {
				return b.writeError(ctx, err, what, e.grant)
			}
		}
		if err := b.apply(ctx, b.applyConfig(e.name, kind, subject, extra, e.grant), b.webhook); err != nil {
			return b.writeError(ctx, err, what, e.grant)
		}
		if err := b.deleteBinding(ctx, e.place(), e.name); err != nil {
			return err
		}
	}
	return nil
}

// OrphanAll marks every owned binding of the config orphaned.
func (b *Backend) OrphanAll(ctx context.Context, why string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, backend.NewTransient("Cancelled", err)
	}
	all, err := b.listWith(ctx, LabelOwnerUID)
	if err != nil {
		return 0, err
	}
	return len(all), b.orphan(ctx, all, why)
}

// RemoveAllOwned deletes every owned binding of the config; orphaned ones stay.
func (b *Backend) RemoveAllOwned(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, backend.NewTransient("Cancelled", err)
	}
	all, err := b.listWith(ctx, LabelOwnerUID)
	if err != nil {
		return 0, err
	}
	return len(all), b.deleteStale(ctx, all, nil)
}

// RemoveAll deletes every binding this backend wrote for its ScimConfig (members, teams
// and orphans).
func (b *Backend) RemoveAll(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return backend.NewTransient("Cancelled", err)
	}
	have, err := b.existing(ctx, nil)
	if err != nil {
		return err
	}
	return b.deleteStale(ctx, have, nil)
}

// ---------------------------------------------------------------------------------------
// Errors

// notHeldMarker is how the API server's RBAC escalation check words its refusal.
const notHeldMarker = "attempting to grant RBAC permissions not currently held"

// impersonateMarker is how the API server words a refused impersonation.
const impersonateMarker = "cannot impersonate"

// writeError classifies the failure of a binding create or patch made as the
// ServiceAccount (or, without one, as the manager). Every refusal is a NotAllowedToBind
// naming the role and the identity (the ServiceAccount may not grant it), unless the
// ServiceAccount does not exist (ServiceAccountMissing) or the manager may not
// impersonate it (ImpersonationForbidden).
func (b *Backend) writeError(ctx context.Context, err error, what string, r roleRef) error {
	var be *backend.Error
	if errors.As(err, &be) || !apierrors.IsForbidden(err) {
		return classify(err, what, r)
	}
	if b.sa == "" {
		if strings.Contains(err.Error(), notHeldMarker) {
			return classify(err, what, r)
		}
		return backend.NewPermanent(ReasonNotAllowedToBind, fmt.Errorf(
			"the operator may not write the binding of %s with its own rights: this ScimConfig names no "+
				"serviceAccountName and the manager has no --default-service-account; name a ServiceAccount that "+
				"may create and patch %s and bind the role, see docs/kubernetes-backend.md: %w", r, rbacBindingResource(r), err))
	}
	if strings.Contains(err.Error(), impersonateMarker) {
		return backend.NewPermanent(ReasonImpersonationForbidden, fmt.Errorf(
			"the operator may not act as %s: its ClusterRole needs \"impersonate\" on serviceaccounts with that "+
				"name (resourceNames), see docs/rbac.md: %w", b.saRef(), err))
	}
	if gerr := b.live.Get(ctx, client.ObjectKey{Namespace: b.cfgNS, Name: b.sa}, &corev1.ServiceAccount{}); apierrors.IsNotFound(gerr) {
		return b.saMissing(err)
	}
	if strings.Contains(err.Error(), notHeldMarker) {
		return backend.NewPermanent(ReasonNotAllowedToBind, fmt.Errorf(
			"%s may not grant %s: it holds neither the role's permissions nor the \"bind\" verb on it, and a "+
				"ScimConfig grants no more than the ServiceAccount it acts as could grant itself; give the "+
				"ServiceAccount \"bind\" on that role (resourceNames) if its tenant may hand it out, see "+
				"docs/kubernetes-backend.md: %w", b.saRef(), r, err))
	}
	where := "cluster-wide"
	if r.namespace != "" {
		where = fmt.Sprintf("in namespace %q", r.namespace)
	}
	return backend.NewPermanent(ReasonNotAllowedToBind, fmt.Errorf(
		"%s may not write the binding of %s: it needs \"create\" and \"patch\" on %s %s (and \"bind\" on the "+
			"role), see docs/kubernetes-backend.md: %w", b.saRef(), r, rbacBindingResource(r), where, err))
}

func rbacBindingResource(r roleRef) string {
	if r.namespace == "" {
		return "clusterrolebindings"
	}
	return "rolebindings"
}

// classify turns an API server error into a classified backend error. r names the role
// concerned, when there is one.
func classify(err error, what string, r roleRef) error {
	if err == nil {
		return nil
	}
	var be *backend.Error
	if errors.As(err, &be) {
		return err
	}
	wrapped := fmt.Errorf("%s: %w", what, err)
	switch {
	case errors.Is(err, context.Canceled):
		return backend.NewTransient("Cancelled", wrapped)
	case errors.Is(err, context.DeadlineExceeded):
		return backend.NewTransient("Timeout", wrapped)
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), notHeldMarker):
		return backend.NewPermanent(ReasonNotAllowedToBind, fmt.Errorf(
			"the operator is not allowed to bind %s: this ScimConfig names no serviceAccountName and the manager "+
				"has no --default-service-account, so it binds with the manager's own rights; name a ServiceAccount "+
				"that may bind the role, see docs/kubernetes-backend.md: %w", r, err))
	case apierrors.IsForbidden(err):
		return backend.NewPermanent(ReasonForbidden, wrapped)
	case apierrors.IsNotFound(err) && notFoundKind(err) == "namespaces":
		// A write into a namespace that does not exist.
		return backend.NewPermanent(ReasonNamespace, fmt.Errorf("namespace %q for %s does not exist: %w", r.namespace, r, err))
	case apierrors.IsNotFound(err) && r.name != "":
		// Writing a binding, the API server's escalation check could not read the role
		// being bound (it reports it as the binding's kind with the role's name).
		return backend.NewPermanent(ReasonRoleNotFound, fmt.Errorf("%s does not exist: %w", r, err))
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return backend.NewPermanent(ReasonInvalid, wrapped)
	case apierrors.IsTooManyRequests(err):
		delay, _ := apierrors.SuggestsClientDelay(err)
		return backend.NewRateLimited(secondsDuration(delay), wrapped)
	case apierrors.IsConflict(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err):
		return backend.NewTransient("APIServerUnavailable", wrapped)
	default:
		return backend.NewTransient("APIServerError", wrapped)
	}
}

func secondsDuration(s int) time.Duration { return time.Duration(s) * time.Second }

// notFoundKind is the resource a NotFound status error is about ("namespaces", "roles").
func notFoundKind(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Details != nil {
		return se.Status().Details.Kind
	}
	return ""
}

// CacheByObject limits a manager's cache of ClusterRoleBindings and RoleBindings to the
// ones this backend writes (those labeled scim.operator.dev/config), so that reading
// bindings through the manager's client does not cache every binding of the cluster. Use
// it in cache.Options.ByObject. (OrgGrants are all this backend's: cached whole.)
func CacheByObject() map[client.Object]cache.ByObject {
	req, _ := labels.NewRequirement(LabelConfigNamespace, selection.Exists, nil)
	sel := labels.NewSelector().Add(*req)
	return map[client.Object]cache.ByObject{
		&rbacv1.ClusterRoleBinding{}: {Label: sel},
		&rbacv1.RoleBinding{}:        {Label: sel},
	}
}
