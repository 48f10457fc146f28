package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/scim-operator/scim-operator/internal/scim"
)

// Every string attribute is a string: a number, a boolean, a list or an object in its
// place is 400 invalidValue (RFC 7643 section 2.3), never its text.
func TestWrongTypesAreRefused(t *testing.T) {
	const ent = `"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
	const dock = `"urn:ietf:params:scim:schemas:extension:docker:2.0:User"`
	users := map[string]string{
		`{"userName":42}`:                                                "userName must be a string, not a number",
		`{"userName":true}`:                                              "userName must be a string, not a boolean",
		`{"userName":["a"]}`:                                             "userName must be a string, not a list",
		`{"userName":"a","displayName":7}`:                               "displayName must be a string",
		`{"userName":"a","externalId":7}`:                                "externalId must be a string",
		`{"userName":"a","name":{"givenName":7}}`:                        "name.givenName must be a string",
		`{"userName":"a","emails":[{"value":7}]}`:                        "emails.value must be a string",
		`{"userName":"a",` + ent + `:{"employeeNumber":7}}`:              "employeeNumber must be a string",
		`{"userName":"a",` + ent + `:{"manager":7}}`:                     "manager must be an object",
		`{"userName":"a",` + ent + `:{"manager":{"value":7}}}`:           "manager.value must be a string",
		`{"userName":"a",` + ent + `:{"manager":{"displayName":false}}}`: "manager.displayName must be a string",
		`{"userName":"a",` + dock + `:{"dockerRole":7}}`:                 "dockerRole must be a string",
		`{"userName":"a\u0000b"}`:                                        "userName must not contain control characters (found U+0000)",
		`{"userName":"a\nb"}`:                                            "control characters",
		`{"userName":"\u200b\u200d"}`:                                    "userName has no visible characters",
	}
	for body, want := range users {
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		_, _, err := UserSpecFromSCIM(scim.Canonicalize(scim.UserType, m))
		se, ok := err.(*scim.Error)
		if !ok || se.Status != 400 || se.ScimType != scim.ErrInvalidValue || !strings.Contains(se.Detail, want) {
			t.Errorf("%s: got %v, want 400 invalidValue %q", body, err, want)
		}
	}
	groups := map[string]string{
		`{"displayName":42}`:                          "displayName must be a string, not a number",
		`{"displayName":"a","externalId":1}`:          "externalId must be a string",
		`{"displayName":"a\tb"}`:                      "control characters",
		`{"displayName":"a","members":[{"value":7}]}`: "non-empty string value",
	}
	for body, want := range groups {
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		_, _, _, err := GroupSpecFromSCIM(scim.Canonicalize(scim.GroupType, m))
		se, ok := err.(*scim.Error)
		if !ok || se.Status != 400 || se.ScimType != scim.ErrInvalidValue || !strings.Contains(se.Detail, want) {
			t.Errorf("%s: got %v, want 400 invalidValue %q", body, err, want)
		}
	}
}

func TestRightTypesAreKept(t *testing.T) {
	var m map[string]any
	body := `{"userName":" straße@example.com ","active":"True","emails":["a@example.com"],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7","manager":"u-1"}}`
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	spec, active, err := UserSpecFromSCIM(scim.Canonicalize(scim.UserType, m))
	if err != nil || !active || !spec.Active || spec.UserName != "straße@example.com" || spec.Enterprise.EmployeeNumber != "7" ||
		spec.Enterprise.Manager.Value != "u-1" || len(spec.Emails) != 1 {
		t.Fatalf("got %+v, %v, %v", spec, active, err)
	}
}
