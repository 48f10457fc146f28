package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/plan"
)

// A group judges the ids its team lists from the holders of those ids (index.BackendID),
// not from every member of its config, and a member read twice (as the group's member, then
// as an id's holder) is judged from the later read alone: alice, adopted, becomes Active
// between the two reads, and must be wanted, not taken out of her team.
func TestGroupJudgesTheTeamsIDsFromTheirHoldersLatestRead(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme"},
		Spec: scimv1.ScimConfigSpec{Organization: "acme"}}
	g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g"},
		Spec: scimv1.OrgGroupSpec{ConfigName: "acme", DisplayName: "acme:devs"}}
	inGroup := map[string]string{scimv1.LabelGroupPrefix + "g": ""}
	member := func(name, id string, origin scimv1.MemberOrigin, phase scimv1.MemberPhase, labels map[string]string) *scimv1.OrgMember {
		return &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: labels},
			Spec:   scimv1.OrgMemberSpec{ConfigName: "acme", UserName: name, Active: true},
			Status: scimv1.OrgMemberStatus{BackendID: id, Origin: origin, Phase: phase}}
	}
	alice := member("alice", "Alice", scimv1.OriginAdopted, scimv1.PhasePending, inGroup)
	bob := member("bob", "bob", scimv1.OriginProvisioned, scimv1.PhaseActive, nil)       // listed, not the group's: out
	carol := member("carol", "carol", scimv1.OriginPreexisting, scimv1.PhaseActive, nil) // not SCIM's to take out
	erin := member("erin", "erin", scimv1.OriginProvisioned, scimv1.PhaseActive, nil)
	erin.Spec.Docker = &scimv1.DockerUser{Team: "devs"}                                   // kept by her hint
	dave := member("dave", "dave", scimv1.OriginProvisioned, scimv1.PhaseActive, inGroup) // wanted, not listed yet
	other := member("zed", "bob", scimv1.OriginProvisioned, scimv1.PhaseActive, inGroup)
	other.Spec.ConfigName = "other" // another config's holder of an id the team lists
	elsewhere := member("yan", "carol", scimv1.OriginProvisioned, scimv1.PhaseActive, inGroup)
	elsewhere.Namespace = "ns2" // a holder in another namespace, of a config of the same name

	var reads []string
	base := withShippedIndexes(t, fake.NewClientBuilder().WithScheme(unitScheme(t))).
		WithObjects(cfg, g, alice, bob, carol, erin, dave, other, elsewhere).WithStatusSubresource(&scimv1.OrgMember{})
	c := base.WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		lo := (&client.ListOptions{}).ApplyOptions(opts)
		read := ""
		if lo.FieldSelector != nil {
			read = lo.FieldSelector.String()
		}
		reads = append(reads, read)
		if err := cl.List(ctx, list, opts...); err != nil {
			return err
		}
		if len(reads) == 1 { // alice's member concludes between the group's read and the holders'
			a := &scimv1.OrgMember{}
			if err := cl.Get(ctx, client.ObjectKeyFromObject(alice), a); err != nil {
				return err
			}
			a.Status.Phase = scimv1.PhaseActive
			return cl.Status().Update(ctx, a)
		}
		return nil
	}}).Build()
	r := &OrgGroupReconciler{Client: c, Clock: clock.RealClock{}}

	listed := []string{"ALICE", "bob", "carol", "erin", "stranger", "Bob"}
	mine, err := r.groupMembers(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	want, removable, hinted, err := r.managedIDs(context.Background(), g, cfg, "devs", nil, mine, listed)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(want, []string{"Alice", "dave"}) {
		t.Errorf("want = %v, expected [Alice dave]: alice judged from her later read, dave from the group's", want)
	}
	for id, expected := range map[string]bool{"alice": true, "bob": true, "erin": true, "carol": false, "stranger": false, "dave": false} {
		if removable[id] != expected {
			t.Errorf("removable[%s] = %v, expected %v (removable: %v)", id, removable[id], expected, removable)
		}
	}
	if !hinted["erin"] || len(hinted) != 1 {
		t.Errorf("hinted = %v, expected erin alone", hinted)
	}
	// the config's members are never listed whole: the group's members, then one read per id
	for _, r := range reads {
		if r == "" || strings.HasPrefix(r, index.Config+"=") {
			t.Errorf("the config's members were listed whole (%q): reads %v", r, reads)
		}
	}
	if len(reads) != 6 { // the group's members, then alice, bob, carol, erin, stranger (Bob is bob)
		t.Errorf("%d reads, expected 6: %v", len(reads), reads)
	}

	p := plan.Group(plan.GroupInput{Config: plan.ConfigEnabled, Team: "devs",
		Observed: &backend.Team{Name: "devs", Members: listed[:5]}, Want: want, Removable: removable, Hinted: hinted})
	if !slices.Equal(p.Remove, []string{"bob"}) || !slices.Equal(p.Add, []string{"dave"}) {
		t.Errorf("plan adds %v and removes %v, expected [dave] and [bob]: alice stays in her team", p.Add, p.Remove)
	}
}

// Two members hold one id, and the holders' read misses one of them (the index lags its
// change). Before the group's read: alice-a, in the group, is Pending, and alice-h, not the
// group's, is deactivated under the Keep policy: no one to take out. Between the reads both
// become Active, and the holders' read finds alice-h alone: judged from the group's read,
// alice-a would not want her id, and alice-h would make it removable. Neither snapshot takes
// it out (at the second, alice-a wants it), and neither may the group.
func TestGroupKeepsAnIDItsMemberHeldWhenTheHoldersReadMissesIt(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme"},
		Spec: scimv1.ScimConfigSpec{Organization: "acme",
			Policies: scimv1.LifecyclePolicies{Deactivation: scimv1.DeactivationKeep}}}
	g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g"},
		Spec: scimv1.OrgGroupSpec{ConfigName: "acme", DisplayName: "acme:devs"}}
	a := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "alice-a",
		Labels: map[string]string{scimv1.LabelGroupPrefix + "g": ""}},
		Spec:   scimv1.OrgMemberSpec{ConfigName: "acme", UserName: "alice-a", Active: true},
		Status: scimv1.OrgMemberStatus{BackendID: "alice", Origin: scimv1.OriginAdopted, Phase: scimv1.PhasePending}}
	h := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "alice-h"},
		Spec:   scimv1.OrgMemberSpec{ConfigName: "acme", UserName: "alice-h"},
		Status: scimv1.OrgMemberStatus{BackendID: "alice", Origin: scimv1.OriginProvisioned, Phase: scimv1.PhaseActive}}
	reads := 0
	c := withShippedIndexes(t, fake.NewClientBuilder().WithScheme(unitScheme(t))).WithObjects(cfg, g, a, h).
		WithStatusSubresource(&scimv1.OrgMember{}).
		WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if err := cl.List(ctx, list, opts...); err != nil {
				return err
			}
			if reads++; reads == 1 { // between the reads: alice-a concludes, alice-h is reactivated
				m := &scimv1.OrgMember{}
				if err := cl.Get(ctx, client.ObjectKeyFromObject(a), m); err != nil {
					return err
				}
				m.Status.Phase = scimv1.PhaseActive
				if err := cl.Status().Update(ctx, m); err != nil {
					return err
				}
				if err := cl.Get(ctx, client.ObjectKeyFromObject(h), m); err != nil {
					return err
				}
				m.Spec.Active = true
				return cl.Update(ctx, m)
			}
			lo := (&client.ListOptions{}).ApplyOptions(opts)
			if lo.FieldSelector == nil || !strings.HasPrefix(lo.FieldSelector.String(), index.BackendID+"=") {
				return nil
			}
			ms := list.(*scimv1.OrgMemberList)
			ms.Items = slices.DeleteFunc(ms.Items, func(m scimv1.OrgMember) bool { return m.Name == "alice-a" })
			return nil
		}}).Build()
	r := &OrgGroupReconciler{Client: c, Clock: clock.RealClock{}}
	mine, err := r.groupMembers(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	want, removable, hinted, err := r.managedIDs(context.Background(), g, cfg, "devs", nil, mine, []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	p := plan.Group(plan.GroupInput{Config: plan.ConfigEnabled, Team: "devs",
		Observed: &backend.Team{Name: "devs", Members: []string{"alice"}}, Want: want, Removable: removable, Hinted: hinted})
	if len(p.Remove) != 0 {
		t.Errorf("plan removes %v (want %v, removable %v): alice-a's id was taken out on a read that missed her", p.Remove, want, removable)
	}
}
