package testenv

import (
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestRBACSyncedShowsEveryEarlierWrite: a binding written, then the barrier, then one
// question: the answer is the binding's, every time, both ways (granted, then taken away).
func TestRBACSyncedShowsEveryEarlierWrite(t *testing.T) {
	env := New()
	env.CRDDirectoryPaths = nil
	cfg, err := Start(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}}}
	if err := c.Create(ctx, role); err != nil {
		t.Fatal(err)
	}
	can := func(user string) bool {
		t.Helper()
		if err := RBACSynced(ctx, c); err != nil {
			t.Fatal(err)
		}
		r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: "default"}}}
		if err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.Status.Allowed
	}
	for i := range 30 {
		user := fmt.Sprintf("user-%d", i)
		b := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "reader"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}}
		if err := c.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		if !can(user) {
			t.Fatalf("round %d: %s has no access right after its binding and the barrier", i, user)
		}
		if err := c.Delete(ctx, b); err != nil {
			t.Fatal(err)
		}
		if can(user) {
			t.Fatalf("round %d: %s keeps access right after its binding's deletion and the barrier", i, user)
		}
	}
	var crbs rbacv1.ClusterRoleBindingList
	if err := c.List(ctx, &crbs); err != nil {
		t.Fatal(err)
	}
	for _, b := range crbs.Items {
		if len(b.Name) > len("rbac-barrier") && b.Name[:len("rbac-barrier")] == "rbac-barrier" {
			t.Fatalf("the barrier left %s behind", b.Name)
		}
	}
}
