package controllers

import (
	"testing"
	"time"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

func TestJitterStaysWithinTenPercent(t *testing.T) {
	d := 10 * time.Minute
	lo, hi := d, time.Duration(0)
	for range 2000 {
		j := jitter(d)
		if j < 9*time.Minute || j > 11*time.Minute {
			t.Fatalf("jitter(%s) = %s, outside ±10%%", d, j)
		}
		lo, hi = min(lo, j), max(hi, j)
	}
	if hi-lo < time.Minute {
		t.Fatalf("jitter spreads only %s over 2000 draws", hi-lo)
	}
	if jitter(0) != 0 {
		t.Fatal("jitter(0) must be 0")
	}
}

func TestTeamName(t *testing.T) {
	for in, want := range map[string]string{
		"acme:devs":     "devs",
		"other:ops":     "ops",
		"plain":         "plain",
		" acme : qa ":   "qa",
		"acme:":         "acme:",
		"a:b:c":         "b:c",
		"no-colon-team": "no-colon-team",
	} {
		if got := TeamName(in); got != want {
			t.Errorf("TeamName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDesiredRoleAndEmail(t *testing.T) {
	cfg := &scimv1.ScimConfig{Spec: scimv1.ScimConfigSpec{Backend: scimv1.BackendSpec{
		Type: scimv1.BackendDockerHub, DockerHub: &scimv1.DockerHubBackend{DefaultRole: "editor"}}}}
	m := &scimv1.OrgMember{Spec: scimv1.OrgMemberSpec{UserName: "dockerid"}}
	if got := desiredRole(m, cfg); got != "editor" {
		t.Errorf("default role = %q, want editor", got)
	}
	m.Spec.Docker = &scimv1.DockerUser{Role: "owner"}
	if got := desiredRole(m, cfg); got != "owner" {
		t.Errorf("role = %q, want owner", got)
	}
	if got := desiredRole(m, &scimv1.ScimConfig{}); got != "owner" {
		t.Errorf("role without a dockerhub config = %q, want owner", got)
	}
	if got := primaryEmail(m); got != "" {
		t.Errorf("a Docker ID without emails has no email, got %q", got)
	}
	m.Spec.Emails = []scimv1.MultiValue{{Value: "a@x.example"}, {Value: "b@x.example", Primary: true}}
	if got := primaryEmail(m); got != "b@x.example" {
		t.Errorf("primary email = %q", got)
	}
}
