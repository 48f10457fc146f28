package plan

import (
	"testing"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

func TestDesiredRoleAndEmail(t *testing.T) {
	cfg := &scimv1.ScimConfig{Spec: scimv1.ScimConfigSpec{Backend: scimv1.BackendSpec{
		Type: scimv1.BackendDockerHub, DockerHub: &scimv1.DockerHubBackend{DefaultRole: "editor"}}}}
	m := &scimv1.OrgMember{Spec: scimv1.OrgMemberSpec{UserName: "dockerid"}}
	if got := DesiredRole(m, cfg); got != "editor" {
		t.Errorf("default role = %q, want editor", got)
	}
	m.Spec.Docker = &scimv1.DockerUser{Role: "owner"}
	if got := DesiredRole(m, cfg); got != "owner" {
		t.Errorf("role = %q, want owner", got)
	}
	if got := DesiredRole(m, &scimv1.ScimConfig{}); got != "owner" {
		t.Errorf("role without a dockerhub config = %q, want owner", got)
	}
	if got := PrimaryEmail(m); got != "" {
		t.Errorf("a Docker ID without emails has no email, got %q", got)
	}
	m.Spec.Emails = []scimv1.MultiValue{{Value: "a@x.example"}, {Value: "b@x.example", Primary: true}}
	if got := PrimaryEmail(m); got != "b@x.example" {
		t.Errorf("primary email = %q", got)
	}
}
