package kubernetes_test

// The deputy problem (issue 8): the manager serves every namespace, so a ScimConfig must
// grant no more than its tenant could grant directly. These tests run against the real API
// server with RBAC enforced. The test client is admin; a tenant is a namespace with a
// ServiceAccount that may only bind its own Role there, and the backend writes bindings by
// impersonating that ServiceAccount.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// tenant is namespace team-a-N with ServiceAccount scim-provisioner, which may create and
// patch RoleBindings there and bind the Role team-reader there: nothing else, no delete.
// team-b-N is another namespace with a Role of the same name.
type tenant struct {
	ns, other string
	sa        string
	// dangerous ClusterRoles of this test, each holding what the tenant does not
	secretReader, bindingAdmin string
}

const tenantSA = k8sbackend.DefaultServiceAccountName

func newTenant(t *testing.T) *tenant {
	t.Helper()
	tn := &tenant{ns: newName("team-a"), other: newName("team-b"), sa: tenantSA}
	for _, ns := range []string{tn.ns, tn.other} {
		create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		create(t, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "team-reader", Namespace: ns},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}},
		})
	}
	create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: tn.sa, Namespace: tn.ns}})
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "scim-binder", Namespace: tn.ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles"}, Verbs: []string{"bind"}, ResourceNames: []string{"team-reader"}},
			// and no rights on orggrants: the manager writes the Webhook layout's grants
		},
	})
	create(t, tn.binder())
	tn.secretReader = clusterRole(t, "secret-reader", rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}})
	tn.bindingAdmin = clusterRole(t, "binding-admin", rbacv1.PolicyRule{
		APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterrolebindings", "rolebindings"},
		Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}})
	return tn
}

// binder is the RoleBinding that gives the tenant's ServiceAccount its rights.
func (tn *tenant) binder() *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scim-binder", Namespace: tn.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "scim-binder"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: tn.sa, Namespace: tn.ns}},
	}
}

func clusterRole(t *testing.T, prefix string, rules ...rbacv1.PolicyRule) string {
	t.Helper()
	name := newName(prefix)
	create(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules})
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	return name
}

// config is a ScimConfig of the tenant granting what k names.
func (tn *tenant) config(k scimv1.KubernetesBackend) *scimv1.ScimConfig {
	if k.ServiceAccountName == "" {
		k.ServiceAccountName = tn.sa
	}
	if k.GrantLayout == "" {
		k.GrantLayout = layout
	}
	return &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Name: newName("acme"), Namespace: tn.ns},
		Spec: scimv1.ScimConfigSpec{Organization: "acme",
			Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &k}},
	}
}

// backendAs builds cfg's backend the way the registry does: reads and deletions with the
// manager's client, creates and patches through imp as the config's ServiceAccount.
func backendAs(t *testing.T, mgr client.Client, imp *k8sbackend.Impersonator, cfg *scimv1.ScimConfig) *k8sbackend.Backend {
	t.Helper()
	sa := cfg.Spec.Backend.Kubernetes.ServiceAccountName
	w, err := imp.For(cfg.Namespace, sa)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k8sbackend.New(admin, cfg).RemoveAll(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	// The API server's escalation check asks its RBAC authorizer, which must have seen the
	// tenant's grants that the test just wrote.
	if err := testenv.RBACSynced(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	return k8sbackend.New(mgr, cfg, k8sbackend.ActAs(sa, w), k8sbackend.WithLiveReader(mgr))
}

func adminImpersonator() *k8sbackend.Impersonator {
	return k8sbackend.NewImpersonator(restCfg, client.Options{Scheme: clientgoscheme.Scheme, Mapper: admin.RESTMapper()})
}

// configBindings lists every binding of cfg, both kinds, with the admin client.
func configBindings(t *testing.T, cfg *scimv1.ScimConfig) []string {
	t.Helper()
	sel := client.MatchingLabels{k8sbackend.LabelConfig: cfg.Name, k8sbackend.LabelConfigNamespace: cfg.Namespace}
	var crbs rbacv1.ClusterRoleBindingList
	var rbs rbacv1.RoleBindingList
	if err := admin.List(t.Context(), &crbs, sel); err != nil {
		t.Fatal(err)
	}
	if err := admin.List(t.Context(), &rbs, sel); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range crbs.Items {
		out = append(out, "ClusterRoleBinding "+b.Name+" -> "+b.RoleRef.Name)
	}
	for _, b := range rbs.Items {
		out = append(out, "RoleBinding "+b.Namespace+"/"+b.Name+" -> "+b.RoleRef.Name)
	}
	var ogs scimv1.OrgGrantList
	if err := admin.List(t.Context(), &ogs, sel); err != nil {
		t.Fatal(err)
	}
	for _, b := range ogs.Items {
		out = append(out, "OrgGrant "+b.Namespace+"/"+b.Name+" -> "+b.Spec.Role.Name)
	}
	return out
}

func can(t *testing.T, user string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	return sar(t, user, nil, attrs)
}

// TestTenantCannotGrantMoreThanItHolds: the manager (here: admin, who could bind anything)
// writes as the tenant's ServiceAccount, so each over-reaching config is refused by the
// API server's escalation check, reported as NotAllowedToBind naming the role and the
// ServiceAccount, by Check (dry-run) and by EnsureMember, and nothing is written.
func TestTenantCannotGrantMoreThanItHolds(t *testing.T) {
	tn := newTenant(t)
	imp := adminImpersonator()
	saText := fmt.Sprintf("ServiceAccount %q in namespace %q may not", tn.sa, tn.ns)
	cases := []struct {
		name  string
		k     scimv1.KubernetesBackend
		role  string
		power authorizationv1.ResourceAttributes
	}{
		{"cluster-admin", scimv1.KubernetesBackend{ClusterRoles: []string{"cluster-admin"}},
			`ClusterRole "cluster-admin"`, authorizationv1.ResourceAttributes{Verb: "delete", Resource: "namespaces"}},
		{"a Secrets reader", scimv1.KubernetesBackend{ClusterRoles: []string{tn.secretReader}},
			fmt.Sprintf("ClusterRole %q", tn.secretReader), authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}},
		{"ClusterRoleBinding CRUD", scimv1.KubernetesBackend{ClusterRoles: []string{tn.bindingAdmin}},
			fmt.Sprintf("ClusterRole %q", tn.bindingAdmin),
			authorizationv1.ResourceAttributes{Verb: "create", Group: rbacv1.GroupName, Resource: "clusterrolebindings"}},
		{"a RoleBinding in another namespace",
			scimv1.KubernetesBackend{Roles: []scimv1.NamespacedRole{{Namespace: tn.other, Kind: "Role", Name: "team-reader"}}},
			fmt.Sprintf("Role %q in namespace %q", "team-reader", tn.other),
			authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: tn.other}},
		{"a Secrets reader bound in its own namespace",
			scimv1.KubernetesBackend{Roles: []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "ClusterRole", Name: tn.secretReader}}},
			fmt.Sprintf("ClusterRole %q in namespace %q", tn.secretReader, tn.ns),
			authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: tn.ns}},
		{"a legitimate role before a forbidden one", // all or nothing: the legitimate one is not written either
			scimv1.KubernetesBackend{Roles: []scimv1.NamespacedRole{
				{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}, {Namespace: tn.other, Kind: "Role", Name: "team-reader"}}},
			fmt.Sprintf("Role %q in namespace %q", "team-reader", tn.other),
			authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: tn.ns}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := tn.config(c.k)
			b := backendAs(t, admin, imp, cfg)
			mallory := newName("mallory") + "@example.com"

			wantPermanent(t, b.Check(ctx), k8sbackend.ReasonNotAllowedToBind, saText)
			wantPermanent(t, b.Check(ctx), k8sbackend.ReasonNotAllowedToBind, c.role)
			_, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: mallory, Owner: owner(newName("uid"))})
			wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, saText)
			wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, c.role)
			if !backend.ConfigWide(err) {
				t.Fatalf("a refused binding is not config-wide: %v", err)
			}
			wantPermanent(t, b.EnsureTeamOwned(ctx, groupOf(newName("gid")), "platform"), k8sbackend.ReasonNotAllowedToBind, c.role)

			if got := configBindings(t, cfg); len(got) != 0 {
				t.Fatalf("a refused config wrote %v", got)
			}
			if can(t, mallory, c.power) {
				t.Fatalf("%s got %+v", mallory, c.power)
			}
		})
	}
}

// TestTenantGrantsWithinItsRights: the same tenant binds its own Role in its own namespace;
// removal needs no delete right of the tenant (the manager deletes: taking access away
// never escalates), and orphaning is a patch the tenant may make.
func TestTenantGrantsWithinItsRights(t *testing.T) {
	ctx := t.Context()
	tn := newTenant(t)
	cfg := tn.config(scimv1.KubernetesBackend{Roles: []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}})
	b := backendAs(t, admin, adminImpersonator(), cfg)
	if b.ServiceAccount() != tn.sa {
		t.Fatalf("ServiceAccount() = %q, want %q", b.ServiceAccount(), tn.sa)
	}
	lists := authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: tn.ns}

	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check of a config within the tenant's rights: %v", err)
	}
	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "alice@example.com", Owner: owner("a1")}); err != nil {
		t.Fatalf("EnsureMember: %v", err)
	}
	if !can(t, "alice@example.com", lists) {
		t.Fatal("alice has no access after a permitted EnsureMember")
	}
	var rb rbacv1.RoleBindingList
	if err := admin.List(ctx, &rb, client.InNamespace(tn.ns), client.MatchingLabels{k8sbackend.LabelOwnerUID: "a1"}); err != nil {
		t.Fatal(err)
	}
	if len(rb.Items) != 1 || !managedBy(rb.Items[0].ManagedFields, k8sbackend.DefaultFieldOwner) {
		t.Fatalf("bindings of a1 = %+v, want one, applied by field manager %q", rb.Items, k8sbackend.DefaultFieldOwner)
	}

	if err := b.EnsureMemberAbsent(ctx, "alice@example.com"); err != nil {
		t.Fatalf("EnsureMemberAbsent without the tenant holding delete: %v", err)
	}
	if can(t, "alice@example.com", lists) {
		t.Fatal("alice keeps access after EnsureMemberAbsent")
	}

	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "bob@example.com", Owner: owner("b1")}); err != nil {
		t.Fatal(err)
	}
	if err := b.OrphanOwner(ctx, owner("b1"), "Orphaned"); err != nil {
		t.Fatalf("OrphanOwner as the tenant: %v", err)
	}
	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "carol@example.com", Owner: owner("c1")}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Sweep(ctx, func(string) bool { return false }); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want carol's one binding removed and bob's orphan left", n, err)
	}
	if !can(t, "bob@example.com", lists) || can(t, "carol@example.com", lists) {
		t.Fatal("after the sweep bob (orphaned) should keep access and carol (gone owner) should not")
	}

	// The tenant loses its rights: access the operator granted can still be taken away.
	if err := admin.Delete(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scim-binder", Namespace: tn.ns}}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.RBACSynced(ctx, admin); err != nil {
		t.Fatal(err)
	}
	wantPermanent(t, b.Check(ctx), k8sbackend.ReasonNotAllowedToBind, "may not write the binding of")
	if err := b.RemoveAll(ctx); err != nil {
		t.Fatalf("RemoveAll after the tenant lost its rights: %v", err)
	}
	if can(t, "bob@example.com", lists) {
		t.Fatal("bob keeps access after RemoveAll")
	}
}

func managedBy(fields []metav1.ManagedFieldsEntry, manager string) bool {
	for _, f := range fields {
		if f.Manager == manager {
			return true
		}
	}
	return false
}

// TestMissingServiceAccount: a config naming a ServiceAccount that does not exist says so,
// in Check and on a write, and writes nothing.
func TestMissingServiceAccount(t *testing.T) {
	ctx := t.Context()
	tn := newTenant(t)
	cfg := tn.config(scimv1.KubernetesBackend{ServiceAccountName: "nobody",
		Roles: []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}})
	b := backendAs(t, admin, adminImpersonator(), cfg)
	want := fmt.Sprintf("ServiceAccount %q in namespace %q does not exist", "nobody", tn.ns)
	wantPermanent(t, b.Check(ctx), k8sbackend.ReasonServiceAccountMissing, want)
	_, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "dave@example.com"})
	wantPermanent(t, err, k8sbackend.ReasonServiceAccountMissing, want)
	if !backend.ConfigWide(err) {
		t.Fatal("a missing ServiceAccount is not config-wide")
	}
	if got := configBindings(t, cfg); len(got) != 0 {
		t.Fatalf("wrote %v as a missing ServiceAccount", got)
	}
}

// TestShippedManagerRole runs the backend as a manager that holds exactly
// config/rbac/role.yaml (a real ServiceAccount token, no admin): it is enough to serve a
// tenant, may impersonate only ServiceAccounts of the shipped name, and cannot write a
// binding with its own rights.
func TestShippedManagerRole(t *testing.T) {
	ctx := t.Context()
	tn := newTenant(t)
	mgrCfg := managerConfig(t, tn.ns)
	mgr, err := client.New(mgrCfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	imp := k8sbackend.NewImpersonator(mgrCfg, client.Options{Scheme: clientgoscheme.Scheme, Mapper: mgr.RESTMapper()})
	lists := authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: tn.ns}

	cfg := tn.config(scimv1.KubernetesBackend{Roles: []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}})
	b := backendAs(t, mgr, imp, cfg)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check with the shipped manager role: %v", err)
	}
	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "erin@example.com", Owner: owner("e1")}); err != nil {
		t.Fatalf("EnsureMember with the shipped manager role: %v", err)
	}
	if !can(t, "erin@example.com", lists) {
		t.Fatal("erin has no access")
	}
	if err := b.OrphanOwner(ctx, owner("e1"), "Orphaned"); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveAll(ctx); err != nil {
		t.Fatalf("RemoveAll with the shipped manager role: %v", err)
	}
	if can(t, "erin@example.com", lists) {
		t.Fatal("erin keeps access after RemoveAll")
	}

	// Still refused for the tenant, though the manager is not admin here.
	over := tn.config(scimv1.KubernetesBackend{ClusterRoles: []string{tn.secretReader}})
	wantPermanent(t, backendAs(t, mgr, imp, over).Check(ctx), k8sbackend.ReasonNotAllowedToBind, tn.secretReader)

	// Only ServiceAccounts of the shipped name may be impersonated.
	create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kube-admin-ish", Namespace: tn.ns}})
	other := tn.config(scimv1.KubernetesBackend{ServiceAccountName: "kube-admin-ish",
		Roles: []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}})
	wantPermanent(t, backendAs(t, mgr, imp, other).Check(ctx), k8sbackend.ReasonImpersonationForbidden,
		fmt.Sprintf("the operator may not act as ServiceAccount %q in namespace %q", "kube-admin-ish", tn.ns))

	// Without a ServiceAccount the manager's own rights write nothing.
	legacy := tn.config(scimv1.KubernetesBackend{Roles: []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}})
	legacy.Spec.Backend.Kubernetes.ServiceAccountName = ""
	lb := k8sbackend.New(mgr, legacy, k8sbackend.WithLiveReader(mgr))
	wantPermanent(t, lb.Check(ctx), k8sbackend.ReasonNotAllowedToBind, "with its own rights")
	_, err = lb.EnsureMember(ctx, backend.DesiredMember{UserName: "frank@example.com"})
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, "with its own rights")
	if got := configBindings(t, legacy); len(got) != 0 {
		t.Fatalf("the manager wrote %v with its own rights", got)
	}
}

// managerConfig creates a ServiceAccount holding the ClusterRole of config/rbac/role.yaml
// and returns a connection authenticated as it (a bound token, no client certificate).
func managerConfig(t *testing.T, ns string) *rest.Config {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(raw, &role); err != nil {
		t.Fatalf("config/rbac/role.yaml: %v", err)
	}
	name := newName("shipped-manager-role")
	role.ObjectMeta = metav1.ObjectMeta{Name: name}
	create(t, &role)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "controller-manager", Namespace: ns}}
	create(t, sa)
	create(t, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}},
	})
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}})
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	tr := &authenticationv1.TokenRequest{}
	if err := admin.SubResource("token").Create(t.Context(), sa, tr); err != nil {
		t.Fatalf("a token for the manager's ServiceAccount: %v", err)
	}
	cfg := rest.AnonymousClientConfig(restCfg)
	cfg.BearerToken = tr.Status.Token
	// prove the identity: the manager is not admin
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Create(t.Context(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: newName("probe")},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "x"}},
	}, client.DryRunAll)
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("the shipped manager role may create a ClusterRoleBinding with its own rights (err %v)", err)
	}
	return cfg
}
