package scimserver_test

import (
	"fmt"
	"net/url"
	"path"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scim-operator/scim-operator/internal/scimserver"
)

// The URLs the server hands back (meta.location, Location, discovery documents) carry the
// scheme and host the IdP used: the connection's own, or what a trusted proxy forwarded.
var _ = Describe("meta.location and discovery URLs", func() {
	var (
		c    *scimClient
		host string // what the suite's requests carry in Host
	)
	BeforeEach(func() {
		c = newEnv().config("origin", "origin-token")
		u, err := url.Parse(httpSrv.URL)
		Expect(err).NotTo(HaveOccurred())
		host = u.Host
	})

	// locations returns the ServiceProviderConfig's meta.location and a created user's
	// meta.location and Location header, as seen through c with headers.
	locations := func(c *scimClient, userName string, headers ...string) (spc, userMeta, userHeader string) {
		GinkgoHelper()
		r := c.do("GET", "/ServiceProviderConfig", nil, headers...)
		Expect(r.code).To(Equal(200), "%s", r)
		spc = str(r.body["meta"].(map[string]any)["location"])
		r = c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+userName+`","active":true}`, headers...)
		Expect(r.code).To(Equal(201), "%s", r)
		return spc, str(r.body["meta"].(map[string]any)["location"]), r.header.Get("Location")
	}

	It("follows X-Forwarded-Proto and X-Forwarded-Host from a trusted proxy", func() {
		s := newOwnServer(scimserver.Options{TrustedProxies: []string{"10.63.0.0/16"}})
		lb := s.from(c, "10.63.0.9:40000")
		spc, meta, loc := locations(lb, "fwd@example.com", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "scim.example.com")
		Expect(spc).To(Equal("https://scim.example.com" + c.base + "/ServiceProviderConfig"))
		Expect(meta).To(MatchRegexp(`^https://scim\.example\.com` + c.base + `/Users/[^/]+$`))
		Expect(loc).To(Equal(meta))

		By("the resource read back and the discovery documents say the same")
		id := path.Base(meta)
		r := lb.do("GET", "/Users/"+id, nil, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "scim.example.com")
		Expect(r.body["meta"]).To(HaveKeyWithValue("location", meta))
		r = lb.do("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", nil, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "scim.example.com")
		Expect(r.body["meta"]).To(HaveKeyWithValue("location", "https://scim.example.com"+c.base+"/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"))

		By("the proto alone keeps the request's host; a port in the forwarded host is kept")
		r = lb.do("GET", "/ServiceProviderConfig", nil, "X-Forwarded-Proto", "https")
		Expect(r.body["meta"]).To(HaveKeyWithValue("location", "https://"+host+c.base+"/ServiceProviderConfig"))
		r = lb.do("GET", "/ServiceProviderConfig", nil, "X-Forwarded-Proto", "HTTPS", "X-Forwarded-Host", "scim.example.com:8443")
		Expect(r.body["meta"]).To(HaveKeyWithValue("location", "https://scim.example.com:8443"+c.base+"/ServiceProviderConfig"))

		By("the last value is the one the trusted proxy wrote")
		r = lb.do("GET", "/ServiceProviderConfig", nil, "X-Forwarded-Proto", "http, https", "X-Forwarded-Host", "evil.example, scim.example.com")
		Expect(r.body["meta"]).To(HaveKeyWithValue("location", "https://scim.example.com"+c.base+"/ServiceProviderConfig"))

		By("without the headers, the connection's scheme and host")
		r = lb.do("GET", "/ServiceProviderConfig", nil)
		Expect(r.body["meta"]).To(HaveKeyWithValue("location", "http://"+host+c.base+"/ServiceProviderConfig"))

		By("malformed values are ignored, even from a trusted proxy")
		for _, bad := range [][2]string{
			{"ftp", "evil.example/path"}, {"javascript", "user@evil.example"}, {"https://", "evil.example?x=1"},
			{"", "evil.example#f"}, {"http s", "evil example"}, {"", `evil.example\x`},
		} {
			r = lb.do("GET", "/ServiceProviderConfig", nil, "X-Forwarded-Proto", bad[0], "X-Forwarded-Host", bad[1])
			Expect(r.body["meta"]).To(HaveKeyWithValue("location", "http://"+host+c.base+"/ServiceProviderConfig"), "%q", bad)
		}
	})

	It("ignores X-Forwarded-Proto and X-Forwarded-Host from a peer that is not a trusted proxy", func() {
		for _, o := range []scimserver.Options{{}, {TrustedProxies: []string{"10.63.0.0/16"}}} {
			s := newOwnServer(o)
			direct := s.from(c, "10.62.0.9:40000")
			spc, meta, loc := locations(direct, fmt.Sprintf("direct-%d@example.com", len(o.TrustedProxies)),
				"X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example")
			Expect(spc).To(Equal("http://" + host + c.base + "/ServiceProviderConfig"))
			Expect(meta).To(HavePrefix("http://" + host + c.base + "/Users/"))
			Expect(loc).To(Equal(meta))
		}
	})
})
