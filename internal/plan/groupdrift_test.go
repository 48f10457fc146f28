package plan

import (
	"strings"
	"testing"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/backend/dockerhub"
)

// Review 20 F5: a drift pass judges every group from the members listing (each member's
// teams) and one listing of the teams; a group is drifted exactly when its own reconcile,
// given the team as the listings show it, would act.
func TestGroupDrifted(t *testing.T) {
	list := []backend.Member{
		{UserName: "ann@example.com", BackendID: "ann", State: backend.StateMember, Teams: []string{"Devs"}},
		{UserName: "ben@example.com", BackendID: "ben", State: backend.StateMember, Teams: []string{"devs", "ops"}},
		{UserName: "hand@example.com", BackendID: "hand", State: backend.StateMember, Teams: []string{"devs"}},
		// an invitee is in no team, whatever its entry says
		{UserName: "ivy@example.com", BackendID: "ivy", State: backend.StateInvited, Teams: []string{"devs"}},
	}
	teams := NewTeams([]string{"devs", "ops", "empty"}, list)
	managed := map[string]bool{"ann": true, "ben": true, "cat": true}
	for _, tc := range []struct {
		name    string
		in      GroupInput
		drifted bool
		why     string // a part of the reason
	}{
		{name: "the team as wanted (a member SCIM does not manage stays)",
			in: GroupInput{Team: "devs", Want: []string{"ann", "ben"}}},
		{name: "team names compare case-insensitively", in: GroupInput{Team: "DEVS", Want: []string{"ANN", "ben"}}},
		{name: "a wanted member missing from the team",
			in: GroupInput{Team: "ops", Want: []string{"ann", "ben"}}, drifted: true, why: "team ops lacks ann"},
		{name: "a managed member who left the group is still in the team",
			in: GroupInput{Team: "devs", Want: []string{"ann"}}, drifted: true, why: "team devs has ben"},
		{name: "a hinted member is kept", in: GroupInput{Team: "devs", Want: []string{"ann"}, Hinted: map[string]bool{"ben": true}}},
		{name: "the team deleted by hand", in: GroupInput{Team: "gone"}, drifted: true, why: "team gone is missing"},
		{name: "an empty team that exists", in: GroupInput{Team: "empty"}},
		{name: "an invitee listed with a team does not count as in it",
			in: GroupInput{Team: "ops", Want: []string{"ben", "ivy"}}, drifted: true, why: "lacks ivy"},
		{name: "a group waiting for the older group of its team is not judged", in: GroupInput{Team: "gone", Conflict: true}},
		{name: "a group being deleted is not judged", in: GroupInput{Team: "gone", Deleting: true}},
		{name: "a disabled config's group is not judged", in: GroupInput{Team: "gone", Config: ConfigDisabled}},
		{name: "a wanted member removed from the organization by hand is its member's drift, not the group's",
			in: GroupInput{Team: "devs", Want: teams.Members([]string{"ann", "ben", "gone"})}},
		{name: "a group still mapped to its former team", in: GroupInput{Team: "devs", Former: "old", Want: []string{"ann", "ben"}},
			drifted: true, why: "former team old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in // ConfigEnabled is the zero value
			in.Removable = managed
			in.Observed = teams.Team(in.Team)
			drifted, why := GroupDrifted(in)
			if drifted != tc.drifted || !strings.Contains(why, tc.why) {
				t.Fatalf("GroupDrifted = %v %q, want %v (%q)", drifted, why, tc.drifted, tc.why)
			}
		})
	}
}

// A displayName whose case alone changed keeps its team: Docker Hub's team names are
// case-insensitive, and leaving the "former" team would delete the group's own. So does
// one that names Docker Hub's organization a second time (review 23 F1): "x:acme:qa"
// leaves "acme:qa", which is team qa there, but a kubernetes Group of that name.
func TestFormerTeam(t *testing.T) {
	b, err := dockerhub.New(dockerhub.Options{BaseURL: "http://127.0.0.1:1", Org: "acme", AccessToken: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	hub := TeamKeyOf(b) // the real backend's naming: no call is made
	for _, tc := range []struct {
		was, team string
		key       TeamKey
		want      string
	}{
		{"", "devs", nil, ""}, {"devs", "devs", nil, ""}, {"Devs", "devs", nil, ""}, {"devs", "ops", nil, "devs"},
		{"qa", "acme:qa", hub, ""}, {"QA", "Acme:qa", hub, ""}, {"acme:qa", "qa", hub, ""},
		{"qa", "acme: qa", hub, ""}, {"qa", "acme:acme:qa", hub, ""},
		{"qa", "acme:qa", nil, "qa"}, {"qa", "other:qa", hub, "qa"}, {"qa", "acme:ops", hub, "qa"},
	} {
		if got := FormerTeam(tc.was, tc.team, tc.key); got != tc.want {
			t.Errorf("FormerTeam(%q, %q, hub key %v) = %q, want %q", tc.was, tc.team, tc.key != nil, got, tc.want)
		}
	}
	// a name resolved once (a member's hint, recorded in status.hintedTeam) is the same
	// name when resolved again (review 24 F1)
	for _, name := range []string{"qa", " acme : qa ", "acme:acme:qa", "other:qa", ""} {
		if once := hub.Name(name); hub.Name(once) != once {
			t.Errorf("Name(%q) = %q, but Name(%q) = %q", name, once, once, hub.Name(once))
		}
	}
	// review 25 F1: a record of a name the backend once refused does not carry over
	for _, tc := range []struct {
		was, team string
		key       TeamKey
		want      bool
	}{
		{"Devs", "devs", nil, true}, {"Devs", "devs", hub, true}, {"devs", "ops", hub, false},
		{"acme: qa", "qa", hub, false}, {"acme:acme:qa", "qa", hub, false}, {"acme:qa", "qa", hub, false},
		{"oidc:devs", "OIDC:devs", nil, true},
	} {
		if got := TeamCreatedKept(tc.was, tc.team, true, tc.key); got != tc.want {
			t.Errorf("TeamCreatedKept(%q, %q, hub key %v) = %v, want %v", tc.was, tc.team, tc.key != nil, got, tc.want)
		}
		if TeamCreatedKept(tc.was, tc.team, false, tc.key) {
			t.Errorf("TeamCreatedKept(%q, %q) without a record = true", tc.was, tc.team)
		}
	}
	if TeamKeyOf(nil) != nil || TeamKeyOf(struct{}{}) != nil {
		t.Error("a backend that does not list teams has the nil TeamKey")
	}
}

// A member whose reconcile is under way (Pending: its origin recorded before the plan that
// makes it Active concluded) is no group's to take out of a team. The bench's adoption of
// 1,000 people in ten groups saw groups take adopted people out of the teams they were
// in before SCIM, and put them back a moment later: 11 removals and 4 adds.
func TestManagedIDsLeaveAMemberInTransitionAlone(t *testing.T) {
	cfg := &scimv1.ScimConfig{}
	member := func(id string, phase scimv1.MemberPhase) scimv1.OrgMember {
		return scimv1.OrgMember{Spec: scimv1.OrgMemberSpec{Active: true},
			Status: scimv1.OrgMemberStatus{BackendID: id, Origin: scimv1.OriginAdopted, Phase: phase}}
	}
	removable, _ := ManagedIDs([]scimv1.OrgMember{member("ann", scimv1.PhasePending), member("bob", ""),
		member("cy", scimv1.PhaseActive), member("dee", scimv1.PhaseDeactivated)}, cfg, "devs", TeamKey(strings.ToLower))
	for id, want := range map[string]bool{"ann": false, "bob": false, "cy": true, "dee": true} {
		if removable[id] != want {
			t.Errorf("%s: removable %v, want %v", id, removable[id], want)
		}
	}
}
