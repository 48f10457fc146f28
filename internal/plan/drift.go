package plan

import (
	"strings"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// Listing is one observation of a whole organization (backend.ListMembers), indexed for
// the drift pass: by every identity an entry is known under (folded userName, email and
// backend ID) and, on a backend that labels its grants, by owner UID.
type Listing struct {
	byID    map[string][]backend.Member
	byOwner map[string][]backend.Member
}

// NewListing indexes a ListMembers answer.
func NewListing(list []backend.Member) *Listing {
	l := &Listing{byID: map[string][]backend.Member{}, byOwner: map[string][]backend.Member{}}
	for _, m := range list {
		seen := map[string]bool{}
		for _, id := range []string{m.UserName, m.Email, m.BackendID} {
			f := naming.FoldUserName(id)
			if f == "" || seen[f] {
				continue
			}
			seen[f] = true
			l.byID[f] = append(l.byID[f], m)
		}
		for _, uid := range m.Owners {
			l.byOwner[uid] = append(l.byOwner[uid], m)
		}
	}
	return l
}

// present tells whether the backend lists anything under one of ids.
func (l *Listing) present(ids ...string) bool {
	for _, id := range ids {
		if f := naming.FoldUserName(id); f != "" && len(l.byID[f]) > 0 {
			return true
		}
	}
	return false
}

// Observe is what the member's own observation (ObserveMember, or on a backend that
// invites by email ObserveMemberWithEmail under LookupIdentities) would have answered
// when the listing was taken; UserName is the member's, as ObserveMember's is. A member's
// first observation reads it from a listing started after the member appeared
// (controllers.DriftQueue), instead of two calls.
func (l *Listing) Observe(m *scimv1.OrgMember, labelled bool) backend.Member {
	obs := l.observe(m, labelled)
	obs.UserName = m.Spec.UserName
	return obs
}

// observe is what the member's own observation would answer, read from the listing: the
// member is looked up under LookupIdentities (the userName; without owner labels also
// the email and the Docker ID it accepted under), and a membership found under any of
// them wins over an invitation.
func (l *Listing) observe(m *scimv1.OrgMember, labelled bool) backend.Member {
	ids := LookupIdentities(m, labelled)
	var invited *backend.Member
	for _, id := range ids {
		for _, e := range l.byID[naming.FoldUserName(id)] {
			switch e.State {
			case backend.StateMember:
				return e
			case backend.StateInvited:
				if invited == nil {
					e := e
					invited = &e
				}
			}
		}
	}
	if invited != nil {
		return *invited
	}
	for _, id := range ids {
		if es := l.byID[naming.FoldUserName(id)]; len(es) > 0 {
			return es[0] // a leftover (kubernetes: some, not all, roles bound)
		}
	}
	return backend.Member{UserName: m.Spec.UserName, State: backend.StateAbsent}
}

// Drifted tells whether the backend, as the listing shows it, differs from what the
// member's status says the backend holds, and why: only such members are reconciled by a
// drift pass. revokes tells whether the repair takes access away (a deactivated member or
// a former name still holding access, a role above the one wanted): the pass queues those
// ahead, as it does a deactivation from SCIM. A member that is being deleted, is
// Preexisting, or is in a phase that requeues itself (Pending, Failed, waiting) is not
// the pass's to judge.
//
// labelled is true for a backend that records owners on its grants (backend.OwnerLedger):
// every grant owned by the member's UID must then name its current userName, whatever
// name the member had when the grant was made.
func Drifted(m *scimv1.OrgMember, cfg *scimv1.ScimConfig, l *Listing, labelled, userTeams bool) (drifted bool, why string, revokes bool) {
	if !m.DeletionTimestamp.IsZero() || m.Status.Origin == scimv1.OriginPreexisting {
		return false, "", false
	}
	if m.Status.Origin == "" {
		// On a labelled backend the origin is written with the outcome (MemberPlan.
		// OriginKeptByGrants): a member whose outcome write was lost, and which a reconcile
		// reading a stale cache then judged never provisioned, still owns its grants.
		if labelled && len(l.byOwner[string(m.UID)]) > 0 {
			return true, "a member with no recorded origin owns a grant", false
		}
		return false, "", false
	}
	obs := l.observe(m, labelled)
	if labelled {
		for _, e := range l.byOwner[string(m.UID)] {
			if m.Status.Phase == scimv1.PhaseDeactivated && !keeps(m, cfg) {
				return true, "a deactivated member still owns a grant (to " + e.UserName + ")", true
			}
			if naming.FoldUserName(e.UserName) != naming.FoldUserName(m.Spec.UserName) {
				return true, "the member owns a grant to a former name " + e.UserName, true
			}
		}
	}
	switch m.Status.Phase {
	case scimv1.PhaseActive:
		if obs.State != backend.StateMember {
			return true, "an Active member is " + string(obs.State) + " in the backend", false
		}
		if want := DesiredRole(m, cfg); want != "" && obs.Role != "" && !strings.EqualFold(want, obs.Role) {
			// a role this code does not know may allow anything: revoking
			return true, "role " + obs.Role + " in the backend, " + want + " wanted", roleRank(obs.Role) == 0 || roleRank(obs.Role) > roleRank(want)
		}
		if team := m.Status.HintedTeam; userTeams && team != "" && !InTeam(obs.Teams, team) {
			return true, "not in team " + team, false
		}
	case scimv1.PhaseInvited:
		if obs.State != backend.StateInvited {
			return true, "an Invited member is " + string(obs.State) + " in the backend", false
		}
	case scimv1.PhaseDeactivated:
		if keeps(m, cfg) {
			// Keep keeps and repairs what the member holds: a member or an invitation, as
			// the deactivation found it (kubernetes: every grant)
			if obs.State != backend.StateMember && (labelled || obs.State != backend.StateInvited) {
				return true, "a member deactivated under Keep is " + string(obs.State) + " in the backend", false
			}
			break
		}
		ids := append([]string{m.Spec.UserName, PrimaryEmail(m), m.Status.BackendID}, m.Status.GrantedIdentities...)
		if labelled {
			ids = []string{m.Spec.UserName}
		}
		if l.present(ids...) {
			return true, "a deactivated member is still in the backend", true
		}
		return false, "", false
	default:
		return false, "", false
	}
	if !labelled {
		if stale := StaleIdentities(m, obs, false); l.present(stale...) {
			return true, "a former identity of the member is still in the backend", true
		}
	}
	return false, "", false
}

// roleRank orders Docker Hub's organization roles by what they allow (0: not one of them).
func roleRank(role string) int {
	switch strings.ToLower(role) {
	case "member":
		return 1
	case "editor":
		return 2
	case "owner":
		return 3
	}
	return 0
}

// keeps tells whether the member's deactivation leaves its access in place (policy Keep,
// and not removed under an earlier Remove).
func keeps(m *scimv1.OrgMember, cfg *scimv1.ScimConfig) bool {
	return cfg.Spec.Policies.Deactivation == scimv1.DeactivationKeep && !m.Status.Deprovisioned
}
