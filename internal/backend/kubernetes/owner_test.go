package kubernetes_test

import (
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

func owner(uid string) backend.Owner   { return backend.Owner{Kind: "OrgMember", UID: uid} }
func groupOf(uid string) backend.Owner { return backend.Owner{Kind: "OrgGroup", UID: uid} }

func (o *org) ensure(t *testing.T, uid, user string) {
	t.Helper()
	if _, err := o.b.EnsureMember(t.Context(), backend.DesiredMember{UserName: user, Owner: owner(uid)}); err != nil {
		t.Fatalf("EnsureMember(%s for %s): %v", user, uid, err)
	}
}

// bindings lists the org's bindings (both kinds).
func (o *org) bindings(t *testing.T) []client.Object {
	t.Helper()
	sel := client.MatchingLabels{k8sbackend.LabelConfig: o.cfg.Name, k8sbackend.LabelConfigNamespace: o.cfg.Namespace}
	var crbs rbacv1.ClusterRoleBindingList
	var rbs rbacv1.RoleBindingList
	if err := admin.List(t.Context(), &crbs, sel); err != nil {
		t.Fatal(err)
	}
	if err := admin.List(t.Context(), &rbs, sel); err != nil {
		t.Fatal(err)
	}
	var out []client.Object
	for i := range crbs.Items {
		out = append(out, &crbs.Items[i])
	}
	for i := range rbs.Items {
		out = append(out, &rbs.Items[i])
	}
	var ogs scimv1.OrgGrantList
	if err := admin.List(t.Context(), &ogs, sel); err != nil {
		t.Fatal(err)
	}
	for i := range ogs.Items {
		out = append(out, &ogs.Items[i])
	}
	return out
}

// A renamed member keeps its bindings (named by its UID): the subject moves to the new
// userName in the same write, so the old name loses access at once (issue 7's first
// reproduction: rename, then DELETE, left the old name's ClusterRoleBinding forever).
func TestRenameMovesTheOwnersGrants(t *testing.T) {
	o := newOrg(t, nil)
	o.ensure(t, "uid-1", "alice.rename@example.com")
	before := len(o.bindings(t))
	o.ensure(t, "uid-1", "bob.rename@example.com")
	if o.access(t, "alice.rename@example.com", nil) {
		t.Fatal("the old userName keeps access after the rename")
	}
	if !o.access(t, "bob.rename@example.com", nil) {
		t.Fatal("the new userName has no access after the rename")
	}
	if got := len(o.bindings(t)); got != before {
		t.Fatalf("%d bindings after the rename, want %d (the same ones, with a new subject)", got, before)
	}
	if err := o.b.EnsureOwnerAbsent(t.Context(), owner("uid-1"), "bob.rename@example.com"); err != nil {
		t.Fatal(err)
	}
	if o.access(t, "alice.rename@example.com", nil) || o.access(t, "bob.rename@example.com", nil) {
		t.Fatal("access left after EnsureOwnerAbsent")
	}
	if n := len(o.bindings(t)); n != 0 {
		t.Fatalf("%d bindings left after EnsureOwnerAbsent", n)
	}
}

// Removing an owner's grants finds them by UID even when the caller knows only a stale
// name (or none): cleanup never depends on the member carrying its old name.
func TestOwnerAbsentNeedsNoName(t *testing.T) {
	o := newOrg(t, nil)
	o.ensure(t, "uid-a", "a@x.io")
	o.ensure(t, "uid-a", "b@x.io")
	if err := o.b.EnsureOwnerAbsent(t.Context(), owner("uid-a"), ""); err != nil {
		t.Fatal(err)
	}
	if o.access(t, "a@x.io", nil) || o.access(t, "b@x.io", nil) {
		t.Fatal("access left")
	}
}

// OwnerHolds finds an owner's grants by its UID whatever name they carry (a member that
// lost the write of its origin and was renamed since: review 18), and nothing once they
// are gone; an owner of nothing holds nothing.
func TestOwnerHoldsFollowsTheUID(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	o.ensure(t, "uid-h", "h.old@x.io")
	holds := func(uid string) bool {
		t.Helper()
		got, err := o.b.OwnerHolds(ctx, owner(uid))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if obs, err := o.b.ObserveMember(ctx, "h.new@x.io"); err != nil || obs.Managed {
		t.Fatalf("ObserveMember under the new name: %+v, %v; want nothing SCIM's there", obs, err)
	}
	if !holds("uid-h") {
		t.Fatal("OwnerHolds: false for the owner of a grant under its former name")
	}
	if holds("uid-nobody") {
		t.Fatal("OwnerHolds: true for an owner of nothing")
	}
	if err := o.b.EnsureOwnerAbsent(ctx, owner("uid-h"), ""); err != nil {
		t.Fatal(err)
	}
	if holds("uid-h") {
		t.Fatal("OwnerHolds: true after its grants were removed")
	}
}

// The sweep removes grants whose owner is gone, and leaves orphans and live owners alone.
func TestSweepCollectsGrantsOfGoneOwners(t *testing.T) {
	o := newOrg(t, nil)
	ctx := t.Context()
	o.ensure(t, "live", "live@x.io")
	o.ensure(t, "gone", "gone@x.io")
	o.ensure(t, "left", "left@x.io")
	if err := o.b.EnsureTeamOwned(ctx, groupOf("gone-group"), "qa"); err != nil {
		t.Fatal(err)
	}
	if err := o.b.OrphanOwner(ctx, owner("left"), "Orphaned"); err != nil {
		t.Fatal(err)
	}
	n, err := o.b.Sweep(ctx, func(uid string) bool { return uid == "live" })
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // gone@x.io and group qa, two roles each
		t.Fatalf("Sweep removed %d bindings, want 4", n)
	}
	if !o.access(t, "live@x.io", nil) || !o.access(t, "left@x.io", nil) {
		t.Fatal("the sweep took a live owner's or an orphan's access")
	}
	if o.access(t, "gone@x.io", nil) || o.access(t, "anyone", []string{"qa"}) {
		t.Fatal("the sweep left a gone owner's access")
	}
}

// An orphaned grant is SCIM's: a new member of the same identity sees it as Managed and
// claims it (its own bindings replace the orphan's); removing that member then removes it.
func TestOrphanIsClaimedByTheNextMemberOfThatName(t *testing.T) {
	o := newOrg(t, nil)
	ctx := t.Context()
	o.ensure(t, "first", "carol@x.io")
	if err := o.b.OrphanOwner(ctx, owner("first"), "Orphaned"); err != nil {
		t.Fatal(err)
	}
	m, err := o.b.ObserveMember(ctx, "carol@x.io")
	if err != nil {
		t.Fatal(err)
	}
	if !m.Managed || m.State != backend.StateMember {
		t.Fatalf("ObserveMember of an orphan = %+v, want a Managed member", m)
	}
	// a new member of the same identity, inactive: claims and removes it
	if err := o.b.EnsureOwnerAbsent(ctx, owner("second"), "carol@x.io"); err != nil {
		t.Fatal(err)
	}
	if o.access(t, "carol@x.io", nil) {
		t.Fatal("the orphan's access survived its claim and removal")
	}
	// claimed by an active member: one set of bindings, the member's
	o.ensure(t, "third", "dave@x.io")
	if err := o.b.OrphanOwner(ctx, owner("third"), "Orphaned"); err != nil {
		t.Fatal(err)
	}
	o.ensure(t, "fourth", "DAVE@x.io")
	for _, b := range o.bindings(t) {
		if b.GetLabels()[k8sbackend.LabelOwnerUID] != "fourth" {
			t.Fatalf("binding %s owned by %q after the claim, want fourth", b.GetName(), b.GetLabels()[k8sbackend.LabelOwnerUID])
		}
	}
	if !o.access(t, "DAVE@x.io", nil) {
		t.Fatal("the claiming member has no access")
	}
}

// Config deletion: RemoveAllOwned takes every owned grant and leaves orphans; OrphanAll
// leaves every grant, marked.
func TestConfigDeletionOutcomes(t *testing.T) {
	o := newOrg(t, nil)
	ctx := t.Context()
	o.ensure(t, "m1", "m1@x.io")
	o.ensure(t, "m2", "m2@x.io")
	if err := o.b.OrphanOwner(ctx, owner("m2"), "Orphaned"); err != nil {
		t.Fatal(err)
	}
	if _, err := o.b.RemoveAllOwned(ctx); err != nil {
		t.Fatal(err)
	}
	if o.access(t, "m1@x.io", nil) || !o.access(t, "m2@x.io", nil) {
		t.Fatal("RemoveAllOwned: want m1 gone and the orphan m2 kept")
	}
	o.ensure(t, "m3", "m3@x.io")
	if _, err := o.b.OrphanAll(ctx, "ConfigDeleted"); err != nil {
		t.Fatal(err)
	}
	if n, err := o.b.Sweep(ctx, func(string) bool { return false }); err != nil || n != 0 {
		t.Fatalf("Sweep after OrphanAll removed %d (%v), want 0", n, err)
	}
	if !o.access(t, "m3@x.io", nil) {
		t.Fatal("OrphanAll took access")
	}
}

// An owner re-ensuring its own orphaned binding (its config deleted under Orphan and
// created again under the same name) takes the orphan mark off: the sweep and a later
// config deletion then treat it as owned again.
func TestReensuredOrphanLosesTheMark(t *testing.T) {
	o := newOrg(t, nil)
	ctx := t.Context()
	o.ensure(t, "back", "back@x.io")
	if _, err := o.b.OrphanAll(ctx, "ConfigDeleted"); err != nil {
		t.Fatal(err)
	}
	o.ensure(t, "back", "back@x.io")
	for _, b := range o.bindings(t) {
		if _, marked := b.GetLabels()[k8sbackend.LabelOrphaned]; marked || b.GetLabels()[k8sbackend.LabelOwnerUID] != "back" {
			t.Fatalf("binding %s labels %v after the owner re-ensured it, want owned by back and not orphaned", b.GetName(), b.GetLabels())
		}
	}
}
