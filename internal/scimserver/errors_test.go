package scimserver_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
)

var _ = Describe("concurrency", func() {
	It("gives exactly one 201 for concurrent POSTs of one userName", func() {
		c := newEnv().config("race", "race-token")
		const n = 12
		codes := make([]int, n)
		bodies := make([]resp, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer GinkgoRecover()
				<-start
				// vary the case: uniqueness is case-insensitive
				un := "Race@Example.com"
				if i%2 == 0 {
					un = strings.ToLower(un)
				}
				r := c.do("POST", "/Users", fmt.Sprintf(`{"userName":%q}`, un))
				codes[i], bodies[i] = r.code, r
			}(i)
		}
		close(start)
		wg.Wait()
		created := 0
		for i, code := range codes {
			switch code {
			case 201:
				created++
			case 409:
				Expect(bodies[i].body["scimType"]).To(Equal("uniqueness"))
			default:
				Fail("unexpected answer " + bodies[i].String())
			}
		}
		Expect(created).To(Equal(1))
		Expect(members(c.ns, c.config)).To(HaveLen(1))
	})
})

var _ = Describe("isolation between ScimConfigs", func() {
	var e *env
	var a, b *scimClient
	BeforeEach(func() {
		e = newEnv()
		a = e.config("alpha", "alpha-token")
		b = e.config("beta", "beta-token")
	})

	It("keeps the same userName apart and hides each config's users from the other", func() {
		ra := a.do("POST", "/Users", `{"userName":"same@example.com"}`)
		Expect(ra.code).To(Equal(201))
		rb := b.do("POST", "/Users", `{"userName":"same@example.com"}`)
		Expect(rb.code).To(Equal(201), "the same userName may exist in two configs")
		idA, idB := str(ra.body["id"]), str(rb.body["id"])
		Expect(idA).NotTo(Equal(idB))

		By("reading, changing and deleting the other config's id is 404")
		expectError(b.do("GET", "/Users/"+idA, nil), 404, "", "not found")
		expectError(b.do("PUT", "/Users/"+idA, `{"userName":"same@example.com","active":false}`), 404, "", "not found")
		expectError(b.do("PATCH", "/Users/"+idA, `{"Operations":[{"op":"replace","path":"active","value":false}]}`), 404, "", "not found")
		expectError(b.do("DELETE", "/Users/"+idA, nil), 404, "", "not found")
		var m scimv1.OrgMember
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: idA}, &m)).To(Succeed())
		Expect(m.Spec.Active).To(BeTrue())

		By("filters never cross configs")
		for _, f := range []string{`userName eq "same@example.com"`, `id eq "` + idA + `"`, `userName pr`} {
			r := b.do("GET", "/Users?filter="+q(f), nil)
			Expect(r.code).To(Equal(200))
			for _, u := range resources(r) {
				Expect(u["id"]).To(Equal(idB), f)
			}
		}

		By("groups of another config cannot take my users, nor be read")
		r := a.do("POST", "/Groups", `{"displayName":"ops","members":[{"value":"`+idA+`"}]}`)
		Expect(r.code).To(Equal(201))
		gidA := str(r.body["id"])
		expectError(b.do("GET", "/Groups/"+gidA, nil), 404, "", "not found")
		expectError(b.do("POST", "/Groups", `{"displayName":"ops2","members":[{"value":"`+idA+`"}]}`), 400, "invalidValue", "unknown member id(s): "+idA)
		expectError(b.do("PATCH", "/Groups/"+gidA, `{"Operations":[{"op":"add","path":"members","value":[{"value":"`+idB+`"}]}]}`), 404, "", "not found")

		By("crafted ids and paths")
		for _, id := range []string{"..%2F" + idA, "../beta/Users/" + idA, strings.ToUpper(idA), idA + "%00"} {
			r := b.do("GET", "/Users/"+id, nil)
			Expect(r.code).To(Or(Equal(404), Equal(400)), id)
		}
	})

	It("accepts a token only at its own config's path", func() {
		cross := &scimClient{base: a.base, token: "beta-token", remoteAddr: "10.1.0.1:1000"}
		expectError(cross.do("GET", "/Users", nil), 401, "", "not valid")
		r := cross.do("GET", "/Users", nil)
		Expect(r.header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
	})
})

var _ = Describe("errors", func() {
	var e *env
	var c *scimClient
	BeforeEach(func() {
		e = newEnv()
		c = e.config("errs", "errs-token", withDomains("example.com", "example.net"))
	})

	It("answers 401 with WWW-Authenticate for a missing or wrong token, and slows down repeated failures", func() {
		anon := &scimClient{base: c.base, remoteAddr: "10.9.0.1:1234"}
		r := anon.do("GET", "/Users", nil)
		expectError(r, 401, "", "bearer token is required")
		Expect(r.header.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
		wrong := &scimClient{base: c.base, token: "nope", remoteAddr: "10.9.0.2:1234"}
		expectError(wrong.do("GET", "/Users", nil), 401, "", "the bearer token is not valid for this SCIM endpoint")
		unknown := &scimClient{base: naming.BasePath(e.ns, "nosuchconfig"), token: "errs-token", remoteAddr: "10.9.0.3:1"}
		expectError(unknown.do("GET", "/Users", nil), 401, "", "not valid")

		By("the 11th failure in a row from one address on one path is 429, but the right token still works")
		for i := 0; i < 9; i++ {
			Expect(wrong.do("GET", "/Users", nil).code).To(Equal(401))
		}
		r = wrong.do("GET", "/Users", nil)
		expectError(r, 429, "", "too many failed authentication attempts")
		Expect(r.header.Get("Retry-After")).NotTo(BeEmpty())
		good := &scimClient{base: c.base, token: "errs-token", remoteAddr: "10.9.0.2:1234"}
		Expect(good.do("GET", "/Users", nil).code).To(Equal(200))
		other := &scimClient{base: c.base, token: "errs-token", remoteAddr: "10.9.0.4:1234"}
		Expect(other.do("GET", "/Users", nil).code).To(Equal(200))
	})

	It("answers 401, not 503, when the token Secret has lost its key", func() {
		ctx := context.Background()
		var s corev1.Secret
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: naming.TokenSecretName("errs")}, &s)).To(Succeed())
		delete(s.Data, naming.TokenKey)
		Expect(k8s.Update(ctx, &s)).To(Succeed())
		tok := &scimClient{base: c.base, token: "errs-token", remoteAddr: "10.7.0.1:1"}
		Eventually(func() int { return tok.do("GET", "/Users", nil).code }).WithTimeout(10 * time.Second).Should(Equal(401))
		expectError(tok.do("GET", "/Users", nil), 401, "", "not valid")
	})

	It("accepts the previous token during its grace period only", func() {
		ctx := context.Background()
		var s corev1.Secret
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: naming.TokenSecretName("errs")}, &s)).To(Succeed())
		s.Data[naming.TokenKey] = []byte("errs-token-2")
		s.Data[naming.PreviousTokenKey] = []byte("errs-token")
		s.Annotations = map[string]string{naming.AnnotationPreviousTokenExpires: "2999-01-01T00:00:00Z"}
		Expect(k8s.Update(ctx, &s)).To(Succeed())
		By("the new token works at once: a mismatch re-reads the Secret")
		newTok := &scimClient{base: c.base, token: "errs-token-2", remoteAddr: "10.8.0.1:1"}
		Eventually(func() int { return newTok.do("GET", "/Users", nil).code }).WithTimeout(5 * time.Second).Should(Equal(200))
		old := &scimClient{base: c.base, token: "errs-token", remoteAddr: "10.8.0.1:1"}
		Expect(old.do("GET", "/Users", nil).code).To(Equal(200))
		s.Annotations[naming.AnnotationPreviousTokenExpires] = "2000-01-01T00:00:00Z"
		Expect(k8s.Update(ctx, &s)).To(Succeed())
		expired := &scimClient{base: c.base, token: "errs-token", remoteAddr: "10.8.0.2:1"}
		n := 0
		Eventually(func() int {
			n++
			expired.remoteAddr = fmt.Sprintf("10.8.1.%d:1", n)
			return expired.do("GET", "/Users", nil).code
		}).WithTimeout(10 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal(401))
	})

	It("answers 403 for a disabled config", func() {
		d := e.config("off", "off-token", disabled())
		_ = d
		r := (&scimClient{base: d.base, token: "off-token"}).do("GET", "/Users", nil)
		expectError(r, 403, "", "SCIM provisioning is disabled")
	})

	It("validates users", func() {
		expectError(c.do("POST", "/Users", `{"userName":"eve@evil.com"}`), 400, "invalidValue",
			`userName "eve@evil.com" is not in a verified domain of this organization; allowed domains: example.com, example.net`)
		expectError(c.do("POST", "/Users", `{"userName":"no-at-sign"}`), 400, "invalidValue", "allowed domains: example.com, example.net")
		expectError(c.do("POST", "/Users", `{"displayName":"nobody"}`), 400, "invalidValue", "userName is required")
		expectError(c.do("POST", "/Users", `{"userName":"x@example.com","emails":[{"value":"a@example.com","primary":true},{"value":"b@example.com","primary":"True"}]}`),
			400, "invalidValue", "at most one of emails may be primary, 2 are")
		expectError(c.do("POST", "/Users", `{"userName":"x@example.com","active":"maybe"}`), 400, "invalidValue", "active must be a boolean")
		expectError(c.do("POST", "/Users", `{"userName":"x@example.com","urn:ietf:params:scim:schemas:extension:docker:2.0:User":{"dockerRole":"god"}}`),
			400, "invalidValue", "docker.role")
		expectError(c.do("POST", "/Users", `{"userName":`), 400, "invalidSyntax", "not valid JSON")
		expectError(c.do("POST", "/Users", `["a"]`), 400, "invalidSyntax", "must be a JSON object")
		expectError(c.do("POST", "/Users", `{"userName":"`+strings.Repeat("a", 70<<10)+`@example.com"}`), 413, "", "larger than 65536 bytes")
		Expect(members(e.ns, "errs")).To(BeEmpty())

		By("duplicate emails are folded; unknown attributes are ignored")
		r := c.do("POST", "/Users", `{"userName":"ok@example.com","favouriteColour":"blue","urn:example:custom:1.0:User":{"x":1},
			"emails":[{"value":"ok@example.com","type":"work"},{"value":"OK@example.com","type":"Work","primary":true}]}`)
		Expect(r.code).To(Equal(201), "%s", r)
		Expect(r.body["emails"]).To(ConsistOf(And(HaveKeyWithValue("value", "ok@example.com"), HaveKeyWithValue("primary", true))))
		Expect(r.body).NotTo(HaveKey("favouriteColour"))
	})

	It("answers 404, 405 and invalidFilter", func() {
		expectError(c.do("GET", "/Users/u-doesnotexist", nil), 404, "", `User "u-doesnotexist" not found`)
		expectError(c.do("GET", "/Widgets", nil), 404, "", `no SCIM resource "Widgets"`)
		r := c.do("POST", "/ServiceProviderConfig", `{}`)
		expectError(r, 405, "", "method not allowed")
		Expect(r.header.Get("Allow")).To(Equal("GET, HEAD"))
		expectError(c.do("DELETE", "/Schemas", nil), 405, "", "method not allowed")
		expectError(c.do("GET", "/Users?filter="+q(`userName eq`), nil), 400, "invalidFilter", "invalid filter")
		expectError(c.do("GET", "/Users?filter="+q(`userName zz "x"`), nil), 400, "invalidFilter", "invalid filter")
		expectError(c.do("GET", "/Users?count=abc", nil), 400, "invalidValue", "count must be an integer")
		expectError(c.do("PATCH", "/Users/u-x", `{"Operations":[{"op":"frobnicate","path":"active","value":true}]}`), 404, "", "not found")
	})

	It("enforces If-Match and answers ETags", func() {
		r := c.do("POST", "/Users", `{"userName":"etag@example.com"}`)
		id := str(r.body["id"])
		etag := r.header.Get("ETag")
		r = c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"displayName","value":"One"}]}`, "If-Match", etag)
		Expect(r.code).To(Equal(200), "%s", r)
		newTag := r.header.Get("ETag")
		Expect(newTag).NotTo(Equal(etag))
		r = c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"displayName","value":"Two"}]}`, "If-Match", etag)
		expectError(r, 412, "", "If-Match version is stale")
		r = c.do("PUT", "/Users/"+id, `{"userName":"etag@example.com","displayName":"Three"}`, "If-Match", etag)
		expectError(r, 412, "", "stale")
		expectError(c.do("DELETE", "/Users/"+id, nil, "If-Match", etag), 412, "", "stale")
		r = c.do("GET", "/Users/"+id, nil)
		Expect(r.body["displayName"]).To(Equal("One"))
		Expect(r.header.Get("ETag")).To(Equal(newTag))
		Expect(c.do("DELETE", "/Users/"+id, nil, "If-Match", newTag).code).To(Equal(204))
	})

	It("gives a group a new ETag for a members-only change, so a stale If-Match loses", func() {
		uid := str(c.do("POST", "/Users", `{"userName":"gm1@example.com"}`).body["id"])
		uid2 := str(c.do("POST", "/Users", `{"userName":"gm2@example.com"}`).body["id"])
		r := c.do("POST", "/Groups", `{"displayName":"etag-group"}`)
		Expect(r.code).To(Equal(201))
		gid, etag := str(r.body["id"]), r.header.Get("ETag")
		add := func(id string) string {
			return `{"Operations":[{"op":"add","path":"members","value":[{"value":"` + id + `"}]}]}`
		}
		r = c.do("PATCH", "/Groups/"+gid, add(uid), "If-Match", etag)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.header.Get("ETag")).NotTo(Equal(etag), "a members-only change is a new version")
		expectError(c.do("PATCH", "/Groups/"+gid, add(uid2), "If-Match", etag), 412, "", "stale")
		Expect(members(e.ns, "errs")).To(HaveLen(2))
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(HaveLen(1), "the stale change added nobody")
	})

	It("refuses unknown group members and invalid member filters", func() {
		r := c.do("POST", "/Groups", `{"displayName":"g1"}`)
		Expect(r.code).To(Equal(201))
		gid := str(r.body["id"])
		expectError(c.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"add","path":"members","value":[{"value":"u-ghost"}]}]}`),
			400, "invalidValue", "unknown member id(s): u-ghost")
		expectError(c.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"remove","path":"members[display eq \"x\"]"}]}`),
			400, "invalidFilter", `member filters must have the form value eq "<id>"`)
		expectError(c.do("POST", "/Groups", `{"displayName":"G1"}`), 409, "uniqueness", `a group with displayName "G1" already exists`)
		expectError(c.do("POST", "/Groups", `{"members":[]}`), 400, "invalidValue", "displayName is required")
		By("removing an unknown member succeeds (idempotent)")
		Expect(c.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"remove","path":"members[value eq \"u-ghost\"]"}]}`).code).To(Equal(200))
	})

	It("supports renames without breaking uniqueness", func() {
		r := c.do("POST", "/Users", `{"userName":"old@example.com"}`)
		id := str(r.body["id"])
		r = c.do("POST", "/Users", `{"userName":"other@example.com"}`)
		other := str(r.body["id"])
		r = c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"userName","value":"new@example.com"}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		expectError(c.do("POST", "/Users", `{"userName":"NEW@example.com"}`), 409, "uniqueness", "already exists")
		expectError(c.do("PATCH", "/Users/"+other, `{"Operations":[{"op":"replace","path":"userName","value":"new@example.com"}]}`), 409, "uniqueness", "already exists")
		expectError(c.do("PATCH", "/Users/"+other, `{"Operations":[{"op":"replace","path":"userName","value":"x@elsewhere.org"}]}`), 400, "invalidValue", "allowed domains")
		By("the old userName is free again")
		r = c.do("POST", "/Users", `{"userName":"old@example.com"}`)
		Expect(r.code).To(Equal(201), "%s", r)
		Expect(str(r.body["id"])).NotTo(Equal(id))
	})
})
