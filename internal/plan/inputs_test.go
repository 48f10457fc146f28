package plan

import (
	"slices"
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

// TestLookupIdentities: what the drift pass, the member reconcile and kubectl scim plan
// ask the backend about (review F6): on a backend without owner labels, the Docker ID an
// invitation was accepted under too, while it is still the member's (plan.StaleIdentities).
func TestLookupIdentities(t *testing.T) {
	member := func(user string, origin scimv1.MemberOrigin, change ...func(*scimv1.OrgMember)) *scimv1.OrgMember {
		m := &scimv1.OrgMember{Spec: scimv1.OrgMemberSpec{UserName: user}}
		m.Status.Origin, m.Status.BackendID = origin, "ann"
		m.Status.GrantedIdentities = []string{"ann@x.io", "ann"}
		for _, f := range change {
			f(m)
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		m        *scimv1.OrgMember
		labelled bool
		want     []string
	}{
		{"provisioned, accepted as a Docker ID", member("ann@x.io", scimv1.OriginProvisioned), false, []string{"ann@x.io", "ann"}},
		{"adopted", member("Ann@X.io", scimv1.OriginAdopted), false, []string{"Ann@X.io", "ann"}},
		{"a Docker ID userName with an email", member("ann", scimv1.OriginProvisioned, func(m *scimv1.OrgMember) {
			m.Spec.Emails = []scimv1.MultiValue{{Value: "ann@x.io", Primary: true}}
		}), false, []string{"ann", "ann@x.io"}},
		{"a Docker ID userName, accepted under another", member("ann", scimv1.OriginProvisioned, func(m *scimv1.OrgMember) {
			m.Spec.Emails = []scimv1.MultiValue{{Value: "ann@x.io", Primary: true}}
			m.Status.BackendID, m.Status.GrantedIdentities = "ann-hub", []string{"ann", "ann@x.io", "ann-hub"}
		}), false, []string{"ann", "ann@x.io", "ann-hub"}},
		{"not accepted yet", member("ann@x.io", scimv1.OriginProvisioned, func(m *scimv1.OrgMember) {
			m.Status.BackendID, m.Status.GrantedIdentities = "", []string{"ann@x.io"}
		}), false, []string{"ann@x.io"}},
		{"renamed: the Docker ID is the former identity's", member("ann.new@x.io", scimv1.OriginProvisioned), false, []string{"ann.new@x.io"}},
		{"primary email changed: the Docker ID is the former email's", member("ann", scimv1.OriginProvisioned, func(m *scimv1.OrgMember) {
			m.Spec.Emails = []scimv1.MultiValue{{Value: "ann@new.example", Primary: true}}
			m.Status.BackendID, m.Status.GrantedIdentities = "ann-hub", []string{"ann", "ann@x.io", "ann-hub"}
		}), false, []string{"ann", "ann@new.example"}},
		{"preexisting: never judged, its Docker ID not its grant", member("ann@x.io", scimv1.OriginPreexisting), false, []string{"ann@x.io"}},
		{"no origin yet", member("ann@x.io", ""), false, []string{"ann@x.io"}},
		{"labelled: the userName only", member("ann@x.io", scimv1.OriginProvisioned), true, []string{"ann@x.io"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LookupIdentities(tc.m, tc.labelled); !slices.Equal(got, tc.want) {
				t.Fatalf("LookupIdentities = %q, want %q", got, tc.want)
			}
		})
	}
}
