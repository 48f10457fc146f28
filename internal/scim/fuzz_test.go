package scim

import (
	"encoding/json"
	"testing"
)

// FuzzFilter: any filter text either fails with a 400 invalidFilter or evaluates without
// panicking.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `emails[type eq "work"].value eq "x"`, `not (a pr) or b gt 1`, `userName sw O`} {
		f.Add(s)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(alice), &res); err != nil {
		f.Fatal(err) // else every input would be matched against an empty user
	}
	user := Canonicalize(UserType, res)
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(UserType, s)
		if err != nil {
			if se, ok := err.(*Error); !ok || se.Status != 400 || se.ScimType != ErrInvalidFilter {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		flt.Match(user)
		flt.EqualityValue("userName")
		gf, err := ParseFilter(GroupType, s)
		if err == nil {
			gf.Match(Resource{"displayName": "g", "members": []any{map[string]any{"value": "x"}}})
		}
	})
}

// FuzzPatch: any PATCH body applies or fails with a SCIM error, never panics, and the
// result still marshals.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"Operations":[{"op":"add","value":{"name.givenName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"1"}}]}`,
		`{"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":"a@b.c"}]}`,
		`{"Operations":[{"op":"Remove","path":"members","value":[{"value":"x"}]}]}`,
		`{"Operations":[{"op":"remove","path":"members[value eq \"x\"]"}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var p PatchRequest
		if json.Unmarshal([]byte(body), &p) != nil {
			return
		}
		for _, rt := range []*ResourceType{UserType, GroupType} {
			var res map[string]any
			if err := json.Unmarshal([]byte(alice), &res); err != nil {
				t.Fatal(err) // else every patch would apply to an empty resource
			}
			r := Canonicalize(rt, res)
			if _, err := ApplyPatch(rt, r, p.Operations); err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("non-SCIM error %v", err)
				}
				continue
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatal(err)
			}
		}
	})
}
