package registry_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/backend/registry"
)

// clusterAdminConfig is a kubernetes ScimConfig of ns that names cluster-admin, with the
// ServiceAccount sa (empty: none).
func clusterAdminConfig(ns, sa string) *scimv1.ScimConfig {
	return &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "grab", Namespace: ns, UID: types.UID("uid-grab-" + ns + sa), Generation: 1},
		Spec: scimv1.ScimConfigSpec{Organization: "acme", Backend: scimv1.BackendSpec{
			Type:       scimv1.BackendKubernetes,
			Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: []string{"cluster-admin"}, ServiceAccountName: sa},
		}},
	}
}

func check(t *testing.T, r *registry.Registry, cfg *scimv1.ScimConfig) error {
	t.Helper()
	b, err := r.For(t.Context(), cfg)
	if err != nil {
		return err
	}
	return b.Check(t.Context())
}

// Who a kubernetes backend writes as: the config's ServiceAccount, else the default
// (--default-service-account), else, with neither, the manager (here admin, who may bind
// cluster-admin: backwards compatible). A config that asks for a ServiceAccount is never
// served with the manager's own rights.
func TestKubernetesBackendActsAsTheConfigsServiceAccount(t *testing.T) {
	ns := namespace(t)
	for _, name := range []string{"scim-provisioner", "team-sa"} {
		if err := k8s.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	open := registry.New(k8s, k8s, registry.Options{RestConfig: restCfg})
	if err := check(t, open, clusterAdminConfig(ns, "")); err != nil {
		t.Fatalf("no ServiceAccount, no default: the manager's own rights (admin) should bind cluster-admin: %v", err)
	}
	b, _ := open.For(t.Context(), clusterAdminConfig(ns, ""))
	if sa := b.(*k8sbackend.Backend).ServiceAccount(); sa != "" {
		t.Fatalf("ServiceAccount() = %q without a field or a default, want empty", sa)
	}
	wantPermanent(t, check(t, open, clusterAdminConfig(ns, "team-sa")), k8sbackend.ReasonNotAllowedToBind,
		`ServiceAccount "team-sa" in namespace "`+ns+`" may not`, `ClusterRole "cluster-admin"`)

	locked := registry.New(k8s, k8s, registry.Options{RestConfig: restCfg, DefaultServiceAccount: "scim-provisioner"})
	wantPermanent(t, check(t, locked, clusterAdminConfig(ns, "")), k8sbackend.ReasonNotAllowedToBind,
		`ServiceAccount "scim-provisioner" in namespace "`+ns+`" may not`, `ClusterRole "cluster-admin"`)
	wantPermanent(t, check(t, locked, clusterAdminConfig(ns, "team-sa")), k8sbackend.ReasonNotAllowedToBind,
		`ServiceAccount "team-sa"`)

	// Granting the ServiceAccount bind on the role is the tenant's admin's decision: then it may.
	if err := k8s.Create(t.Context(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "team-sa-is-admin-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "team-sa", Namespace: ns}},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k8s.Delete(t.Context(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "team-sa-is-admin-" + ns}})
	})
	if err := check(t, locked, clusterAdminConfig(ns, "team-sa")); err != nil {
		t.Fatalf("a ServiceAccount that holds cluster-admin may grant it: %v", err)
	}

	// No connection to impersonate with: refused, never the manager's rights.
	for _, r := range []*registry.Registry{
		registry.New(k8s, k8s, registry.Options{}),
		registry.New(k8s, k8s, registry.Options{DefaultServiceAccount: "scim-provisioner"}),
	} {
		_, err := r.For(t.Context(), clusterAdminConfig(ns, "team-sa"))
		wantPermanent(t, err, registry.ReasonImpersonationUnavailable, `ServiceAccount "team-sa"`)
		if !backend.ConfigWide(err) {
			t.Fatal("ImpersonationUnavailable is not config-wide")
		}
	}
	_, err := registry.New(k8s, k8s, registry.Options{DefaultServiceAccount: "scim-provisioner"}).For(t.Context(), clusterAdminConfig(ns, ""))
	wantPermanent(t, err, registry.ReasonImpersonationUnavailable, `ServiceAccount "scim-provisioner"`)

	// The manager's connection handed over later (controllers.SetupWithManager does).
	late := registry.New(k8s, k8s, registry.Options{DefaultServiceAccount: "scim-provisioner"})
	late.UseRestConfig(restCfg)
	wantPermanent(t, check(t, late, clusterAdminConfig(ns, "")), k8sbackend.ReasonNotAllowedToBind,
		`ServiceAccount "scim-provisioner" in namespace "`+ns+`" may not`)
}
