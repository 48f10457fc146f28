package authz_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// review asks the API server (RBAC, then the manager's webhook) whether spec is allowed.
func review(t *testing.T, f *fixture, spec authorizationv1.SubjectAccessReviewSpec) authorizationv1.SubjectAccessReviewStatus {
	t.Helper()
	r := &authorizationv1.SubjectAccessReview{Spec: spec}
	if err := f.direct.Create(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// webhookCalls is how many reviews the manager's webhook has answered.
func webhookCalls(t *testing.T) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "scim_authz_decisions_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestThroughTheAPIServer: the API server, configured as docs/authorization-webhook.md
// says, allows a user who holds only a ledger grant, stops once the binding is deleted,
// allows no one else, and never asks the webhook about system: users.
func TestThroughTheAPIServer(t *testing.T) {
	f := env(t)
	ns := namespace(t, f)
	reader := unique("pod-reader")
	create(t, f, podReader(reader), scimConfig(ns, "org", scimv1.GrantLayoutWebhook, []string{reader}))
	b := ledger(ns, "org", rbacv1.UserKind, "henry@x.io", "ClusterRole", reader, "")
	create(t, f, b)
	g := NewWithT(t)
	g.Eventually(func() bool { return review(t, f, pods("henry@x.io", nil, "x")).Allowed }, 20*time.Second, 20*time.Millisecond).
		Should(BeTrue(), "the API server never allowed the holder of a ledger grant")
	if st := review(t, f, pods("ivan@x.io", nil, "x")); st.Allowed {
		t.Errorf("an unrelated user is allowed: %+v", st)
	}

	// the matchCondition keeps system: users away from the webhook: between two counts, a
	// system: user's review and one other user's, the webhook answers once
	before := webhookCalls(t)
	if st := review(t, f, pods("system:henry", nil, "x")); st.Allowed {
		t.Errorf("a system: user is allowed: %+v", st)
	}
	review(t, f, pods("ivan@x.io", nil, "x"))
	if n := webhookCalls(t) - before; n != 1 {
		t.Errorf("the webhook answered %v reviews for one system: user's and one other user's, want 1 (the other user's)", n)
	}

	if err := f.direct.Delete(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	g.Eventually(func() bool { return review(t, f, pods("henry@x.io", nil, "x")).Allowed }, 20*time.Second, 20*time.Millisecond).
		Should(BeFalse(), "the grant outlived its OrgGrant")
}

// TestRulesAgreeWithRBAC asks the API server's RBAC authorizer every question of the rule
// table, each through a ClusterRole of that one rule bound to a user of its own: RBAC's
// answers must be the table's (which TestRulesAllow holds RulesAllow to).
func TestRulesAgreeWithRBAC(t *testing.T) {
	f := env(t)
	ctx := context.Background()
	users := make([]string, len(ruleCases))
	for i, c := range ruleCases {
		name := unique("rbac-case")
		users[i] = name
		create(t, f,
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{c.rule}},
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}}})
	}
	if err := testenv.RBACSynced(ctx, f.direct); err != nil {
		t.Fatal(err)
	}
	for i, c := range ruleCases {
		st := review(t, f, authorizationv1.SubjectAccessReviewSpec{User: users[i], ResourceAttributes: c.res, NonResourceAttributes: c.non})
		if st.Allowed != c.allow {
			t.Errorf("%s: the RBAC authorizer says allowed=%v, the table %v", c.name, st.Allowed, c.allow)
		}
	}
}
