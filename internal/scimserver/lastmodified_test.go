package scimserver_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// meta.lastModified once came from managedFields, which the shipped manager's cache strips:
// every read through the cache answered the creation time. The suite's manager is built
// by manager.New, as shipped, so these specs read what an IdP reads.
var _ = Describe("meta.lastModified", func() {
	It("moves with every change of a user, the same on every read, and stays on a change-less PUT", func() {
		c := newEnv().config("acme", "token-lastmodified-0123456789")
		r := c.do("POST", "/Users", map[string]any{"userName": "lm@example.com", "active": true})
		Expect(r.code).To(Equal(201), "%s", r)
		id := r.body["id"].(string)
		created := r.body["meta"].(map[string]any)["created"].(string)
		Expect(r.body["meta"].(map[string]any)["lastModified"]).To(Equal(created))

		time.Sleep(1100 * time.Millisecond) // the attribute has second precision
		p := c.do("PATCH", "/Users/"+id, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "path": "displayName", "value": "Elle Em"}},
		})
		Expect(p.code).To(Equal(200), "%s", p)
		patched := p.body["meta"].(map[string]any)["lastModified"].(string)
		Expect(patched).NotTo(Equal(created))
		Eventually(func() any {
			return c.do("GET", "/Users/"+id, nil).body["meta"].(map[string]any)["lastModified"]
		}).Should(Equal(patched))
		l := c.do("GET", "/Users?filter="+q(`userName eq "lm@example.com"`), nil)
		Expect(l.code).To(Equal(200), "%s", l)
		Expect(l.body["Resources"].([]any)[0].(map[string]any)["meta"].(map[string]any)["lastModified"]).To(Equal(patched))

		time.Sleep(1100 * time.Millisecond)
		again := c.do("PATCH", "/Users/"+id, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "path": "displayName", "value": "Elle Em"}},
		})
		Expect(again.code).To(Equal(200), "%s", again)
		Expect(again.body["meta"].(map[string]any)["lastModified"]).To(Equal(patched), "a PATCH that changes nothing is no modification")
	})

	It("moves with a group's membership change", func() {
		c := newEnv().config("acme", "token-lastmodified-group-0123")
		u := c.do("POST", "/Users", map[string]any{"userName": "lmg@example.com"})
		Expect(u.code).To(Equal(201), "%s", u)
		g := c.do("POST", "/Groups", map[string]any{"displayName": "LM"})
		Expect(g.code).To(Equal(201), "%s", g)
		gid := g.body["id"].(string)
		created := g.body["meta"].(map[string]any)["lastModified"].(string)

		time.Sleep(1100 * time.Millisecond)
		p := c.do("PATCH", "/Groups/"+gid, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "add", "path": "members", "value": []map[string]any{{"value": u.body["id"]}}}},
		})
		Expect(p.code).To(BeElementOf(200, 204), "%s", p)
		Eventually(func() any {
			return c.do("GET", "/Groups/"+gid, nil).body["meta"].(map[string]any)["lastModified"]
		}).ShouldNot(Equal(created))
	})
})

// The ETag was the resourceVersion, which the controllers move with every finalizer and
// status write: the ETag of a POST was stale before the IdP could use it.
var _ = Describe("ETag", func() {
	It("stays good across the controllers' writes and changes with the SCIM representation", func() {
		c := newEnv().config("acme", "token-etag-controllers-0123456")
		r := c.do("POST", "/Users", map[string]any{"userName": "et@example.com", "active": true})
		Expect(r.code).To(Equal(201), "%s", r)
		id, etag := r.body["id"].(string), r.header.Get("ETag")
		Expect(r.body["meta"].(map[string]any)["version"]).To(Equal(etag))
		Eventually(func() string {
			var m scimv1.OrgMember
			Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: id}, &m)).To(Succeed())
			return string(m.Status.Phase)
		}, "30s").ShouldNot(BeEmpty(), "the controller has written the member's status")
		Expect(c.do("GET", "/Users/"+id, nil).header.Get("ETag")).To(Equal(etag), "a status write is no SCIM change")

		p := c.do("PATCH", "/Users/"+id, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []map[string]any{{"op": "replace", "path": "displayName", "value": "E T"}},
		}, "If-Match", etag)
		Expect(p.code).To(Equal(200), "%s", p)
		Expect(p.header.Get("ETag")).NotTo(Equal(etag))

		By("a group membership is part of the user's representation (its groups)")
		before := p.header.Get("ETag")
		g := c.do("POST", "/Groups", map[string]any{"displayName": "ET", "members": []map[string]any{{"value": id}}})
		Expect(g.code).To(Equal(201), "%s", g)
		Eventually(func() string { return c.do("GET", "/Users/"+id, nil).header.Get("ETag") }, "10s").ShouldNot(Equal(before))

		By("DELETE with the current ETag succeeds, after the controllers' writes")
		cur := c.do("GET", "/Users/"+id, nil).header.Get("ETag")
		expectError(c.do("DELETE", "/Users/"+id, nil, "If-Match", before), 412, "", "stale")
		Expect(c.do("DELETE", "/Users/"+id, nil, "If-Match", cur).code).To(Equal(204))
	})
})
