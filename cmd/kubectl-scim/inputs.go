package main

// What the member reconciler (controllers/orgmember_controller.go) feeds internal/plan,
// rebuilt from the objects alone, with the planner's own input helpers (internal/plan
// inputs.go), so that the plugin and the controllers cannot drift apart.

import (
	"slices"
	"strings"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/plan"
)

// memberInput is the reconciler's plan.MemberInput before observation: labelled says
// whether the backend records owners on its grants (the kubernetes backend); key is how
// the backend names teams (plan.TeamKeyOf).
func memberInput(m *scimv1.OrgMember, cfg *scimv1.ScimConfig, labelled bool, key plan.TeamKey) plan.MemberInput {
	phase := m.Status.Phase
	if phase == "" {
		phase = scimv1.PhasePending
	}
	in := plan.MemberInput{Config: plan.ConfigStateOf(cfg), Deleting: !m.DeletionTimestamp.IsZero(), Active: m.Spec.Active,
		Origin: m.Status.Origin, Phase: phase, Deprovisioned: m.Status.Deprovisioned}
	if cfg == nil {
		return in
	}
	in.Policies = policies(cfg)
	in.WantRole = plan.DesiredRole(m, cfg)
	if in.Config != plan.ConfigDisabled || in.Deleting {
		in.Labelled = labelled
		if !labelled { // the kubernetes backend honours no per-user team hint (NoUserTeams)
			in.Team = key.Name(plan.DesiredTeam(m))
			in.FormerTeam = plan.FormerTeam(m.Status.HintedTeam, in.Team, key)
		}
	}
	return in
}

// observed completes in with what the backend shows, as the reconciler does.
func observed(in plan.MemberInput, m *scimv1.OrgMember, obs backend.Member) plan.MemberInput {
	if plan.NeedsObservation(in) {
		in.Observed = obs
	}
	in.Stale = plan.StaleIdentities(m, in.Observed, in.Labelled)
	in.Renamed = in.Labelled && m.Status.BackendID != "" && !strings.EqualFold(m.Status.BackendID, m.Spec.UserName)
	return in
}

// policies are the config's policies with the API defaults filled in.
func policies(cfg *scimv1.ScimConfig) scimv1.LifecyclePolicies {
	p := cfg.Spec.Policies
	if p.Adoption == "" {
		p.Adoption = scimv1.AdoptionIgnore
	}
	if p.Deactivation == "" {
		p.Deactivation = scimv1.DeactivationRemove
	}
	if p.Deletion == "" {
		p.Deletion = scimv1.DeletionRemove
	}
	return p
}

// removedIdentities are the identities removeGrants takes away on a backend without owner
// labels: the userName and primary email, then every other recorded identity and the
// Docker ID the member was last seen under (not a Preexisting member's).
func removedIdentities(m *scimv1.OrgMember) []string {
	out := []string{m.Spec.UserName}
	if e := plan.PrimaryEmail(m); e != "" {
		out = append(out, e)
	}
	seen := map[string]bool{naming.FoldUserName(m.Spec.UserName): true, naming.FoldUserName(plan.PrimaryEmail(m)): true}
	ids := m.Status.GrantedIdentities
	if m.Status.BackendID != "" && m.Status.Origin != scimv1.OriginPreexisting {
		ids = append(slices.Clone(ids), naming.FoldUserName(m.Status.BackendID))
	}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// inviteeFor is who the Docker Hub backend invites: the userName when it is an email (or
// there is no email), else the email.
func inviteeFor(m *scimv1.OrgMember) string {
	u := strings.TrimSpace(m.Spec.UserName)
	if e := strings.TrimSpace(plan.PrimaryEmail(m)); !isEmail(u) && e != "" {
		return e
	}
	return u
}

func isEmail(s string) bool {
	at := strings.LastIndex(s, "@")
	return at > 0 && at < len(s)-1
}
