package scimserver_test

import (
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scim-operator/scim-operator/internal/scimserver"
)

// ownServer is a SCIM server of its own (its own failure limiter, options and logger)
// over the suite's manager, served on a loopback port, so that a spec can spend failure
// budgets without touching the suite's server.
type ownServer struct {
	srv  *scimserver.Server
	http *httptest.Server
}

func newOwnServer(o scimserver.Options) *ownServer {
	GinkgoHelper()
	o.Addr = "127.0.0.1:0"
	o.Client, o.APIReader, o.Cache = mgrClient, mgrReader, mgrCache
	s, err := scimserver.New(o)
	Expect(err).NotTo(HaveOccurred())
	hs := httptest.NewServer(s.Handler()) // httptest listens on 127.0.0.1
	DeferCleanup(hs.Close)
	return &ownServer{srv: s, http: hs}
}

// over returns c talking to this server over loopback HTTP.
func (s *ownServer) over(c *scimClient) *scimClient {
	cc := *c
	cc.url, cc.remoteAddr = s.http.URL, ""
	return &cc
}

// from returns c talking to this server's handler as if from peer (an "ip:port").
func (s *ownServer) from(c *scimClient, peer string) *scimClient {
	cc := *c
	cc.h, cc.remoteAddr = s.srv.Handler(), peer
	return &cc
}

// withToken returns a copy of c presenting tok.
func withToken(c *scimClient, tok string) *scimClient {
	cc := *c
	cc.token = tok
	return &cc
}

var _ = Describe("authentication throttling", func() {
	It("reproduces issue 8: 15 wrong tokens on one config's path lock out no valid token", func() {
		e := newEnv()
		s := newOwnServer(scimserver.Options{})
		example := s.over(e.config("example", "example-token"))
		second := s.over(e.config("second", "second-token"))

		Expect(second.do("GET", "/Users", nil).code).To(Equal(200), "second's valid token, before")
		By("15 GETs with a wrong token on example's path, all from 127.0.0.1")
		wrong := withToken(example, "not-the-token")
		var codes []int
		for range 15 {
			codes = append(codes, wrong.do("GET", "/Users", nil).code)
		}
		Expect(codes[:10]).To(HaveEach(401), "%v", codes)
		Expect(codes[10:]).To(HaveEach(429), "%v", codes)
		By("both valid tokens still answer 200 from the same address")
		Expect(second.do("GET", "/Users", nil).code).To(Equal(200), "second's valid token")
		Expect(example.do("GET", "/Users", nil).code).To(Equal(200), "example's valid token")
	})
})
