package main

// The kubernetes backend's grants as the plugin reads them: ClusterRoleBindings,
// RoleBindings and OrgGrants (the Webhook grant layout) with the labels
// internal/backend/kubernetes writes, listed once with the user's own kubeconfig and never
// written.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

// grant is one grant: a ClusterRoleBinding (Namespace ""), a RoleBinding, or an OrgGrant
// of the Webhook grant layout (OrgGrant set: its role and scope in Spec, its subject in
// Subjects).
type grant struct {
	Namespace, Name string
	Labels          map[string]string
	Annotations     map[string]string
	RoleRef         rbacv1.RoleRef
	Subjects        []rbacv1.Subject
	OrgGrant        bool
	Spec            scimv1.OrgGrantSpec
}

// ledger tells whether the grant is an OrgGrant of the Webhook grant layout.
func (g grant) ledger() bool { return g.OrgGrant }

// grants is the role the grant grants: a binding's roleRef where it is, or an OrgGrant's
// role and scope.
func (g grant) grants() configuredRole {
	if g.ledger() {
		return configuredRole{Namespace: g.Spec.Namespace, Kind: string(g.Spec.Role.Kind), Name: g.Spec.Role.Name}
	}
	return configuredRole{Namespace: g.Namespace, Kind: g.RoleRef.Kind, Name: g.RoleRef.Name}
}

func (g grant) owner() string { return g.Labels[k8sbackend.LabelOwnerUID] }

func (g grant) orphaned() (string, bool) {
	why, ok := g.Labels[k8sbackend.LabelOrphaned]
	return why, ok
}

// object names the grant: "ClusterRoleBinding NAME", "RoleBinding NS/NAME" or
// "OrgGrant NS/NAME".
func (g grant) object() string {
	if g.ledger() {
		return "OrgGrant " + g.Namespace + "/" + g.Name
	}
	if g.Namespace == "" {
		return "ClusterRoleBinding " + g.Name
	}
	return "RoleBinding " + g.Namespace + "/" + g.Name
}

// role names what the binding grants: "ClusterRole view", "Role apps/deployer",
// "ClusterRole edit in namespace apps" (an OrgGrant: "... (ledger)").
func (g grant) role() string {
	r := g.grants()
	if g.ledger() {
		return r.words() + " (ledger)"
	}
	return r.words()
}

func roleWords(namespace, kind, name string) string {
	switch {
	case namespace == "":
		return kind + " " + name
	case kind == "ClusterRole":
		return fmt.Sprintf("ClusterRole %s in namespace %s", name, namespace)
	}
	return fmt.Sprintf("%s %s/%s", kind, namespace, name)
}

// subject is the binding's subject: "user alice@x", "group platform", or the list.
func (g grant) subject() string {
	var out []string
	for _, s := range g.Subjects {
		out = append(out, strings.ToLower(s.Kind)+" "+s.Name)
	}
	if len(out) == 0 {
		return "no subject"
	}
	return strings.Join(out, ", ")
}

// user is the single User subject of the binding ("" when it has another shape).
func (g grant) user() string {
	if len(g.Subjects) == 1 && g.Subjects[0].Kind == rbacv1.UserKind {
		return g.Subjects[0].Name
	}
	return ""
}

// listGrants lists the grants matching sel, ClusterRoleBindings first, then RoleBindings
// and OrgGrants, each sorted by namespace and name. A list the user may not make is an
// error that says which.
func listGrants(ctx context.Context, c client.Reader, sel labels.Selector) ([]grant, error) {
	var out []grant
	var crbs rbacv1.ClusterRoleBindingList
	if err := c.List(ctx, &crbs, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing ClusterRoleBindings labelled %s: %w", sel, err)
	}
	for _, o := range crbs.Items {
		out = append(out, grant{Name: o.Name, Labels: o.Labels, Annotations: o.Annotations, RoleRef: o.RoleRef, Subjects: o.Subjects})
	}
	var rbs rbacv1.RoleBindingList
	if err := c.List(ctx, &rbs, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing RoleBindings in all namespaces labelled %s: %w", sel, err)
	}
	for _, o := range rbs.Items {
		out = append(out, grant{Namespace: o.Namespace, Name: o.Name, Labels: o.Labels, Annotations: o.Annotations, RoleRef: o.RoleRef, Subjects: o.Subjects})
	}
	var ogs scimv1.OrgGrantList
	if err := c.List(ctx, &ogs, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("listing OrgGrants in all namespaces labelled %s: %w", sel, err)
	}
	for _, o := range ogs.Items {
		out = append(out, grant{Namespace: o.Namespace, Name: o.Name, Labels: o.Labels, Annotations: o.Annotations,
			OrgGrant: true, Spec: o.Spec,
			Subjects: []rbacv1.Subject{{Kind: string(o.Spec.Subject.Kind), APIGroup: rbacv1.GroupName, Name: o.Spec.Subject.Name}}})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Namespace == "") != (b.Namespace == "") {
			return a.Namespace == ""
		}
		if a.OrgGrant != b.OrgGrant {
			return !a.OrgGrant
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}

// configSelector selects every binding the kubernetes backend wrote for cfg.
func configSelector(cfg *scimv1.ScimConfig) labels.Selector {
	return labels.SelectorFromSet(labels.Set{k8sbackend.LabelConfig: cfg.Name, k8sbackend.LabelConfigNamespace: cfg.Namespace})
}

// ownerSelector selects every binding owned by the object of uid.
func ownerSelector(uid string) labels.Selector {
	return labels.SelectorFromSet(labels.Set{k8sbackend.LabelOwnerUID: uid})
}

// configuredRole is one role a kubernetes ScimConfig grants to every active member.
type configuredRole struct{ Namespace, Kind, Name string }

func (r configuredRole) words() string { return roleWords(r.Namespace, r.Kind, r.Name) }

// heldBy tells whether g grants the role, in either grant layout (plan reports a grant of
// the layout the config does not use as one the backend's next ensure moves).
func (r configuredRole) heldBy(g grant) bool {
	return g.grants() == r
}

// configuredRoles lists the config's roles as the backend does (kubernetes.New): cluster
// roles first, then roles (kind Role by default), without duplicates.
func configuredRoles(cfg *scimv1.ScimConfig) []configuredRole {
	var out []configuredRole
	seen := map[configuredRole]bool{}
	add := func(r configuredRole) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	if k := cfg.Spec.Backend.Kubernetes; k != nil {
		for _, n := range k.ClusterRoles {
			add(configuredRole{Kind: "ClusterRole", Name: n})
		}
		for _, r := range k.Roles {
			kind := r.Kind
			if kind == "" {
				kind = "Role"
			}
			add(configuredRole{Namespace: r.Namespace, Kind: kind, Name: r.Name})
		}
	}
	return out
}

// snapshot is a client.Client that answers the kubernetes backend's binding lists from
// bindings listed once, and refuses every write: `plan` builds the backend on it so that
// it can call its read methods (ObserveMember) without one request per member, and so
// that nothing it calls can change the cluster. Methods it does not define are those of
// a nil client.Client: they panic instead of reaching the API server.
type snapshot struct {
	client.Client
	grants []grant
}

var errReadOnly = errors.New("kubectl scim plan is a dry run: it never writes")

func (s *snapshot) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	sel := o.LabelSelector
	if sel == nil {
		sel = labels.Everything()
	}
	keep := func(g grant) bool {
		return sel.Matches(labels.Set(g.Labels)) && (o.Namespace == "" || o.Namespace == g.Namespace)
	}
	switch l := list.(type) {
	case *rbacv1.ClusterRoleBindingList:
		l.Items = nil
		for _, g := range s.grants {
			if g.Namespace == "" && keep(g) {
				l.Items = append(l.Items, rbacv1.ClusterRoleBinding{ObjectMeta: objectMeta(g), RoleRef: g.RoleRef, Subjects: g.Subjects})
			}
		}
	case *rbacv1.RoleBindingList:
		l.Items = nil
		for _, g := range s.grants {
			if g.Namespace != "" && !g.OrgGrant && keep(g) {
				l.Items = append(l.Items, rbacv1.RoleBinding{ObjectMeta: objectMeta(g), RoleRef: g.RoleRef, Subjects: g.Subjects})
			}
		}
	case *scimv1.OrgGrantList:
		l.Items = nil
		for _, g := range s.grants {
			if g.OrgGrant && keep(g) {
				l.Items = append(l.Items, scimv1.OrgGrant{ObjectMeta: objectMeta(g), Spec: g.Spec})
			}
		}
	default:
		return fmt.Errorf("kubectl scim plan: listing %T is not part of its snapshot", list)
	}
	return nil
}

func objectMeta(g grant) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: g.Namespace, Name: g.Name, Labels: g.Labels, Annotations: g.Annotations}
}

func (s *snapshot) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return errors.New("kubectl scim plan: the snapshot answers lists only")
}

func (s *snapshot) Apply(context.Context, runtime.ApplyConfiguration, ...client.ApplyOption) error {
	return errReadOnly
}
func (s *snapshot) Create(context.Context, client.Object, ...client.CreateOption) error {
	return errReadOnly
}
func (s *snapshot) Delete(context.Context, client.Object, ...client.DeleteOption) error {
	return errReadOnly
}
func (s *snapshot) Update(context.Context, client.Object, ...client.UpdateOption) error {
	return errReadOnly
}
func (s *snapshot) Patch(context.Context, client.Object, client.Patch, ...client.PatchOption) error {
	return errReadOnly
}
func (s *snapshot) DeleteAllOf(context.Context, client.Object, ...client.DeleteAllOfOption) error {
	return errReadOnly
}
