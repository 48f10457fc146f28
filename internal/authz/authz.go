// Package authz is the manager's authorization webhook for the webhook grant layout
// (spec.backend.kubernetes.grantLayout: Webhook): it answers the API server's
// SubjectAccessReviews (authorization.k8s.io/v1) from the manager's informer cache of the
// OrgGrants (the grant ledger), the ScimConfigs and the roles they name.
//
// A request is allowed when an OrgGrant names the requester (User) or one of its groups
// (Group), its labels name a ScimConfig of the OrgGrant's own namespace
// that exists, keeps the Webhook layout and still lists the granted role at that scope, and
// that role's rules allow the request: anywhere for a cluster-wide grant, only in the
// grant's namespace for a namespaced one. Every other request gets no opinion (allowed and
// denied both false), never a denial: RBAC and the other authorizers keep their say.
// Users and groups starting with "system:" are never allowed here (the backend refuses to
// grant to them, the OrgGrant CRD refuses them; a forged grant must not reach them either).
//
// Every replica serves it from its own cache (no leader election), so an answer lags the
// API server by the cache's watch delay. See docs/authorization-webhook.md.
package authz

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
)

// The webhook reads (through the cache) the roles its grants name.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;roles,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orggrants,verbs=list;watch

// labelConfigNamespace is the kubernetes backend's label naming the ScimConfig's namespace
// (internal/backend/kubernetes.LabelConfigNamespace; not imported, so that this package
// depends only on the ledger's format).
const labelConfigNamespace = "scim.operator.dev/config-namespace"

// Decision is an answer: Allowed, or no opinion (the authorizer never denies).
type Decision struct {
	Allowed bool
	// Reason says which grant allowed the request, or why none did (for the API server's
	// audit log; it names roles and configs, never credentials).
	Reason string
}

// Authorizer answers SubjectAccessReviews from a cache-backed Reader that has the
// index.GrantSubject index on OrgGrants (index.SetupGrants).
type Authorizer struct {
	Reader client.Reader
}

// grant is what one OrgGrant grants.
type grant struct {
	binding   *scimv1.OrgGrant
	config    string // ScimConfig name, in binding.Namespace
	kind      string // ClusterRole or Role
	role      string
	namespace string // "" : cluster-wide
}

func (g grant) String() string {
	scope := "cluster-wide"
	if g.namespace != "" {
		scope = "in namespace " + g.namespace
	}
	return fmt.Sprintf("%s %s %s (OrgGrant %s/%s, ScimConfig %s)", g.kind, g.role, scope, g.binding.Namespace, g.binding.Name, g.config)
}

// Authorize answers one SubjectAccessReview spec. An error means the cache could not be
// read; the answer is then no opinion too.
func (a *Authorizer) Authorize(ctx context.Context, spec authorizationv1.SubjectAccessReviewSpec) (Decision, error) {
	if spec.User == "" || reserved(spec.User) {
		return Decision{Reason: "scim-operator grants nothing to system: or anonymous users"}, nil
	}
	if spec.ResourceAttributes == nil && spec.NonResourceAttributes == nil {
		return Decision{Reason: "no attributes"}, nil
	}
	keys := []string{index.GrantSubjectKey(rbacv1.UserKind, spec.User)}
	for _, g := range spec.Groups {
		if !reserved(g) {
			keys = append(keys, index.GrantSubjectKey(rbacv1.GroupKind, g))
		}
	}
	configs := map[client.ObjectKey]*scimv1.ScimConfig{}
	for _, key := range keys {
		var rbs scimv1.OrgGrantList
		// read only: the cache's objects, not a copy per review
		if err := a.Reader.List(ctx, &rbs, client.MatchingFields{index.GrantSubject: key}, client.UnsafeDisableDeepCopy); err != nil {
			return Decision{}, fmt.Errorf("listing the OrgGrants of %s: %w", key, err)
		}
		for i := range rbs.Items {
			g, ok := ledgerGrant(&rbs.Items[i])
			if !ok || !inScope(g, spec) {
				continue
			}
			listed, err := a.configLists(ctx, configs, g)
			if err != nil {
				return Decision{}, err
			}
			if !listed {
				continue
			}
			rules, err := a.rules(ctx, g)
			if err != nil {
				return Decision{}, err
			}
			if RulesAllow(rules, spec) {
				return Decision{Allowed: true, Reason: "scim-operator grant: " + g.String()}, nil
			}
		}
	}
	return Decision{Reason: "no scim-operator grant allows this"}, nil
}

func reserved(name string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(name)), "system:")
}

// ledgerGrant reads an OrgGrant; ok is false when it names no ScimConfig of its own
// namespace, or a system: subject, or is malformed.
func ledgerGrant(rb *scimv1.OrgGrant) (grant, bool) {
	if rb.Labels[labelConfigNamespace] != rb.Namespace || rb.Labels[scimv1.LabelConfig] == "" ||
		reserved(rb.Spec.Subject.Name) {
		return grant{}, false
	}
	g := grant{
		binding:   rb,
		config:    rb.Labels[scimv1.LabelConfig],
		kind:      string(rb.Spec.Role.Kind),
		role:      rb.Spec.Role.Name,
		namespace: rb.Spec.Namespace,
	}
	if g.role == "" {
		return grant{}, false
	}
	switch g.kind {
	case "ClusterRole":
	case "Role":
		if g.namespace == "" { // a Role exists only in a namespace
			return grant{}, false
		}
	default:
		return grant{}, false
	}
	return g, true
}

// inScope tells whether a grant's scope covers the request: a cluster-wide grant covers
// every namespace, cluster-scoped resources and non-resource URLs; a namespaced grant only
// resource requests in its namespace.
func inScope(g grant, spec authorizationv1.SubjectAccessReviewSpec) bool {
	if g.namespace == "" {
		return true
	}
	return spec.ResourceAttributes != nil && spec.ResourceAttributes.Namespace == g.namespace
}

// configLists tells whether the grant's ScimConfig exists, keeps the Webhook layout and
// still lists the granted role at the grant's scope. seen memoizes configs per request.
func (a *Authorizer) configLists(ctx context.Context, seen map[client.ObjectKey]*scimv1.ScimConfig, g grant) (bool, error) {
	key := client.ObjectKey{Namespace: g.binding.Namespace, Name: g.config}
	cfg, ok := seen[key]
	if !ok {
		cfg = &scimv1.ScimConfig{}
		if err := a.Reader.Get(ctx, key, cfg); apierrors.IsNotFound(err) {
			cfg = nil
		} else if err != nil {
			return false, fmt.Errorf("reading ScimConfig %s: %w", key, err)
		}
		seen[key] = cfg
	}
	// a config being deleted grants nothing more: its grants are on their way out
	if cfg == nil || cfg.DeletionTimestamp != nil || cfg.Spec.Backend.Type != scimv1.BackendKubernetes {
		return false, nil
	}
	k := cfg.Spec.Backend.Kubernetes
	if k.Layout() != scimv1.GrantLayoutWebhook {
		return false, nil
	}
	if g.namespace == "" {
		for _, n := range k.ClusterRoles {
			if n == g.role && g.kind == "ClusterRole" {
				return true, nil
			}
		}
		return false, nil
	}
	for _, r := range k.Roles {
		kind := r.Kind
		if kind == "" {
			kind = "Role"
		}
		if r.Namespace == g.namespace && kind == g.kind && r.Name == g.role {
			return true, nil
		}
	}
	return false, nil
}

// rules are the granted role's rules (none when it does not exist, as RBAC treats a
// binding to a missing role).
func (a *Authorizer) rules(ctx context.Context, g grant) ([]rbacv1.PolicyRule, error) {
	var err error
	var rules []rbacv1.PolicyRule
	if g.kind == "ClusterRole" {
		var cr rbacv1.ClusterRole
		err = a.Reader.Get(ctx, client.ObjectKey{Name: g.role}, &cr)
		rules = cr.Rules
	} else {
		var r rbacv1.Role
		err = a.Reader.Get(ctx, client.ObjectKey{Namespace: g.namespace, Name: g.role}, &r)
		rules = r.Rules
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", g.kind, g.role, err)
	}
	return rules, nil
}
