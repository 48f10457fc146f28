package scimserver_test

import (
	"context"
	"net/http/httptest"
	"reflect"
	"strings"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scimserver"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// lagging is the cached client of a replica whose informer has not seen the latest
// writes: Gets of the frozen objects answer their old copies.
type lagging struct {
	client.Client
	frozen map[types.NamespacedName]client.Object
}

func (l lagging) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if old, ok := l.frozen[key]; ok && reflect.TypeOf(old) == reflect.TypeOf(obj) {
		reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(old.DeepCopyObject()).Elem())
		return nil
	}
	return l.Client.Get(ctx, key, obj, opts...)
}

// onServer sends c's requests to another server (the suite's is restored afterwards).
func onServer(s *scimserver.Server) {
	hs := httptest.NewServer(s.Handler())
	orig := httpSrv
	httpSrv = hs
	DeferCleanup(func() { httpSrv = orig; hs.Close() })
}

func etagOf(r resp) string {
	GinkgoHelper()
	tag := r.header.Get("ETag")
	Expect(tag).To(MatchRegexp(`^W/"\d+-[0-9a-f]{8}"$`), "%s", r)
	return tag
}

// strong is the tag without its weakness indicator: W/"7" -> "7".
func strong(tag string) string { return strings.TrimPrefix(tag, "W/") }

var _ = Describe("ETags and conditional requests (issue 9, item 7)", func() {
	var c *scimClient
	BeforeEach(func() {
		c = newEnv().config("etags", "etags-token")
	})

	It("sends the ETag header whatever attributes the answer is cut to", func() {
		r := c.do("POST", "/Users", `{"userName":"proj@example.com"}`)
		Expect(r.code).To(Equal(201))
		id := str(r.body["id"])
		r = c.do("POST", "/Groups", `{"displayName":"proj","members":[{"value":"`+id+`"}]}`)
		Expect(r.code).To(Equal(201))
		gid, gtag := str(r.body["id"]), etagOf(r)
		tag := etagOf(c.do("GET", "/Users/"+id, nil)) // joining the group gave the user a new version
		for _, c2 := range []struct{ method, path, body, tag string }{
			{"GET", "/Users/" + id + "?excludedAttributes=meta", "", tag},
			{"GET", "/Users/" + id + "?excludedAttributes=meta,userName", "", tag},
			{"GET", "/Users/" + id + "?attributes=userName&excludedAttributes=meta", "", tag},
			{"GET", "/Users/" + id + "?excludedAttributes=meta.version", "", tag},
			{"HEAD", "/Users/" + id + "?excludedAttributes=meta", "", tag},
			{"GET", "/Groups/" + gid + "?excludedAttributes=meta,members", "", gtag},
			{"PATCH", "/Users/" + id + "?excludedAttributes=meta", `{"Operations":[{"op":"replace","path":"displayName","value":"P"}]}`, ""},
			{"PATCH", "/Groups/" + gid + "?excludedAttributes=meta", `{"Operations":[{"op":"replace","path":"displayName","value":"P2"}]}`, ""},
		} {
			var body any
			if c2.body != "" {
				body = c2.body
			}
			r := c.do(c2.method, c2.path, body)
			Expect(r.code).To(Equal(200), "%s %s: %s", c2.method, c2.path, r)
			if strings.Contains(c2.path, "meta.version") {
				Expect(r.body["meta"]).NotTo(HaveKey("version"))
			} else if c2.method != "HEAD" {
				Expect(r.body).To(HaveKey("id"))
				Expect(r.body).NotTo(HaveKey("meta"))
			}
			got := r.header.Get("ETag")
			if c2.tag != "" {
				Expect(got).To(Equal(c2.tag), "%s %s", c2.method, c2.path)
			} else {
				Expect(got).To(MatchRegexp(`^W/"\d+-[0-9a-f]{8}"$`), "%s %s", c2.method, c2.path)
				Expect(got).NotTo(Equal(tag))
				Expect(got).NotTo(Equal(gtag))
			}
		}
	})

	It("answers a GET whose If-None-Match holds the current ETag (or *) with 304", func() {
		r := c.do("POST", "/Users", `{"userName":"inm@example.com"}`)
		id, tag := str(r.body["id"]), etagOf(r)
		r = c.do("POST", "/Groups", `{"displayName":"inm"}`)
		gid, gtag := str(r.body["id"]), etagOf(r)
		for _, c2 := range []struct {
			method, path, ifNoneMatch string
			code                      int
		}{
			{"GET", "/Users/" + id, tag, 304},
			{"GET", "/Users/" + id, strong(tag), 304}, // weak comparison (RFC 7232 2.3.2)
			{"GET", "/Users/" + id, "*", 304},
			{"GET", "/Users/" + id, `W/"1", ` + tag, 304},
			{"GET", "/Users/" + id, `"1",` + strong(tag) + `,W/"2"`, 304},
			{"HEAD", "/Users/" + id, tag, 304},
			{"GET", "/Users/" + id + "?excludedAttributes=meta", tag, 304},
			{"GET", "/Groups/" + gid, gtag, 304},
			{"GET", "/Groups/" + gid, "*", 304},
			{"GET", "/Users/" + id, `W/"1"`, 200},
			{"GET", "/Users/" + id, `W/"1", W/"2"`, 200},
			{"GET", "/Users/" + id, gtag, 200},
			{"GET", "/Groups/" + gid, tag, 200},
			{"GET", "/Users?filter=" + q(`userName eq "inm@example.com"`), "*", 200}, // lists have no ETag
		} {
			r := c.do(c2.method, c2.path, nil, "If-None-Match", c2.ifNoneMatch)
			Expect(r.code).To(Equal(c2.code), "%s %s If-None-Match: %s: %s", c2.method, c2.path, c2.ifNoneMatch, r)
			switch c2.code {
			case 304:
				Expect(r.raw).To(BeEmpty())
				Expect(r.header.Get("ETag")).To(Or(Equal(tag), Equal(gtag)))
			case 200:
				if c2.method == "GET" {
					Expect(r.body).NotTo(BeEmpty())
				}
			}
		}
		By("a changed resource answers 200 with its new ETag")
		r = c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"displayName","value":"New"}]}`)
		Expect(r.code).To(Equal(200))
		r = c.do("GET", "/Users/"+id, nil, "If-None-Match", tag)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["displayName"]).To(Equal("New"))
		Expect(r.header.Get("ETag")).NotTo(Equal(tag))
		By("a missing resource is 404 whatever If-None-Match says")
		expectError(c.do("GET", "/Users/u-missing", nil, "If-None-Match", "*"), 404, "", "not found")
	})

	It("reads every tag of an If-Match list, and *", func() {
		r := c.do("POST", "/Users", `{"userName":"im@example.com"}`)
		id, tag := str(r.body["id"]), etagOf(r)
		patch := func(v string) string {
			return `{"Operations":[{"op":"replace","path":"displayName","value":"` + v + `"}]}`
		}
		r = c.do("PATCH", "/Users/"+id, patch("A"), "If-Match", `W/"1", `+tag)
		Expect(r.code).To(Equal(200), "%s", r)
		tag = etagOf(r)
		r = c.do("PATCH", "/Users/"+id, patch("B"), "If-Match", `"1" , `+strong(tag)+`, W/"2"`)
		Expect(r.code).To(Equal(200), "%s", r)
		tag = etagOf(r)
		expectError(c.do("PATCH", "/Users/"+id, patch("C"), "If-Match", `W/"1", W/"2"`), 412, "", "If-Match version is stale")
		r = c.do("PUT", "/Users/"+id, `{"userName":"im@example.com","displayName":"D"}`, "If-Match", `W/"1", `+tag)
		Expect(r.code).To(Equal(200), "%s", r)
		tag = etagOf(r)
		r = c.do("PATCH", "/Users/"+id, patch("E"), "If-Match", "*")
		Expect(r.code).To(Equal(200), "%s", r)
		tag = etagOf(r)
		Expect(c.do("GET", "/Users/"+id, nil).body["displayName"]).To(Equal("E"))

		r = c.do("POST", "/Groups", `{"displayName":"im"}`)
		gid, gtag := str(r.body["id"]), etagOf(r)
		expectError(c.do("DELETE", "/Groups/"+gid, nil, "If-Match", `W/"1", `+tag), 412, "", "stale")
		Expect(c.do("DELETE", "/Groups/"+gid, nil, "If-Match", `W/"1", `+gtag).code).To(Equal(204))
		expectError(c.do("DELETE", "/Users/"+id, nil, "If-Match", `W/"1", W/"2"`), 412, "", "stale")
		Expect(c.do("DELETE", "/Users/"+id, nil, "If-Match", `W/"1", `+tag).code).To(Equal(204))
		expectError(c.do("DELETE", "/Users/"+id, nil, "If-Match", "*"), 404, "", "not found")
	})

	It("checks If-Match against the API server, not a lagging cache", func() {
		ctx := context.Background()
		r := c.do("POST", "/Users", `{"userName":"lag@example.com"}`)
		id := str(r.body["id"])
		r = c.do("POST", "/Groups", `{"displayName":"lag","members":[{"value":"`+id+`"}]}`)
		gid := str(r.body["id"])
		var oldUser scimv1.OrgMember
		var oldGroup scimv1.OrgGroup
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: id}, &oldUser)).To(Succeed())
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: gid}, &oldGroup)).To(Succeed())
		gtag1 := `W/"` + scimstore.VersionOf(&oldGroup) + `"`
		r = c.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"replace","path":"displayName","value":"lag2"}]}`)
		gtag := etagOf(r)
		// (after the group's rename: a user's version covers the displayNames of its groups)
		r = c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"displayName","value":"U2"}]}`)
		utag := etagOf(r)

		lag, err := scimserver.New(scimserver.Options{
			Client: lagging{Client: mgrClient, frozen: map[types.NamespacedName]client.Object{
				{Namespace: c.ns, Name: id}: &oldUser, {Namespace: c.ns, Name: gid}: &oldGroup,
			}},
			APIReader: mgrReader, Log: logr.Discard(),
		})
		Expect(err).NotTo(HaveOccurred())
		onServer(lag)
		// (a user's version covers the groups it shows: the lagging replica's own answer
		// is the tag of the version its cache has)
		utag1 := c.do("GET", "/Users/"+id, nil).header.Get("ETag")
		Expect(utag1).NotTo(BeEmpty())
		Expect(utag1).NotTo(Equal(utag), "this replica's cache lags")

		By("users: the current ETag wins, the one the cache shows loses")
		expectError(c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"displayName","value":"X"}]}`, "If-Match", utag1), 412, "", "stale")
		r = c.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"displayName","value":"U3"}]}`, "If-Match", utag)
		Expect(r.code).To(Equal(200), "%s", r)
		utag = etagOf(r)
		r = c.do("PUT", "/Users/"+id, `{"userName":"lag@example.com","displayName":"U4"}`, "If-Match", utag)
		Expect(r.code).To(Equal(200), "%s", r)
		utag = etagOf(r)
		expectError(c.do("DELETE", "/Users/"+id, nil, "If-Match", utag1), 412, "", "stale")

		By("groups likewise")
		expectError(c.do("PATCH", "/Groups/"+gid, `{"Operations":[{"op":"replace","path":"displayName","value":"X"}]}`, "If-Match", gtag1), 412, "", "stale")
		expectError(c.do("DELETE", "/Groups/"+gid, nil, "If-Match", gtag1), 412, "", "stale")
		r = c.do("DELETE", "/Groups/"+gid, nil, "If-Match", gtag)
		Expect(r.code).To(Equal(204), "%s", r)
		var cur scimv1.OrgMember // leaving the group gave the user a version this replica has not seen
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: c.ns, Name: id}, &cur)).To(Succeed())
		Expect(`W/"` + scimstore.VersionOf(&cur) + `"`).NotTo(Equal(utag))
		expectError(c.do("DELETE", "/Users/"+id, nil, "If-Match", utag), 412, "", "stale")
		Expect(c.do("DELETE", "/Users/"+id, nil, "If-Match", `W/"`+scimstore.VersionOf(&cur)+`"`).code).To(Equal(204))
		Eventually(func() []scimv1.OrgMember { return members(c.ns, c.config) }).Should(BeEmpty())
	})
})
