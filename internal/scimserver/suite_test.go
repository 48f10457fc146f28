package scimserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scimserver"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

var (
	testEnv   *envtest.Environment
	k8s       client.Client // direct (uncached) client for arranging and checking
	mgrClient client.Client // the manager's cached client
	mgrReader client.Reader
	mgrCache  cache.Cache
	srv       *scimserver.Server
	httpSrv   *httptest.Server
	cancelMgr context.CancelFunc
)

func TestSCIMServer(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "SCIM server suite")
}

var _ = BeforeSuite(func() {
	// the controllers run too (as shipped): a finalizer or status write they make takes
	// longer than Gomega's 1 s default on a loaded machine
	SetDefaultEventuallyTimeout(20 * time.Second)
	ctrl.SetLogger(logr.Discard())
	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(scimv1.AddToScheme(scheme)).To(Succeed())

	testEnv = testenv.New()
	cfg, err := testenv.Start(testEnv)
	Expect(err).NotTo(HaveOccurred())

	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// the manager as cmd/manager builds it (cache transforms, indexes, controllers and
	// backends included), its SCIM server served in-process by httptest
	mgr, err := manager.New(cfg, manager.Options{
		MetricsAddr: "0", ProbeAddr: "0", ScimAddr: "127.0.0.1:0", ScimInsecureHTTP: true,
		ScimMaxBodyBytes: 64 << 10,
	})
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	cancelMgr = cancel
	mgrClient, mgrReader, mgrCache = mgr.GetClient(), mgr.GetAPIReader(), mgr.GetCache()
	srv = mgr.SCIM
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	httpSrv = httptest.NewServer(srv.Handler())
})

var _ = AfterSuite(func() {
	if httpSrv != nil {
		httpSrv.Close()
	}
	if cancelMgr != nil {
		cancelMgr()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// env is one test's namespace with one or more ScimConfigs.
type env struct {
	ns string
}

func newEnv() *env {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "scim-"}}
	Expect(k8s.Create(context.Background(), ns)).To(Succeed())
	DeferCleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	return &env{ns: ns.Name}
}

type cfgOpt func(*scimv1.ScimConfig)

func withDomains(d ...string) cfgOpt {
	return func(c *scimv1.ScimConfig) { c.Spec.VerifiedDomains = d }
}

func disabled() cfgOpt {
	return func(c *scimv1.ScimConfig) { f := false; c.Spec.Enabled = &f }
}

// config creates a ScimConfig with a generated-token-style Secret and returns a client.
func (e *env) config(name, token string, opts ...cfgOpt) *scimClient {
	ctx := context.Background()
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: naming.TokenSecretName(name)},
		Data:       map[string][]byte{naming.TokenKey: []byte(token)},
	}
	Expect(k8s.Create(ctx, sec)).To(Succeed())
	c := &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec: scimv1.ScimConfigSpec{
			Organization: "acme",
			Backend:      scimv1.BackendSpec{Type: scimv1.BackendKubernetes},
		},
	}
	for _, o := range opts {
		o(c)
	}
	Expect(k8s.Create(ctx, c)).To(Succeed())
	sc := &scimClient{base: naming.BasePath(e.ns, name), token: token, ns: e.ns, config: name}
	// wait until the cache knows the config; the probe uses addresses of its own so that
	// its 401s while the cache catches up do not count against 127.0.0.1's failure budget
	probe := *sc
	Eventually(func() int {
		probeN++
		probe.remoteAddr = fmt.Sprintf("10.250.%d.%d:1", probeN/250%250, probeN%250+1)
		return probe.do("GET", "/ServiceProviderConfig", nil).code
	}).Should(Or(Equal(200), Equal(403)))
	return sc
}

var probeN int

type scimClient struct {
	base, token, ns, config string
	ua, contentType         string
	remoteAddr              string       // when set, requests go straight to the handler with this address
	url                     string       // the server's URL when not the suite's (loopback HTTP)
	h                       http.Handler // the handler remoteAddr requests go to when not the suite's
}

type resp struct {
	code   int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.code, r.raw) }

func (c *scimClient) do(method, path string, body any, headers ...string) resp {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		Expect(err).NotTo(HaveOccurred())
		rd = bytes.NewReader(j)
	}
	u := httpSrv.URL
	if c.url != "" {
		u = c.url
	}
	req, err := http.NewRequest(method, u+c.base+path, rd)
	Expect(err).NotTo(HaveOccurred())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if rd != nil {
		ct := c.contentType
		if ct == "" {
			ct = "application/scim+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	var code int
	var hdr http.Header
	var raw []byte
	if c.remoteAddr != "" {
		req.RemoteAddr = c.remoteAddr
		rec := httptest.NewRecorder()
		h := c.h
		if h == nil {
			h = srv.Handler()
		}
		h.ServeHTTP(rec, req)
		code, hdr, raw = rec.Code, rec.Header(), rec.Body.Bytes()
	} else {
		res, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer res.Body.Close()
		raw, err = io.ReadAll(res.Body)
		Expect(err).NotTo(HaveOccurred())
		code, hdr = res.StatusCode, res.Header
	}
	r := resp{code: code, header: hdr, raw: raw}
	if len(raw) > 0 {
		Expect(json.Unmarshal(raw, &r.body)).To(Succeed(), "response is not a JSON object: %s", raw)
		Expect(hdr.Get("Content-Type")).To(HavePrefix("application/scim+json"))
	}
	return r
}

// expectError asserts a SCIM error response.
func expectError(r resp, status int, scimType, detailSubstring string) {
	GinkgoHelper()
	Expect(r.code).To(Equal(status), "%s", r)
	Expect(r.body["schemas"]).To(ConsistOf("urn:ietf:params:scim:api:messages:2.0:Error"))
	Expect(r.body["status"]).To(Equal(fmt.Sprint(status)))
	if scimType != "" {
		Expect(r.body["scimType"]).To(Equal(scimType), "%s", r)
	} else {
		Expect(r.body).NotTo(HaveKey("scimType"))
	}
	Expect(r.body["detail"]).To(ContainSubstring(detailSubstring))
}

func members(ns, config string) []scimv1.OrgMember {
	var l scimv1.OrgMemberList
	Expect(k8s.List(context.Background(), &l, client.InNamespace(ns))).To(Succeed())
	var out []scimv1.OrgMember
	for _, m := range l.Items {
		if m.Spec.ConfigName == config {
			out = append(out, m)
		}
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

func resources(r resp) []map[string]any {
	var out []map[string]any
	l, _ := r.body["Resources"].([]any)
	for _, e := range l {
		out = append(out, e.(map[string]any))
	}
	return out
}

var _ = time.Second
