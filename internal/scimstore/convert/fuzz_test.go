package convert

import (
	"bytes"
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// FuzzDecodeUser: any JSON object decodes into an OrgMember spec or a SCIM 400, never a
// panic; a decoded spec renders back with the same userName and at most one primary email,
// and the user it renders encodes (scim.Encode) to encoding/json's bytes.
func FuzzDecodeUser(f *testing.F) {
	for _, s := range []string{
		`{"userName":"a@b.c","emails":[{"value":"a@b.c","primary":true}],"password":"x","groups":[]}`,
		`{"schemas":["urn:scim:schemas:core:1.0"],"userName":"x","name":{"givenName":"G"},"active":"True"}`,
		`{"userName":"u","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":"m","employeeNumber":5},"urn:ietf:params:scim:schemas:extension:docker:2.0:User":{"dockerRole":"Owner"}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var m map[string]any
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		spec, _, err := UserSpecFromSCIM(scim.Canonicalize(scim.UserType, m))
		if err != nil {
			if se, ok := err.(*scim.Error); !ok || se.Status != 400 {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		p := 0
		for _, e := range spec.Emails {
			if e.Primary {
				p++
			}
		}
		if p > 1 || spec.UserName == "" {
			t.Fatalf("invalid spec %+v", spec)
		}
		r := UserToSCIM(&scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Name: "u-1"}, Spec: spec}, "https://h/scim/v2")
		want, werr := json.Marshal(r)
		got, gerr := scim.Encode(r)
		if werr != nil || gerr != nil || !bytes.Equal(got, want) {
			t.Fatalf("the user encodes as %s (%v), encoding/json gives %s (%v)", got, gerr, want, werr)
		}
	})
}
