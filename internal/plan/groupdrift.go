package plan

import (
	"strconv"
	"strings"

	"github.com/scim-operator/scim-operator/internal/backend"
)

// Teams is a whole organization's teams as a drift pass sees them on a backend that lists
// them (backend.TeamLister): the names one listing of the teams gives, and each team's
// members as the members listing names them (backend.Member.Teams). Only members are in
// teams: an invitee joins a team once they have accepted.
type Teams struct {
	exists  map[string]bool
	members map[string][]string // by folded team name: the members' backend ids
	inOrg   map[string]bool     // the folded backend ids of the organization's members
}

// NewTeams indexes a ListTeams answer (names) and a ListMembers answer (list).
func NewTeams(names []string, list []backend.Member) *Teams {
	t := &Teams{exists: map[string]bool{}, members: map[string][]string{}, inOrg: map[string]bool{}}
	for _, n := range names {
		t.exists[strings.ToLower(n)] = true
	}
	for _, m := range list {
		if m.State != backend.StateMember || m.BackendID == "" {
			continue
		}
		t.inOrg[strings.ToLower(m.BackendID)] = true
		for _, team := range m.Teams {
			f := strings.ToLower(team)
			t.members[f] = append(t.members[f], m.BackendID)
		}
	}
	return t
}

// Team is what ObserveTeam would have answered when the listings were taken: nil when
// the organization has no such team.
func (t *Teams) Team(name string) *backend.Team {
	f := strings.ToLower(name)
	if !t.exists[f] {
		return nil
	}
	return &backend.Team{Name: name, Members: append([]string{}, t.members[f]...)}
}

// Members keeps the ids the listing shows as members of the organization. A group's
// wanted member the listing does not show (removed by hand) is its member's drift, which
// the pass judges apart: a group judged drifted for it would fail to add a non-member
// (review 23 F3).
func (t *Teams) Members(ids []string) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if t.inOrg[strings.ToLower(id)] {
			out = append(out, id)
		}
	}
	return out
}

// GroupDrifted tells whether the group's own reconcile, given in (its input, with
// Observed read from Teams), would act on the backend, and why: only such groups are
// reconciled by a drift pass. A group that is not the pass's to judge (deleting, its
// config not enabled, waiting for the older group of its team) is not drifted.
func GroupDrifted(in GroupInput) (bool, string) {
	if !NeedsGroupObservation(in) {
		return false, ""
	}
	p := Group(in)
	switch {
	case p.Wait != WaitNone || p.Conflict:
		return false, ""
	case p.Has(GroupLeaveFormer):
		return true, "still maps to its former team " + in.Former
	case p.Has(GroupEnsureTeam):
		return true, "team " + in.Team + " is missing"
	case p.Has(GroupAdd):
		return true, "team " + in.Team + " lacks " + ListWords(p.Add)
	case p.Has(GroupRemove):
		return true, "team " + in.Team + " has " + ListWords(p.Remove) + ", who should not be in it"
	}
	return false, ""
}

// ListWords lists up to ten names, then how many more.
func ListWords(names []string) string {
	if len(names) <= 10 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:10], ", ") + " and " + strconv.Itoa(len(names)-10) + " more"
}
