package main

// What the member reconciler (controllers/orgmember_controller.go) feeds internal/plan,
// rebuilt from the objects alone. The reconciler's helpers are unexported there; these are
// their copies, kept to the same rules: change both together.

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/plan"
)

// configState is controllers.configState: where a member's config stands (nil: gone).
func configState(cfg *scimv1.ScimConfig) plan.ConfigState {
	switch {
	case cfg == nil || !cfg.DeletionTimestamp.IsZero():
		return plan.ConfigGone
	case !cfg.IsEnabled():
		return plan.ConfigDisabled
	case backendNotReady(cfg):
		return plan.ConfigNotReady
	}
	return plan.ConfigEnabled
}

// backendNotReady is controllers.backendNotReady: the config reported, for its current
// generation, that its backend is not ready.
func backendNotReady(cfg *scimv1.ScimConfig) bool {
	c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionBackendReady)
	return c != nil && c.Status == metav1.ConditionFalse && c.ObservedGeneration == cfg.Generation
}

// memberInput is the reconciler's plan.MemberInput before observation: labelled says
// whether the backend records owners on its grants (the kubernetes backend).
func memberInput(m *scimv1.OrgMember, cfg *scimv1.ScimConfig, labelled bool) plan.MemberInput {
	phase := m.Status.Phase
	if phase == "" {
		phase = scimv1.PhasePending
	}
	in := plan.MemberInput{Config: configState(cfg), Deleting: !m.DeletionTimestamp.IsZero(), Active: m.Spec.Active,
		Origin: m.Status.Origin, Phase: phase, Deprovisioned: m.Status.Deprovisioned}
	if cfg == nil {
		return in
	}
	in.Policies = policies(cfg)
	in.WantRole = desiredRole(m, cfg)
	if in.Config != plan.ConfigDisabled || in.Deleting {
		in.Labelled = labelled
		if !labelled { // the kubernetes backend honours no per-user team hint (NoUserTeams)
			in.Team = desiredTeam(m)
		}
	}
	return in
}

// observed completes in with what the backend shows, as the reconciler does.
func observed(in plan.MemberInput, m *scimv1.OrgMember, obs backend.Member) plan.MemberInput {
	if plan.NeedsObservation(in) {
		in.Observed = obs
	}
	in.Stale = staleIdentities(m, in.Observed, in.Labelled)
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

func desiredRole(m *scimv1.OrgMember, cfg *scimv1.ScimConfig) string {
	if m.Spec.Docker != nil && m.Spec.Docker.Role != "" {
		return strings.ToLower(m.Spec.Docker.Role)
	}
	if dh := cfg.Spec.Backend.DockerHub; dh != nil && dh.DefaultRole != "" {
		return strings.ToLower(dh.DefaultRole)
	}
	return ""
}

func desiredTeam(m *scimv1.OrgMember) string {
	if m.Spec.Docker != nil {
		return strings.TrimSpace(m.Spec.Docker.Team)
	}
	return ""
}

// primaryEmail is the primary email, else the first one, else the userName when it is an
// email.
func primaryEmail(m *scimv1.OrgMember) string {
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

func currentIdentities(m *scimv1.OrgMember, obs backend.Member) []string {
	out := []string{m.Spec.UserName, primaryEmail(m)}
	if obs.State == backend.StateMember {
		out = append(out, obs.BackendID)
	}
	return out
}

func staleIdentities(m *scimv1.OrgMember, obs backend.Member, labelled bool) []string {
	if labelled || len(m.Status.GrantedIdentities) == 0 {
		return nil
	}
	current := map[string]bool{}
	for _, id := range currentIdentities(m, obs) {
		current[naming.FoldUserName(id)] = true
	}
	var out []string
	for _, id := range m.Status.GrantedIdentities {
		if !current[id] {
			out = append(out, id)
		}
	}
	return out
}

// removedIdentities are the identities removeGrants takes away on a backend without owner
// labels: the userName and primary email, then every other recorded identity.
func removedIdentities(m *scimv1.OrgMember) []string {
	out := []string{m.Spec.UserName}
	if e := primaryEmail(m); e != "" {
		out = append(out, e)
	}
	current := map[string]bool{naming.FoldUserName(m.Spec.UserName): true, naming.FoldUserName(primaryEmail(m)): true}
	for _, id := range m.Status.GrantedIdentities {
		if !current[id] {
			out = append(out, id)
		}
	}
	return out
}

// inviteeFor is who the Docker Hub backend invites: the userName when it is an email (or
// there is no email), else the email.
func inviteeFor(m *scimv1.OrgMember) string {
	u := strings.TrimSpace(m.Spec.UserName)
	if e := strings.TrimSpace(primaryEmail(m)); !isEmail(u) && e != "" {
		return e
	}
	return u
}

func isEmail(s string) bool {
	at := strings.LastIndex(s, "@")
	return at > 0 && at < len(s)-1
}
