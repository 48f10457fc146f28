package access

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := scimv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}

func subj(kind, name string) []rbacv1.Subject {
	return []rbacv1.Subject{{Kind: kind, APIGroup: rbacv1.GroupName, Name: name}}
}

// The holders are every subject of a binding of the roles checked, whoever wrote it, and
// nothing bound to another role or in another namespace.
func TestKubeHolders(t *testing.T) {
	crb := func(name, role string, s []rbacv1.Subject) *rbacv1.ClusterRoleBinding {
		return &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: s,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}}
	}
	rb := func(ns, name, kind, role string, s []rbacv1.Subject) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Subjects: s,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}}
	}
	c := fakeClient(t,
		crb("a", "reader", subj("User", "ann")),
		crb("b", "reader", append(subj("Group", "eng"), subj("User", "bob")...)),
		crb("c", "other", subj("User", "mallory")),
		rb("apps", "d", "Role", "deployer", subj("User", "ann")),
		rb("apps", "e", "ClusterRole", "deployer", subj("User", "eve")), // another roleRef kind
		rb("web", "f", "Role", "deployer", subj("User", "finn")),        // another namespace
	)
	got, err := KubeHolders(context.Background(), c, []Role{{Kind: "ClusterRole", Name: "reader"}, {Kind: "Role", Namespace: "apps", Name: "deployer"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"role0/User/ann": true, "role0/Group/eng": true, "role0/User/bob": true, "role1/User/ann": true}
	if d := Diff(want, got); d != "" {
		t.Errorf("KubeHolders:\n%s", d)
	}
}

// An OrgGrant of the Webhook layout is a grant of the role its spec names, only while the ScimConfig its labels name exists in its namespace, has the Webhook
// layout and still lists that role at that scope (what the authorization webhook honours).
func TestKubeHoldersReadsTheLedger(t *testing.T) {
	cfg := func(name string, layout scimv1.GrantLayout, clusterRoles ...string) *scimv1.ScimConfig {
		return &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: name},
			Spec: scimv1.ScimConfigSpec{Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes,
				Kubernetes: &scimv1.KubernetesBackend{GrantLayout: layout, ClusterRoles: clusterRoles,
					Roles: []scimv1.NamespacedRole{{Namespace: "apps", Name: "deployer"}}}}}}
	}
	ledger := func(ns, name, config, kind, role, scope string, s []rbacv1.Subject, mut ...func(*scimv1.OrgGrant)) *scimv1.OrgGrant {
		b := &scimv1.OrgGrant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{scimv1.LabelConfig: config, "scim.operator.dev/config-namespace": ns}},
			Spec: scimv1.OrgGrantSpec{Subject: scimv1.OrgGrantSubject{Kind: scimv1.GrantSubjectKind(s[0].Kind), Name: s[0].Name},
				Role: scimv1.OrgGrantRole{Kind: scimv1.GrantRoleKind(kind), Name: role}, Namespace: scope}}
		for _, f := range mut {
			f(b)
		}
		return b
	}
	c := fakeClient(t,
		cfg("hooked", scimv1.GrantLayoutWebhook, "reader"),
		cfg("plain", scimv1.GrantLayoutBindings, "reader"),
		cfg("narrow", scimv1.GrantLayoutWebhook),
		ledger("t", "a", "hooked", "ClusterRole", "reader", "", subj("User", "ann")),
		ledger("t", "b", "hooked", "Role", "deployer", "apps", subj("Group", "eng")),
		ledger("t", "c", "hooked", "Role", "deployer", "web", subj("User", "finn")),      // a scope the config does not list
		ledger("t", "d", "plain", "ClusterRole", "reader", "", subj("User", "bob")),      // a config of the Bindings layout
		ledger("t", "e", "narrow", "ClusterRole", "reader", "", subj("User", "carl")),    // a role the config does not list
		ledger("t", "f", "gone", "ClusterRole", "reader", "", subj("User", "dora")),      // a deleted config
		ledger("u", "g", "hooked", "ClusterRole", "reader", "", subj("User", "mallory")), // another namespace's config
		ledger("t", "h", "hooked", "ClusterRole", "reader", "", subj("User", "erin"), func(b *scimv1.OrgGrant) {
			delete(b.Labels, "scim.operator.dev/config-namespace") // names no config of its namespace
		}),
		ledger("t", "i", "hooked", "ClusterRole", "view", "", subj("User", "frank")),                   // another role
		ledger("t", "j", "hooked", "ClusterRole", "reader", "", subj("Group", "system:authenticated")), // never honoured
	)
	got, err := KubeHolders(context.Background(), c, []Role{{Kind: "ClusterRole", Name: "reader"}, {Kind: "Role", Namespace: "apps", Name: "deployer"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"role0/User/ann": true, "role1/Group/eng": true}
	if d := Diff(want, got); d != "" {
		t.Errorf("KubeHolders:\n%s", d)
	}
}

// What the policies allow: active Provisioned or Adopted members of the config (and
// deactivated ones under Keep that were never deprovisioned), and the team of every group.
func TestWanted(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "c"},
		Spec: scimv1.ScimConfigSpec{Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes,
			Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: []string{"reader"},
				Roles: []scimv1.NamespacedRole{{Namespace: "apps", Name: "deployer"}}}}}}
	member := func(name, userName string, active bool, origin scimv1.MemberOrigin, mut ...func(*scimv1.OrgMember)) *scimv1.OrgMember {
		m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: name},
			Spec:   scimv1.OrgMemberSpec{ConfigName: "c", UserName: userName, Active: active},
			Status: scimv1.OrgMemberStatus{Origin: origin, Phase: scimv1.PhaseActive}}
		for _, f := range mut {
			f(m)
		}
		return m
	}
	objs := []client.Object{
		member("m1", "ann@example.com", true, scimv1.OriginProvisioned),
		member("m2", "bob@example.com", false, scimv1.OriginProvisioned),
		member("m3", "cat@example.com", true, scimv1.OriginPreexisting),
		member("m4", "dan@example.com", true, scimv1.OriginAdopted, func(m *scimv1.OrgMember) {
			m.Status.BackendID = "dan"
			m.Spec.Emails = []scimv1.MultiValue{{Value: "dan@example.org", Primary: true}}
		}),
		member("m5", "eve@example.com", true, scimv1.OriginProvisioned, func(m *scimv1.OrgMember) { m.Spec.ConfigName = "other" }),
		member("m6", "fay@example.com", true, scimv1.OriginProvisioned, func(m *scimv1.OrgMember) {
			m.Status.Phase = scimv1.PhaseInvited
			m.Spec.Emails = []scimv1.MultiValue{{Value: "fay@example.org"}, {Value: "Fay.Work@example.org", Primary: true}}
		}),
		&scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "g1"}, Spec: scimv1.OrgGroupSpec{ConfigName: "c", DisplayName: "acme:eng"}},
		&scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "g2"}, Spec: scimv1.OrgGroupSpec{ConfigName: "other", DisplayName: "ops"}},
	}
	c := fakeClient(t, objs...)
	ctx := context.Background()
	got, err := KubeWanted(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, k := range []string{"User/ann@example.com", "User/dan@example.com", "User/fay@example.com", "Group/eng"} {
		want["role0/"+k], want["role1/"+k] = true, true
	}
	if d := Diff(want, got); d != "" {
		t.Errorf("KubeWanted:\n%s", d)
	}
	hub, err := HubWanted(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// ann is Active without a Docker ID recorded: still the invitation to her userName
	if d := Diff(map[string]bool{"invite:ann@example.com": true, "member:dan": true, "invite:fay.work@example.org": true}, hub); d != "" {
		t.Errorf("HubWanted:\n%s", d)
	}

	wantedUnder := func(deact scimv1.DeactivationPolicy) map[string]bool {
		cfg.Spec.Policies.Deactivation = deact
		got, err := KubeWanted(ctx, c, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if !wantedUnder(scimv1.DeactivationKeep)["role0/User/bob@example.com"] {
		t.Errorf("a member deactivated under Keep keeps access")
	}
	if wantedUnder(scimv1.DeactivationRemove)["role0/User/bob@example.com"] {
		t.Errorf("a member deactivated under Remove holds access")
	}

	f := false
	cfg.Spec.Enabled = &f
	if _, err := KubeWanted(ctx, c, cfg); err == nil {
		t.Errorf("a disabled config's wanted set was derived from its objects")
	}
}

func TestHubHolders(t *testing.T) {
	emu := hubemu.New(hubemu.Options{Org: "acme", Owner: "boss"})
	emu.AddMember("Dan", "dan@example.org", "member")
	got := HubHolders(emu, "boss")
	if d := Diff(map[string]bool{"member:dan": true}, got); d != "" {
		t.Errorf("HubHolders:\n%s", d)
	}
	if !HubHolders(emu)["member:boss"] {
		t.Errorf("the owner is a holder unless named foreign")
	}
}

func TestDiff(t *testing.T) {
	if d := Diff(map[string]bool{"a": true}, map[string]bool{"a": true}); d != "" {
		t.Errorf("equal sets differ: %s", d)
	}
	d := Diff(map[string]bool{"a": true, "b": true}, map[string]bool{"b": true, "c": true})
	if d != "  missing (expected, not there): [a]\n  extra (there, not expected): [c]" {
		t.Errorf("Diff = %q", d)
	}
}
