package authz_test

import (
	"context"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/manager"
)

// TestReview7OrgGrantBeyondTheServiceAccountsBind (review7, DESIGN invariant 3): the tenant's
// ServiceAccount must hold create on orggrants for the Webhook layout (docs/rbac.md), and
// the API server runs no escalation check on an OrgGrant. The ScimConfig lists a
// ClusterRole its ServiceAccount may NOT bind (the config reports NotAllowedToBind, but the
// list stands). Whoever runs as that ServiceAccount (any namespace admin: a pod with
// serviceAccountName) writes an OrgGrant of that role by hand, and the webhook honours it:
// in the Bindings layout the same ServiceAccount could not have granted it.
func TestReview7OrgGrantBeyondTheServiceAccountsBind(t *testing.T) {
	f := env(t)
	ctx := context.Background()
	ns := namespace(t, f)
	secretReader := unique("secret-reader")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scim-provisioner"}}
	// exactly what docs/rbac.md gives the tenant for the ledger, and no bind on secretReader
	ledgerWriter := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orggrant-writer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"scim.operator.dev"}, Resources: []string{"orggrants"}, Verbs: []string{"create", "patch"}}}}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orggrant-writer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "orggrant-writer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scim-provisioner"}}}
	cfg := scimConfig(ns, "org", scimv1.GrantLayoutWebhook, []string{secretReader})
	cfg.Spec.Backend.Kubernetes.ServiceAccountName = "scim-provisioner"
	create(t, f, sa, ledgerWriter, rb, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: secretReader},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}}, cfg)

	asSA := rest.CopyConfig(f.cfg)
	asSA.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":scim-provisioner"}
	tenant, err := client.New(asSA, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// the premise: the ServiceAccount may not bind the role (the Bindings layout's check)
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: unique("escalate")},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: secretReader},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "mallory@x.io"}}}
	if err := tenant.Create(ctx, crb, client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Fatalf("the ServiceAccount binding %s: %v, want Forbidden", secretReader, err)
	}
	// ... but it may write the OrgGrant, and nothing judges it
	g := ledger(ns, "org", rbacv1.UserKind, "mallory@x.io", "ClusterRole", secretReader, "")
	if err := tenant.Create(ctx, g); err != nil {
		t.Fatalf("the ServiceAccount writing an OrgGrant: %v", err)
	}
	t.Cleanup(func() { _ = f.direct.Delete(ctx, g) })
	synced(t, f, g, false)
	synced(t, f, cfg, false)
	spec := authorizationv1.SubjectAccessReviewSpec{User: "mallory@x.io",
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "s"}}
	if allowed(t, f, spec) {
		t.Errorf("the webhook honours an OrgGrant of ClusterRole %s that the config's ServiceAccount may not bind: "+
			"mallory reads every Secret in the cluster, which the Bindings layout would never have granted", secretReader)
	}
}
