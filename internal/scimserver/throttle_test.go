package scimserver_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/scim-operator/scim-operator/internal/naming"
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

// exhaust spends c's failure budget (10 failures) with a wrong token and checks that the
// next failure is throttled; it returns that 429.
func exhaust(c *scimClient, headers ...string) resp {
	GinkgoHelper()
	wrong := withToken(c, "wrong-"+c.token)
	for i := range 10 {
		Expect(wrong.do("GET", "/Users", nil, headers...).code).To(Equal(401), "failure %d", i+1)
	}
	r := wrong.do("GET", "/Users", nil, headers...)
	expectError(r, 429, "", "too many failed authentication attempts")
	return r
}

// throttledCount reads scim_auth_throttled_total{namespace,config} from the manager's
// metrics registry.
func throttledCount(ns, config string) float64 {
	GinkgoHelper()
	mfs, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, mf := range mfs {
		if mf.GetName() != "scim_auth_throttled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if len(l) == 2 && l["namespace"] == ns && l["config"] == config {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// logCapture is a logger that keeps every line it is given (V(1) included) as JSON.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCapture) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, obj)
	}, funcr.Options{Verbosity: 10})
}

func (l *logCapture) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// entries returns the captured lines whose msg contains substr, decoded.
func (l *logCapture) entries(substr string) []map[string]any {
	GinkgoHelper()
	var out []map[string]any
	for _, line := range l.all() {
		var m map[string]any
		Expect(json.Unmarshal([]byte(line), &m)).To(Succeed(), line)
		if strings.Contains(fmt.Sprint(m["msg"]), substr) {
			out = append(out, m)
		}
	}
	return out
}

var _ = Describe("authentication throttling", func() {
	var e *env
	var a, b *scimClient
	BeforeEach(func() {
		e = newEnv()
		a = e.config("alpha", "alpha-token")
		b = e.config("beta", "beta-token")
	})

	It("keeps each ScimConfig's failure budget apart (per-config isolation)", func() {
		s := newOwnServer(scimserver.Options{})
		const peer = "10.60.0.1:40000"
		exhaust(s.from(a, peer))
		By("the same address failing on another config's path is still within that budget")
		expectError(withToken(s.from(b, peer), "wrong").do("GET", "/Users", nil), 401, "", "not valid")
		By("and a failing path that names no ScimConfig has a budget of its own too")
		ghost := &scimClient{base: naming.BasePath(e.ns, "ghost"), token: "alpha-token"}
		expectError(s.from(ghost, peer).do("GET", "/Users", nil), 401, "", "not valid")
		By("valid tokens of both configs pass from the throttled address")
		Expect(s.from(a, peer).do("GET", "/Users", nil).code).To(Equal(200))
		Expect(s.from(b, peer).do("GET", "/Users", nil).code).To(Equal(200))
		By("and the throttled pair stays throttled")
		Expect(withToken(s.from(a, peer), "wrong").do("GET", "/Users", nil).code).To(Equal(429))
	})

	It("keeps each client's failure budget apart (per-client isolation)", func() {
		s := newOwnServer(scimserver.Options{})
		exhaust(s.from(a, "10.61.0.1:40000"))
		By("another address failing on the same path is within its own budget")
		expectError(withToken(s.from(a, "10.61.0.2:40000"), "wrong").do("GET", "/Users", nil), 401, "", "not valid")
		By("another port of the throttled address is the same client")
		Expect(withToken(s.from(a, "10.61.0.1:40001"), "wrong").do("GET", "/Users", nil).code).To(Equal(429))
	})

	It("answers throttled failures 429 with a SCIM error body and Retry-After, whatever the failure", func() {
		s := newOwnServer(scimserver.Options{})
		const peer = "10.64.0.1:40000"
		r := exhaust(s.from(a, peer))
		Expect(r.header.Get("Content-Type")).To(HavePrefix("application/scim+json"))
		Expect(r.header.Get("WWW-Authenticate")).To(BeEmpty())
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		Expect(err).NotTo(HaveOccurred(), "Retry-After is delta-seconds: %q", r.header.Get("Retry-After"))
		Expect(secs).To(BeNumerically(">=", 1))
		Expect(secs).To(BeNumerically("<=", 2))
		Expect(r.body["detail"]).To(ContainSubstring(fmt.Sprintf("retry after %d seconds", secs)))
		By("a missing token counts as a failure on the same path")
		anon := withToken(s.from(a, peer), "")
		r = anon.do("GET", "/Users", nil)
		expectError(r, 429, "", "too many failed authentication attempts")
		Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
		By("a path naming no ScimConfig throttles exactly like an existing one")
		ghost := s.from(&scimClient{base: naming.BasePath(e.ns, "ghost"), token: "ghost-token"}, peer)
		r = exhaust(ghost)
		Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
	})

	It("ignores X-Forwarded-For without trusted proxies (the default)", func() {
		s := newOwnServer(scimserver.Options{})
		c := s.from(a, "10.62.0.1:40000")
		wrong := withToken(c, "wrong")
		for i := range 10 {
			Expect(wrong.do("GET", "/Users", nil, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1)).code).To(Equal(401))
		}
		By("a fresh forwarded address does not buy a fresh budget")
		r := wrong.do("GET", "/Users", nil, "X-Forwarded-For", "203.0.113.99")
		expectError(r, 429, "", "too many failed authentication attempts")
	})

	It("ignores X-Forwarded-For from a peer that is not a trusted proxy", func() {
		s := newOwnServer(scimserver.Options{TrustedProxies: []string{"10.63.0.0/16"}})
		wrong := withToken(s.from(a, "10.62.0.2:40000"), "wrong")
		for i := range 10 {
			Expect(wrong.do("GET", "/Users", nil, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1)).code).To(Equal(401))
		}
		Expect(wrong.do("GET", "/Users", nil, "X-Forwarded-For", "203.0.113.99").code).To(Equal(429))
	})

	It("keys on the forwarded client when the peer is a trusted proxy", func() {
		s := newOwnServer(scimserver.Options{TrustedProxies: []string{"10.63.0.0/16", "fd00::/8"}})
		lb := s.from(a, "10.63.0.9:40000")
		exhaust(lb, "X-Forwarded-For", "203.0.113.7")
		By("another client behind the same proxy has its own budget")
		wrong := withToken(lb, "wrong")
		expectError(wrong.do("GET", "/Users", nil, "X-Forwarded-For", "203.0.113.8"), 401, "", "not valid")
		By("the client's valid token passes through the proxy")
		Expect(lb.do("GET", "/Users", nil, "X-Forwarded-For", "203.0.113.7").code).To(Equal(200))
		By("entries the client prepended itself are ignored: the rightmost untrusted hop is the client")
		Expect(wrong.do("GET", "/Users", nil, "X-Forwarded-For", "198.51.100.1, 203.0.113.7").code).To(Equal(429))
		By("trusted hops are skipped, with or without ports")
		Expect(wrong.do("GET", "/Users", nil, "X-Forwarded-For", "203.0.113.7:5555, 10.63.1.1").code).To(Equal(429))
		Expect(s.from(withToken(a, "wrong"), "[fd00::1]:40000").do("GET", "/Users", nil, "X-Forwarded-For", "203.0.113.7").code).To(Equal(429))
		By("without the header, the trusted proxy itself is the client")
		expectError(wrong.do("GET", "/Users", nil), 401, "", "not valid")
	})

	It("counts throttled failures in scim_auth_throttled_total by namespace and config", func() {
		s := newOwnServer(scimserver.Options{})
		const peer = "10.65.0.1:40000"
		before := throttledCount(e.ns, "alpha")
		beforeB := throttledCount(e.ns, "beta")
		beforeUnknown := throttledCount("", "")
		exhaust(s.from(a, peer))
		wrong := withToken(s.from(a, peer), "wrong")
		Expect(wrong.do("GET", "/Users", nil).code).To(Equal(429))
		Expect(wrong.do("GET", "/Users", nil).code).To(Equal(429))
		By("401s and valid requests are not counted")
		Expect(s.from(a, peer).do("GET", "/Users", nil).code).To(Equal(200))
		Expect(throttledCount(e.ns, "alpha") - before).To(Equal(3.0))
		Expect(throttledCount(e.ns, "beta")).To(Equal(beforeB))
		By("a path naming no ScimConfig counts without labels (its names are the client's)")
		exhaust(s.from(&scimClient{base: naming.BasePath(e.ns, "ghost-"+e.ns), token: "x"}, peer))
		Expect(throttledCount("", "") - beforeUnknown).To(Equal(1.0))
		Expect(throttledCount(e.ns, "ghost-"+e.ns)).To(BeZero())
	})

	It("logs throttling once per episode with config and client, and never a token", func() {
		logs := &logCapture{}
		s := newOwnServer(scimserver.Options{Log: logs.logger()})
		const peer = "10.66.0.1:40000"
		const secretish = "wrong-token-that-must-not-be-logged"
		c := s.from(a, peer)
		Expect(c.do("GET", "/Users", nil).code).To(Equal(200))
		wrong := withToken(c, secretish)
		for range 10 {
			Expect(wrong.do("GET", "/Users", nil).code).To(Equal(401))
		}
		for range 3 {
			Expect(wrong.do("GET", "/Users", nil).code).To(Equal(429))
		}
		Expect(withToken(c, "").do("GET", "/Users", nil).code).To(Equal(429))

		By("one Info line at the start of the episode names config, client and reason")
		var info []map[string]any
		for _, m := range logs.entries("throttled") {
			if m["level"] == 0.0 {
				info = append(info, m)
			}
		}
		Expect(info).To(HaveLen(1), "%v", logs.all())
		Expect(info[0]).To(HaveKeyWithValue("namespace", e.ns))
		Expect(info[0]).To(HaveKeyWithValue("config", "alpha"))
		Expect(info[0]).To(HaveKeyWithValue("client", "10.66.0.1"))
		Expect(info[0]).To(HaveKeyWithValue("reason", "wrong token"))
		Expect(logs.entries("throttled")).To(HaveLen(4), "later refusals log at V(1)")
		Expect(logs.entries("SCIM authentication failed")).To(HaveLen(10))

		By("no line carries a token or the Authorization header")
		lines := logs.all()
		Expect(len(lines)).To(BeNumerically(">", 15))
		for _, line := range lines {
			Expect(line).NotTo(ContainSubstring(secretish))
			Expect(line).NotTo(ContainSubstring("alpha-token"))
			Expect(strings.ToLower(line)).NotTo(ContainSubstring("bearer "))
			Expect(strings.ToLower(line)).NotTo(ContainSubstring("authorization"))
		}
	})
})
