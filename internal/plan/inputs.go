package plan

// What the reconcilers (and `kubectl scim plan`) feed the planner, computed from the
// objects alone: one definition, so that the controllers and the plugin cannot drift.

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// ConfigStateOf is where the member's config stands for the planner.
func ConfigStateOf(cfg *scimv1.ScimConfig) ConfigState {
	switch {
	case cfg == nil:
		return ConfigGone
	case !cfg.IsEnabled():
		return ConfigDisabled
	case !cfg.DeletionTimestamp.IsZero():
		return ConfigDeleting
	case BackendNotReady(cfg):
		return ConfigNotReady
	}
	return ConfigEnabled
}

// BackendNotReady tells whether the config reported, for its current generation, that its
// backend is not ready, for a reason members must wait for (a configuration problem, a
// refusal): not BackendUnavailable, a long run of transient failures.
func BackendNotReady(cfg *scimv1.ScimConfig) bool {
	c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionBackendReady)
	return c != nil && c.Status == metav1.ConditionFalse && c.ObservedGeneration == cfg.Generation &&
		c.Reason != ReasonBackendUnavailable
}

// ReasonBackendUnavailable is BackendReady=False's reason when the backend has failed its
// checks transiently for a long while: shown to people, but no reason for members to
// wait (each retries its own calls, and the first that answers carries on).
const ReasonBackendUnavailable = "BackendUnavailable"

// CurrentIdentities are the identities the member holds access under now: its userName,
// its primary email and the backend's id of it.
func CurrentIdentities(m *scimv1.OrgMember, obs backend.Member) []string {
	out := []string{m.Spec.UserName, PrimaryEmail(m)}
	if obs.State == backend.StateMember {
		out = append(out, obs.BackendID)
	}
	return out
}

// LookupIdentities are the identities the backend is asked about for the member, by the
// drift pass (Listing), the member's reconcile (its observation and EnsureMember's own
// lookup before inviting) and kubectl scim plan: one definition, so that they agree on
// whether the person is there. They are its userName and, on a backend without owner
// labels, its primary email and the Docker ID it was last seen under (status.backendID)
// while that is still its identity: the member was judged ours (Provisioned or Adopted;
// a Preexisting member's Docker ID is not its grant, as removeGrants has it) and was not
// renamed since (renamed; the reconcile removes a renamed member's Docker ID before its
// other former identities, and then clears status.backendID: controllers.removeRenamed).
// A person who accepted the invitation and then changed their Docker account's email is
// listed under the Docker ID only, and is still that member (StaleIdentities keeps the
// Docker ID for the same reason).
//
// Blanks and case-insensitive duplicates are left out; the userName comes first.
func LookupIdentities(m *scimv1.OrgMember, labelled bool) []string {
	out := []string{m.Spec.UserName}
	if labelled {
		return out
	}
	seen := map[string]bool{naming.FoldUserName(m.Spec.UserName): true}
	add := func(id string) {
		if f := naming.FoldUserName(strings.TrimSpace(id)); f != "" && !seen[f] {
			seen[f] = true
			out = append(out, strings.TrimSpace(id))
		}
	}
	add(PrimaryEmail(m))
	if m.Status.BackendID != "" && (m.Status.Origin == scimv1.OriginProvisioned || m.Status.Origin == scimv1.OriginAdopted) &&
		!renamed(m, seen) {
		add(m.Status.BackendID)
	}
	return out
}

// StaleIdentities are the recorded identities that are not current (backends without
// owner labels only).
func StaleIdentities(m *scimv1.OrgMember, obs backend.Member, labelled bool) []string {
	if labelled || len(m.Status.GrantedIdentities) == 0 {
		return nil
	}
	current := map[string]bool{}
	for _, id := range CurrentIdentities(m, obs) {
		current[naming.FoldUserName(id)] = true
	}
	// The Docker ID the member was last seen under stays its identity (a person removed by
	// hand, or whose account email changed, is still that person) unless the member itself
	// changed: a former invitee identity means the IdP renamed it, and then the Docker ID
	// of the former identity goes too.
	if dockerID := naming.FoldUserName(m.Status.BackendID); dockerID != "" && !renamed(m, current) {
		current[dockerID] = true
	}
	var out []string
	for _, id := range m.Status.GrantedIdentities {
		if !current[id] {
			out = append(out, id)
		}
	}
	return out
}

// renamed tells whether the member changed since it was granted access, on a backend
// without owner labels: some identity it recorded (status.grantedIdentities), other than
// the Docker ID it was last seen under (status.backendID), is none of its current ones
// (current: folded; its userName and primary email, and for StaleIdentities the Docker
// ID it is observed under now). That former invitee identity means the IdP renamed it (or
// changed its email), and the Docker ID belongs to the former identity: it is no longer
// looked up (LookupIdentities) and it is removed with the rest (StaleIdentities).
func renamed(m *scimv1.OrgMember, current map[string]bool) bool {
	dockerID := naming.FoldUserName(m.Status.BackendID)
	for _, id := range m.Status.GrantedIdentities {
		if id != dockerID && !current[id] {
			return true
		}
	}
	return false
}

// DesiredRole is the member's docker role, else the config's default role (Docker Hub),
// else empty (the backend's default).
func DesiredRole(m *scimv1.OrgMember, cfg *scimv1.ScimConfig) string {
	if m.Spec.Docker != nil && m.Spec.Docker.Role != "" {
		return strings.ToLower(m.Spec.Docker.Role)
	}
	if dh := cfg.Spec.Backend.DockerHub; dh != nil && dh.DefaultRole != "" {
		return strings.ToLower(dh.DefaultRole)
	}
	return ""
}

func DesiredTeam(m *scimv1.OrgMember) string {
	if m.Spec.Docker != nil {
		return strings.TrimSpace(m.Spec.Docker.Team)
	}
	return ""
}

// PrimaryEmail is the primary email, else the first one, else the userName when it is an
// email.
func PrimaryEmail(m *scimv1.OrgMember) string {
	for _, e := range m.Spec.Emails {
		if e.Primary {
			return e.Value
		}
	}
	if len(m.Spec.Emails) > 0 {
		return m.Spec.Emails[0].Value
	}
	if strings.Contains(m.Spec.UserName, "@") {
		return m.Spec.UserName
	}
	return ""
}

// InTeam tells whether teams (a member's teams as the backend lists them) holds team: the
// member controller joins a hinted team only when it does not, and `kubectl scim plan`
// reports a join (or a former team's leave) by the same test.
func InTeam(teams []string, team string) bool {
	for _, t := range teams {
		if strings.EqualFold(t, team) {
			return true
		}
	}
	return false
}

// TeamName is the team an OrgGroup's displayName maps to: "org:team" names team.
func TeamName(displayName string) string {
	name := strings.TrimSpace(displayName)
	if _, team, ok := strings.Cut(name, ":"); ok && strings.TrimSpace(team) != "" {
		return strings.TrimSpace(team)
	}
	return name
}

// TeamKey is a backend's own name for a team name (TeamName's result), for telling whether
// two names are one team: Docker Hub strips an organization prefix, so "acme:qa" (what
// "x:acme:qa" leaves) and "qa" are one team there, while a kubernetes Group may hold a
// colon. The nil TeamKey is the name itself. Case never matters.
type TeamKey func(team string) string

// TeamKeyOf is backend b's TeamKey: its listed name (backend.TeamLister), else the name
// itself. A name the backend refuses keys as itself: the group's own reconcile fails on it.
func TeamKeyOf(b any) TeamKey {
	tl, ok := b.(backend.TeamLister)
	if !ok {
		return nil
	}
	return func(team string) string {
		if listed, err := tl.ListedTeamName(team); err == nil {
			return listed
		}
		return team
	}
}

// Name is the backend's own name for team (team itself for the nil TeamKey, or "").
func (k TeamKey) Name(team string) string {
	if k == nil || team == "" {
		return team
	}
	return k(team)
}

// Same tells whether a and b are one team.
func (k TeamKey) Same(a, b string) bool {
	if k != nil {
		a, b = k(a), k(b)
	}
	return strings.EqualFold(a, b)
}

// TeamCreatedKept tells whether a group that recorded creating its former team (was, its
// status.team) keeps that record for the team it now names (team): the same team by
// another name (key.Same) keeps it, but only when was is the backend's own name. Names
// recorded before teams were named by the backend (review 24) may be ones the backend
// once refused ("acme: qa" was Docker Hub's " qa"): such a group recorded created before
// its create failed, and must not delete a team of that name someone made by hand.
func TeamCreatedKept(was, team string, created bool, key TeamKey) bool {
	return created && key.Same(was, team) && strings.EqualFold(key.Name(was), was)
}

// FormerTeam is the team a group synced before (its status.team, was) when its
// displayName now maps to another team (team), or "". The same team by another name is
// not a former team (key.Same): Docker Hub's team names are case-insensitive and
// "x:acme:qa" is its team qa, so leaving the "former" team would delete the group's own
// team, with the members and permissions others gave it; a kubernetes group's grant
// follows its owner label, not a former name.
func FormerTeam(was, team string, key TeamKey) string {
	if key.Same(was, team) {
		return ""
	}
	return was
}
