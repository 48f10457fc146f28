package scimserver_test

import (
	"context"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

const (
	bulkReq   = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	bulkResp  = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	entSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
)

type op = map[string]any

// bulk sends POST /Bulk with ops (failOnErrors when failOn > 0).
func (c *scimClient) bulk(failOn int, ops ...op) resp {
	body := map[string]any{"schemas": []string{bulkReq}, "Operations": ops}
	if failOn > 0 {
		body["failOnErrors"] = failOn
	}
	return c.do("POST", "/Bulk", body)
}

// bulkOps are the operations of a BulkResponse (200 asserted).
func bulkOps(r resp) []map[string]any {
	GinkgoHelper()
	Expect(r.code).To(Equal(200), "%s", r)
	Expect(r.body["schemas"]).To(ConsistOf(bulkResp))
	var out []map[string]any
	for _, e := range r.body["Operations"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// idOf is the id at the end of an operation's location.
func idOf(o map[string]any) string {
	GinkgoHelper()
	loc := str(o["location"])
	Expect(loc).NotTo(BeEmpty(), "%v", o)
	return loc[strings.LastIndex(loc, "/")+1:]
}

// expectOpError asserts an operation's error answer: status, and the same status and
// scimType in its SCIM error response.
func expectOpError(o map[string]any, status int, scimType, detail string) {
	GinkgoHelper()
	Expect(o["status"]).To(Equal(fmt.Sprint(status)), "%v", o)
	r, ok := o["response"].(map[string]any)
	Expect(ok).To(BeTrue(), "%v", o)
	Expect(r["schemas"]).To(ConsistOf("urn:ietf:params:scim:api:messages:2.0:Error"))
	Expect(r["status"]).To(Equal(fmt.Sprint(status)))
	if scimType != "" {
		Expect(r["scimType"]).To(Equal(scimType), "%v", o)
	} else {
		Expect(r).NotTo(HaveKey("scimType"))
	}
	Expect(r["detail"]).To(ContainSubstring(detail))
}

func user(bulkID, userName string, extra ...string) op {
	data := map[string]any{"userName": userName}
	for i := 0; i+1 < len(extra); i += 2 {
		data[extra[i]] = extra[i+1]
	}
	return op{"method": "POST", "path": "/Users", "bulkId": bulkID, "data": data}
}

func userWithManager(bulkID, userName, manager string) op {
	return op{"method": "POST", "path": "/Users", "bulkId": bulkID, "data": map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User", entSchema}, "userName": userName,
		entSchema: map[string]any{"manager": map[string]any{"value": manager}},
	}}
}

func groupOf(bulkID, name string, memberValues ...string) op {
	var ms []map[string]any
	for _, v := range memberValues {
		ms = append(ms, map[string]any{"value": v})
	}
	return op{"method": "POST", "path": "/Groups", "bulkId": bulkID, "data": map[string]any{"displayName": name, "members": ms}}
}

func groupsOf(ns string) []scimv1.OrgGroup {
	var l scimv1.OrgGroupList
	Expect(k8s.List(context.Background(), &l, client.InNamespace(ns))).To(Succeed())
	return l.Items
}

var _ = Describe("Bulk (RFC 7644 section 3.7, issue 9 item 8)", func() {
	var c *scimClient
	BeforeEach(func() {
		c = newEnv().config("bulk", "bulk-token")
	})

	It("is advertised truthfully: supported, with its limits", func() {
		r := c.do("GET", "/ServiceProviderConfig", nil)
		Expect(r.code).To(Equal(200))
		Expect(r.body["bulk"]).To(And(HaveKeyWithValue("supported", true),
			HaveKeyWithValue("maxOperations", BeNumerically("==", 1000)),
			HaveKeyWithValue("maxPayloadSize", BeNumerically("==", 64<<10)))) // the suite's body limit
	})

	It("creates users and a group that refers to them by bulkId, also to a user created after it", func() {
		ops := bulkOps(c.bulk(0,
			user("u1", "one@example.com"),
			groupOf("g1", "team", "bulkId:u1", "bulkId:u2"),
			user("u2", "two@example.com"),
		))
		Expect(ops).To(HaveLen(3))
		for i, want := range []string{"u1", "g1", "u2"} {
			Expect(ops[i]).To(And(HaveKeyWithValue("method", "POST"), HaveKeyWithValue("bulkId", want),
				HaveKeyWithValue("status", "201"), HaveKeyWithValue("version", MatchRegexp(`^W/"`)), Not(HaveKey("response"))), "%v", ops[i])
		}
		Expect(str(ops[0]["location"])).To(HavePrefix(httpSrv.URL + c.base + "/Users/"))
		Expect(str(ops[1]["location"])).To(HavePrefix(httpSrv.URL + c.base + "/Groups/"))
		u1, g1, u2 := idOf(ops[0]), idOf(ops[1]), idOf(ops[2])

		g := c.do("GET", "/Groups/"+g1, nil)
		Expect(g.code).To(Equal(200))
		Expect(g.body["members"]).To(ConsistOf(HaveKeyWithValue("value", u1), HaveKeyWithValue("value", u2)))
		Expect(g.header.Get("ETag")).NotTo(BeEmpty())
		u := c.do("GET", "/Users/"+u2, nil)
		Expect(u.body["groups"]).To(ConsistOf(HaveKeyWithValue("value", g1)))
	})

	It("resolves circular references as RFC 7644 section 3.7.1 describes: create one without, then complete it", func() {
		ops := bulkOps(c.bulk(0,
			userWithManager("a", "a@example.com", "bulkId:b"),
			userWithManager("b", "b@example.com", "bulkId:a"),
		))
		Expect(ops).To(HaveLen(2))
		for _, o := range ops {
			Expect(o).To(And(HaveKeyWithValue("method", "POST"), HaveKeyWithValue("status", "201"), Not(HaveKey("response"))), "%v", o)
		}
		a, b := idOf(ops[0]), idOf(ops[1])
		ra, rb := c.do("GET", "/Users/"+a, nil), c.do("GET", "/Users/"+b, nil)
		Expect(ra.body[entSchema]).To(HaveKeyWithValue("manager", HaveKeyWithValue("value", b)))
		Expect(rb.body[entSchema]).To(HaveKeyWithValue("manager", HaveKeyWithValue("value", a)))
		// the version answered is the one the resource has now (after its completion)
		Expect(ops[0]["version"]).To(Equal(ra.header.Get("ETag")))
	})

	It("refuses circular references it cannot resolve with 409, leaving nothing half-created", func() {
		// a reference in a plain string cannot be left out without changing the data
		ops := bulkOps(c.bulk(0,
			user("a", "a@example.com", "displayName", "bulkId:b"),
			user("b", "b@example.com", "displayName", "bulkId:a"),
		))
		Expect(ops).To(HaveLen(2))
		for _, o := range ops {
			expectOpError(o, 409, "", "circular")
		}
		Expect(members(c.ns, c.config)).To(BeEmpty())

		// groups referring to each other: a group is created without its members, the other
		// then fails as its single-request form would (members are users), and the first is
		// taken back out since what it refers to failed
		ops = bulkOps(c.bulk(0, groupOf("ga", "ga", "bulkId:gb"), groupOf("gb", "gb", "bulkId:ga")))
		Expect(ops).To(HaveLen(2))
		expectOpError(ops[0], 409, "", `bulkId "gb"`)
		expectOpError(ops[1], 400, "invalidValue", "unknown member")
		Eventually(func() []scimv1.OrgGroup { return groupsOf(c.ns) }).Should(BeEmpty())
	})

	It("stops after failOnErrors errors and runs nothing after", func() {
		ops := bulkOps(c.bulk(2,
			user("ok1", "ok1@example.com"),
			op{"method": "POST", "path": "/Users", "bulkId": "bad1", "data": map[string]any{"displayName": "no userName"}},
			user("ok2", "ok2@example.com"),
			user("dup", "ok1@example.com"),
			user("never", "never@example.com"),
		))
		Expect(ops).To(HaveLen(4))
		Expect(ops[0]).To(HaveKeyWithValue("status", "201"))
		expectOpError(ops[1], 400, "invalidValue", "")
		Expect(ops[2]).To(HaveKeyWithValue("status", "201"))
		expectOpError(ops[3], 409, "uniqueness", "")
		names := []string{}
		for _, m := range members(c.ns, c.config) {
			names = append(names, m.Spec.UserName)
		}
		Expect(names).To(ConsistOf("ok1@example.com", "ok2@example.com"))

		// without failOnErrors every operation runs, whatever fails
		ops = bulkOps(c.bulk(0,
			op{"method": "DELETE", "path": "/Users/nope"},
			op{"method": "DELETE", "path": "/Users/nope2"},
			user("later", "later@example.com"),
		))
		Expect(ops).To(HaveLen(3))
		Expect(ops[2]).To(HaveKeyWithValue("status", "201"))
	})

	It("answers each operation as its single-request form would: status and scimType", func() {
		r := c.do("POST", "/Users", `{"userName":"taken@example.com"}`)
		Expect(r.code).To(Equal(201))
		id, tag := str(r.body["id"]), r.header.Get("ETag")
		type form struct {
			method, path, body, ifMatch string
		}
		forms := []form{
			{"POST", "/Users", `{"userName":"taken@example.com"}`, ""},
			{"POST", "/Users", `{"userName":""}`, ""},
			{"PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"nosuch[","value":"x"}]}`, ""},
			{"PATCH", "/Users/nosuch", `{"Operations":[{"op":"replace","path":"displayName","value":"x"}]}`, ""},
			{"PUT", "/Users/" + id, `{"userName":"taken@example.com"}`, `W/"1-00000000"`},
			{"DELETE", "/Users/" + id, ``, `W/"1-00000000"`},
			{"POST", "/Groups", `{"displayName":"g","members":[{"value":"nosuch"}]}`, ""},
			{"PATCH", "/Users/" + id, `{"Operations":[{"op":"replace","path":"displayName","value":"ok"}]}`, tag},
		}
		var ops []op
		var single []resp
		for i, f := range forms {
			o := op{"method": f.method, "path": f.path, "version": f.ifMatch}
			if f.method == "POST" {
				o["bulkId"] = fmt.Sprint("b", i)
			}
			if f.body != "" {
				o["data"] = rawJSON(f.body)
			}
			ops = append(ops, o)
		}
		// the single requests first, on a config of the same name (so the same ids) in
		// another namespace, with the same state
		c2 := newEnv().config("bulk", "bulk2-token")
		r2 := c2.do("POST", "/Users", `{"userName":"taken@example.com"}`)
		id2 := str(r2.body["id"])
		Expect(id2).To(Equal(id)) // object names derive from userName
		for _, f := range forms {
			var body any
			if f.body != "" {
				body = f.body
			}
			hdr := []string{}
			if f.ifMatch != "" {
				t := f.ifMatch
				if t == tag {
					t = r2.header.Get("ETag")
				}
				hdr = append(hdr, "If-Match", t)
			}
			single = append(single, c2.do(f.method, f.path, body, hdr...))
		}
		got := bulkOps(c.bulk(0, ops...))
		Expect(got).To(HaveLen(len(forms)))
		for i, s := range single {
			Expect(got[i]["status"]).To(Equal(fmt.Sprint(s.code)), "operation %d %v: single form %s", i, got[i], s)
			if s.code >= 300 {
				Expect(got[i]["response"]).To(HaveKeyWithValue("status", s.body["status"]), "operation %d", i)
				if st, ok := s.body["scimType"]; ok {
					Expect(got[i]["response"]).To(HaveKeyWithValue("scimType", st), "operation %d", i)
				} else {
					Expect(got[i]["response"]).NotTo(HaveKey("scimType"), "operation %d", i)
				}
			}
		}
		Expect(got[len(got)-1]["version"]).NotTo(Equal(tag))
	})

	It("runs PATCH, PUT and DELETE under their version as If-Match", func() {
		r := c.do("POST", "/Users", `{"userName":"v@example.com"}`)
		id, tag := str(r.body["id"]), r.header.Get("ETag")
		patch := op{"method": "PATCH", "path": "/Users/" + id, "version": tag,
			"data": rawJSON(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"V"}]}`)}
		ops := bulkOps(c.bulk(0, patch))
		Expect(ops[0]).To(And(HaveKeyWithValue("status", "200"), HaveKeyWithValue("location", httpSrv.URL+c.base+"/Users/"+id)))
		newTag := str(ops[0]["version"])
		Expect(newTag).NotTo(Equal(tag))
		Expect(c.do("GET", "/Users/"+id, nil).header.Get("ETag")).To(Equal(newTag))

		// the old version is stale now, for PATCH, PUT and DELETE alike
		ops = bulkOps(c.bulk(0, patch,
			op{"method": "PUT", "path": "/Users/" + id, "version": tag, "data": rawJSON(`{"userName":"v@example.com"}`)},
			op{"method": "DELETE", "path": "/Users/" + id, "version": tag}))
		for _, o := range ops {
			expectOpError(o, 412, "", "")
		}
		ops = bulkOps(c.bulk(0, op{"method": "DELETE", "path": "/Users/" + id, "version": newTag}))
		Expect(ops[0]).To(And(HaveKeyWithValue("status", "204"), HaveKeyWithValue("location", httpSrv.URL+c.base+"/Users/"+id)))
		Expect(c.do("GET", "/Users/"+id, nil).code).To(Equal(404))
	})

	It("addresses created resources by bulkId in a path, and refuses unknown bulkIds", func() {
		ops := bulkOps(c.bulk(0,
			user("p", "p@example.com"),
			op{"method": "PATCH", "path": "/Users/bulkId:p", "data": rawJSON(`{"Operations":[{"op":"replace","path":"displayName","value":"P"}]}`)},
			groupOf("g", "g", "bulkId:nope"),
			op{"method": "DELETE", "path": "/Users/bulkId:nope"},
		))
		Expect(ops).To(HaveLen(4))
		Expect(ops[1]).To(HaveKeyWithValue("status", "200"))
		Expect(c.do("GET", "/Users/"+idOf(ops[0]), nil).body["displayName"]).To(Equal("P"))
		expectOpError(ops[2], 400, "invalidValue", `bulkId "nope" is not defined`)
		expectOpError(ops[3], 400, "invalidValue", `bulkId "nope" is not defined`)
		Expect(groupsOf(c.ns)).To(BeEmpty())

		// a reference to an operation that failed answers 409
		ops = bulkOps(c.bulk(0,
			op{"method": "POST", "path": "/Users", "bulkId": "bad", "data": map[string]any{}},
			groupOf("g2", "g2", "bulkId:bad"),
		))
		expectOpError(ops[0], 400, "invalidValue", "")
		expectOpError(ops[1], 409, "", `bulkId "bad"`)
	})

	It("validates each operation's method and path, and the request as a whole", func() {
		ops := bulkOps(c.bulk(0,
			op{"method": "GET", "path": "/Users"},
			op{"method": "POST", "path": "/Users/x", "bulkId": "x", "data": map[string]any{"userName": "x@example.com"}},
			op{"method": "PUT", "path": "/Users", "data": map[string]any{"userName": "x@example.com"}},
			op{"method": "DELETE", "path": "/Widgets/1"},
			op{"method": "POST", "path": "/Users", "data": map[string]any{"userName": "x@example.com"}},
			op{"method": "PATCH", "path": "/Users/x"},
			op{"path": "/Users/x"},
			op{"method": "DELETE", "path": "Users/x"},
			op{"method": "DELETE"},
		))
		Expect(ops).To(HaveLen(9))
		expectOpError(ops[0], 400, "invalidValue", "GET")
		expectOpError(ops[1], 405, "", "")
		expectOpError(ops[2], 405, "", "")
		expectOpError(ops[3], 404, "", "/Widgets/1")
		expectOpError(ops[4], 400, "invalidValue", "bulkId")
		expectOpError(ops[5], 400, "invalidSyntax", "data")
		expectOpError(ops[6], 400, "invalidValue", "method")
		expectOpError(ops[7], 400, "invalidValue", "path")
		expectOpError(ops[8], 400, "invalidValue", "path")
		Expect(members(c.ns, c.config)).To(BeEmpty())

		expectError(c.do("POST", "/Bulk", map[string]any{"Operations": []op{user("d", "d1@example.com"), user("d", "d2@example.com")}}),
			400, "invalidValue", `bulkId "d"`)
		expectError(c.do("POST", "/Bulk", map[string]any{"failOnErrors": 0, "Operations": []op{}}), 400, "invalidValue", "failOnErrors")
		expectError(c.do("POST", "/Bulk", `{"schemas":["`+bulkReq+`"]}`), 400, "invalidSyntax", "Operations")
		expectError(c.do("POST", "/Bulk", `[]`), 400, "invalidSyntax", "")
		expectError(c.do("GET", "/Bulk", nil), 405, "", "")
		expectError(c.do("POST", "/Bulk/x", "{}"), 404, "", "")
		Expect(members(c.ns, c.config)).To(BeEmpty())
	})

	It("answers 413 for more operations than maxOperations or a body over maxPayloadSize, and runs none", func() {
		var ops []op
		for i := 0; i < 1001; i++ {
			ops = append(ops, op{"method": "DELETE", "path": "/Users/x"})
		}
		expectError(c.bulk(0, ops...), 413, "", "maxOperations (1000)")

		big := user("big", "big@example.com", "displayName", strings.Repeat("x", 64<<10))
		expectError(c.bulk(0, user("small", "small@example.com"), big), 413, "", fmt.Sprintf("maxPayloadSize (%d bytes)", 64<<10))
		Expect(members(c.ns, c.config)).To(BeEmpty())
	})

	It("runs under the request's own tenant: its token, its resources", func() {
		other := newEnv().config("elsewhere", "elsewhere-token")
		r := other.do("POST", "/Users", `{"userName":"theirs@example.com"}`)
		Expect(r.code).To(Equal(201))
		ops := bulkOps(c.bulk(0, op{"method": "DELETE", "path": "/Users/" + str(r.body["id"])}))
		expectOpError(ops[0], 404, "", "")
		Expect(other.do("GET", "/Users/"+str(r.body["id"]), nil).code).To(Equal(200))

		bad := *c
		bad.token = "wrong"
		r = bad.bulk(0, user("x", "x@example.com"))
		Expect(r.code).To(Equal(401))
		Expect(members(c.ns, c.config)).To(BeEmpty())
	})
})

// rawJSON embeds a JSON text as is in a request built from maps.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }
