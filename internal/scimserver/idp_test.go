package scimserver_test

import (
	"fmt"
	"net/url"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

func q(s string) string { return url.QueryEscape(s) }

var _ = Describe("Okta", func() {
	var c *scimClient
	BeforeEach(func() {
		c = newEnv().config("okta", "okta-token-1", withDomains("example.com"))
		c.ua = "Okta SCIM Client 1.0.0"
		c.contentType = "application/json; charset=utf-8"
	})

	It("passes Test Connection", func() {
		r := c.do("GET", "/Users?startIndex=1&count=2", nil)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.raw).To(ContainSubstring(`"totalResults":0`))
		Expect(r.raw).To(ContainSubstring(`"startIndex":1`))
		Expect(r.raw).To(ContainSubstring(`"itemsPerPage":0`))
		Expect(r.body["Resources"]).To(BeEmpty())
		r = c.do("GET", "/Groups?startIndex=1&count=100", nil)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 0))
	})

	It("runs the custom-app lifecycle: lookup, create, GET+PUT profile, deactivate, reactivate", func() {
		By("looking up before create: empty list")
		r := c.do("GET", "/Users?filter="+q(`userName eq "dade.murphy@example.com"`)+"&startIndex=1&count=100", nil)
		Expect(r.code).To(Equal(200))
		Expect(r.body["totalResults"]).To(BeNumerically("==", 0))

		By("creating with password, locale and groups: []")
		r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":"dade.murphy@example.com","name":{"givenName":"Dade","familyName":"Murphy"},
			"emails":[{"primary":true,"value":"dade.murphy@example.com","type":"work"}],
			"displayName":"Dade Murphy","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7",
			"groups":[],"password":"1mz050nq","active":true}`)
		Expect(r.code).To(Equal(201), "%s", r)
		id := str(r.body["id"])
		Expect(id).NotTo(BeEmpty())
		Expect(r.body).NotTo(HaveKey("password"))
		Expect(r.body["userName"]).To(Equal("dade.murphy@example.com"))
		Expect(r.body["locale"]).To(Equal("en-US"))
		Expect(r.header.Get("ETag")).To(MatchRegexp(`^W/"\d+-[0-9a-f]{8}"$`))
		Expect(r.header.Get("Location")).To(HaveSuffix("/Users/" + id))
		meta := r.body["meta"].(map[string]any)
		Expect(meta["resourceType"]).To(Equal("User"))
		Expect(meta["location"]).To(HaveSuffix(c.base + "/Users/" + id))
		Expect(meta["version"]).To(Equal(r.header.Get("ETag")))
		Expect(meta["created"]).NotTo(BeEmpty())

		By("an upper-cased lookup finds it")
		r = c.do("GET", "/Users?filter="+q(`userName eq "DADE.MURPHY@EXAMPLE.COM"`)+"&startIndex=1&count=100", nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 1))
		Expect(resources(r)[0]["id"]).To(Equal(id))

		By("a duplicate create is 409 uniqueness")
		r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Dade.Murphy@example.com","active":true}`)
		expectError(r, 409, "uniqueness", `"Dade.Murphy@example.com" already exists`)

		By("GET then PUT of the whole object, echoing unmapped fields")
		r = c.do("GET", "/Users/"+id, nil)
		Expect(r.code).To(Equal(200))
		obj := r.body
		obj["name"] = map[string]any{"givenName": "Dade", "familyName": "Murphy-Zero"}
		obj["title"] = "Zero Cool"
		obj["password"] = "ignored"
		obj["someUnmappedThing"] = "x"
		r = c.do("PUT", "/Users/"+id, obj)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["name"]).To(HaveKeyWithValue("familyName", "Murphy-Zero"))
		Expect(r.body["title"]).To(Equal("Zero Cool"))
		Expect(r.body["active"]).To(BeTrue())
		Expect(r.body).NotTo(HaveKey("someUnmappedThing"))

		By("deactivating with PUT active=false")
		obj["active"] = false
		r = c.do("PUT", "/Users/"+id, obj)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["active"]).To(BeFalse())
		r = c.do("GET", "/Users/"+id, nil)
		Expect(r.body["active"]).To(BeFalse())
		Expect(members(c.ns, c.config)).To(HaveLen(1))
		Expect(members(c.ns, c.config)[0].Spec.Active).To(BeFalse())

		By("reactivating with PUT active=true")
		obj["active"] = true
		r = c.do("PUT", "/Users/"+id, obj)
		Expect(r.code).To(Equal(200))
		Expect(r.body["active"]).To(BeTrue())
	})

	It("runs the catalogue-app lifecycle: PUT profile, PATCH active", func() {
		r := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"kate@example.com",
			"name":{"givenName":"Kate","familyName":"Libby"},"emails":[{"primary":true,"value":"kate@example.com","type":"work"}],
			"active":true,"password":"x","groups":[]}`)
		Expect(r.code).To(Equal(201), "%s", r)
		id := str(r.body["id"])

		r = c.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"`+id+`","userName":"kate@example.com",
			"name":{"givenName":"Kate","familyName":"Acid Burn"},"emails":[{"primary":true,"value":"kate@example.com","type":"work"}],"active":true}`)
		Expect(r.code).To(Equal(200))
		Expect(r.body["name"]).To(HaveKeyWithValue("familyName", "Acid Burn"))

		r = c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["active"]).To(BeFalse())
		Expect(r.body["name"]).To(HaveKeyWithValue("familyName", "Acid Burn"))

		By("a deactivated user is still found by filter")
		r = c.do("GET", "/Users?filter="+q(`userName eq "kate@example.com"`), nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 1))
		Expect(resources(r)[0]["active"]).To(BeFalse())

		r = c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`)
		Expect(r.code).To(Equal(200))
		Expect(r.body["active"]).To(BeTrue())
	})

	It("paginates with integers and a stable order", func() {
		for i := 0; i < 7; i++ {
			r := c.do("POST", "/Users", fmt.Sprintf(`{"userName":"user%d@example.com"}`, 6-i))
			Expect(r.code).To(Equal(201), "%s", r)
		}
		var seen []string
		for start := 1; start <= 7; start += 3 {
			r := c.do("GET", fmt.Sprintf("/Users?startIndex=%d&count=3", start), nil)
			Expect(r.code).To(Equal(200))
			Expect(r.raw).To(ContainSubstring(`"totalResults":7`))
			Expect(r.raw).To(ContainSubstring(fmt.Sprintf(`"startIndex":%d`, start)))
			for _, u := range resources(r) {
				seen = append(seen, str(u["id"]))
			}
		}
		Expect(seen).To(HaveLen(7))
		unique := map[string]bool{}
		for _, s := range seen {
			unique[s] = true
		}
		Expect(unique).To(HaveLen(7))

		By("count=0 gives totalResults only")
		r := c.do("GET", "/Users?count=0", nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 7))
		Expect(r.body["itemsPerPage"]).To(BeNumerically("==", 0))
		Expect(r.body["Resources"]).To(BeEmpty())

		By("sortBy userName descending")
		r = c.do("GET", "/Users?sortBy=userName&sortOrder=descending&count=2", nil)
		Expect(resources(r)[0]["userName"]).To(Equal("user6@example.com"))
		Expect(resources(r)[1]["userName"]).To(Equal("user5@example.com"))
	})

	It("pushes a group with members; ignores the id member in PATCH values", func() {
		r := c.do("POST", "/Users", `{"userName":"a@example.com"}`)
		a := str(r.body["id"])
		r = c.do("POST", "/Users", `{"userName":"b@example.com"}`)
		b := str(r.body["id"])

		r = c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[]}`)
		Expect(r.code).To(Equal(201), "%s", r)
		gid := str(r.body["id"])

		r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"add","path":"members","value":[{"value":"`+a+`","display":"a@example.com"},{"value":"`+b+`","display":"b@example.com"}]}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body).NotTo(HaveKey("members"), "a write's answer lists members only when asked (issue 9, defect 5)")
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(HaveLen(2))

		r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"replace","value":{"id":"`+gid+`","displayName":"Engineering Team"}}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["displayName"]).To(Equal("Engineering Team"))
		Expect(r.body["id"]).To(Equal(gid))

		r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"remove","path":"members[value eq \"`+a+`\"]"}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body).NotTo(HaveKey("members"), "a write's answer lists members only when asked (issue 9, defect 5)")
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(ConsistOf(HaveKeyWithValue("value", b)))

		By("the user shows its group")
		r = c.do("GET", "/Users/"+b, nil)
		Expect(r.body["groups"]).To(ConsistOf(And(HaveKeyWithValue("value", gid), HaveKeyWithValue("display", "Engineering Team"))))
	})
})

var _ = Describe("Microsoft Entra ID", func() {
	var c *scimClient
	BeforeEach(func() {
		c = newEnv().config("entra", "entra-token-1")
		c.contentType = "application/scim+json"
	})

	create := func() string {
		r := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
			"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@contoso.com","active":true,
			"emails":[{"primary":true,"type":"work","value":"Test_User_fd0ea19b@contoso.com"}],
			"meta":{"resourceType":"User"},"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},
			"roles":[],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"123","department":"Sales"}}`)
		Expect(r.code).To(Equal(201), "%s", r)
		Expect(r.body["schemas"]).To(ContainElement("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"))
		return str(r.body["id"])
	}

	It("passes Test Connection with a random non-existent user", func() {
		r := c.do("GET", "/Users?filter="+q(`userName eq "non-existent user 8d0a3e62-0d4e-4f7e-a43f-5b5a1e1f5d9f"`), nil)
		Expect(r.code).To(Equal(200))
		Expect(r.body["totalResults"]).To(BeNumerically("==", 0))
	})

	It("finds users by userName, externalId and work email", func() {
		id := create()
		for _, f := range []string{
			`userName eq "test_user_ab6490ee@contoso.com"`,
			`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
			`emails[type eq "work"].value eq "Test_User_fd0ea19b@contoso.com"`,
			`userName eq "Test_User_ab6490ee@contoso.com" and externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`,
		} {
			r := c.do("GET", "/Users?filter="+q(f), nil)
			Expect(r.code).To(Equal(200), "%s: %s", f, r)
			Expect(r.body["totalResults"]).To(BeNumerically("==", 1), f)
			Expect(resources(r)[0]["id"]).To(Equal(id))
		}
		r := c.do("GET", "/Users?filter="+q(`externalId eq "0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF"`), nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 0), "externalId is case-exact")
	})

	It("applies capitalized ops, string booleans, dotted and extension keys (aadOptscim062020 off)", func() {
		id := create()
		r := c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Replace","path":"displayName","value":"Dora"},
			{"op":"Add","value":{"name.givenName":"Dora","name.familyName":"Explorer",
			   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"777",
			   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":"mgr-1"}},
			{"op":"Replace","path":"emails[type eq \"work\"].value","value":"dora@contoso.com"},
			{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0100"},
			{"op":"Replace","path":"active","value":"False"}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["displayName"]).To(Equal("Dora"))
		Expect(r.body["name"]).To(And(HaveKeyWithValue("givenName", "Dora"), HaveKeyWithValue("familyName", "Explorer")))
		ent := r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)
		Expect(ent["employeeNumber"]).To(Equal("777"))
		Expect(ent["department"]).To(Equal("Sales"))
		Expect(ent["manager"]).To(HaveKeyWithValue("value", "mgr-1"))
		Expect(r.body["emails"]).To(ConsistOf(And(HaveKeyWithValue("value", "dora@contoso.com"), HaveKeyWithValue("type", "work"), HaveKeyWithValue("primary", true))))
		Expect(r.body["phoneNumbers"]).To(ConsistOf(And(HaveKeyWithValue("value", "+1 555 0100"), HaveKeyWithValue("type", "mobile"))))
		Expect(r.body["active"]).To(BeFalse())

		By("the disabled user is still returned by GET and by filters")
		r = c.do("GET", "/Users/"+id, nil)
		Expect(r.body["active"]).To(BeFalse())
		r = c.do("GET", "/Users?filter="+q(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`), nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 1))
		Expect(resources(r)[0]["active"]).To(BeFalse())

		By("reactivating with a real boolean and the compliant path form (aadOptscim062020 on)")
		r = c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"replace","path":"active","value":true},
			{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Marketing"},
			{"op":"replace","path":"name.familyName","value":"Map"}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["active"]).To(BeTrue())
		Expect(r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]).To(HaveKeyWithValue("department", "Marketing"))
		Expect(r.body["name"]).To(HaveKeyWithValue("familyName", "Map"))

		By("hard delete")
		r = c.do("DELETE", "/Users/"+id, nil)
		Expect(r.code).To(Equal(204))
		Expect(r.raw).To(BeEmpty())
		expectError(c.do("GET", "/Users/"+id, nil), 404, "", "not found")
		// gone once the controller has taken its access away (its finalizer)
		Eventually(func() []scimv1.OrgMember { return members(c.ns, c.config) }).Should(BeEmpty())
	})

	It("manages group members in every form Entra sends", func() {
		u1, u2, u3 := create(), "", ""
		r := c.do("POST", "/Users", `{"userName":"second@contoso.com"}`)
		u2 = str(r.body["id"])
		r = c.do("POST", "/Users", `{"userName":"third@contoso.com"}`)
		u3 = str(r.body["id"])

		r = c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"Group1DisplayName","members":[]}`)
		Expect(r.code).To(Equal(201), "%s", r)
		gid := str(r.body["id"])

		r = c.do("GET", "/Groups?filter="+q(`displayName eq "group1displayname"`)+"&excludedAttributes=members", nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 1))
		Expect(resources(r)[0]).NotTo(HaveKey("members"))

		r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Add","path":"members","value":[{"$ref":null,"value":"`+u1+`"},{"$ref":null,"value":"`+u2+`"},{"value":"`+u3+`"}]}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body).NotTo(HaveKey("members"), "a write's answer lists members only when asked (issue 9, defect 5)")
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(HaveLen(3))

		By("Remove with a value list")
		r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Remove","path":"members","value":[{"value":"`+u1+`"}]}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body).NotTo(HaveKey("members"), "a write's answer lists members only when asked (issue 9, defect 5)")
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(HaveLen(2))

		By("remove with the compliant filter form")
		r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"remove","path":"members[value eq \"`+u2+`\"]"}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body).NotTo(HaveKey("members"), "a write's answer lists members only when asked (issue 9, defect 5)")
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(ConsistOf(HaveKeyWithValue("value", u3)))

		By("GET with excludedAttributes=members")
		r = c.do("GET", "/Groups/"+gid+"?excludedAttributes=members", nil)
		Expect(r.code).To(Equal(200))
		Expect(r.body).NotTo(HaveKey("members"))
		Expect(r.body["displayName"]).To(Equal("Group1DisplayName"))

		By("replace displayName with a capitalized op")
		r = c.do("PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
			{"op":"Replace","path":"displayName","value":"Renamed"}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["displayName"]).To(Equal("Renamed"))

		r = c.do("DELETE", "/Groups/"+gid, nil)
		Expect(r.code).To(Equal(204))
		for _, m := range members(c.ns, c.config) {
			Expect(m.Labels).NotTo(HaveKey("group.scim.operator.dev/" + gid))
		}
	})
})

var _ = Describe("OneLogin", func() {
	It("provisions from the SCIM v2 Core template, suspends and reactivates", func() {
		c := newEnv().config("onelogin", "onelogin-token-1", withDomains("example.org"))
		c.ua = "OneLogin SCIM"
		c.contentType = "application/scim+json; charset=utf-8"

		r := c.do("GET", "/Users?filter="+q(`userName eq "jane@example.org"`), nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 0))

		r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jane@example.org",
			"name":{"givenName":"Jane","familyName":"Doe"},"emails":[{"value":"jane@example.org","primary":true}]}`)
		Expect(r.code).To(Equal(201), "%s", r)
		Expect(r.body["active"]).To(BeTrue())
		id := str(r.body["id"])

		By("a SCIM 1.0 URN template is tolerated")
		r = c.do("POST", "/Users", `{"schemas":["urn:scim:schemas:core:1.0"],"userName":"john@example.org",
			"name":{"givenName":"John","familyName":"Doe"},"emails":[{"value":"john@example.org","primary":true}]}`)
		Expect(r.code).To(Equal(201), "%s", r)

		By("profile update")
		r = c.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jane@example.org",
			"name":{"givenName":"Jane","familyName":"Smith"},"emails":[{"value":"jane@example.org","primary":true}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["name"]).To(HaveKeyWithValue("familyName", "Smith"))
		Expect(r.body["active"]).To(BeTrue(), "PUT without active leaves it unchanged")

		By("suspend")
		r = c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`)
		Expect(r.code).To(Equal(200))
		Expect(r.body["active"]).To(BeFalse())
		By("a PUT without active keeps the user suspended")
		r = c.do("PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"jane@example.org","name":{"givenName":"Jane","familyName":"Smith"}}`)
		Expect(r.body["active"]).To(BeFalse())
		By("reactivate")
		r = c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":true}]}`)
		Expect(r.body["active"]).To(BeTrue())

		By("group push")
		r = c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"acme:devs","members":[{"value":"`+id+`"}]}`)
		Expect(r.code).To(Equal(201), "%s", r)
		Expect(r.body["members"]).To(ConsistOf(And(HaveKeyWithValue("value", id), HaveKeyWithValue("display", "jane@example.org"))))
		gid := str(r.body["id"])
		r = c.do("PUT", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"acme:devs","members":[]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body).NotTo(HaveKey("members"), "a write's answer lists members only when asked (issue 9, defect 5)")
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(BeEmpty())

		By("delete")
		Expect(c.do("DELETE", "/Users/"+id, nil).code).To(Equal(204))
		expectError(c.do("DELETE", "/Users/"+id, nil), 404, "", "not found")
	})
})
