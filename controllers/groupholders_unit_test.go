package controllers

import (
	"context"
	"slices"
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
	other := member("zed", "bob", scimv1.OriginProvisioned, scimv1.PhaseActive, nil)
	other.Spec.ConfigName = "other" // another config's holder of an id the team lists

	var reads []string
	base := withShippedIndexes(t, fake.NewClientBuilder().WithScheme(unitScheme(t))).
		WithObjects(cfg, g, alice, bob, carol, erin, dave, other).WithStatusSubresource(&scimv1.OrgMember{})
	var c client.Client
	c = base.WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		lo := (&client.ListOptions{}).ApplyOptions(opts)
		if lo.FieldSelector != nil {
			reads = append(reads, lo.FieldSelector.String())
		}
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
	want, removable, hinted, err := r.managedIDs(context.Background(), g, cfg, "devs", nil, listed)
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
		if r == index.Config+"=acme" || r == index.Config+"=ns/acme" {
			t.Errorf("the config's members were listed whole (%s): reads %v", r, reads)
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
