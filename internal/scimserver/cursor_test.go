package scimserver_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// Issue 9, item 9: cursor pagination (RFC 9865).
var _ = Describe("cursor pagination", func() {
	var c *scimClient
	var e *env
	BeforeEach(func() {
		e = newEnv()
		c = e.config("cursor", "token-cursor-pages-0123456789")
	})

	createUser := func(c *scimClient, name string) string {
		GinkgoHelper()
		r := c.do("POST", "/Users", fmt.Sprintf(`{"userName":%q}`, name))
		Expect(r.code).To(Equal(201), "%s", r)
		return str(r.body["id"])
	}

	// walk follows nextCursor from an empty cursor; between pages it runs between(page).
	walk := func(c *scimClient, path string, count int, between func(page int)) (ids []string, pages []resp) {
		GinkgoHelper()
		cursor := ""
		for page := 0; ; page++ {
			Expect(page).To(BeNumerically("<", 1000), "the walk does not end")
			sep := "?"
			if strings.Contains(path, "?") {
				sep = "&"
			}
			r := c.do("GET", fmt.Sprintf("%s%scursor=%s&count=%d", path, sep, url.QueryEscape(cursor), count), nil)
			Expect(r.code).To(Equal(200), "%s", r)
			Expect(r.body).NotTo(HaveKey("startIndex"), "a cursor page carries cursors, not startIndex")
			Expect(len(resources(r))).To(BeNumerically("<=", count))
			Expect(r.body["itemsPerPage"]).To(BeNumerically("==", len(resources(r))))
			if page == 0 {
				Expect(r.body).NotTo(HaveKey("previousCursor"), "the first page has no previous page")
			}
			for _, res := range resources(r) {
				ids = append(ids, str(res["id"]))
			}
			pages = append(pages, r)
			next, ok := r.body["nextCursor"].(string)
			if !ok {
				return ids, pages
			}
			Expect(next).To(MatchRegexp(`^[A-Za-z0-9._~-]+$`), "RFC 3986 unreserved characters only")
			if between != nil {
				between(page)
			}
			cursor = next
		}
	}

	It("returns every user present for the whole walk exactly once under concurrent creates, deletes and renames", func() {
		// stable users exist from before the walk to after it (some are renamed during
		// it); churn users are deleted during it; new ones are created during it
		var stable, churn []string
		for i := range 24 {
			stable = append(stable, createUser(c, fmt.Sprintf("stable-%02d@example.com", i)))
		}
		for i := range 12 {
			churn = append(churn, createUser(c, fmt.Sprintf("churn-%02d@example.com", i)))
		}

		// in the background, for the whole walk: creates, deletes and renames
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				bg := *c
				bg.do("POST", "/Users", fmt.Sprintf(`{"userName":"bg-%03d@example.com"}`, i))
				bg.do("PATCH", "/Users/"+stable[i%len(stable)], fmt.Sprintf(
					`{"Operations":[{"op":"replace","path":"userName","value":"aaa-bg-%03d@example.com"}]}`, i))
				if i < len(churn)/2 {
					bg.do("DELETE", "/Users/"+churn[i], nil)
				}
			}
		}()

		// and between pages, the writes that move an index page: deleting users already
		// returned (an index walk would skip the next ones), creating users that sort
		// first by name, renaming users not yet returned to names that sort first
		ids, _ := walk(c, "/Users", 5, func(page int) {
			if page < len(churn)/2 {
				Expect(c.do("DELETE", "/Users/"+churn[len(churn)/2+page], nil).code).To(Equal(204))
			}
			createUser(c, fmt.Sprintf("0000-new-%02d@example.com", page))
			r := c.do("PATCH", "/Users/"+stable[len(stable)-1-page%len(stable)],
				fmt.Sprintf(`{"Operations":[{"op":"replace","path":"userName","value":"0-renamed-%02d@example.com"}]}`, page))
			Expect(r.code).To(Equal(200), "%s", r)
		})
		close(stop)
		wg.Wait()

		seen := map[string]int{}
		for _, id := range ids {
			seen[id]++
		}
		for id, n := range seen {
			Expect(n).To(Equal(1), "user %s returned %d times", id, n)
		}
		for _, id := range stable {
			Expect(seen).To(HaveKey(id), "a user present for the whole walk was skipped")
		}
	})

	It("pages forward and back, ends without nextCursor, and answers .search alike", func() {
		var ids []string
		for i := range 7 {
			ids = append(ids, createUser(c, fmt.Sprintf("page-%d@example.com", i)))
		}
		got, pages := walk(c, "/Users", 3, nil)
		Expect(got).To(ConsistOf(ids))
		Expect(pages).To(HaveLen(3))
		for _, p := range pages {
			Expect(p.body["totalResults"]).To(BeNumerically("==", 7))
		}
		Expect(pages[2].body).NotTo(HaveKey("nextCursor"))
		// RFC 9865's own spelling of the first request: a bare `cursor`
		r0 := c.do("GET", "/Users?cursor&count=3", nil)
		Expect(r0.code).To(Equal(200), "%s", r0)
		Expect(idsOf(r0)).To(Equal(idsOf(pages[0])))
		Expect(r0.body).To(HaveKey("nextCursor"))

		// previousCursor of the last page gives the middle page again
		prev := str(pages[2].body["previousCursor"])
		Expect(prev).NotTo(BeEmpty())
		r := c.do("GET", "/Users?count=3&cursor="+url.QueryEscape(prev), nil)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(idsOf(r)).To(Equal(idsOf(pages[1])))
		r = c.do("GET", "/Users?count=3&cursor="+url.QueryEscape(str(r.body["previousCursor"])), nil)
		Expect(idsOf(r)).To(Equal(idsOf(pages[0])))
		Expect(r.body).NotTo(HaveKey("previousCursor"))

		// a filtered walk (the filter is bound to the cursor)
		f := q(`userName sw "page-"`)
		got, _ = walk(c, "/Users?filter="+f, 2, nil)
		Expect(got).To(ConsistOf(ids))

		// POST /Users/.search with a cursor, and the root .search over users and groups
		g := c.do("POST", "/Groups", `{"displayName":"cursor-group"}`)
		Expect(g.code).To(Equal(201), "%s", g)
		for _, path := range []string{"/Users/.search", "/.search"} {
			var seen []string
			cursor := ""
			for range 20 {
				r := c.do("POST", path, map[string]any{
					"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:SearchRequest"},
					"cursor":  cursor, "count": 2, "attributes": []string{"id"},
				})
				Expect(r.code).To(Equal(200), "%s", r)
				for _, res := range resources(r) {
					seen = append(seen, str(res["id"]))
				}
				next, ok := r.body["nextCursor"].(string)
				if !ok {
					break
				}
				cursor = next
			}
			want := ids
			if path == "/.search" {
				want = append(append([]string{}, ids...), str(g.body["id"]))
			}
			Expect(seen).To(ConsistOf(want), path)
		}

		// groups page by cursor too, with members when asked
		got, gp := walk(c, "/Groups?attributes=displayName,members", 1, nil)
		Expect(got).To(ConsistOf(str(g.body["id"])))
		Expect(gp).To(HaveLen(1))
	})

	It("refuses invalid, changed, expired and foreign cursors with RFC 9865 errors", func() {
		for i := range 3 {
			createUser(c, fmt.Sprintf("err-%d@example.com", i))
		}
		first := c.do("GET", "/Users?cursor=&count=1", nil)
		Expect(first.code).To(Equal(200), "%s", first)
		next := str(first.body["nextCursor"])
		Expect(next).NotTo(BeEmpty())

		expectError(c.do("GET", "/Users?count=1&cursor=not-a-cursor", nil), 400, "invalidCursor", "cursor")
		changed := []byte(next)
		changed[len(changed)/2] ^= 1
		expectError(c.do("GET", "/Users?count=1&cursor="+url.QueryEscape(string(changed)), nil), 400, "invalidCursor", "cursor")

		// the cursor belongs to its endpoint, filter and tenant
		expectError(c.do("GET", "/Groups?count=1&cursor="+next, nil), 400, "invalidCursor", "")
		expectError(c.do("GET", "/Users?count=1&filter="+q(`userName sw "err"`)+"&cursor="+next, nil), 400, "invalidCursor", "")
		expectError(c.do("POST", "/.search", map[string]any{"cursor": next, "count": 1}), 400, "invalidCursor", "")
		other := e.config("cursor-other", "token-cursor-other-0123456789")
		createUser(other, "err-0@example.com")
		expectError(other.do("GET", "/Users?count=1&cursor="+next, nil), 400, "invalidCursor", "")
		// the same filter and count on the same endpoint keep working
		Expect(c.do("GET", "/Users?count=2&cursor="+next, nil).code).To(Equal(200))

		// a cursor older than cursorTimeout (issued by this server's encoding two hours ago)
		var cfg scimv1.ScimConfig
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: c.config}, &cfg)).To(Succeed())
		old := scimstore.EncodeCursor(scimstore.CursorQuery{Scope: scimstore.Scope{Config: &cfg}, Endpoint: "/Users"},
			scimstore.Cursor{Key: str(resources(first)[0]["id"])}, time.Now().Add(-2*time.Hour))
		expectError(c.do("GET", "/Users?count=1&cursor="+old, nil), 400, "expiredCursor", "cursorTimeout")
		fresh := scimstore.EncodeCursor(scimstore.CursorQuery{Scope: scimstore.Scope{Config: &cfg}, Endpoint: "/Users"},
			scimstore.Cursor{Key: str(resources(first)[0]["id"])}, time.Now())
		r := c.do("GET", "/Users?count=1&cursor="+fresh, nil)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(idsOf(r)).To(Equal(idsOf(c.do("GET", "/Users?count=1&cursor="+next, nil))))

		// parameters that do not go with a cursor
		expectError(c.do("GET", "/Users?cursor=&count=0", nil), 400, "invalidCount", "positive")
		expectError(c.do("GET", "/Users?cursor=&count=-3", nil), 400, "invalidCount", "positive")
		expectError(c.do("GET", "/Users?cursor=&startIndex=2", nil), 400, "invalidValue", "startIndex")
		expectError(c.do("GET", "/Users?cursor=&sortBy=userName", nil), 400, "invalidValue", "sortBy")
		// index paging is unchanged: startIndex, no cursors
		r = c.do("GET", "/Users?startIndex=2&count=1", nil)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["startIndex"]).To(BeNumerically("==", 2))
		Expect(r.body).NotTo(HaveKey("nextCursor"))
	})

	It("is advertised in /ServiceProviderConfig", func() {
		r := c.do("GET", "/ServiceProviderConfig", nil)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["pagination"]).To(Equal(map[string]any{
			"cursor": true, "index": true, "defaultPaginationMethod": "index",
			"defaultPageSize": float64(100), "maxPageSize": float64(1000), "cursorTimeout": float64(3600),
		}))
	})
})

// idsOf is the ids of a list answer's resources, in order (a controller's status write
// may change a resource's meta.version between two reads; its id stays).
func idsOf(r resp) []string {
	var ids []string
	for _, res := range resources(r) {
		ids = append(ids, str(res["id"]))
	}
	return ids
}
