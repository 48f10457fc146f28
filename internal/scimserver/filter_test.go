package scimserver_test

import (
	"context"
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// userNames lists the userNames of a list answer.
func userNames(r resp) []string {
	GinkgoHelper()
	Expect(r.code).To(Equal(200), "%s", r)
	var out []string
	for _, u := range resources(r) {
		out = append(out, str(u["userName"]))
	}
	return out
}

var _ = Describe("filters and PATCH paths (issue 9, item 6)", func() {
	var c *scimClient
	var ann, ben, cat string
	BeforeEach(func() {
		c = newEnv().config("filters", "filters-token")
		create := func(body string) string {
			r := c.do("POST", "/Users", body)
			Expect(r.code).To(Equal(201), "%s", r)
			return str(r.body["id"])
		}
		ann = create(`{"userName":"ann@example.com","active":true,"emails":[{"value":"ann@work.example","type":"work","primary":true},{"value":"ann@home.example","type":"home"}]}`)
		ben = create(`{"userName":"ben@example.com","active":false,"emails":[{"value":"ben@work.example","type":"work","primary":true}]}`)
		cat = create(`{"userName":"cat@example.com","active":true,"emails":[{"value":"cat@home.example","type":"home","primary":true}]}`)
	})

	It("answers filters on the Users list and in .search", func() {
		for _, c2 := range []struct {
			filter string
			want   []string
		}{
			{`emails[type eq "work" and primary eq true and value co "ann"]`, []string{"ann@example.com"}},
			{`emails[type eq "x" or type eq "y" or value ew "@home.example"]`, []string{"ann@example.com", "cat@example.com"}},
			{`emails[(type eq "work" or type eq "home") and not (primary eq true)]`, []string{"ann@example.com"}},
			{`emails[type eq "work" or type eq "home"].value eq "cat@home.example"`, []string{"cat@example.com"}},
			{`emails.type ne "work"`, []string{"ann@example.com", "cat@example.com"}},
			{`not (emails.type eq "work")`, []string{"cat@example.com"}},
			{`emails.type ne "work" and active eq true and userName sw "a"`, []string{"ann@example.com"}},
			{`urn:ietf:params:scim:schemas:extension:my_ext:2.0:User:x eq "1"`, nil},
			{`not (urn:ietf:params:scim:schemas:extension:my_ext:2.0:User:x pr) and active eq false`, []string{"ben@example.com"}},
		} {
			Expect(userNames(c.do("GET", "/Users?filter="+q(c2.filter)+"&sortBy=userName", nil))).To(Equal(c2.want), c2.filter)
			body, _ := json.Marshal(map[string]any{"filter": c2.filter, "sortBy": "userName"})
			Expect(userNames(c.do("POST", "/Users/.search", string(body)))).To(Equal(c2.want), ".search "+c2.filter)
		}
		for _, c2 := range []struct{ filter, detail string }{
			{`active gt true`, `invalid filter "active gt true": gt is not allowed on the boolean attribute active: booleans take eq, ne and pr`},
			{`emails[type eq "work" and primary co "t"]`, `invalid filter "emails[type eq \"work\" and primary co \"t\"]": co is not allowed on the boolean attribute emails.primary: booleans take eq, ne and pr`},
			{`name eq "Ann"`, `invalid filter "name eq \"Ann\"": eq is not allowed on the complex attribute name: compare one of its sub-attributes (name.<sub-attribute>) or test it with pr`},
			{`emails[type eq "work"`, `invalid filter "emails[type eq \"work\"": a value filter is not closed by ]`},
		} {
			r := c.do("GET", "/Users?filter="+q(c2.filter), nil)
			expectError(r, 400, "invalidFilter", c2.detail)
			Expect(r.body["detail"]).To(Equal(c2.detail))
			body, _ := json.Marshal(map[string]any{"filter": c2.filter})
			expectError(c.do("POST", "/.search", string(body)), 400, "invalidFilter", c2.detail)
		}
	})

	It("applies PATCH paths with value filters of any length and ignores unknown extension URNs", func() {
		r := c.do("POST", "/Groups", `{"displayName":"f","members":[{"value":"`+ann+`"},{"value":"`+ben+`"},{"value":"`+cat+`"}]}`)
		Expect(r.code).To(Equal(201), "%s", r)
		gid := str(r.body["id"])
		r = c.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"remove","path":"members[value eq \"`+ann+`\" or value eq \"`+ben+`\" or value eq \"u-nobody\"]"}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(ConsistOf(HaveKeyWithValue("value", cat)))

		r = c.do("PATCH", "/Users/"+ann, `{"Operations":[
			{"op":"replace","path":"emails[(type eq \"home\" or type eq \"other\") and not (primary eq true)].display","value":"Home"},
			{"op":"add","path":"urn:ietf:params:scim:schemas:extension:my_ext:2.0:User:x","value":"1"},
			{"op":"replace","value":{"urn:ietf:params:scim:schemas:extension:my_ext:2.0:User":{"y":"2"}}}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["emails"]).To(ContainElement(And(HaveKeyWithValue("type", "home"), HaveKeyWithValue("display", "Home"))))
		Expect(r.raw).NotTo(ContainSubstring("my_ext"))

		var before scimv1.OrgMember
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: ann}, &before)).To(Succeed())
		for _, c2 := range []struct{ ops, scimType, detail string }{
			{`[{"op":"replace","path":"emails[primary gt true].value","value":"x@example.com"}]`, "invalidFilter",
				`operation 1: invalid filter in path "emails[primary gt true].value": gt is not allowed on the boolean attribute emails.primary: booleans take eq, ne and pr`},
			{`[{"op":"replace","path":"emails[type eq \"work\" or].value","value":"x@example.com"}]`, "invalidPath",
				`operation 1: invalid path "emails[type eq \"work\" or].value": syntax error at offset 21`},
			{`[{"op":"replace","path":"emails[type[value eq \"x\"] pr].value","value":"x@example.com"}]`, "invalidPath",
				`operation 1: invalid path "emails[type[value eq \"x\"] pr].value": value filters cannot be nested`},
		} {
			r := c.do("PATCH", "/Users/"+ann, `{"Operations":`+c2.ops+`}`)
			expectError(r, 400, c2.scimType, c2.detail)
			Expect(r.body["detail"]).To(Equal(c2.detail))
		}
		var after scimv1.OrgMember
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: ann}, &after)).To(Succeed())
		// (the controllers' status writes move the resourceVersion; the SCIM version is the spec's)
		Expect(scimstore.VersionOf(&after)).To(Equal(scimstore.VersionOf(&before)), "a refused PATCH changes nothing")
		Expect(after.Spec).To(Equal(before.Spec))
	})
})
