// Package plan decides what the membership controllers do, without doing it: a pure
// function from (the member's spec and status, what the backend shows, the config's state
// and policies) to the steps to run and the story to tell. The reconcilers in controllers/
// observe, call the planner, and execute its plan; the planner is table-tested without an
// API server or a backend (member_test.go).
//
// The rule it keeps is docs/access-invariant.md: at rest, the identities holding access
// equal what the policies allow. Every branch below names the row of that page it follows.
package plan

import (
	"strings"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
)

// ConfigState is where a member's ScimConfig stands.
type ConfigState int

const (
	// ConfigEnabled: the config exists and syncs.
	ConfigEnabled ConfigState = iota
	// ConfigDisabled: spec.enabled is false: nothing changes in the backend.
	ConfigDisabled
	// ConfigGone: the config does not exist, or is being deleted: its own finalizer has
	// decided (or decides) what happens to every grant; members never act on it.
	ConfigGone
	// ConfigNotReady: the config's backend is not ready (BackendReady=False): members wait
	// without calling the backend, keeping their phase.
	ConfigNotReady
	// ConfigDeleting: the (enabled) config is being deleted. Its finalizer applies the
	// deletion policy to every grant; a member deleted meanwhile applies the same policy
	// to itself, so the outcome does not depend on which of the two goes first.
	ConfigDeleting
)

// Step is one thing the reconciler does, in the order the plan lists them.
type Step string

const (
	// StepRecordOrigin records Plan.Origin (and the identities about to be granted) with an
	// optimistic lock before anything is done in the backend; with OriginKeptByGrants, in
	// the outcome's status write instead.
	StepRecordOrigin Step = "RecordOrigin"
	// StepEnsure makes the member's current identity hold its access (invite, add, role).
	StepEnsure Step = "Ensure"
	// StepRemoveStale removes the identities the member granted earlier and no longer has
	// (an old userName, an old invitation email, an old Docker ID).
	StepRemoveStale Step = "RemoveStale"
	// StepLeaveTeam takes the member out of the team a former docker team hint put it in.
	StepLeaveTeam Step = "LeaveTeam"
	// StepJoinTeam adds the member to the team its docker team hint names.
	StepJoinTeam Step = "JoinTeam"
	// StepRemove removes every grant the member holds.
	StepRemove Step = "Remove"
	// StepOrphan leaves the member's grants in place, marked orphaned.
	StepOrphan Step = "Orphan"
	// StepRelease removes the member's finalizer.
	StepRelease Step = "Release"
)

// Story is what the plan tells (one event), completed by the reconciler from the outcome.
type Story string

const (
	StoryNone        Story = ""
	StoryProvision   Story = "Provision"
	StoryRepair      Story = "Repair"
	StoryReactivate  Story = "Reactivate"
	StoryRoleChange  Story = "RoleChange"
	StoryDeactivate  Story = "Deactivate"
	StoryKeep        Story = "DeactivateKeep"
	StoryAdopt       Story = "Adopt"
	StoryPreexisting Story = "Preexisting"
	StoryRemove      Story = "Remove"
	StoryOrphan      Story = "Orphan"
	StoryRenamed     Story = "Renamed"
)

// Wait says why a member is not synced now (with no step to run).
type Wait string

const (
	WaitNone         Wait = ""
	WaitConfigGone   Wait = "ConfigNotFound"
	WaitDisabled     Wait = "Paused"
	WaitBackendReady Wait = "BackendNotReady"
)

// MemberInput is everything the planner needs to know about one OrgMember.
type MemberInput struct {
	Config   ConfigState
	Policies scimv1.LifecyclePolicies
	// Deleting: the OrgMember has a deletionTimestamp.
	Deleting bool
	Active   bool
	Origin   scimv1.MemberOrigin
	Phase    scimv1.MemberPhase
	// Observed is what the backend shows under the member's current identity. It is
	// meaningful only when Observed.UserName is set (the reconciler observed).
	Observed backend.Member
	// Stale are identities the member granted earlier that are not its current ones.
	Stale []string
	// WantRole is the role the member should have ("" for the backend's default).
	WantRole string
	// Team is the team the member's docker hint names, when the backend honours hints.
	Team string
	// FormerTeam is the team a former hint put the member in (status.hintedTeam), when it
	// is not Team.
	FormerTeam string
	// Labelled: the backend records owners on its grants (backend.OwnerLedger); Ensure is
	// then always run (it is a diff), and it alone moves a renamed member's grants.
	Labelled bool
	// Renamed: the identity last granted is not the current one (the story only).
	Renamed bool
	// Deprovisioned: the member's access was removed at a deactivation under Remove
	// (status.deprovisioned); Keep does not give it back.
	Deprovisioned bool
	// SharedWith names another live OrgMember of the config with the same userName (a
	// create that lost its name to a concurrent rename, until it is deleted again, or one
	// made with kubectl). On a backend without owner labels the identity is all a grant
	// says, so a deletion leaves the person to that member.
	SharedWith string
}

// MemberPlan is what to do.
type MemberPlan struct {
	// Wait is set when nothing can be done now; Steps is then empty (or Release only).
	Wait Wait
	// Origin to record before acting (StepRecordOrigin); "" leaves it.
	Origin scimv1.MemberOrigin
	Steps  []Step
	// Phase after the steps succeed; "" lets the outcome of StepEnsure decide
	// (Active or Invited).
	Phase scimv1.MemberPhase
	Story Story
	// Why the grants are left (StepOrphan, or a release without removal).
	Why string
	// OriginKeptByGrants: StepRecordOrigin needs no write of its own before acting; the
	// outcome's status write carries Origin. The backend labels what it grants with the
	// member's UID, so a member whose outcome write is lost finds its grants again
	// (Observed.Managed: Provisioned), and a member deleted before that write applies its
	// deletion policy to whatever carries its UID. (It saves a status write per new member:
	// a full sync on the kubernetes backend is bound by the API server's writes.)
	OriginKeptByGrants bool
}

// Has tells whether the plan runs step s.
func (p MemberPlan) Has(s Step) bool {
	for _, x := range p.Steps {
		if x == s {
			return true
		}
	}
	return false
}

// NeedsObservation tells whether the planner needs Observed for this input: a member
// that waits, is released without action, or is left alone is never looked up.
func NeedsObservation(in MemberInput) bool {
	if in.Config != ConfigEnabled || in.Deleting {
		return false
	}
	// a Preexisting member is looked at again only to adopt it
	return in.Origin != scimv1.OriginPreexisting || in.Policies.Adoption == scimv1.AdoptionAdopt
}

// Member plans one OrgMember.
func Member(in MemberInput) MemberPlan {
	switch in.Config {
	case ConfigGone:
		// The config's deletion decided every grant (docs: "Deleting a ScimConfig").
		if in.Deleting {
			return MemberPlan{Steps: []Step{StepRelease}, Why: "its ScimConfig is gone: the config's deletion decided its access"}
		}
		return MemberPlan{Wait: WaitConfigGone}
	case ConfigDisabled:
		// Disabling never deprovisions: a member deleted meanwhile is orphaned.
		if in.Deleting {
			return release(in, "its ScimConfig is disabled: disabling SCIM never deprovisions anyone")
		}
		return MemberPlan{Wait: WaitDisabled}
	case ConfigDeleting:
		if !in.Deleting {
			return MemberPlan{Wait: WaitConfigGone}
		}
		q := in
		q.Config = ConfigEnabled
		return Member(q)
	case ConfigNotReady:
		// Nothing is granted while the backend is not ready, but a removal is still tried:
		// when the IdP says a person is out, they are out as soon as the backend allows.
		q := in
		q.Config, q.Observed = ConfigEnabled, backend.Member{State: backend.StateAbsent}
		p := Member(q)
		if p.Has(StepEnsure) || p.Has(StepJoinTeam) || p.Has(StepRemoveStale) {
			// A renamed member's former identity loses its access now; the current one
			// is granted once the backend is ready.
			switch {
			case in.Labelled && in.Renamed && in.Origin != "" && in.Origin != scimv1.OriginPreexisting:
				return MemberPlan{Wait: WaitBackendReady, Steps: []Step{StepRemove}}
			case len(in.Stale) > 0:
				return MemberPlan{Wait: WaitBackendReady, Steps: []Step{StepRemoveStale}}
			}
			return MemberPlan{Wait: WaitBackendReady}
		}
		return p
	}

	if in.Deleting {
		switch {
		case in.Origin == "" && in.Labelled && in.Policies.Deletion == scimv1.DeletionOrphan:
			// (OriginKeptByGrants: it may own grants its lost outcome write did not record)
			return MemberPlan{Steps: []Step{StepOrphan, StepRelease}, Why: "the deletion policy is Orphan"}
		case in.Origin == "" && in.Labelled:
			return MemberPlan{Steps: []Step{StepRemove, StepRelease}, Why: "removing anything that carries its UID"}
		case in.Origin == "":
			return MemberPlan{Steps: []Step{StepRelease}, Why: "it was never provisioned"}
		case in.Origin == scimv1.OriginPreexisting:
			return MemberPlan{Steps: []Step{StepRelease}, Why: "it existed before SCIM and adoption is off"}
		case in.Policies.Deletion == scimv1.DeletionOrphan:
			return release(in, "the deletion policy is Orphan")
		case !in.Labelled && in.SharedWith != "":
			return release(in, "member "+in.SharedWith+" has the same userName and wants the access")
		}
		return MemberPlan{Steps: []Step{StepRemove, StepRelease}, Phase: scimv1.PhaseRemoved, Story: StoryRemove}
	}

	var p MemberPlan
	origin := in.Origin
	if origin == scimv1.OriginPreexisting && in.Policies.Adoption == scimv1.AdoptionAdopt {
		origin = "" // adoption switched on: judged again, and adopted
	}
	found := in.Observed.State != backend.StateAbsent && in.Observed.State != ""
	if origin == "" {
		switch {
		case in.Observed.Managed:
			// A SCIM-labelled grant (an orphan, or an earlier member of this name), even
			// a partial one, is SCIM's: the member owns it from now on.
			origin = scimv1.OriginProvisioned
		case found && in.Policies.Adoption == scimv1.AdoptionAdopt:
			origin = scimv1.OriginAdopted
			p.Story = StoryAdopt
		case found:
			return MemberPlan{Origin: scimv1.OriginPreexisting, Steps: []Step{StepRecordOrigin},
				Phase: scimv1.PhaseActive, Story: StoryPreexisting}
		case in.Active:
			origin = scimv1.OriginProvisioned
		}
		if origin != "" {
			p.Origin = origin
			p.Steps = append(p.Steps, StepRecordOrigin)
			p.OriginKeptByGrants = in.Labelled && origin == scimv1.OriginProvisioned
		}
	}
	if origin == scimv1.OriginPreexisting {
		return MemberPlan{Phase: scimv1.PhaseActive}
	}

	if !in.Active {
		p.Phase = scimv1.PhaseDeactivated
		switch {
		case origin == "":
			// Never granted anything: nothing to keep or remove.
		case in.Policies.Deactivation == scimv1.DeactivationKeep && in.Deprovisioned:
			// Removed under Remove earlier: Keep keeps what a member holds, it never
			// gives a suspended person access back.
		case in.Policies.Deactivation == scimv1.DeactivationKeep:
			// Access is kept for the member's current identity, and repaired.
			p.Steps = append(p.Steps, ensureSteps(in)...)
			if in.Phase != scimv1.PhaseDeactivated {
				p.Story = StoryKeep
			}
		default:
			p.Steps = append(p.Steps, StepRemove)
			// something to take away: the person found, a leftover grant, a former identity
			if in.Phase != scimv1.PhaseDeactivated && (found || in.Observed.BackendID != "" || len(in.Stale) > 0) {
				p.Story = StoryDeactivate
			}
		}
		return p
	}

	p.Steps = append(p.Steps, ensureSteps(in)...)
	if in.FormerTeam != "" {
		p.Steps = append(p.Steps, StepLeaveTeam)
	}
	// Joined once the person is a member with a backend id (the reconciler checks what
	// Ensure returned): an invitee has no id to add to a team yet.
	// (the reconciler also records the team when the member is in it already).
	if in.Team != "" {
		p.Steps = append(p.Steps, StepJoinTeam)
	}
	if p.Story != StoryNone {
		return p
	}
	switch {
	case in.Phase == scimv1.PhaseDeactivated:
		p.Story = StoryReactivate
	case in.Renamed || len(in.Stale) > 0:
		p.Story = StoryRenamed
	case !found && (in.Phase == scimv1.PhaseActive || in.Phase == scimv1.PhaseInvited):
		p.Story = StoryRepair
	case !found:
		p.Story = StoryProvision
	case roleDiffers(in):
		p.Story = StoryRoleChange
	case origin == scimv1.OriginProvisioned && (in.Phase == "" || in.Phase == scimv1.PhasePending):
		// Our create went through but its answer was lost: found instead of created again.
		p.Story = StoryProvision
	}
	return p
}

// ensureSteps are the steps that make the current identity hold access and take it from
// the identities the member no longer has.
// The former identities go first: a rename into an identity the backend refuses must not
// leave the former one its access.
func ensureSteps(in MemberInput) []Step {
	var s []Step
	if len(in.Stale) > 0 {
		s = append(s, StepRemoveStale)
	}
	if in.Labelled || in.Observed.State != backend.StateMember && in.Observed.State != backend.StateInvited || roleDiffers(in) {
		s = append(s, StepEnsure)
	}
	return s
}

func release(in MemberInput, why string) MemberPlan {
	if in.Origin == "" && in.Labelled {
		// (OriginKeptByGrants: it may own grants its lost outcome write did not record)
		return MemberPlan{Steps: []Step{StepOrphan, StepRelease}, Why: why}
	}
	if in.Origin == "" || in.Origin == scimv1.OriginPreexisting {
		return MemberPlan{Steps: []Step{StepRelease}, Why: why}
	}
	return MemberPlan{Steps: []Step{StepOrphan, StepRelease}, Story: StoryOrphan, Why: why}
}

func roleDiffers(in MemberInput) bool {
	return in.Observed.State == backend.StateMember && in.WantRole != "" && in.Observed.Role != "" &&
		!strings.EqualFold(in.Observed.Role, in.WantRole)
}
