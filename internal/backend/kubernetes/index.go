package kubernetes

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/index"
)

// GrantIndex indexes the backend's grants (ClusterRoleBindings, RoleBindings and
// OrgGrants) in a cache by "<config namespace>/<config>/<label>=<value>" for each of the
// labels a member's, a team's or an owner's grants are found by (LabelMember, LabelTeam,
// LabelOwnerUID). A label selector alone makes the cache test every grant it holds: with
// one grant per member that was a scan of the whole organization on every member
// reconcile (46-78% of the manager's CPU granting 10,000 members under make bench
// -pprof), and granting N members cost O(N^2).
const GrantIndex = "index.grantLabels"

// indexedLabels are the labels GrantIndex keys, in the order existing prefers them.
var indexedLabels = []string{LabelOwnerUID, LabelMember, LabelTeam}

// grantIndexKey is GrantIndex's key for one label of one config's grants.
func grantIndexKey(cfgNS, cfgName, label, value string) string {
	return cfgNS + "/" + cfgName + "/" + label + "=" + value
}

func grantIndexKeys(o client.Object) []string {
	l := o.GetLabels()
	ns, name := l[LabelConfigNamespace], l[LabelConfig]
	if ns == "" || name == "" {
		return nil
	}
	var out []string
	for _, k := range indexedLabels {
		if v, ok := l[k]; ok {
			out = append(out, grantIndexKey(ns, name, k, v))
		}
	}
	return out
}

// SetupIndex registers GrantIndex on the three kinds of grant with a manager's cache (built
// by index.NewCache); a backend reading through that cache is built WithGrantIndex. The
// index is compact (index.Compact): its values are a member's or a team's, one or a few
// grants each, which client-go's sets made cost ~200 bytes a value. A lookup answers what
// the label selector does: the cache re-reads each candidate's labels.
func SetupIndex(ctx context.Context, fi client.FieldIndexer) error {
	// list reads RoleBindings across namespaces and OrgGrants in the config's namespace
	// (ClusterRoleBindings have no namespace: either scope keys them once)
	for _, s := range []struct {
		obj   client.Object
		scope index.Scope
	}{
		{&rbacv1.ClusterRoleBinding{}, index.AllNamespaces},
		{&rbacv1.RoleBinding{}, index.AllNamespaces},
		{&scimv1.OrgGrant{}, index.InNamespace},
	} {
		if err := index.Compact(ctx, fi, s.obj, GrantIndex, s.scope, grantIndexKeys); err != nil {
			return err
		}
	}
	return nil
}

// WithGrantIndex tells the backend that the client given to New reads from a cache with
// GrantIndex (SetupIndex): a member's, a team's or an owner's grants are then looked up
// in the index instead of by testing every grant the cache holds.
func WithGrantIndex() Option { return func(b *Backend) { b.indexed = true } }

// indexedBy is the GrantIndex lookup for a selection of grants by extra (on top of the
// config's labels), or nil when the backend has no index or extra names no indexed label.
func (b *Backend) indexedBy(extra map[string]string) client.ListOption {
	if !b.indexed {
		return nil
	}
	for _, k := range indexedLabels {
		if v, ok := extra[k]; ok {
			return client.MatchingFields{GrantIndex: grantIndexKey(b.cfgNS, b.cfgName, k, v)}
		}
	}
	return nil
}

// ReasonNoAuthorizationWebhook: the config is in the Webhook layout but the manager serves
// no authorization webhook, so no OrgGrant it writes would give anyone access.
const ReasonNoAuthorizationWebhook = "NoAuthorizationWebhook"

// WithAuthorizationWebhook tells the backend whether its manager serves the authorization
// webhook (--authorization-webhook-bind-address): without it Check refuses the Webhook
// layout, rather than report members Active whose grants nothing honours (and, on a layout
// switch, delete the RBAC bindings that did give access). A backend built without this
// option does not check.
func WithAuthorizationWebhook(served bool) Option {
	return func(b *Backend) { b.webhookKnown, b.webhookServed = true, served }
}

// checkWebhookServed is Check's first step in the Webhook layout.
func (b *Backend) checkWebhookServed() error {
	if !b.webhook || !b.webhookKnown || b.webhookServed {
		return nil
	}
	return backend.NewPermanent(ReasonNoAuthorizationWebhook, fmt.Errorf(
		"grantLayout Webhook: this manager serves no authorization webhook (--authorization-webhook-bind-address), "+
			"so the API server could not honour the OrgGrants; start the manager with it and configure the API server "+
			"(docs/authorization-webhook.md), or use grantLayout Bindings"))
}
