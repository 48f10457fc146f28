package scimserver_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

var _ = Describe("deleting a member the controller still holds", func() {
	It("hides it at once, and asks to retry a re-create until it is gone", func() {
		c := newEnv().config("fin", "fin-token")
		r := c.do("POST", "/Users", `{"userName":"leaver@example.com"}`)
		Expect(r.code).To(Equal(201))
		id := str(r.body["id"])
		ctx := context.Background()
		key := types.NamespacedName{Namespace: c.ns, Name: id}
		var m scimv1.OrgMember
		Expect(k8s.Get(ctx, key, &m)).To(Succeed())
		patch := client.MergeFrom(m.DeepCopy())
		m.Finalizers = []string{"scim.operator.dev/test"}
		Expect(k8s.Patch(ctx, &m, patch)).To(Succeed())

		Expect(c.do("DELETE", "/Users/"+id, nil).code).To(Equal(204))
		expectError(c.do("GET", "/Users/"+id, nil), 404, "", "not found")
		r = c.do("GET", "/Users?filter="+q(`userName eq "leaver@example.com"`), nil)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 0))
		r = c.do("POST", "/Users", `{"userName":"leaver@example.com"}`)
		expectError(r, 503, "", `a user with userName "leaver@example.com" is still being deleted; retry later`)
		Expect(r.header.Get("Retry-After")).To(Equal("10"))

		Expect(k8s.Get(ctx, key, &m)).To(Succeed())
		patch = client.MergeFrom(m.DeepCopy())
		m.Finalizers = nil
		Expect(k8s.Patch(ctx, &m, patch)).To(Succeed())
		Eventually(func() int { return c.do("POST", "/Users", `{"userName":"leaver@example.com"}`).code }).Should(Equal(201))
	})
})

var _ = Describe("deleting a group the controller still holds", func() {
	It("hides it at once, and asks to retry a re-create until it is gone, as for users", func() {
		c := newEnv().config("fing", "fing-token")
		r := c.do("POST", "/Groups", `{"displayName":"Leavers"}`)
		Expect(r.code).To(Equal(201), "%s", r)
		id := str(r.body["id"])
		ctx := context.Background()
		key := types.NamespacedName{Namespace: c.ns, Name: id}
		var g scimv1.OrgGroup
		Expect(k8s.Get(ctx, key, &g)).To(Succeed())
		patch := client.MergeFrom(g.DeepCopy())
		g.Finalizers = append(g.Finalizers, "scim.operator.dev/test")
		Expect(k8s.Patch(ctx, &g, patch)).To(Succeed())

		Expect(c.do("DELETE", "/Groups/"+id, nil).code).To(Equal(204))
		expectError(c.do("GET", "/Groups/"+id, nil), 404, "", "not found")
		r = c.do("POST", "/Groups", `{"displayName":"Leavers"}`)
		expectError(r, 503, "", `a group with displayName "Leavers" is still being deleted; retry later`)
		Expect(r.header.Get("Retry-After")).To(Equal("10"))

		Expect(k8s.Get(ctx, key, &g)).To(Succeed())
		patch = client.MergeFrom(g.DeepCopy())
		g.Finalizers = nil
		Expect(k8s.Patch(ctx, &g, patch)).To(Succeed())
		Eventually(func() int { return c.do("POST", "/Groups", `{"displayName":"Leavers"}`).code }).Should(Equal(201))
	})
})
