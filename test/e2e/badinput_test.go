package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// The bad-input battery: requests an identity provider should never send, and some an
// attacker would, against the real manager binary over real HTTP. Every row states the
// exact answer (status, scimType, Allow) and is followed by a check that no OrgMember or
// OrgGroup of any tenant changed (same names, same resourceVersions).
//
// Three tenants: A (<nsA>/example) acts in every row unless the row says otherwise;
// B (<nsA>/second) shares A's namespace; C (<nsC>/example) has A's config name in another
// namespace, so that ids derived from (config name, userName) coincide across them.

const schemaError = "urn:ietf:params:scim:api:messages:2.0:Error"

// tenant is one ScimConfig with the users and groups the battery created in it.
type tenant struct {
	ns, name, token string
	ids             map[string]string // userName or displayName -> id
}

func (t tenant) path() string { return "/scim/v2/" + t.ns + "/" + t.name }

// row is one request of the battery and its one right answer.
type row struct {
	method string
	// path relative to the acting tenant's base path ("Users/{A.alice}"), or absolute
	// when it starts with "/" (sent as written: no cleaning, no re-encoding).
	path   string
	body   string
	header map[string]string
	// as is the tenant whose token is presented ("A" when empty); "none" sends none;
	// anything else starting with "raw:" is sent as the whole Authorization header.
	as string

	status   int
	scimType string
	allow    string // the Allow header a 405 carries
	// noSCIMBody: the answer comes from Go's HTTP server before any SCIM code runs
	// (431 for an over-long request line), so it has no SCIM body.
	noSCIMBody bool
	// check inspects a 2xx answer (filters that must not reach another tenant).
	check func(body map[string]any)
}

type battery struct {
	addr    string
	tenants map[string]*tenant
	subst   *strings.Replacer
	before  map[string]string
	// srcIP hands out loopback source addresses, so that authentication failures of one
	// row never throttle another (the failure limiter counts per client).
	srcIP atomic.Int32
}

// rawDo sends a request exactly as written (method, request-target, headers, body) from
// a loopback source address and returns the status, headers and body.
func (b *battery) rawDo(src, method, target string, hdr http.Header, body []byte) (int, http.Header, []byte) {
	tr := &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}).DialContext,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: certs.CA.Pool(), MinVersion: tls.VersionTLS12},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, method, "https://"+b.addr+"/", strings.NewReader(string(body)))
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	req.URL = &url.URL{Scheme: "https", Host: b.addr, Opaque: target}
	if !strings.HasPrefix(target, "/") {
		req.URL.Opaque = "/" + target
	}
	if q := strings.Index(req.URL.Opaque, "?"); q >= 0 {
		req.URL.Opaque, req.URL.RawQuery = req.URL.Opaque[:q], req.URL.Opaque[q+1:]
	}
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	ExpectWithOffset(2, err).NotTo(HaveOccurred(), "%s %s", method, target)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	return resp.StatusCode, resp.Header, raw
}

// snapshot is every OrgMember and OrgGroup of the battery's namespaces with its
// resourceVersion, read from the API server.
func (b *battery) snapshot() map[string]string {
	out := map[string]string{}
	seen := map[string]bool{}
	for _, t := range b.tenants {
		if seen[t.ns] {
			continue
		}
		seen[t.ns] = true
		var ms scimv1.OrgMemberList
		ExpectWithOffset(2, cluster.Client.List(ctx, &ms, client.InNamespace(t.ns))).To(Succeed())
		for _, m := range ms.Items {
			out["OrgMember "+m.Namespace+"/"+m.Name] = m.ResourceVersion
		}
		var gs scimv1.OrgGroupList
		ExpectWithOffset(2, cluster.Client.List(ctx, &gs, client.InNamespace(t.ns))).To(Succeed())
		for _, g := range gs.Items {
			out["OrgGroup "+g.Namespace+"/"+g.Name] = g.ResourceVersion
		}
	}
	return out
}

// settle waits until the controllers are done with the battery's objects (the snapshot
// stays the same for two seconds) and remembers it.
func (b *battery) settle() {
	var last map[string]string
	stableSince := time.Now()
	EventuallyWithOffset(1, func() time.Duration {
		s := b.snapshot()
		if !equalSnapshots(s, last) {
			last, stableSince = s, time.Now()
		}
		return time.Since(stableSince)
	}, readyTimeout, 250*time.Millisecond).Should(BeNumerically(">=", 2*time.Second))
	b.before = last
}

func (b *battery) run(r row) {
	method, target := r.method, b.subst.Replace(r.path)
	if !strings.HasPrefix(target, "/") {
		target = b.tenants["A"].path() + "/" + target
	}
	hdr := http.Header{"Content-Type": {"application/scim+json"}}
	src := "127.0.0.1"
	switch {
	case r.as == "" || b.tenants[r.as] != nil:
		as := r.as
		if as == "" {
			as = "A"
		}
		hdr.Set("Authorization", "Bearer "+b.tenants[as].token)
	case strings.HasPrefix(r.as, "raw:"):
		hdr.Set("Authorization", b.subst.Replace(strings.TrimPrefix(r.as, "raw:")))
	}
	if r.status == http.StatusUnauthorized {
		src = fmt.Sprintf("127.0.1.%d", b.srcIP.Add(1))
	}
	for k, v := range r.header {
		hdr.Set(k, v)
	}
	// A failed row must not fail the rows after it: whatever it changed is undone (what
	// it created is deleted) and the state it left is the new baseline.
	defer func() {
		if after := b.snapshot(); !equalSnapshots(after, b.before) {
			b.repair(after)
		}
	}()
	code, h, raw := b.rawDo(src, method, target, hdr, []byte(b.subst.Replace(r.body)))
	shown := string(raw)
	if len(shown) > 400 {
		shown = shown[:400] + "..."
	}
	Expect(code).To(Equal(r.status), "%s %s answered %d: %s", method, target, code, shown)
	if r.allow != "" || code == http.StatusMethodNotAllowed {
		Expect(h.Get("Allow")).To(Equal(r.allow), "Allow of %s %s", method, target)
	}
	if code == http.StatusUnauthorized {
		Expect(h.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
	}
	switch {
	case r.noSCIMBody:
	case method == http.MethodHead:
		Expect(raw).To(BeEmpty(), "HEAD has no body")
	case code >= 400:
		Expect(h.Get("Content-Type")).To(HavePrefix("application/scim+json"), "%s", shown)
		var e map[string]any
		Expect(json.Unmarshal(raw, &e)).To(Succeed(), "a SCIM error body: %s", shown)
		Expect(e["schemas"]).To(Equal([]any{schemaError}), "%s", shown)
		Expect(e["status"]).To(Equal(strconv.Itoa(code)), "status is a string: %s", shown)
		if r.scimType == "" {
			Expect(e).NotTo(HaveKey("scimType"), "%s", shown)
		} else {
			Expect(e["scimType"]).To(Equal(r.scimType), "%s", shown)
		}
		Expect(e["detail"]).To(BeAssignableToTypeOf(""), "%s", shown)
		Expect(e["detail"]).NotTo(BeEmpty(), "%s", shown)
	case r.check != nil:
		var body map[string]any
		Expect(json.Unmarshal(raw, &body)).To(Succeed(), "%s", shown)
		r.check(body)
	}
	Expect(b.snapshot()).To(Equal(b.before), "nothing changed after %s %s", method, target)
}

func equalSnapshots(a, b map[string]string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// repair deletes the objects a failed row created and settles again.
func (b *battery) repair(after map[string]string) {
	for k := range after {
		if _, ok := b.before[k]; ok {
			continue
		}
		kind, key, _ := strings.Cut(k, " ")
		ns, name, _ := strings.Cut(key, "/")
		var obj client.Object = &scimv1.OrgMember{}
		if kind == "OrgGroup" {
			obj = &scimv1.OrgGroup{}
		}
		obj.SetNamespace(ns)
		obj.SetName(name)
		Expect(client.IgnoreNotFound(cluster.Client.Delete(ctx, obj))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(cluster.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj))
		}, readyTimeout).Should(BeTrue(), "%s is gone", k)
	}
	b.settle()
}

// onlyOwn checks a list answer: none of its resources belongs to another tenant.
func onlyOwn(b *battery, want int) func(map[string]any) {
	return func(body map[string]any) {
		own := map[string]bool{}
		for _, id := range b.tenants["A"].ids {
			own[id] = true
		}
		res, _ := body["Resources"].([]any)
		for _, r := range res {
			id, _ := r.(map[string]any)["id"].(string)
			Expect(own).To(HaveKey(id), "a resource of another tenant: %v", r)
		}
		Expect(body["totalResults"]).To(BeEquivalentTo(want), "%v", body)
	}
}

// exactly checks a list answer: A's resource of that key and nothing else.
func exactly(b *battery, key string) func(map[string]any) {
	return func(body map[string]any) {
		Expect(body["totalResults"]).To(BeEquivalentTo(1), "%v", body)
		res, _ := body["Resources"].([]any)
		Expect(res).To(HaveLen(1))
		Expect(res[0].(map[string]any)["id"]).To(Equal(b.tenants["A"].ids[key]))
	}
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func orTerms(n int) string {
	terms := make([]string, n)
	for i := range terms {
		terms[i] = fmt.Sprintf(`userName eq "u%d@example.com"`, i)
	}
	return strings.Join(terms, " or ")
}

// secondConfig creates a copy of the sample ScimConfig under another name.
func secondConfig(ns, name string) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "scim_v1alpha1_scimconfig.yaml"))
	Expect(err).NotTo(HaveOccurred())
	docs := strings.Split(string(raw), "\n---\n")
	var cfg scimv1.ScimConfig
	Expect(yaml.Unmarshal([]byte(docs[len(docs)-1]), &cfg)).To(Succeed())
	Expect(cfg.Kind).To(Equal("ScimConfig"))
	cfg.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: name}
	Expect(cluster.Client.Create(ctx, &cfg)).To(Succeed())
}

func readyTenant(ns, name string) *tenant {
	cfg, err := devenv.WaitReady(ctx, cluster.Client, types.NamespacedName{Namespace: ns, Name: name}, readyTimeout)
	Expect(err).NotTo(HaveOccurred())
	tok, err := devenv.Token(ctx, cluster.Client, cfg)
	Expect(err).NotTo(HaveOccurred())
	return &tenant{ns: ns, name: name, token: tok, ids: map[string]string{}}
}

func (b *battery) create(t *tenant, kind, body, key string) {
	hdr := http.Header{"Content-Type": {"application/scim+json"}, "Authorization": {"Bearer " + t.token}}
	code, _, raw := b.rawDo("127.0.0.1", "POST", t.path()+"/"+kind, hdr, []byte(body))
	ExpectWithOffset(1, code).To(Equal(201), "%s", raw)
	var res map[string]any
	ExpectWithOffset(1, json.Unmarshal(raw, &res)).To(Succeed())
	t.ids[key] = res["id"].(string)
}

func user(name string) string {
	b, _ := json.Marshal(name)
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":` + string(b) + `,"active":true}`
}

func group(name string, members ...string) string {
	ms := make([]string, len(members))
	for i, m := range members {
		ms[i] = `{"value":"` + m + `"}`
	}
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"` + name + `","members":[` + strings.Join(ms, ",") + `]}`
}

// batteryRows are the rows of every kind of bad input but the method matrix.
func batteryRows(b *battery) []TableEntry {
	const noID = "u-00000000000000000000000000000000"
	big := `{"userName":"big@example.com","displayName":"` + strings.Repeat("x", 3<<20) + `"}`
	bigPatch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"` + strings.Repeat("x", 3<<20) + `"}]}`
	e := func(name string, r row) TableEntry { return Entry(name, r) }
	rows := []TableEntry{
		// --- malformed and truncated JSON: 400 invalidSyntax -------------------------
		e("empty body", row{method: "POST", path: "Users", body: "", status: 400, scimType: "invalidSyntax"}),
		e("white space only", row{method: "POST", path: "Users", body: " \n\t ", status: 400, scimType: "invalidSyntax"}),
		e("truncated object", row{method: "POST", path: "Users", body: `{"userName":"t@example.com"`, status: 400, scimType: "invalidSyntax"}),
		e("truncated string", row{method: "POST", path: "Users", body: `{"userName":"t@exa`, status: 400, scimType: "invalidSyntax"}),
		e("lone brace", row{method: "POST", path: "Users", body: `{`, status: 400, scimType: "invalidSyntax"}),
		e("trailing garbage", row{method: "POST", path: "Users", body: `{"userName":"t@example.com"} x`, status: 400, scimType: "invalidSyntax"}),
		e("two objects", row{method: "POST", path: "Users", body: `{"userName":"t@example.com"}{"userName":"u@example.com"}`, status: 400, scimType: "invalidSyntax"}),
		e("trailing comma", row{method: "POST", path: "Users", body: `{"userName":"t@example.com",}`, status: 400, scimType: "invalidSyntax"}),
		e("single quotes", row{method: "POST", path: "Users", body: `{'userName':'t@example.com'}`, status: 400, scimType: "invalidSyntax"}),
		e("a JSON array", row{method: "POST", path: "Users", body: `[{"userName":"t@example.com"}]`, status: 400, scimType: "invalidSyntax"}),
		e("JSON null", row{method: "POST", path: "Users", body: `null`, status: 400, scimType: "invalidSyntax"}),
		e("a JSON string", row{method: "POST", path: "Users", body: `"t@example.com"`, status: 400, scimType: "invalidSyntax"}),
		e("a byte-order mark", row{method: "POST", path: "Users", body: "\xef\xbb\xbf" + `{"userName":"t@example.com"}`, status: 400, scimType: "invalidSyntax"}),
		e("invalid UTF-8", row{method: "POST", path: "Users", body: `{"userName":"t` + "\xff\xfe" + `@example.com"}`, status: 400, scimType: "invalidSyntax"}),
		e("a lone surrogate escape", row{method: "POST", path: "Users", body: `{"userName":"t\ud800@example.com"}`, status: 400, scimType: "invalidSyntax"}),
		e("a duplicate attribute", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","userName":"u@example.com"}`, status: 400, scimType: "invalidSyntax"}),
		e("a duplicate attribute in another case", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","USERNAME":"u@example.com"}`, status: 400, scimType: "invalidSyntax"}),
		e("a number out of range", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","x":1e999}`, status: 400, scimType: "invalidSyntax"}),
		e("truncated PATCH", row{method: "PATCH", path: "Users/{A.alice}", body: `{"Operations":[{"op":"replace","path":"active","value":false}`, status: 400, scimType: "invalidSyntax"}),
		e("truncated PUT", row{method: "PUT", path: "Users/{A.alice}", body: `{"userName":"alice@example.com","active":fal`, status: 400, scimType: "invalidSyntax"}),
		e("truncated search", row{method: "POST", path: ".search", body: `{"filter":"userName pr"`, status: 400, scimType: "invalidSyntax"}),
		e("truncated group", row{method: "POST", path: "Groups", body: `{"displayName":"x","members":[{"value":"{A.alice}"}`, status: 400, scimType: "invalidSyntax"}),

		// --- wrong types: 400 invalidValue for a resource attribute (RFC 7643 2.3), -----
		// 400 invalidSyntax for a message (PatchOp, SearchRequest) that does not parse.
		e("userName a number", row{method: "POST", path: "Users", body: `{"userName":42}`, status: 400, scimType: "invalidValue"}),
		e("userName a boolean", row{method: "POST", path: "Users", body: `{"userName":true}`, status: 400, scimType: "invalidValue"}),
		e("userName a list", row{method: "POST", path: "Users", body: `{"userName":["t@example.com"]}`, status: 400, scimType: "invalidValue"}),
		e("userName an object", row{method: "POST", path: "Users", body: `{"userName":{"value":"t@example.com"}}`, status: 400, scimType: "invalidValue"}),
		e("userName null", row{method: "POST", path: "Users", body: `{"userName":null}`, status: 400, scimType: "invalidValue"}),
		e("userName empty", row{method: "POST", path: "Users", body: `{"userName":"  "}`, status: 400, scimType: "invalidValue"}),
		e("active a string", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","active":"yes"}`, status: 400, scimType: "invalidValue"}),
		e("active a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","active":1}`, status: 400, scimType: "invalidValue"}),
		e("displayName a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","displayName":7}`, status: 400, scimType: "invalidValue"}),
		e("externalId a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","externalId":7}`, status: 400, scimType: "invalidValue"}),
		e("name a string", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","name":"Tess"}`, status: 400, scimType: "invalidValue"}),
		e("name.givenName a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","name":{"givenName":7}}`, status: 400, scimType: "invalidValue"}),
		e("emails a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","emails":42}`, status: 400, scimType: "invalidValue"}),
		e("emails.value a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","emails":[{"value":42}]}`, status: 400, scimType: "invalidValue"}),
		e("emails.primary a string", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","emails":[{"value":"t@example.com","primary":"yes"}]}`, status: 400, scimType: "invalidValue"}),
		e("employeeNumber a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":7}}`, status: 400, scimType: "invalidValue"}),
		e("manager a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":7}}`, status: 400, scimType: "invalidValue"}),
		e("manager.value a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":7}}}`, status: 400, scimType: "invalidValue"}),
		e("dockerRole a number", row{method: "POST", path: "Users", body: `{"userName":"t@example.com","urn:ietf:params:scim:schemas:extension:docker:2.0:User":{"dockerRole":7}}`, status: 400, scimType: "invalidValue"}),
		e("PUT userName a number", row{method: "PUT", path: "Users/{A.alice}", body: `{"userName":42}`, status: 400, scimType: "invalidValue"}),
		e("PATCH userName a number", row{method: "PATCH", path: "Users/{A.alice}", body: `{"Operations":[{"op":"replace","path":"userName","value":42}]}`, status: 400, scimType: "invalidValue"}),
		e("PATCH path-less userName a number", row{method: "PATCH", path: "Users/{A.alice}", body: `{"Operations":[{"op":"replace","value":{"userName":42}}]}`, status: 400, scimType: "invalidValue"}),
		e("PATCH active a number", row{method: "PATCH", path: "Users/{A.alice}", body: `{"Operations":[{"op":"replace","path":"active","value":0}]}`, status: 400, scimType: "invalidValue"}),
		e("PATCH Operations an object", row{method: "PATCH", path: "Users/{A.alice}", body: `{"Operations":{"op":"replace"}}`, status: 400, scimType: "invalidSyntax"}),
		e("PATCH op a number", row{method: "PATCH", path: "Users/{A.alice}", body: `{"Operations":[{"op":7,"path":"active","value":false}]}`, status: 400, scimType: "invalidSyntax"}),
		e("PATCH path a number", row{method: "PATCH", path: "Users/{A.alice}", body: `{"Operations":[{"op":"replace","path":7,"value":false}]}`, status: 400, scimType: "invalidSyntax"}),
		e("group displayName a number", row{method: "POST", path: "Groups", body: `{"displayName":42}`, status: 400, scimType: "invalidValue"}),
		e("group members a number", row{method: "POST", path: "Groups", body: `{"displayName":"x","members":42}`, status: 400, scimType: "invalidValue"}),
		e("group member value a number", row{method: "POST", path: "Groups", body: `{"displayName":"x","members":[{"value":42}]}`, status: 400, scimType: "invalidValue"}),
		e("PATCH group displayName a number", row{method: "PATCH", path: "Groups/{A.ops}", body: `{"Operations":[{"op":"replace","path":"displayName","value":42}]}`, status: 400, scimType: "invalidValue"}),
		e("search count a string", row{method: "POST", path: "Users/.search", body: `{"count":"10"}`, status: 400, scimType: "invalidSyntax"}),
		e("search filter a number", row{method: "POST", path: "Users/.search", body: `{"filter":42}`, status: 400, scimType: "invalidSyntax"}),
		e("search attributes a string", row{method: "POST", path: "Users/.search", body: `{"attributes":"userName"}`, status: 400, scimType: "invalidSyntax"}),
		e("count not a number", row{method: "GET", path: "Users?count=ten", status: 400, scimType: "invalidValue"}),
		e("count beyond int64", row{method: "GET", path: "Users?count=99999999999999999999", status: 400, scimType: "invalidValue"}),
		e("startIndex a fraction", row{method: "GET", path: "Users?startIndex=1.5", status: 400, scimType: "invalidValue"}),
		e("sortOrder unknown", row{method: "GET", path: "Users?sortBy=userName&sortOrder=sideways", status: 400, scimType: "invalidValue"}),

		// --- sizes and depths --------------------------------------------------------------
		e("a 3 MB POST", row{method: "POST", path: "Users", body: big, status: 413}),
		e("a 3 MB PUT", row{method: "PUT", path: "Users/{A.alice}", body: big, status: 413}),
		e("a 3 MB PATCH", row{method: "PATCH", path: "Users/{A.alice}", body: bigPatch, status: 413}),
		e("a 3 MB search", row{method: "POST", path: ".search", body: `{"filter":"` + strings.Repeat("x", 3<<20) + `"}`, status: 413}),
		e("JSON nested 100,000 deep", row{method: "POST", path: "Users", body: `{"userName":"deep@example.com","x":` + nested(100000) + `}`, status: 400, scimType: "invalidSyntax"}),
		e("JSON nested 1,000 deep", row{method: "POST", path: "Users", body: `{"userName":"deep@example.com","x":` + nested(1000) + `}`, status: 400, scimType: "invalidSyntax"}),
		e("objects nested 1,000 deep", row{method: "POST", path: "Users", body: `{"userName":"deep@example.com","x":` + strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000) + `}`, status: 400, scimType: "invalidSyntax"}),
		e("a PATCH value nested 1,000 deep", row{method: "PATCH", path: "Users/{A.alice}", body: `{"Operations":[{"op":"add","value":{"x":` + nested(1000) + `}}]}`, status: 400, scimType: "invalidSyntax"}),
		e("a search nested 1,000 deep", row{method: "POST", path: ".search", body: `{"filter":"userName pr","x":` + nested(1000) + `}`, status: 400, scimType: "invalidSyntax"}),
		e("a 20,000-term filter in a search", row{method: "POST", path: "Users/.search", body: `{"filter":` + strconv.Quote(orTerms(20000)) + `}`, status: 400, scimType: "invalidFilter"}),
		e("a 20,000-term filter at the root search", row{method: "POST", path: ".search", body: `{"filter":` + strconv.Quote(orTerms(20000)) + `}`, status: 400, scimType: "invalidFilter"}),
		// The request line and headers may take 1 MiB, so even this URL reaches the SCIM
		// code and is answered like the .search rows above.
		e("a 20,000-term filter in a URL", row{method: "GET", path: "Users?filter=" + url.QueryEscape(orTerms(20000)), status: 400, scimType: "invalidFilter"}),
		// odd but valid, and within the filter length
		e("a filter nested 2,000 deep", row{method: "GET", path: "Users?filter=" + url.QueryEscape(strings.Repeat("(", 2000)+"userName pr"+strings.Repeat(")", 2000)), status: 200, check: onlyOwn(b, 4)}),
		e("a filter of 4,097 characters", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`userName eq "`+strings.Repeat("a", 4097-len(`userName eq ""`))+`"`), status: 400, scimType: "invalidFilter"}),
		e("a filter with an unknown operator", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`userName zz "a"`), status: 400, scimType: "invalidFilter"}),
		e("a filter cut short", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`userName eq "a" and`), status: 400, scimType: "invalidFilter"}),
		e("a filter with an unclosed bracket", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`emails[type eq "work"`), status: 400, scimType: "invalidFilter"}),

		// --- userNames equal to an existing one under naming.NameKey: 409 uniqueness, and a
		// filter finds the existing user (docs/scim.md, "What is equal") -------------------
		e("ß after ss", row{method: "POST", path: "Users", body: user("straße@example.com"), status: 409, scimType: "uniqueness"}),
		e("capital ẞ after ss", row{method: "POST", path: "Users", body: user("STRAẞE@EXAMPLE.COM"), status: 409, scimType: "uniqueness"}),
		e("fullwidth letters", row{method: "POST", path: "Users", body: user("ｓｔｒａｓｓｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"), status: 409, scimType: "uniqueness"}),
		e("a combining acute after a precomposed é", row{method: "POST", path: "Users", body: user("jose\u0301@example.com"), status: 409, scimType: "uniqueness"}),
		e("an upper-case É", row{method: "POST", path: "Users", body: user("JOSÉ@EXAMPLE.COM"), status: 409, scimType: "uniqueness"}),
		e("a dotless ı", row{method: "POST", path: "Users", body: user("jıll@example.com"), status: 409, scimType: "uniqueness"}),
		e("a dotted İ", row{method: "POST", path: "Users", body: user("JİLL@EXAMPLE.COM"), status: 409, scimType: "uniqueness"}),
		e("a zero-width space", row{method: "POST", path: "Users", body: user("ji\u200bll@example.com"), status: 409, scimType: "uniqueness"}),
		e("a right-to-left override", row{method: "POST", path: "Users", body: user("\u202ejill@example.com"), status: 409, scimType: "uniqueness"}),
		e("a rename by PATCH to a folded duplicate", row{method: "PATCH", path: "Users/{A.jill}", body: `{"Operations":[{"op":"replace","path":"userName","value":"STRAẞE@example.com"}]}`, status: 409, scimType: "uniqueness"}),
		e("a rename by PUT to a folded duplicate", row{method: "PUT", path: "Users/{A.jill}", body: user("ｊｏｓé@example.com"), status: 409, scimType: "uniqueness"}),
		e("a group displayName in fullwidth", row{method: "POST", path: "Groups", body: group("ＯＰＳ"), status: 409, scimType: "uniqueness"}),
		e("a NUL in a userName", row{method: "POST", path: "Users", body: user("jill\u0000@example.com"), status: 400, scimType: "invalidValue"}),
		e("a line break in a userName", row{method: "POST", path: "Users", body: user("jill\n@example.com"), status: 400, scimType: "invalidValue"}),
		e("a userName of invisible characters", row{method: "POST", path: "Users", body: user("\u200b\u200d"), status: 400, scimType: "invalidValue"}),
		e("a filter for ẞ finds ss", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`userName eq "STRAẞE@EXAMPLE.COM"`), status: 200, check: exactly(b, "strasse@example.com")}),
		e("a filter for ı finds i", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`userName eq "jıll@example.com"`), status: 200, check: exactly(b, "jill@example.com")}),
		e("a filter in fullwidth with a combining acute finds é", row{method: "POST", path: "Users/.search", body: `{"filter":"userName eq \"ｊｏｓｅ\u0301@example.com\""}`, status: 200, check: exactly(b, "jos\u00e9@example.com")}),
		e("a filter for a fullwidth group", row{method: "GET", path: "Groups?filter=" + url.QueryEscape(`displayName eq "ＯＰＳ"`), status: 200, check: exactly(b, "ops")}),

		// --- path traversal and crafted ids: 404, never another tenant's object --------------
		e("../ in an id", row{method: "GET", path: "Users/../../second/Users/{B.bob}", status: 404}),
		e("encoded ../ in an id", row{method: "GET", path: "Users/%2e%2e%2f%2e%2e%2fsecond%2fUsers%2f{B.bob}", status: 404}),
		e("encoded ../ to another namespace", row{method: "GET", path: "Users/%2e%2e%2f%2e%2e%2f%2e%2e%2f{nsC}%2fexample%2fUsers%2f{C.carol}", status: 404}),
		e("an encoded .. alone", row{method: "GET", path: "Users/%2e%2e", status: 404}),
		e("a NUL in an id", row{method: "GET", path: "Users/{A.alice}%00", status: 404}),
		e("a NUL alone", row{method: "GET", path: "Users/%00", status: 404}),
		e("a NUL before ../", row{method: "DELETE", path: "Users/%00%2f..%2f{A.alice}", status: 404}),
		e("an upper-cased id", row{method: "GET", path: "Users/{A.alice.upper}", status: 404}),
		e("an id of 300 characters", row{method: "GET", path: "Users/u-" + strings.Repeat("a", 298), status: 404}),
		e("a non-ASCII id", row{method: "GET", path: "Users/u-%C3%A9", status: 404}),
		e("PUT through ../", row{method: "PUT", path: "Users/..%2f..%2fsecond%2fUsers%2f{B.bob}", body: user("bob@example.com"), status: 404}),
		e("PATCH through ../", row{method: "PATCH", path: "Users/..%2f..%2fsecond%2fUsers%2f{B.bob}", body: `{"Operations":[{"op":"replace","path":"active","value":false}]}`, status: 404}),
		e("DELETE through ../", row{method: "DELETE", path: "Users/..%2f..%2fsecond%2fUsers%2f{B.bob}", status: 404}),
		e("../ out of the base path", row{method: "GET", path: "/scim/v2/{nsA}/example/../second/Users", status: 404}),
		e("../ out of the base path, as the other tenant", row{method: "GET", path: "/scim/v2/{nsA}/example/../second/Users", as: "B", status: 401}),
		e("../ out of the namespace", row{method: "GET", path: "/scim/v2/{nsA}/example/../../{nsC}/example/Users", status: 404}),
		e("a Group id as a User id", row{method: "GET", path: "Users/{A.ops}", status: 404}),
		e("a User id as a Group id", row{method: "GET", path: "Groups/{A.alice}", status: 404}),

		// --- tokens of another ScimConfig, and no token: 401 --------------------------------
		e("B's token on A's path", row{method: "GET", path: "Users", as: "B", status: 401}),
		e("C's token on A's path (same config name, other namespace)", row{method: "GET", path: "Users", as: "C", status: 401}),
		e("A's token on B's path", row{method: "GET", path: "/scim/v2/{nsA}/second/Users", status: 401}),
		e("A's token on C's path", row{method: "GET", path: "/scim/v2/{nsC}/example/Users/{C.carol}", status: 401}),
		e("A's token on B's path, writing", row{method: "DELETE", path: "/scim/v2/{nsA}/second/Users/{B.bob}", status: 401}),
		e("no Authorization header", row{method: "GET", path: "Users", as: "none", status: 401}),
		e("a Basic Authorization header", row{method: "GET", path: "Users", as: "raw:Basic {A.token}", status: 401}),
		e("A's token with a character more", row{method: "GET", path: "Users", as: "raw:Bearer {A.token}x", status: 401}),

		// --- crafted ids and filters reaching another tenant's members ------------------------
		e("B's user id", row{method: "GET", path: "Users/{B.bob}", status: 404}),
		e("C's user id", row{method: "GET", path: "Users/{C.carol}", status: 404}),
		e("B's group id", row{method: "GET", path: "Groups/{B.ops}?attributes=members", status: 404}),
		e("PUT on B's user", row{method: "PUT", path: "Users/{B.bob}", body: user("bob@example.com"), status: 404}),
		e("PATCH on B's group", row{method: "PATCH", path: "Groups/{B.ops}", body: `{"Operations":[{"op":"add","path":"members","value":[{"value":"{A.alice}"}]}]}`, status: 404}),
		e("DELETE of C's user", row{method: "DELETE", path: "Users/{C.carol}", status: 404}),
		e("B's user into A's group", row{method: "PATCH", path: "Groups/{A.ops}", body: `{"Operations":[{"op":"add","path":"members","value":[{"value":"{B.bob}"}]}]}`, status: 400, scimType: "invalidValue"}),
		e("C's user into A's group", row{method: "PATCH", path: "Groups/{A.ops}", body: `{"Operations":[{"op":"add","path":"members","value":[{"value":"{C.carol}"}]}]}`, status: 400, scimType: "invalidValue"}),
		e("B's user into a new group of A", row{method: "POST", path: "Groups", body: group("stolen", "{B.bob}"), status: 400, scimType: "invalidValue"}),
		e("B's user into A's group by PUT", row{method: "PUT", path: "Groups/{A.ops}", body: group("ops", "{A.alice}", "{B.bob}"), status: 400, scimType: "invalidValue"}),
		e("removing B's user from A's group changes nothing", row{method: "PATCH", path: "Groups/{A.ops}", body: `{"Operations":[{"op":"remove","path":"members[value eq \"{B.bob}\"]"}]}`, status: 200}),
		e("filter by B's id", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`id eq "{B.bob}"`), status: 200, check: onlyOwn(b, 0)}),
		e("filter by C's id", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`id eq "{C.carol}"`), status: 200, check: onlyOwn(b, 0)}),
		e("filter by B's userName", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`userName eq "bob@example.com"`), status: 200, check: onlyOwn(b, 0)}),
		e("filter by B's id or anything", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`id eq "{B.bob}" or userName pr`), status: 200, check: onlyOwn(b, 4)}),
		e("filter by B's group", row{method: "GET", path: "Users?filter=" + url.QueryEscape(`groups.value eq "{B.ops}"`), status: 200, check: onlyOwn(b, 0)}),
		e("filter on B's location", row{method: "POST", path: ".search", body: `{"filter":"meta.location co \"second\""}`, status: 200, check: onlyOwn(b, 0)}),
		e("filter by B's group id", row{method: "GET", path: "Groups?filter=" + url.QueryEscape(`id eq "{B.ops}"`), status: 200, check: onlyOwn(b, 0)}),
		e("filter on members of B's group", row{method: "GET", path: "Groups?filter=" + url.QueryEscape(`members.value eq "{B.bob}"`), status: 200, check: onlyOwn(b, 0)}),
		e("an If-Match of B's version", row{method: "DELETE", path: "Users/{B.bob}", header: map[string]string{"If-Match": "*"}, status: 404}),
		e("a PATCH of a nonexistent id", row{method: "PATCH", path: "Users/" + noID, body: `{"Operations":[{"op":"replace","path":"active","value":false}]}`, status: 404}),
	}
	return rows
}

// routeRows: every method on every route. Allowed methods answer what they answer for an
// empty body and an id that does not exist; the others 405 with Allow.
func routeRows() []TableEntry {
	const uid, gid = "u-00000000000000000000000000000000", "g-00000000000000000000000000000000"
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "get"}
	type answer struct {
		code     int
		scimType string
	}
	ok := answer{code: 200}
	empty := answer{400, "invalidSyntax"}
	gone := answer{code: 404}
	routes := []struct {
		path    string
		allowed map[string]answer // nil: 404 for every method
		allow   string
	}{
		{"Users", map[string]answer{"GET": ok, "HEAD": ok, "POST": empty}, "GET, HEAD, POST"},
		{"Users/" + uid, map[string]answer{"GET": gone, "HEAD": gone, "PUT": empty, "PATCH": empty, "DELETE": gone}, "GET, HEAD, PUT, PATCH, DELETE"},
		{"Users/.search", map[string]answer{"POST": empty}, "POST"},
		{"Groups", map[string]answer{"GET": ok, "HEAD": ok, "POST": empty}, "GET, HEAD, POST"},
		{"Groups/" + gid, map[string]answer{"GET": gone, "HEAD": gone, "PUT": empty, "PATCH": empty, "DELETE": gone}, "GET, HEAD, PUT, PATCH, DELETE"},
		{"Groups/.search", map[string]answer{"POST": empty}, "POST"},
		{".search", map[string]answer{"POST": empty}, "POST"},
		{"ServiceProviderConfig", map[string]answer{"GET": ok, "HEAD": ok}, "GET, HEAD"},
		{"ResourceTypes", map[string]answer{"GET": ok, "HEAD": ok}, "GET, HEAD"},
		{"ResourceTypes/User", map[string]answer{"GET": ok, "HEAD": ok}, "GET, HEAD"},
		{"Schemas", map[string]answer{"GET": ok, "HEAD": ok}, "GET, HEAD"},
		{"Schemas/urn:ietf:params:scim:schemas:core:2.0:Group", map[string]answer{"GET": ok, "HEAD": ok}, "GET, HEAD"},
		{"", nil, ""},
		{"Widgets", nil, ""},
		{"Users/" + uid + "/extra", nil, ""},
	}
	var out []TableEntry
	for _, rt := range routes {
		for _, m := range methods {
			r := row{method: m, path: rt.path}
			a, allowed := rt.allowed[m]
			switch {
			case rt.allowed == nil:
				r.status = 404
			case allowed:
				r.status, r.scimType = a.code, a.scimType
			default:
				r.status, r.allow = 405, rt.allow
			}
			out = append(out, Entry(fmt.Sprintf("%s /%s", m, rt.path), r))
		}
	}
	return out
}

var _ = Describe("bad input, black box", Ordered, ContinueOnFailure, func() {
	b := &battery{tenants: map[string]*tenant{}}

	BeforeAll(func() {
		b.addr = mgr.SCIMAddr
		nsA, _, _ := readyConfig()
		secondConfig(nsA, "second")
		nsC, _, _ := readyConfig()
		b.tenants["A"] = readyTenant(nsA, "example")
		b.tenants["B"] = readyTenant(nsA, "second")
		b.tenants["C"] = readyTenant(nsC, "example")
		A, B, C := b.tenants["A"], b.tenants["B"], b.tenants["C"]
		for _, u := range []string{"alice@example.com", "strasse@example.com", "jos\u00e9@example.com", "jill@example.com"} {
			b.create(A, "Users", user(u), u)
		}
		b.create(A, "Groups", group("ops", A.ids["alice@example.com"]), "ops")
		b.create(B, "Users", user("bob@example.com"), "bob@example.com")
		b.create(B, "Groups", group("ops", B.ids["bob@example.com"]), "ops")
		b.create(C, "Users", user("alice@example.com"), "alice@example.com")
		b.create(C, "Users", user("carol@example.com"), "carol@example.com")
		b.create(C, "Groups", group("ops", C.ids["carol@example.com"]), "ops")
		var pairs []string
		for n, t := range b.tenants {
			pairs = append(pairs, "{"+n+".token}", t.token)
			for k, id := range t.ids {
				short, _, _ := strings.Cut(k, "@")
				pairs = append(pairs, "{"+n+"."+short+"}", id, "{"+n+"."+short+".upper}", strings.ToUpper(id))
			}
		}
		pairs = append(pairs, "{nsA}", nsA, "{nsC}", nsC)
		b.subst = strings.NewReplacer(pairs...)
		b.settle()
		keys := make([]string, 0, len(b.before))
		for k := range b.before {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		GinkgoWriter.Printf("battery objects:\n  %s\n", strings.Join(keys, "\n  "))
	})

	DescribeTable("answers the right 4xx with a SCIM error body and changes nothing", b.run, batteryRows(b))

	DescribeTable("every HTTP method on every route", b.run, routeRows())

	It("keeps apart what is not equal: accents, and look-alike letters of other scripts", func() {
		A := b.tenants["A"]
		hdr := http.Header{"Authorization": {"Bearer " + A.token}}
		for _, u := range []string{"jose@example.com", "\u0430lice@example.com"} { // Cyrillic а
			b.create(A, "Users", user(u), u)
			code, _, raw := b.rawDo("127.0.0.1", "DELETE", A.path()+"/Users/"+A.ids[u], hdr, nil)
			Expect(code).To(Equal(204), "%s", raw)
			delete(A.ids, u)
		}
	})
})
