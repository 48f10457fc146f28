package kubernetes_test

import (
	"fmt"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/test/access"
)

// TestWebhookLayout runs the backend's behaviour tests again with grantLayout Webhook:
// every operation works on the ledger as it does on bindings (o.access reads the ledger as
// the authorization webhook does, and requires RBAC to grant nothing).
func TestWebhookLayout(t *testing.T) {
	layout = scimv1.GrantLayoutWebhook
	defer func() { layout = scimv1.GrantLayoutBindings }()
	for name, f := range map[string]func(*testing.T){
		"Conformance":                              TestConformance,
		"CanIFollowsTheMember":                     TestCanIFollowsTheMember,
		"GroupBindingGrantsTheGroup":               TestGroupBindingGrantsTheGroup,
		"ReservedNamesAreRefused":                  TestReservedNamesAreRefused,
		"CheckReportsConfigurationProblems":        TestCheckReportsConfigurationProblems,
		"RestrictedOperatorCannotBind":             TestRestrictedOperatorCannotBind,
		"ClassifiesCancellation":                   TestClassifiesCancellation,
		"ThroughALabelLimitedCache":                TestThroughALabelLimitedCache,
		"GrantIndex":                               TestGrantIndex,
		"RenameMovesTheOwnersGrants":               TestRenameMovesTheOwnersGrants,
		"OwnerAbsentNeedsNoName":                   TestOwnerAbsentNeedsNoName,
		"SweepCollectsGrantsOfGoneOwners":          TestSweepCollectsGrantsOfGoneOwners,
		"OrphanIsClaimedByTheNextMemberOfThatName": TestOrphanIsClaimedByTheNextMemberOfThatName,
		"ConfigDeletionOutcomes":                   TestConfigDeletionOutcomes,
		"ReensuredOrphanLosesTheMark":              TestReensuredOrphanLosesTheMark,
		// no escalation check runs on an OrgGrant: the real binding's dry-run refuses
		"TenantCannotGrantMoreThanItHolds": TestTenantCannotGrantMoreThanItHolds,
		"MissingServiceAccount":            TestMissingServiceAccount,
		"GrantWrittenBehindALaggingReader": TestGrantWrittenBehindALaggingReader,
	} {
		t.Run(name, f)
	}
}

func withLayout(cfg *scimv1.ScimConfig, l scimv1.GrantLayout) *scimv1.ScimConfig {
	c := cfg.DeepCopy()
	c.Spec.Backend.Kubernetes.GrantLayout = l
	return c
}

// realBindings lists the org's RBAC bindings (not OrgGrants).
func realBindings(t *testing.T, o *org) []client.Object {
	var out []client.Object
	for _, b := range o.bindings(t) {
		if _, ok := b.(*scimv1.OrgGrant); ok {
			continue
		}
		out = append(out, b)
	}
	return out
}

// The ledger: one OrgGrant per member (or team) and role, in the config's namespace,
// naming the subject, the real role and its scope, with the labels and user-name
// annotation of the Bindings layout, and RBAC granting nothing.
func TestWebhookLedgerFormat(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	o.b = k8sbackend.New(admin, withLayout(o.cfg, scimv1.GrantLayoutWebhook))
	o.cfg = withLayout(o.cfg, scimv1.GrantLayoutWebhook)
	if err := o.b.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	o.ensure(t, "uid-ann", "Ann@x.io")
	if err := o.b.EnsureTeamOwned(ctx, groupOf("uid-eng"), "eng"); err != nil {
		t.Fatal(err)
	}
	if n := len(realBindings(t, o)); n != 0 {
		t.Fatalf("%d RBAC bindings in the Webhook layout, want 0", n)
	}
	all := o.bindings(t)
	if len(all) != 4 {
		t.Fatalf("%d OrgGrants for a member and a team of 2 roles, want 4", len(all))
	}
	crName := o.cfg.Spec.Backend.Kubernetes.ClusterRoles[0]
	seen := map[string]bool{}
	for _, obj := range all {
		b := obj.(*scimv1.OrgGrant)
		if b.Namespace != o.cfg.Namespace {
			t.Fatalf("OrgGrant %s/%s, want it in the config's namespace %s", b.Namespace, b.Name, o.cfg.Namespace)
		}
		a := b.Annotations
		grant := string(b.Spec.Role.Kind) + "/" + b.Spec.Namespace + "/" + b.Spec.Role.Name
		subject := string(b.Spec.Subject.Kind) + "/" + b.Spec.Subject.Name
		seen[subject+" "+grant] = true
		switch subject {
		case "User/Ann@x.io":
			if b.Labels[k8sbackend.LabelOwnerUID] != "uid-ann" || b.Labels[k8sbackend.LabelMember] != k8sbackend.MemberHash("ann@x.io") ||
				a[k8sbackend.AnnotationUserName] != "Ann@x.io" {
				t.Fatalf("member OrgGrant %s: labels %v annotations %v", b.Name, b.Labels, a)
			}
		case "Group/eng":
			if b.Labels[k8sbackend.LabelOwnerUID] != "uid-eng" || b.Labels[k8sbackend.LabelTeam] != k8sbackend.TeamHash("eng") {
				t.Fatalf("team OrgGrant %s: labels %v", b.Name, b.Labels)
			}
		}
	}
	for _, want := range []string{
		"User/Ann@x.io ClusterRole//" + crName, "User/Ann@x.io Role/" + o.ns + "/configmap-reader",
		"Group/eng ClusterRole//" + crName, "Group/eng Role/" + o.ns + "/configmap-reader",
	} {
		if !seen[want] {
			t.Errorf("no OrgGrant %q; have %v", want, seen)
		}
	}
	if !o.access(t, "Ann@x.io", nil) || !o.access(t, "someone", []string{"eng"}) {
		t.Fatal("the ledger does not grant the member and the team")
	}
	m, err := o.b.ObserveMember(ctx, "ann@x.io")
	if err != nil || m.State != backend.StateMember {
		t.Fatalf("ObserveMember = %+v, %v; want a member", m, err)
	}
}

// Changing grantLayout moves every grant on its owner's next ensure: the new layout's
// binding is written, the other layout's deleted, the owner labels kept; a role in the
// config's own namespace (one name in both layouts) is replaced.
func TestGrantLayoutChangeMovesTheGrants(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil) // Bindings
	o.ensure(t, "uid-1", "one@x.io")
	if err := o.b.EnsureTeamOwned(ctx, groupOf("uid-g"), "ops"); err != nil {
		t.Fatal(err)
	}
	bindings := o.b
	for _, l := range []scimv1.GrantLayout{scimv1.GrantLayoutWebhook, scimv1.GrantLayoutBindings, scimv1.GrantLayoutWebhook} {
		o.cfg = withLayout(o.cfg, l)
		o.b = k8sbackend.New(admin, o.cfg)
		// Before the ensure, the new layout's reading: the grants are not there yet.
		if m, err := o.b.ObserveMember(ctx, "one@x.io"); err != nil || m.State != backend.StateAbsent || !m.Managed {
			t.Fatalf("%s: ObserveMember before the move = %+v, %v; want Absent and Managed (a drift to repair)", l, m, err)
		}
		list, err := o.b.ListMembers(ctx)
		if err != nil || len(list) != 1 || list[0].State != backend.StateAbsent || len(list[0].Owners) != 1 {
			t.Fatalf("%s: ListMembers before the move = %+v, %v; want one Absent entry owned by uid-1", l, list, err)
		}
		o.ensure(t, "uid-1", "one@x.io")
		if err := o.b.EnsureTeamOwned(ctx, groupOf("uid-g"), "ops"); err != nil {
			t.Fatal(err)
		}
		all := o.bindings(t)
		real := realBindings(t, o)
		if len(all) != 4 {
			t.Fatalf("%s: %d bindings after the move, want 4 (2 grants x 2 roles)", l, len(all))
		}
		if want := map[scimv1.GrantLayout]int{scimv1.GrantLayoutWebhook: 0, scimv1.GrantLayoutBindings: 4}[l]; len(real) != want {
			t.Fatalf("%s: %d RBAC bindings after the move, want %d", l, len(real), want)
		}
		for _, b := range all {
			if b.GetLabels()[k8sbackend.LabelOwnerUID] == "" {
				t.Fatalf("%s: binding %s lost its owner: %v", l, b.GetName(), b.GetLabels())
			}
		}
		if !o.access(t, "one@x.io", nil) || !o.access(t, "x", []string{"ops"}) {
			t.Fatalf("%s: the member or the team lost access in the move", l)
		}
		if m, err := o.b.ObserveMember(ctx, "one@x.io"); err != nil || m.State != backend.StateMember {
			t.Fatalf("%s: ObserveMember after the move = %+v, %v", l, m, err)
		}
	}
	// Removal finds the grants whatever layout wrote them: the Bindings backend (the
	// layout before the last change) removes the ledger too.
	if err := bindings.EnsureOwnerAbsent(ctx, owner("uid-1"), "one@x.io"); err != nil {
		t.Fatal(err)
	}
	if err := bindings.EnsureOwnerAbsent(ctx, groupOf("uid-g"), "ops"); err != nil {
		t.Fatal(err)
	}
	if n := len(o.bindings(t)); n != 0 {
		t.Fatalf("%d bindings left after EnsureOwnerAbsent by the other layout's backend", n)
	}
}

// In the Webhook layout the backend writes no RBAC binding at all: the count of every
// RoleBinding and ClusterRoleBinding of the cluster is the same before and after granting
// members and a team cluster-wide and namespaced roles, moving them, orphaning and
// sweeping (RBAC walks RoleBindings too, on every request it does not allow cluster-wide).
func TestWebhookWritesNoRBACBinding(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	o.cfg = withLayout(o.cfg, scimv1.GrantLayoutWebhook)
	o.b = k8sbackend.New(admin, o.cfg)
	count := func() (int, int) {
		t.Helper()
		var crbs rbacv1.ClusterRoleBindingList
		var rbs rbacv1.RoleBindingList
		if err := admin.List(ctx, &crbs); err != nil {
			t.Fatal(err)
		}
		if err := admin.List(ctx, &rbs); err != nil {
			t.Fatal(err)
		}
		return len(crbs.Items), len(rbs.Items)
	}
	crbs, rbs := count()
	if err := o.b.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for i := range 5 {
		o.ensure(t, fmt.Sprintf("uid-nb-%d", i), fmt.Sprintf("nb%d@x.io", i))
	}
	if err := o.b.EnsureTeamOwned(ctx, groupOf("uid-nb-team"), "nb-team"); err != nil {
		t.Fatal(err)
	}
	o.ensure(t, "uid-nb-0", "renamed-nb0@x.io")
	if err := o.b.OrphanOwner(ctx, owner("uid-nb-1"), "Orphaned"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.b.Sweep(ctx, func(uid string) bool { return uid != "uid-nb-2" }); err != nil {
		t.Fatal(err)
	}
	if c, r := count(); c != crbs || r != rbs {
		t.Fatalf("ClusterRoleBindings %d -> %d, RoleBindings %d -> %d in the Webhook layout; want no RBAC binding written", crbs, c, rbs, r)
	}
	if n := len(o.bindings(t)); n != 2*5 { // 5 grants (4 members, 1 team) x 2 roles
		t.Fatalf("%d OrgGrants, want 10", n)
	}
	if !o.access(t, "nb3@x.io", nil) || !o.access(t, "x", []string{"nb-team"}) {
		t.Fatal("the OrgGrants do not grant")
	}
}

// The tenant's ServiceAccount needs no rights on OrgGrants (review finding: whoever acts as
// it could otherwise write one by hand for a role it may not bind, and no escalation check
// judges an OrgGrant). With exactly the Bindings layout's rights (create/patch on
// rolebindings, bind on its Role; newTenant) the Webhook layout works: Check passes, ensure
// writes the OrgGrant (the manager's write, after the real binding's dry-run as the
// ServiceAccount) and it grants the role; and the ServiceAccount cannot write an OrgGrant
// itself. Before the fix Check and ensure failed here with NotAllowedToBind naming
// orggrants.
func TestWebhookTenantNeedsNoOrgGrantRights(t *testing.T) {
	ctx := t.Context()
	tn := newTenant(t)
	roles := []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}
	cfg := tn.config(scimv1.KubernetesBackend{GrantLayout: scimv1.GrantLayoutWebhook, Roles: roles})
	b := backendAs(t, admin, adminImpersonator(), cfg)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check with no rights on orggrants: %v", err)
	}
	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "carl@example.com", Owner: owner("c1")}); err != nil {
		t.Fatalf("EnsureMember with no rights on orggrants: %v", err)
	}
	var ogs scimv1.OrgGrantList
	if err := admin.List(ctx, &ogs, client.InNamespace(tn.ns), client.MatchingLabels{k8sbackend.LabelOwnerUID: "c1"}); err != nil {
		t.Fatal(err)
	}
	want := access.RolesOf(cfg)[0]
	if len(ogs.Items) != 1 {
		t.Fatalf("OrgGrants of c1 = %+v, want one", ogs.Items)
	}
	if g, ok := access.LedgerGrant(&ogs.Items[0]); !ok || g != want || ogs.Items[0].Spec.Subject.Name != "carl@example.com" {
		t.Fatalf("the OrgGrant of c1 grants %+v (%v) to %q, want %+v to carl@example.com", g, ok, ogs.Items[0].Spec.Subject.Name, want)
	}
	// the ServiceAccount itself may not write one
	asSA, err := adminImpersonator().For(tn.ns, tn.sa)
	if err != nil {
		t.Fatal(err)
	}
	hand := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": scimv1.GroupVersion.String(), "kind": "OrgGrant",
		"metadata": map[string]any{"namespace": tn.ns, "name": newName("by-hand"),
			"labels": map[string]any{k8sbackend.LabelConfig: cfg.Name}},
		"spec": map[string]any{"subject": map[string]any{"kind": "User", "name": "mallory@example.com"},
			"role": map[string]any{"kind": "Role", "name": "team-reader"}, "namespace": tn.ns},
	}}
	if err := asSA.Create(ctx, hand, client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Fatalf("the ServiceAccount creating an OrgGrant: %v, want Forbidden", err)
	}
}

// The impersonation path in the Webhook layout: a tenant's ServiceAccount that may create
// and patch OrgGrants and RoleBindings in its own namespace and bind its own Role there
// writes the OrgGrant (and passes the real binding's dry-run); the manager removes it.
func TestWebhookTenantWritesItsLedger(t *testing.T) {
	ctx := t.Context()
	tn := newTenant(t)
	cfg := tn.config(scimv1.KubernetesBackend{GrantLayout: scimv1.GrantLayoutWebhook,
		Roles: []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}})
	b := backendAs(t, admin, adminImpersonator(), cfg)
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "alice@example.com", Owner: owner("a1")}); err != nil {
		t.Fatalf("EnsureMember: %v", err)
	}
	var rbs rbacv1.RoleBindingList
	if err := admin.List(ctx, &rbs, client.InNamespace(tn.ns), client.MatchingLabels{k8sbackend.LabelOwnerUID: "a1"}); err != nil {
		t.Fatal(err)
	}
	var ogs scimv1.OrgGrantList
	if err := admin.List(ctx, &ogs, client.InNamespace(tn.ns), client.MatchingLabels{k8sbackend.LabelOwnerUID: "a1"}); err != nil {
		t.Fatal(err)
	}
	if len(rbs.Items) != 0 || len(ogs.Items) != 1 || !managedBy(ogs.Items[0].ManagedFields, k8sbackend.DefaultFieldOwner) {
		t.Fatalf("bindings of a1 = %+v, OrgGrants %+v, want one OrgGrant applied by %q", rbs.Items, ogs.Items, k8sbackend.DefaultFieldOwner)
	}
	if err := b.OrphanOwner(ctx, owner("a1"), "Orphaned"); err != nil {
		t.Fatalf("OrphanOwner as the tenant: %v", err)
	}
	if err := b.EnsureMemberAbsent(ctx, "alice@example.com"); err != nil {
		t.Fatalf("EnsureMemberAbsent: %v", err)
	}
	if got := configBindings(t, cfg); len(got) != 0 {
		t.Fatalf("left %v", got)
	}
}

// Orphans have no owner to move them: after a grantLayout change the sweep rewrites the
// orphans of roles the config still names in the new layout (they keep granting what the
// policy left), and leaves alone an orphan of a role it no longer names.
func TestSweepMovesOrphansToTheLayout(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil) // Bindings
	o.ensure(t, "uid-o", "olga@x.io")
	if err := o.b.EnsureTeamOwned(ctx, groupOf("uid-t"), "ops"); err != nil {
		t.Fatal(err)
	}
	for _, ow := range []backend.Owner{owner("uid-o"), groupOf("uid-t")} {
		if err := o.b.OrphanOwner(ctx, ow, "Orphaned"); err != nil {
			t.Fatal(err)
		}
	}
	// the next config names only the ClusterRole: the orphans of its Role stay as they are
	narrow := func(l scimv1.GrantLayout) *k8sbackend.Backend {
		o.cfg = withLayout(o.cfg, l)
		c := o.cfg.DeepCopy()
		c.Spec.Backend.Kubernetes.Roles = nil
		return k8sbackend.New(admin, c)
	}
	layoutOf := func() map[string]string { // binding name -> "ledger"/"rbac" and its role
		out := map[string]string{}
		for _, obj := range o.bindings(t) {
			if _, ok := obj.GetLabels()[k8sbackend.LabelOrphaned]; !ok || obj.GetLabels()[k8sbackend.LabelOwnerUID] != "" {
				t.Fatalf("binding %s lost its orphan mark or gained an owner: %v", obj.GetName(), obj.GetLabels())
			}
			switch b := obj.(type) {
			case *scimv1.OrgGrant:
				out[b.Spec.Subject.Name+" "+b.Spec.Role.Name] = "ledger"
			case *rbacv1.RoleBinding:
				out[b.Subjects[0].Name+" "+b.RoleRef.Name] = "rbac"
			case *rbacv1.ClusterRoleBinding:
				out[b.Subjects[0].Name+" "+b.RoleRef.Name] = "rbac"
			}
		}
		return out
	}
	crName := o.cfg.Spec.Backend.Kubernetes.ClusterRoles[0]
	for _, l := range []scimv1.GrantLayout{scimv1.GrantLayoutWebhook, scimv1.GrantLayoutBindings} {
		b := narrow(l)
		if n, err := b.Sweep(ctx, func(string) bool { return true }); err != nil || n != 0 {
			t.Fatalf("%s: Sweep = %d, %v; want nothing removed", l, n, err)
		}
		moved := "rbac"
		if l == scimv1.GrantLayoutWebhook {
			moved = "ledger"
		}
		want := map[string]string{
			"olga@x.io " + crName: moved, "ops " + crName: moved, // moved
			"olga@x.io configmap-reader": "rbac", "ops configmap-reader": "rbac", // role no longer named: left
		}
		got := layoutOf()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: orphan %q is %q, want %q (all: %v)", l, k, got[k], v, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: orphans %v, want %v", l, got, want)
		}
	}
	// the full config in the Webhook layout: the Role's orphans (in the config's namespace,
	// one name in both layouts) are replaced by OrgGrants too
	o.cfg = withLayout(o.cfg, scimv1.GrantLayoutWebhook)
	if _, err := k8sbackend.New(admin, o.cfg).Sweep(ctx, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	for k, v := range layoutOf() {
		if v != "ledger" {
			t.Errorf("orphan %q is %q after the sweep of the full Webhook config, want ledger", k, v)
		}
	}
	if !o.access(t, "olga@x.io", nil) || !o.access(t, "x", []string{"ops"}) {
		t.Fatal("the moved orphans do not grant")
	}
}
