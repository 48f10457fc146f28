package scimserver_test

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scim-operator/scim-operator/internal/scimserver"
)

// Issue 9, defect 5 (remainder): a PATCH or PUT on a group answered with every member, and
// waited for the cache by listing every member, so each of Entra's batched adds to a
// 50,000-member group cost O(N). Counted here: the group-member listings (index.Group) a
// write makes, which the old code made on every one of these requests.
var _ = Describe("a group write's answer", func() {
	It("does not list the group's members unless the request asks for them", func() {
		c := newEnv().config("answers", "token-group-answers-0123456789")
		var ids []string
		for i := range 12 {
			u := c.do("POST", "/Users", fmt.Sprintf(`{"userName":"answer-%02d@example.com"}`, i))
			Expect(u.code).To(Equal(201), "%s", u)
			ids = append(ids, str(u.body["id"]))
		}
		vals := make([]string, 10)
		for i := range vals {
			vals[i] = fmt.Sprintf(`{"value":%q}`, ids[i])
		}
		g := c.do("POST", "/Groups", `{"displayName":"big","members":[`+strings.Join(vals, ",")+`]}`)
		Expect(g.code).To(Equal(201), "%s", g)
		gid := str(g.body["id"])

		n := &atomic.Int64{}
		counted, err := scimserver.New(scimserver.Options{Client: memberLookups{Client: mgrClient, n: n}, APIReader: mgrReader, Log: logr.Discard()})
		Expect(err).NotTo(HaveOccurred())
		onServer(counted)

		addOne := func(id string) string {
			return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"` + id + `"}]}]}`
		}
		for _, w := range []struct{ what, method, path, body string }{
			{"Entra's batched add", "PATCH", "/Groups/" + gid + "?excludedAttributes=members", addOne(ids[10])},
			{"an add without attributes", "PATCH", "/Groups/" + gid, addOne(ids[11])},
			{"a remove by filter", "PATCH", "/Groups/" + gid, `{"Operations":[{"op":"remove","path":"members[value eq \"` + ids[0] + `\"]"}]}`},
			{"a remove by value", "PATCH", "/Groups/" + gid, `{"Operations":[{"op":"Remove","path":"members","value":[{"value":"` + ids[1] + `"}]}]}`},
			{"a rename", "PATCH", "/Groups/" + gid, `{"Operations":[{"op":"replace","path":"displayName","value":"bigger"}]}`},
			{"Okta's PUT of the profile", "PUT", "/Groups/" + gid, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"biggest"}`},
		} {
			n.Store(0)
			r := c.do(w.method, w.path, w.body)
			Expect(r.code).To(Equal(200), "%s: %s", w.what, r)
			Expect(r.body).NotTo(HaveKey("members"), w.what)
			Expect(r.body["id"]).To(Equal(gid), w.what)
			Expect(r.header.Get("ETag")).NotTo(BeEmpty(), w.what)
			Expect(n.Load()).To(BeZero(), "%s listed the group's members", w.what)
		}

		// asked for, the members are there, and they are the ones written
		n.Store(0)
		r := c.do("PATCH", "/Groups/"+gid+"?attributes=members,displayName", addOne(ids[0]))
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(r.body["members"]).To(HaveLen(11))
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(HaveLen(11), "GET still answers the members by default")
		Expect(r.body["displayName"]).To(Equal("biggest"))
	})
})
