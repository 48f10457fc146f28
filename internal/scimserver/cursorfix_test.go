package scimserver_test

import (
	"fmt"
	"sync/atomic"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scim-operator/scim-operator/internal/scimserver"
)

// Review findings on cursor pagination (issue 9 item 9, RFC 9865).
var _ = Describe("cursor pagination review findings", func() {
	var c *scimClient
	BeforeEach(func() {
		c = newEnv().config("cursorfix", "token-cursor-fix-0123456789")
	})

	It("finding 6: a root .search cursor page looks up the members of its own groups only", func() {
		u := c.do("POST", "/Users", `{"userName":"rooted@example.com"}`)
		Expect(u.code).To(Equal(201), "%s", u)
		for i := range 5 {
			r := c.do("POST", "/Groups", fmt.Sprintf(`{"displayName":"root-%d","members":[{"value":%q}]}`, i, str(u.body["id"])))
			Expect(r.code).To(Equal(201), "%s", r)
		}
		n := &atomic.Int64{}
		counted, err := scimserver.New(scimserver.Options{Client: memberLookups{Client: mgrClient, n: n}, APIReader: mgrReader, Log: logr.Discard()})
		Expect(err).NotTo(HaveOccurred())
		onServer(counted)

		// the first page holds the user: no group on it, no member lookup
		r := c.do("POST", "/.search", map[string]any{"cursor": "", "count": 1})
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(resources(r)).To(HaveLen(1))
		Expect(n.Load()).To(BeZero(), "member lookups for a page without groups")
		// the second holds one group: its own members only, and they are shown
		n.Store(0)
		r = c.do("POST", "/.search", map[string]any{"cursor": r.body["nextCursor"], "count": 1})
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(resources(r)).To(HaveLen(1))
		Expect(resources(r)[0]["members"]).To(HaveLen(1), "%s", r)
		Expect(n.Load()).To(BeNumerically("<=", 1), "member lookups for a page of one group")
		// index paging of the root .search alike
		n.Store(0)
		r = c.do("POST", "/.search", map[string]any{"startIndex": 2, "count": 2})
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(resources(r)).To(HaveLen(2))
		Expect(n.Load()).To(BeNumerically("<=", 2), "member lookups for a page of two groups")
	})

	It("finding 7: a count that is not a positive integer answers invalidCount with a cursor; over maxPageSize is capped", func() {
		expectError(c.do("GET", "/Users?cursor=&count=x", nil), 400, "invalidCount", "count")
		expectError(c.do("GET", "/Users?cursor=&count=0", nil), 400, "invalidCount", "positive")
		// without a cursor, index paging answers as before
		expectError(c.do("GET", "/Users?count=x", nil), 400, "invalidValue", "count")
		r := c.do("GET", "/Users?cursor=&count=100000", nil)
		Expect(r.code).To(Equal(200), "capped at maxPageSize: %s", r)
	})

	It("finding 8: sortBy with a cursor: id (the cursor's own order) is accepted, others refused", func() {
		for i := range 3 {
			Expect(c.do("POST", "/Users", fmt.Sprintf(`{"userName":"sorted-%d@example.com"}`, i)).code).To(Equal(201))
		}
		plain := c.do("GET", "/Users?cursor=&count=2", nil)
		Expect(plain.code).To(Equal(200), "%s", plain)
		byID := c.do("GET", "/Users?cursor=&count=2&sortBy=id", nil)
		Expect(byID.code).To(Equal(200), "%s", byID)
		Expect(idsOf(byID)).To(Equal(idsOf(plain)))
		Expect(c.do("GET", "/Users?cursor=&count=2&sortBy=id&sortOrder=ascending", nil).code).To(Equal(200))
		expectError(c.do("GET", "/Users?cursor=&sortBy=id&sortOrder=descending", nil), 400, "invalidValue", "sortBy")
		expectError(c.do("GET", "/Users?cursor=&sortBy=userName", nil), 400, "invalidValue", "sortBy")
	})
})
