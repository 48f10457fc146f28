package scimserver_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/scimserver"
)

// memberLookups counts the member listings of a group (the index.Group lookups).
type memberLookups struct {
	client.Client
	n *atomic.Int64
}

func (c memberLookups) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	if lo.FieldSelector != nil {
		if _, ok := lo.FieldSelector.RequiresExactMatch(index.Group); ok {
			c.n.Add(1)
		}
	}
	return c.Client.List(ctx, list, opts...)
}

// Issue 9, defect 5: GET /Groups built the members of every group before cutting the page.
var _ = Describe("a page of groups", func() {
	It("looks up the members of the page's groups only", func() {
		c := newEnv().config("pages", "token-group-pages-0123456789")
		u := c.do("POST", "/Users", `{"userName":"pager@example.com"}`)
		Expect(u.code).To(Equal(201), "%s", u)
		for i := range 6 {
			r := c.do("POST", "/Groups", fmt.Sprintf(`{"displayName":"page-%d","members":[{"value":%q}]}`, i, str(u.body["id"])))
			Expect(r.code).To(Equal(201), "%s", r)
		}
		n := &atomic.Int64{}
		counted, err := scimserver.New(scimserver.Options{Client: memberLookups{Client: mgrClient, n: n}, APIReader: mgrReader, Log: logr.Discard()})
		Expect(err).NotTo(HaveOccurred())
		onServer(counted)

		r := c.do("GET", "/Groups?startIndex=3&count=2", nil)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 6))
		Expect(resources(r)).To(HaveLen(2))
		for _, g := range resources(r) {
			Expect(g["members"]).To(HaveLen(1), "each listed group still shows its members")
		}
		Expect(n.Load()).To(BeNumerically("==", 2), "member lookups for a page of 2 groups")

		n.Store(0)
		r = c.do("GET", "/Groups?filter="+q(`members.value eq "`+str(u.body["id"])+`"`)+"&count=1", nil)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["totalResults"]).To(BeNumerically("==", 6), "a filter on members still sees every group's members")
	})
})
