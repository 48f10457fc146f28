package plan

// What the OrgGroup reconciler (and `kubectl scim plan`) feeds plan.Group, computed from
// the objects alone: one definition, so that the controller and the plugin cannot drift.

import (
	"sort"
	"strings"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// Wanted tells whether a group member belongs in its group's team: active, in the
// backend, and managed by SCIM (its backend id is then Status.BackendID).
func Wanted(m *scimv1.OrgMember) bool {
	return m.Spec.Active && m.Status.Phase == scimv1.PhaseActive && m.Status.BackendID != "" &&
		m.Status.Origin != scimv1.OriginPreexisting
}

// WantedIDs are the backend ids of the group's members that belong in its team: active,
// in the backend, and managed by SCIM.
func WantedIDs(members []scimv1.OrgMember) []string {
	want := map[string]string{} // lower(backendID) -> backendID
	for i := range members {
		if m := &members[i]; Wanted(m) {
			want[strings.ToLower(m.Status.BackendID)] = m.Status.BackendID
		}
	}
	out := make([]string, 0, len(want))
	for _, v := range want {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// ManagedIDs are the backend identities of members (of one config: all of them, or those
// holding the ids a team lists, which are all plan.Group asks about) that SCIM may take out
// of a team: provisioned or adopted, concluded (not Pending), and not deactivated under the
// Keep policy. hinted are those of them, active, whose spec.docker.team names the team
// (key.Same, as the OrgMember controller compares its hint): the OrgMember controller puts
// them in it, so the group keeps them there as if they were its own members.
func ManagedIDs(members []scimv1.OrgMember, cfg *scimv1.ScimConfig, team string, key TeamKey) (removable, hinted map[string]bool) {
	removable, hinted = map[string]bool{}, map[string]bool{}
	for i := range members {
		m := &members[i]
		if m.Status.BackendID == "" || m.Status.Origin == "" || m.Status.Origin == scimv1.OriginPreexisting {
			continue
		}
		if m.Status.Phase == "" || m.Status.Phase == scimv1.PhasePending {
			// its reconcile is under way (its origin is recorded before the plan that makes
			// it Active concludes): taken out now, an adopted person would lose the team
			// they had before SCIM until their member concludes and the group adds them back
			continue
		}
		if !m.Spec.Active && cfg.Spec.Policies.Deactivation == scimv1.DeactivationKeep {
			continue
		}
		id := strings.ToLower(m.Status.BackendID)
		removable[id] = true
		if m.Spec.Active && m.DeletionTimestamp.IsZero() && key.Same(DesiredTeam(m), team) {
			hinted[id] = true
		}
	}
	return removable, hinted
}

// TeamOwner returns another group of g's config among groups whose team is g's team
// (key.Same) and that was created before g (creationTimestamp, then name), or nil when g
// owns its team. A group being deleted still counts until it is gone.
func TeamOwner(g *scimv1.OrgGroup, groups []scimv1.OrgGroup, key TeamKey) *scimv1.OrgGroup {
	team := key.Name(TeamName(g.Spec.DisplayName)) // once: a backend's name names itself
	var owner *scimv1.OrgGroup
	for i := range groups {
		o := &groups[i]
		if o.Name == g.Name || o.Spec.ConfigName != g.Spec.ConfigName || !strings.EqualFold(key.Name(TeamName(o.Spec.DisplayName)), team) {
			continue
		}
		if OlderGroup(o, g) && (owner == nil || OlderGroup(o, owner)) {
			owner = o
		}
	}
	return owner
}

// OlderGroup orders groups by creationTimestamp, then name.
func OlderGroup(a, b *scimv1.OrgGroup) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}
