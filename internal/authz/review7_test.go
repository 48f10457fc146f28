package authz_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// TestReview7OrgGrantBeyondTheServiceAccountsBind (review7, DESIGN invariant 3): the API
// server runs no escalation check on an OrgGrant, so the tenant's ServiceAccount must hold
// no right to write one. The ScimConfig lists a ClusterRole its ServiceAccount may NOT
// bind (the config reports NotAllowedToBind, but the list stands). Whoever runs as that
// ServiceAccount (any namespace admin: a pod with serviceAccountName), holding exactly what
// docs/rbac.md gives it for the Webhook layout, tries to write an OrgGrant of that role by
// hand: the API server refuses it, and the webhook allows nothing. (Before the fix the
// documented rights included create/patch on orggrants, the write succeeded and the
// webhook honoured it.)
func TestReview7OrgGrantBeyondTheServiceAccountsBind(t *testing.T) {
	f := env(t)
	ctx := context.Background()
	ns := namespace(t, f)
	secretReader := unique("secret-reader")
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scim-provisioner"}}
	// exactly what the sample (config/samples/scim_v1alpha1_scimconfig.yaml, as docs/rbac.md)
	// gives the tenant for a cluster-wide role: its scim-sample-provisioner rules, which bind
	// scim-sample-reader only, so no bind on secretReader
	binder := sampleProvisioner(t)
	binder.ObjectMeta = metav1.ObjectMeta{Name: unique("crb-writer")}
	rb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: binder.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: binder.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scim-provisioner"}}}
	cfg := scimConfig(ns, "org", scimv1.GrantLayoutWebhook, []string{secretReader})
	cfg.Spec.Backend.Kubernetes.ServiceAccountName = "scim-provisioner"
	create(t, f, sa, binder, rb, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: secretReader},
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
	// ... nor write the OrgGrant by hand
	g := ledger(ns, "org", rbacv1.UserKind, "mallory@x.io", "ClusterRole", secretReader, "")
	err = tenant.Create(ctx, g)
	if err == nil {
		t.Cleanup(func() { _ = f.direct.Delete(ctx, g) })
		synced(t, f, g, false)
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("the ServiceAccount writing an OrgGrant of %s by hand: %v, want Forbidden", secretReader, err)
	}
	synced(t, f, cfg, false)
	spec := authorizationv1.SubjectAccessReviewSpec{User: "mallory@x.io",
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "kube-system", Name: "s"}}
	if allowed(t, f, spec) {
		t.Errorf("the webhook honours an OrgGrant of ClusterRole %s that the config's ServiceAccount may not bind: "+
			"mallory reads every Secret in the cluster, which the Bindings layout would never have granted", secretReader)
	}
}

// sampleProvisioner is the ClusterRole the sample ScimConfig gives its ServiceAccount.
func sampleProvisioner(t *testing.T) *rbacv1.ClusterRole {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "scim_v1alpha1_scimconfig.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var cr rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &cr); err != nil {
			t.Fatal(err)
		}
		if cr.Kind == "ClusterRole" && cr.Name == "scim-sample-provisioner" {
			return &cr
		}
	}
	t.Fatal("no ClusterRole scim-sample-provisioner in the sample")
	return nil
}
