package plan

import (
	"sort"
	"strings"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
)

// GroupStep is one thing the OrgGroup reconciler does, in the order the plan lists them.
type GroupStep string

const (
	// GroupLeaveFormer cleans up the team a renamed group mapped to before (backends
	// without owner labels; on the others the group's own grants move with EnsureTeam).
	GroupLeaveFormer GroupStep = "LeaveFormerTeam"
	// GroupEnsureTeam creates the team (or the group's grant to it).
	GroupEnsureTeam GroupStep = "EnsureTeam"
	// GroupAdd adds GroupPlan.Add to the team.
	GroupAdd GroupStep = "AddMembers"
	// GroupRemove takes GroupPlan.Remove out of the team.
	GroupRemove GroupStep = "RemoveMembers"
	// GroupLeaveTeam takes the members SCIM manages for the group out of a team SCIM did
	// not create (a deleted group whose team existed before SCIM).
	GroupLeaveTeam GroupStep = "LeaveTeam"
	// GroupRemoveGrants removes the group's grants (its owned bindings, or the team SCIM
	// created).
	GroupRemoveGrants GroupStep = "RemoveGrants"
	// GroupOrphan leaves the group's grants in place, marked orphaned.
	GroupOrphan GroupStep = "Orphan"
	// GroupRelease removes the group's finalizer.
	GroupRelease GroupStep = "Release"
)

// GroupInput is everything the planner needs to know about one OrgGroup.
type GroupInput struct {
	Config   ConfigState
	Policies scimv1.LifecyclePolicies
	Deleting bool
	Labelled bool
	// Team is the team the group's displayName maps to now; Former the one it synced
	// before (status.team), when that differs.
	Team, Former string
	// TeamCreated: SCIM created the group's team (status.teamCreated).
	TeamCreated bool
	// Conflict: an older group of the config syncs the same team.
	Conflict bool
	// Shared: another live group maps to the team (a deletion leaves it to that group).
	Shared bool
	// Observed is the team as the backend shows it (nil: absent). Meaningful when
	// NeedsGroupObservation.
	Observed *backend.Team
	// Want are the backend ids that should be in the team (the group's active members).
	Want []string
	// Removable are the (lower-cased) ids SCIM may take out of a team; Hinted those whose
	// docker team hint names this team (the member controller keeps them there).
	Removable, Hinted map[string]bool
	// NoUserTeams: the backend's team is a grant to a group name, not a list of people
	// (backend.NoUserTeams: kubernetes, where the authenticator says who is in a Group).
	// There is no membership to add or remove, and none to report.
	NoUserTeams bool
}

// GroupPlan is what to do with one OrgGroup.
type GroupPlan struct {
	Wait  Wait
	Steps []GroupStep
	// Add and Remove are the backend ids to add to and take out of the team.
	Add, Remove []string
	// Conflict: the group waits for the older group that syncs its team.
	Conflict bool
}

// Has tells whether the plan runs step s.
func (p GroupPlan) Has(s GroupStep) bool {
	for _, x := range p.Steps {
		if x == s {
			return true
		}
	}
	return false
}

// NeedsGroupObservation tells whether the planner needs the team observed.
func NeedsGroupObservation(in GroupInput) bool {
	return in.Config == ConfigEnabled && !in.Deleting && !in.Conflict
}

// Group plans one OrgGroup.
func Group(in GroupInput) GroupPlan {
	if in.Deleting {
		return groupDeletion(in)
	}
	switch in.Config {
	case ConfigGone, ConfigDeleting:
		return GroupPlan{Wait: WaitConfigGone}
	case ConfigDisabled:
		return GroupPlan{Wait: WaitDisabled}
	case ConfigNotReady:
		return GroupPlan{Wait: WaitBackendReady}
	}
	var p GroupPlan
	if in.Former != "" && !in.Labelled {
		p.Steps = append(p.Steps, GroupLeaveFormer)
	}
	if in.Conflict {
		p.Conflict = true
		return p
	}
	if in.Observed == nil {
		p.Steps = append(p.Steps, GroupEnsureTeam)
	}
	if in.NoUserTeams {
		return p
	}
	in_ := map[string]bool{}
	if in.Observed != nil {
		for _, id := range in.Observed.Members {
			in_[strings.ToLower(id)] = true
		}
	}
	want := map[string]bool{}
	for _, id := range in.Want {
		want[strings.ToLower(id)] = true
		if !in_[strings.ToLower(id)] {
			p.Add = append(p.Add, id)
		}
	}
	if in.Observed != nil {
		for _, id := range in.Observed.Members {
			low := strings.ToLower(id)
			if want[low] || in.Hinted[low] || !in.Removable[low] {
				continue // not ours to take out: not managed by SCIM, or kept by a hint
			}
			p.Remove = append(p.Remove, id)
		}
	}
	sort.Strings(p.Add)
	sort.Strings(p.Remove)
	if len(p.Add) > 0 {
		p.Steps = append(p.Steps, GroupAdd)
	}
	if len(p.Remove) > 0 {
		p.Steps = append(p.Steps, GroupRemove)
	}
	return p
}

// groupDeletion applies the deletion policy: a gone config already decided; a disabled
// config or the Orphan policy leaves the grants (marked where the backend labels them);
// Remove removes the group's own grants, or, where grants are not labelled, the team when
// SCIM created it (else the members SCIM put in it), unless another group maps to it.
func groupDeletion(in GroupInput) GroupPlan {
	release := GroupPlan{Steps: []GroupStep{GroupRelease}}
	switch {
	case in.Config == ConfigGone:
		return release
	case in.Config == ConfigDisabled || in.Policies.Deletion == scimv1.DeletionOrphan:
		if in.Labelled {
			return GroupPlan{Steps: []GroupStep{GroupOrphan, GroupRelease}}
		}
		return release
	case in.Labelled:
		return GroupPlan{Steps: []GroupStep{GroupRemoveGrants, GroupRelease}}
	case in.Team == "" || in.Shared:
		return release
	case !in.TeamCreated:
		return GroupPlan{Steps: []GroupStep{GroupLeaveTeam, GroupRelease}}
	}
	return GroupPlan{Steps: []GroupStep{GroupRemoveGrants, GroupRelease}}
}
