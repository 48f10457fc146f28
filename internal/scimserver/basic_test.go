package scimserver_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("discovery", func() {
	It("tells the truth about what is supported", func() {
		c := newEnv().config("acme", "t0ken-discovery")
		r := c.do("GET", "/ServiceProviderConfig", nil)
		Expect(r.code).To(Equal(200))
		Expect(r.body["patch"]).To(HaveKeyWithValue("supported", true))
		Expect(r.body["bulk"]).To(HaveKeyWithValue("supported", true))
		Expect(r.body["filter"]).To(HaveKeyWithValue("maxResults", BeNumerically("==", 1000)))
		Expect(r.body["sort"]).To(HaveKeyWithValue("supported", true))
		Expect(r.body["etag"]).To(HaveKeyWithValue("supported", true))
		Expect(r.body["changePassword"]).To(HaveKeyWithValue("supported", false))
		Expect(r.body["authenticationSchemes"]).To(ContainElement(HaveKeyWithValue("type", "oauthbearertoken")))
	})
})

var _ = Describe("discovery documents and search", func() {
	It("serves ResourceTypes, Schemas and Schemas/{id}, GET only", func() {
		c := newEnv().config("disc", "disc-token")
		r := c.do("GET", "/ResourceTypes", nil)
		Expect(r.code).To(Equal(200))
		Expect(r.body["totalResults"]).To(BeNumerically("==", 2))
		Expect(resources(r)).To(ContainElement(And(HaveKeyWithValue("endpoint", "/Users"),
			HaveKeyWithValue("schemaExtensions", ContainElement(HaveKeyWithValue("schema", "urn:ietf:params:scim:schemas:extension:docker:2.0:User"))))))
		r = c.do("GET", "/ResourceTypes/Group", nil)
		Expect(r.body["schema"]).To(Equal("urn:ietf:params:scim:schemas:core:2.0:Group"))
		r = c.do("GET", "/Schemas", nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 4))
		r = c.do("GET", "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", nil)
		Expect(r.code).To(Equal(200))
		Expect(r.body["attributes"]).To(ContainElement(HaveKeyWithValue("name", "employeeNumber")))
		expectError(c.do("GET", "/Schemas/urn:nope", nil), 404, "", "not found")
		expectError(c.do("PUT", "/ResourceTypes", `{}`), 405, "", "method not allowed")
		By("the Microsoft collection's lower-case and legacy paths")
		Expect(c.do("GET", "/serviceConfiguration", nil).code).To(Equal(200))
		Expect(c.do("GET", "/users", nil).code).To(Equal(200))
	})

	It("searches with POST /Users/.search and /.search", func() {
		c := newEnv().config("search", "search-token")
		Expect(c.do("POST", "/Users", `{"userName":"s1@example.com","title":"Boss"}`).code).To(Equal(201))
		Expect(c.do("POST", "/Users", `{"userName":"s2@example.com"}`).code).To(Equal(201))
		By("without verifiedDomains any userName is accepted, email or not")
		Expect(c.do("POST", "/Users", `{"userName":"plain-login-name"}`).code).To(Equal(201))
		Expect(c.do("POST", "/Groups", `{"displayName":"searchers"}`).code).To(Equal(201))
		r := c.do("POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
			"filter":"title pr","attributes":["userName"],"startIndex":1,"count":10}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 1))
		Expect(resources(r)[0]).To(And(HaveKeyWithValue("userName", "s1@example.com"), Not(HaveKey("title"))))
		r = c.do("POST", "/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}`)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 4))
		expectError(c.do("GET", "/Users/.search", nil), 405, "", "method not allowed")
	})
})
