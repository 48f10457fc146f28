package convert

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// TestRenderedResourcesEncodeAsEncodingJSON: a user with every attribute the converter
// renders, and a group with and without its members, encode (scim.Encode) to
// encoding/json's bytes.
func TestRenderedResourcesEncodeAsEncodingJSON(t *testing.T) {
	created := metav1.NewTime(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))
	m := scimv1.OrgMember{
		ObjectMeta: metav1.ObjectMeta{Name: "acme-ann", ResourceVersion: "42", CreationTimestamp: created,
			Annotations: map[string]string{scimv1.AnnotationLastModified: "2026-11-30T11:00:00.123456Z"}},
		Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: "Ann<&>@example.com", Active: true, ExternalID: "\u2028ext",
			DisplayName: "Ann \"A\"", NickName: "a", Title: "R&D", UserType: "Employee", Locale: "en-GB",
			Name:         &scimv1.Name{GivenName: "Ann", FamilyName: "Example", Formatted: "Ann Example"},
			Emails:       []scimv1.MultiValue{{Value: "ann@example.com", Type: "work", Primary: true}, {Value: "ann@home.example", Type: "home"}},
			PhoneNumbers: []scimv1.MultiValue{{Value: "+44 20 7946 0000", Type: "work"}},
			Enterprise: &scimv1.EnterpriseUser{Department: "R&D", CostCenter: "42",
				Manager: &scimv1.Manager{Value: "acme-ben", DisplayName: "Ben"}},
			Docker: &scimv1.DockerUser{Role: "member", Org: "acme", Team: "eng"},
		},
	}
	g := scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Name: "acme-eng", ResourceVersion: "7", CreationTimestamp: created},
		Spec: scimv1.OrgGroupSpec{ConfigName: "acme", DisplayName: "Eng <Ops>", ExternalID: "e&1"}}
	for what, v := range map[string]scim.Resource{
		"a user":                    UserToSCIM(&m, "https://h/scim/v2"),
		"a bare user":               UserToSCIM(&scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Name: "u"}}, ""),
		"a group with its members":  GroupToSCIM(&g, []scimv1.OrgMember{m, {ObjectMeta: metav1.ObjectMeta{Name: "acme-ben"}}}, true, "https://h/scim/v2"),
		"a group without members":   GroupToSCIM(&g, nil, true, "https://h/scim/v2"),
		"a group, members excluded": GroupToSCIM(&g, nil, false, "https://h/scim/v2"),
	} {
		want, werr := json.Marshal(v)
		got, gerr := scim.Encode(v)
		if werr != nil || gerr != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s encodes as\n%s (%v), encoding/json gives\n%s (%v)", what, got, gerr, want, werr)
		}
	}
}
