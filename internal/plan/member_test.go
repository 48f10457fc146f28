package plan

import (
	"slices"
	"testing"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
)

var (
	absent  = backend.Member{UserName: "a@x", State: backend.StateAbsent}
	member  = backend.Member{UserName: "a@x", State: backend.StateMember, BackendID: "a", Role: "member"}
	invited = backend.Member{UserName: "a@x", State: backend.StateInvited}
	managed = backend.Member{UserName: "a@x", State: backend.StateMember, BackendID: "a@x", Managed: true}

	remove = scimv1.LifecyclePolicies{Deactivation: scimv1.DeactivationRemove, Deletion: scimv1.DeletionRemove, Adoption: scimv1.AdoptionIgnore}
	keep   = scimv1.LifecyclePolicies{Deactivation: scimv1.DeactivationKeep, Deletion: scimv1.DeletionRemove, Adoption: scimv1.AdoptionIgnore}
	orphan = scimv1.LifecyclePolicies{Deactivation: scimv1.DeactivationRemove, Deletion: scimv1.DeletionOrphan, Adoption: scimv1.AdoptionIgnore}
	adopt  = scimv1.LifecyclePolicies{Deactivation: scimv1.DeactivationRemove, Deletion: scimv1.DeletionRemove, Adoption: scimv1.AdoptionAdopt}
)

const (
	prov = scimv1.OriginProvisioned
	pre  = scimv1.OriginPreexisting
)

// TestMember is the planner's decision table: one row per rule of docs/access-invariant.md.
func TestMember(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     MemberInput
		wait   Wait
		steps  []Step
		origin scimv1.MemberOrigin
		phase  scimv1.MemberPhase
		story  Story
		// byGrants: the origin is written with the outcome, not before acting
		byGrants bool
	}{
		// two members of one userName (a create that lost its name to a rename, until it is
		// deleted again; or one made with kubectl): a deletion leaves the person to the other
		// where the identity is all a grant says, and removes its own grants where they are
		// labelled with their owner
		{name: "deleted, another member has the userName, unlabelled backend: orphan, never remove",
			in: MemberInput{Config: ConfigEnabled, Deleting: true, Origin: prov, Policies: remove, SharedWith: "other"}, steps: []Step{StepOrphan, StepRelease}, story: StoryOrphan},
		{name: "deleted, another member has the userName, labelled backend: remove its own grants",
			in:    MemberInput{Config: ConfigEnabled, Deleting: true, Origin: prov, Policies: remove, SharedWith: "other", Labelled: true},
			steps: []Step{StepRemove, StepRelease}, phase: scimv1.PhaseRemoved, story: StoryRemove},
		// config states
		{name: "config gone: wait", in: MemberInput{Config: ConfigGone, Active: true, Origin: prov}, wait: WaitConfigGone},
		{name: "config gone, deleted: release without touching the backend",
			in: MemberInput{Config: ConfigGone, Deleting: true, Origin: prov, Policies: remove}, steps: []Step{StepRelease}},
		{name: "disabled: wait", in: MemberInput{Config: ConfigDisabled, Active: false, Origin: prov, Policies: remove}, wait: WaitDisabled},
		{name: "disabled, deleted: orphan, never remove",
			in: MemberInput{Config: ConfigDisabled, Deleting: true, Origin: prov, Policies: remove}, steps: []Step{StepOrphan, StepRelease}, story: StoryOrphan},
		{name: "disabled, deleted, never provisioned: release",
			in: MemberInput{Config: ConfigDisabled, Deleting: true, Policies: remove}, steps: []Step{StepRelease}},
		{name: "backend not ready: no grant",
			in: MemberInput{Config: ConfigNotReady, Active: true, Origin: prov, Phase: scimv1.PhaseActive, Policies: remove}, wait: WaitBackendReady},
		{name: "backend not ready: a deactivation is still tried",
			in:    MemberInput{Config: ConfigNotReady, Active: false, Origin: prov, Phase: scimv1.PhaseActive, Policies: remove},
			steps: []Step{StepRemove}, phase: scimv1.PhaseDeactivated},
		{name: "backend not ready: a deletion is still tried",
			in:    MemberInput{Config: ConfigNotReady, Deleting: true, Origin: prov, Policies: remove},
			steps: []Step{StepRemove, StepRelease}, phase: scimv1.PhaseRemoved, story: StoryRemove},

		// provisioning and origin
		{name: "new active member: record origin, then grant",
			in:    MemberInput{Active: true, Observed: absent, Policies: remove},
			steps: []Step{StepRecordOrigin, StepEnsure}, origin: prov, story: StoryProvision},
		{name: "new member found unlabelled, adoption off: preexisting, left alone",
			in:    MemberInput{Active: true, Observed: member, Policies: remove},
			steps: []Step{StepRecordOrigin}, origin: pre, phase: scimv1.PhaseActive, story: StoryPreexisting},
		{name: "new member found with SCIM's labels: SCIM's, never preexisting",
			in:    MemberInput{Active: true, Observed: managed, Policies: remove, Labelled: true},
			steps: []Step{StepRecordOrigin, StepEnsure}, origin: prov, story: StoryProvision, byGrants: true},
		{name: "new active member, labelled backend: its grants carry its UID, so the origin is written with the outcome",
			in:    MemberInput{Active: true, Observed: absent, Policies: remove, Labelled: true},
			steps: []Step{StepRecordOrigin, StepEnsure}, origin: prov, story: StoryProvision, byGrants: true},
		{name: "new member found unlabelled on a labelled backend, adoption on: adopted, recorded before acting",
			in:    MemberInput{Active: true, Observed: member, Policies: adopt, Labelled: true},
			steps: []Step{StepRecordOrigin, StepEnsure}, origin: scimv1.OriginAdopted, story: StoryAdopt},
		{name: "new inactive member claims an orphan and removes it",
			in:    MemberInput{Active: false, Observed: managed, Policies: remove, Labelled: true},
			steps: []Step{StepRecordOrigin, StepRemove}, origin: prov, phase: scimv1.PhaseDeactivated, story: StoryDeactivate, byGrants: true},
		{name: "new member found, adoption on: adopted",
			in:    MemberInput{Active: true, Observed: member, Policies: adopt},
			steps: []Step{StepRecordOrigin}, origin: scimv1.OriginAdopted, story: StoryAdopt},
		{name: "preexisting stays alone even when inactive",
			in: MemberInput{Active: false, Origin: pre, Policies: remove}, phase: scimv1.PhaseActive},
		{name: "new inactive member never granted: nothing",
			in: MemberInput{Active: false, Observed: absent, Policies: remove}, phase: scimv1.PhaseDeactivated},

		{name: "new inactive member over a partial orphan: claims and removes it",
			in: MemberInput{Active: false, Observed: backend.Member{State: backend.StateAbsent, BackendID: "a@x", Managed: true},
				Policies: remove, Labelled: true},
			steps: []Step{StepRecordOrigin, StepRemove}, origin: prov, phase: scimv1.PhaseDeactivated, story: StoryDeactivate, byGrants: true},
		{name: "preexisting, adoption switched on: adopted",
			in:    MemberInput{Active: true, Origin: pre, Phase: scimv1.PhaseActive, Observed: member, Policies: adopt},
			steps: []Step{StepRecordOrigin}, origin: scimv1.OriginAdopted, story: StoryAdopt},
		{name: "config being deleted: a live member waits",
			in: MemberInput{Config: ConfigDeleting, Active: true, Origin: prov, Policies: remove}, wait: WaitConfigGone},
		{name: "config being deleted under Remove: a deleted member removes its own grants",
			in:    MemberInput{Config: ConfigDeleting, Deleting: true, Origin: prov, Policies: remove},
			steps: []Step{StepRemove, StepRelease}, phase: scimv1.PhaseRemoved, story: StoryRemove},
		{name: "config being deleted under Orphan: a deleted member orphans its grants",
			in:    MemberInput{Config: ConfigDeleting, Deleting: true, Origin: prov, Policies: orphan},
			steps: []Step{StepOrphan, StepRelease}, story: StoryOrphan},
		{name: "backend not ready, renamed (labelled): the former name loses access now",
			in:   MemberInput{Config: ConfigNotReady, Active: true, Origin: prov, Phase: scimv1.PhaseActive, Renamed: true, Labelled: true, Policies: remove},
			wait: WaitBackendReady, steps: []Step{StepRemove}},
		{name: "backend not ready, renamed (unlabelled): the former identities go now",
			in:   MemberInput{Config: ConfigNotReady, Active: true, Origin: prov, Phase: scimv1.PhaseInvited, Stale: []string{"old@x"}, Policies: remove},
			wait: WaitBackendReady, steps: []Step{StepRemoveStale}},

		// steady state and drift
		{name: "active member in place: nothing (unlabelled backend)",
			in: MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseActive, Observed: member, Policies: remove}},
		{name: "active member on a labelled backend: ensure is a diff, always run",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseActive, Observed: managed, Policies: remove, Labelled: true},
			steps: []Step{StepEnsure}},
		{name: "removed by hand: repaired",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseActive, Observed: absent, Policies: remove},
			steps: []Step{StepEnsure}, story: StoryRepair},
		{name: "answer lost after our create: found, told once",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhasePending, Observed: invited, Policies: remove},
			story: StoryProvision},
		{name: "role changed",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseActive, Observed: member, WantRole: "editor", Policies: remove},
			steps: []Step{StepEnsure}, story: StoryRoleChange},
		{name: "team hint: join",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseActive, Observed: member, Team: "qa", Policies: remove},
			steps: []Step{StepJoinTeam}},

		{name: "team hint changed: leave the former team, join the new one",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseActive, Observed: member, Team: "dev", FormerTeam: "qa", Policies: remove},
			steps: []Step{StepLeaveTeam, StepJoinTeam}},
		{name: "team hint removed: leave the former team",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseActive, Observed: member, FormerTeam: "qa", Policies: remove},
			steps: []Step{StepLeaveTeam}},

		// renames
		{name: "renamed on an unlabelled backend: grant the new identity, remove the old",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseInvited, Observed: absent, Stale: []string{"old@x"}, Policies: remove},
			steps: []Step{StepRemoveStale, StepEnsure}, story: StoryRenamed},
		{name: "renamed on a labelled backend: ensure moves the owner's grants",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseActive, Observed: absent, Renamed: true, Labelled: true, Policies: remove},
			steps: []Step{StepEnsure}, story: StoryRenamed},

		// deactivation
		{name: "deactivated, policy Remove: every grant removed",
			in:    MemberInput{Active: false, Origin: prov, Phase: scimv1.PhaseActive, Observed: member, Policies: remove},
			steps: []Step{StepRemove}, phase: scimv1.PhaseDeactivated, story: StoryDeactivate},
		{name: "deactivated with one binding of two gone: still removed",
			in:    MemberInput{Active: false, Origin: prov, Phase: scimv1.PhaseActive, Observed: backend.Member{State: backend.StateAbsent, BackendID: "a@x", Managed: true}, Policies: remove, Labelled: true},
			steps: []Step{StepRemove}, phase: scimv1.PhaseDeactivated, story: StoryDeactivate},
		{name: "already deactivated: removal re-run quietly (drift added by hand goes)",
			in:    MemberInput{Active: false, Origin: prov, Phase: scimv1.PhaseDeactivated, Observed: absent, Policies: remove},
			steps: []Step{StepRemove}, phase: scimv1.PhaseDeactivated},
		{name: "deactivated, policy Keep: access kept and repaired",
			in:    MemberInput{Active: false, Origin: prov, Phase: scimv1.PhaseActive, Observed: absent, Policies: keep},
			steps: []Step{StepEnsure}, phase: scimv1.PhaseDeactivated, story: StoryKeep},
		{name: "deactivated earlier under Remove, policy now Keep: access not given back",
			in:    MemberInput{Active: false, Origin: prov, Phase: scimv1.PhaseDeactivated, Observed: absent, Policies: keep, Deprovisioned: true},
			phase: scimv1.PhaseDeactivated},
		{name: "reactivated",
			in:    MemberInput{Active: true, Origin: prov, Phase: scimv1.PhaseDeactivated, Observed: absent, Policies: remove},
			steps: []Step{StepEnsure}, story: StoryReactivate},

		// deletion
		{name: "deleted, policy Remove", in: MemberInput{Deleting: true, Origin: prov, Policies: remove},
			steps: []Step{StepRemove, StepRelease}, phase: scimv1.PhaseRemoved, story: StoryRemove},
		{name: "deleted, policy Orphan", in: MemberInput{Deleting: true, Origin: prov, Policies: orphan},
			steps: []Step{StepOrphan, StepRelease}, story: StoryOrphan},
		{name: "deleted, preexisting", in: MemberInput{Deleting: true, Origin: pre, Policies: remove}, steps: []Step{StepRelease}},
		{name: "deleted, never provisioned", in: MemberInput{Deleting: true, Policies: remove}, steps: []Step{StepRelease}},
		// on a labelled backend an origin is written with the outcome (byGrants), so a member
		// deleted before that write landed may own grants: its policy applies to whatever
		// carries its UID (nothing, when it never was granted), without a story
		{name: "deleted, labelled, no origin recorded: removes what carries its UID",
			in: MemberInput{Deleting: true, Policies: remove, Labelled: true}, steps: []Step{StepRemove, StepRelease}},
		{name: "deleted, labelled, no origin recorded, policy Orphan: orphans what carries its UID",
			in: MemberInput{Deleting: true, Policies: orphan, Labelled: true}, steps: []Step{StepOrphan, StepRelease}},
		{name: "disabled, deleted, labelled, no origin recorded: orphans what carries its UID",
			in: MemberInput{Config: ConfigDisabled, Deleting: true, Policies: remove, Labelled: true}, steps: []Step{StepOrphan, StepRelease}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Member(tc.in)
			if p.Wait != tc.wait {
				t.Errorf("wait = %q, want %q", p.Wait, tc.wait)
			}
			if !slices.Equal(p.Steps, tc.steps) {
				t.Errorf("steps = %v, want %v", p.Steps, tc.steps)
			}
			if p.Origin != tc.origin {
				t.Errorf("origin = %q, want %q", p.Origin, tc.origin)
			}
			if p.Phase != tc.phase {
				t.Errorf("phase = %q, want %q", p.Phase, tc.phase)
			}
			if p.Story != tc.story {
				t.Errorf("story = %q, want %q", p.Story, tc.story)
			}
			if p.OriginKeptByGrants != tc.byGrants {
				t.Errorf("OriginKeptByGrants = %v, want %v", p.OriginKeptByGrants, tc.byGrants)
			}
		})
	}
}

// TestNeedsObservation: members that wait, are released or left alone are not looked up.
func TestNeedsObservation(t *testing.T) {
	for _, tc := range []struct {
		in   MemberInput
		want bool
	}{
		{MemberInput{Config: ConfigEnabled, Active: true}, true},
		{MemberInput{Config: ConfigEnabled, Origin: pre}, false},
		{MemberInput{Config: ConfigEnabled, Origin: pre, Policies: adopt}, true},
		{MemberInput{Config: ConfigDeleting}, false},
		{MemberInput{Config: ConfigEnabled, Deleting: true}, false},
		{MemberInput{Config: ConfigDisabled}, false},
		{MemberInput{Config: ConfigNotReady}, false},
		{MemberInput{Config: ConfigGone}, false},
	} {
		if got := NeedsObservation(tc.in); got != tc.want {
			t.Errorf("NeedsObservation(%+v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestGroup is the group planner's decision table.
func TestGroup(t *testing.T) {
	team := &backend.Team{Name: "eng", Members: []string{"ann", "old", "foreign", "hinted"}}
	managedIDs := map[string]bool{"ann": true, "old": true, "hinted": true}
	for _, tc := range []struct {
		name        string
		in          GroupInput
		wait        Wait
		steps       []GroupStep
		add, remove []string
	}{
		{name: "disabled: wait", in: GroupInput{Config: ConfigDisabled, Team: "eng"}, wait: WaitDisabled},
		{name: "not ready: wait", in: GroupInput{Config: ConfigNotReady, Team: "eng"}, wait: WaitBackendReady},
		{name: "new team: create it and add the members",
			in:    GroupInput{Team: "eng", Want: []string{"ann"}},
			steps: []GroupStep{GroupEnsureTeam, GroupAdd}, add: []string{"ann"}},
		{name: "members follow the group; foreign and hinted members stay",
			in:    GroupInput{Team: "eng", Observed: team, Want: []string{"ann", "bo"}, Removable: managedIDs, Hinted: map[string]bool{"hinted": true}},
			steps: []GroupStep{GroupAdd, GroupRemove}, add: []string{"bo"}, remove: []string{"old"}},
		{name: "renamed, unlabelled backend: leave the former team first",
			in:    GroupInput{Team: "eng", Former: "red", Observed: &backend.Team{Name: "eng"}},
			steps: []GroupStep{GroupLeaveFormer}},
		{name: "renamed, labelled backend: the group's grant moves with EnsureTeam",
			in:    GroupInput{Team: "eng", Former: "red", Labelled: true},
			steps: []GroupStep{GroupEnsureTeam}},
		{name: "group-name teams (kubernetes): the grant only, no membership to add or report",
			in: GroupInput{Team: "eng", Labelled: true, NoUserTeams: true, Observed: &backend.Team{Name: "eng"}, Want: []string{"ann", "bo"}, Removable: managedIDs}},
		{name: "group-name teams, grant missing: ensure it, still no membership",
			in:    GroupInput{Team: "eng", Labelled: true, NoUserTeams: true, Want: []string{"ann"}},
			steps: []GroupStep{GroupEnsureTeam}},
		{name: "conflict: never touches the team", in: GroupInput{Team: "eng", Conflict: true}},
		{name: "deleted, config gone", in: GroupInput{Deleting: true, Config: ConfigGone, Labelled: true}, steps: []GroupStep{GroupRelease}},
		{name: "deleted, labelled, Remove", in: GroupInput{Deleting: true, Labelled: true, Team: "eng"},
			steps: []GroupStep{GroupRemoveGrants, GroupRelease}},
		{name: "deleted, labelled, Orphan", in: GroupInput{Deleting: true, Labelled: true, Team: "eng", Policies: orphan},
			steps: []GroupStep{GroupOrphan, GroupRelease}},
		{name: "deleted, labelled, disabled", in: GroupInput{Deleting: true, Labelled: true, Team: "eng", Config: ConfigDisabled},
			steps: []GroupStep{GroupOrphan, GroupRelease}},
		{name: "deleted, team SCIM created", in: GroupInput{Deleting: true, Team: "eng", TeamCreated: true},
			steps: []GroupStep{GroupRemoveGrants, GroupRelease}},
		{name: "deleted, team existed before SCIM: only the members SCIM put in leave it",
			in: GroupInput{Deleting: true, Team: "eng"}, steps: []GroupStep{GroupLeaveTeam, GroupRelease}},
		{name: "config being deleted: a live group waits", in: GroupInput{Config: ConfigDeleting, Team: "eng"}, wait: WaitConfigGone},
		{name: "config being deleted: a deleted group applies the policy", in: GroupInput{Config: ConfigDeleting, Deleting: true, Labelled: true, Team: "eng"},
			steps: []GroupStep{GroupRemoveGrants, GroupRelease}},
		{name: "deleted, team shared with another group", in: GroupInput{Deleting: true, Team: "eng", TeamCreated: true, Shared: true},
			steps: []GroupStep{GroupRelease}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Group(tc.in)
			if p.Wait != tc.wait || !slices.Equal(p.Steps, tc.steps) || !slices.Equal(p.Add, tc.add) || !slices.Equal(p.Remove, tc.remove) {
				t.Errorf("Group = wait %q steps %v add %v remove %v; want wait %q steps %v add %v remove %v",
					p.Wait, p.Steps, p.Add, p.Remove, tc.wait, tc.steps, tc.add, tc.remove)
			}
		})
	}
}

// TestConfigDeletion is the table of docs/access-invariant.md, "Deleting a ScimConfig".
func TestConfigDeletion(t *testing.T) {
	for _, tc := range []struct {
		enabled  bool
		policy   scimv1.DeletionPolicy
		labelled bool
		want     ConfigDeletion
	}{
		{true, scimv1.DeletionRemove, true, DeleteRemoveAll},
		{true, "", false, DeleteRemoveAll},
		{true, scimv1.DeletionOrphan, true, DeleteOrphanAll},
		{true, scimv1.DeletionOrphan, false, DeleteNothing},
		{false, scimv1.DeletionRemove, true, DeleteOrphanAll},
		{false, scimv1.DeletionRemove, false, DeleteNothing},
	} {
		if got := ConfigDeletionOf(tc.enabled, tc.policy, tc.labelled); got != tc.want {
			t.Errorf("ConfigDeletionOf(%v, %q, labelled %v) = %s, want %s", tc.enabled, tc.policy, tc.labelled, got, tc.want)
		}
	}
}
