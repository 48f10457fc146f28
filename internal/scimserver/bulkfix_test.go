package scimserver_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scimserver"
)

// expectBulkTrue asserts the Bulk answer's promise: every 200/201 POST, PUT or PATCH
// names a location that resolves, with the version GET answers now; every failed POST
// left nothing behind at its location (it has none).
func expectBulkTrue(c *scimClient, ops []map[string]any) {
	GinkgoHelper()
	for _, o := range ops {
		st := str(o["status"])
		switch {
		case o["method"] == "DELETE":
		case st == "200" || st == "201":
			g := c.do("GET", str(o["location"])[len(httpSrv.URL+c.base):], nil)
			Expect(g.code).To(Equal(200), "answered %v, GET %s", o, g)
			Expect(o["version"]).To(Equal(g.header.Get("ETag")), "answered %v, GET %s", o, g)
		case o["method"] == "POST":
			Expect(o).NotTo(HaveKey("location"), "a failed POST %v", o)
		}
	}
}

// live are the members not being deleted (a deleted member keeps its finalizer until
// the controller has deprovisioned it).
func live(ms []scimv1.OrgMember) []string {
	var out []string
	for _, m := range ms {
		if m.DeletionTimestamp == nil {
			out = append(out, m.Spec.UserName)
		}
	}
	return out
}

func patchName(path, name string) op {
	return op{"method": "PATCH", "path": path, "data": map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": name}}}}
}

// failingDelete fails the first delete it is asked for, as an API server timing out would.
type failingDelete struct {
	client.Client
	n atomic.Int32
}

func (f *failingDelete) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	if f.n.Add(1) == 1 {
		return context.DeadlineExceeded
	}
	return f.Client.Delete(ctx, o, opts...)
}

// failingPatch fails every patch, as an API server refusing updates would.
type failingPatch struct{ client.Client }

func (f failingPatch) Patch(context.Context, client.Object, client.Patch, ...client.PatchOption) error {
	return context.DeadlineExceeded
}

var _ = Describe("Bulk review findings (issue 9 item 8)", func() {
	var c *scimClient
	BeforeEach(func() {
		c = newEnv().config("bulkfix", "bulkfix-token")
	})

	It("finding 1: completes a cycle-broken POST before anything outside the cycle sees it", func() {
		By("probe A: a group refers to a cycle member")
		ops := bulkOps(c.bulk(0,
			userWithManager("a", "a@example.com", "bulkId:b"),
			groupOf("g", "team", "bulkId:a"),
			userWithManager("b", "b@example.com", "bulkId:a"),
		))
		Expect(ops).To(HaveLen(3))
		for _, o := range ops {
			Expect(o).To(And(HaveKeyWithValue("status", "201"), Not(HaveKey("response"))), "%v", o)
		}
		a, g, b := idOf(ops[0]), idOf(ops[1]), idOf(ops[2])
		ra := c.do("GET", "/Users/"+a, nil)
		Expect(ra.body[entSchema]).To(HaveKeyWithValue("manager", HaveKeyWithValue("value", b)))
		Expect(c.do("GET", "/Groups/"+g, nil).body["members"]).To(ContainElement(HaveKeyWithValue("value", a)))
		Expect(ops[0]["version"]).To(Equal(ra.header.Get("ETag")))
		expectBulkTrue(c, ops)

		By("probe B: a PATCH of a cycle member runs on the completed resource")
		ops = bulkOps(c.bulk(0,
			userWithManager("a2", "a2@example.com", "bulkId:b2"),
			patchName("/Users/bulkId:a2", "A"),
			userWithManager("b2", "b2@example.com", "bulkId:a2"),
		))
		Expect(ops).To(HaveLen(3))
		for _, o := range ops {
			Expect(o).To(And(HaveKeyWithValue("status", Or(Equal("200"), Equal("201"))), Not(HaveKey("response"))), "%v", o)
		}
		ra = c.do("GET", "/Users/"+idOf(ops[0]), nil)
		Expect(ra.body).To(HaveKeyWithValue("displayName", "A"))
		Expect(ra.body[entSchema]).To(HaveKeyWithValue("manager", HaveKeyWithValue("value", idOf(ops[2]))))
		expectBulkTrue(c, ops)
	})

	It("finding 1: a completion that fails takes the cycle-broken resource back out, and what refers to it", func() {
		s, err := scimserver.New(scimserver.Options{Client: failingPatch{mgrClient}, APIReader: mgrReader, Log: logr.Discard()})
		Expect(err).NotTo(HaveOccurred())
		hs := httptest.NewServer(s.Handler())
		defer hs.Close()
		fc := &scimClient{base: c.base, token: "bulkfix-token", url: hs.URL}
		ops := bulkOps(fc.bulk(0,
			userWithManager("a", "a@example.com", "bulkId:b"),
			userWithManager("b", "b@example.com", "bulkId:a"),
		))
		Expect(ops).To(HaveLen(2))
		Expect(ops[0]["status"]).NotTo(HavePrefix("2"), "%v", ops[0])
		Expect(ops[0]).NotTo(HaveKey("location"))
		expectOpError(ops[1], 409, "", `bulkId "a"`)
		Expect(ops[1]).NotTo(HaveKey("location"))
		for _, m := range members(c.ns, c.config) {
			Expect(m.DeletionTimestamp).NotTo(BeNil(), "%s is left", m.Spec.UserName)
		}
	})

	It("finding 2: an unbreakable cycle behind a breakable one leaves nothing created", func() {
		ops := bulkOps(c.bulk(0,
			userWithManager("a", "a@example.com", "bulkId:b"),
			user("b", "b@example.com", "displayName", "bulkId:c"),
			user("c", "c@example.com", "displayName", "bulkId:b"),
		))
		Expect(ops).To(HaveLen(3))
		for _, o := range ops {
			expectOpError(o, 409, "", "")
		}
		expectBulkTrue(c, ops)
		Expect(live(members(c.ns, c.config))).To(BeEmpty())
	})

	It("finding 3: failOnErrors never takes back what an answered operation depends on", func() {
		ops := bulkOps(c.bulk(1,
			userWithManager("a", "a@example.com", "bulkId:b"),
			groupOf("g", "team", "bulkId:a"),
			op{"method": "PATCH", "path": "/Users/bulkId:a", "data": map[string]any{
				"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "bogus", "path": "displayName", "value": "x"}}}},
			userWithManager("b", "b@example.com", "bulkId:a"),
		))
		expectBulkTrue(c, ops)
		for _, o := range ops {
			if o["bulkId"] == "g" && o["status"] == "201" {
				g := c.do("GET", "/Groups/"+idOf(o), nil)
				Expect(g.body["members"]).To(HaveLen(1), "%s", g)
			}
		}
	})

	It("finding 3: failOnErrors reached inside a cycle takes the whole cycle back", func() {
		ops := bulkOps(c.bulk(1,
			userWithManager("a", "a@example.com", "bulkId:b"),
			op{"method": "POST", "path": "/Users", "bulkId": "b", "data": map[string]any{
				"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User", entSchema},
				entSchema: map[string]any{"manager": map[string]any{"value": "bulkId:a"}}}}, // no userName
			user("after", "after@example.com"),
		))
		Expect(ops).To(HaveLen(2), "%v", ops)
		expectOpError(ops[0], 409, "", `bulkId "b"`)
		expectOpError(ops[1], 400, "invalidValue", "")
		expectBulkTrue(c, ops)
		Expect(live(members(c.ns, c.config))).To(BeEmpty())
	})

	It("finding 5: runs in request order, so failOnErrors stops where the client expects", func() {
		ops := bulkOps(c.bulk(1,
			userWithManager("a", "a@example.com", "bulkId:b"),
			groupOf("g", "team", "bulkId:a"),
			op{"method": "DELETE", "path": "/Users/nope"},
			userWithManager("b", "b@example.com", "bulkId:a"),
		))
		// b runs as part of resolving a (a needs it), so it is answered, in its request place
		Expect(ops).To(HaveLen(4), "%v", ops)
		Expect(ops[0]).To(And(HaveKeyWithValue("bulkId", "a"), HaveKeyWithValue("status", "201")))
		Expect(ops[1]).To(And(HaveKeyWithValue("bulkId", "g"), HaveKeyWithValue("status", "201")))
		expectOpError(ops[2], 404, "", "")
		Expect(ops[3]).To(And(HaveKeyWithValue("bulkId", "b"), HaveKeyWithValue("status", "201")))
		expectBulkTrue(c, ops)

		ops = bulkOps(c.bulk(1,
			user("x", "x@example.com"),
			op{"method": "DELETE", "path": "/Users/nope"},
			userWithManager("y", "y@example.com", "bulkId:x"),
		))
		Expect(ops).To(HaveLen(2))
		Expect(members(c.ns, c.config)).To(HaveLen(3)) // a, b, x
	})

	It("finding 4: takes back a cycle-broken POST even when the first delete fails", func() {
		fd := &failingDelete{Client: mgrClient}
		s, err := scimserver.New(scimserver.Options{Client: fd, APIReader: mgrReader, Log: logr.Discard()})
		Expect(err).NotTo(HaveOccurred())
		hs := httptest.NewServer(s.Handler())
		defer hs.Close()
		fc := &scimClient{base: c.base, token: "bulkfix-token", url: hs.URL}
		// groups refer to each other: ga is created without members, gb fails (members are
		// users), so ga is taken back out
		ops := bulkOps(fc.bulk(0, groupOf("ga", "ga", "bulkId:gb"), groupOf("gb", "gb", "bulkId:ga")))
		Expect(ops).To(HaveLen(2))
		expectOpError(ops[0], 409, "", `bulkId "gb"`)
		Expect(fd.n.Load()).To(BeNumerically(">=", 2))
		var l scimv1.OrgGroupList
		Expect(k8s.List(context.Background(), &l, client.InNamespace(c.ns))).To(Succeed())
		for _, g := range l.Items {
			Expect(g.DeletionTimestamp).NotTo(BeNil(), "%s is left", g.Name)
		}
	})
})
