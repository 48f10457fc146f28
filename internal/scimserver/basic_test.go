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
		Expect(r.body["bulk"]).To(HaveKeyWithValue("supported", false))
		Expect(r.body["filter"]).To(HaveKeyWithValue("maxResults", BeNumerically("==", 1000)))
		Expect(r.body["sort"]).To(HaveKeyWithValue("supported", true))
		Expect(r.body["etag"]).To(HaveKeyWithValue("supported", true))
		Expect(r.body["changePassword"]).To(HaveKeyWithValue("supported", false))
		Expect(r.body["authenticationSchemes"]).To(ContainElement(HaveKeyWithValue("type", "oauthbearertoken")))
	})
})
