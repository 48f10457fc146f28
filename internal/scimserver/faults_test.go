package scimserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scimserver"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// unreachable fails every write as if the API server had gone away.
type unreachable struct{ client.Client }

func (u unreachable) err() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}
func (u unreachable) Create(context.Context, client.Object, ...client.CreateOption) error {
	return u.err()
}
func (u unreachable) Patch(context.Context, client.Object, client.Patch, ...client.PatchOption) error {
	return u.err()
}
func (u unreachable) Delete(context.Context, client.Object, ...client.DeleteOption) error {
	return u.err()
}

var _ = Describe("API server failures", func() {
	It("answers 503 with Retry-After and writes nothing", func() {
		c := newEnv().config("down", "down-token")
		r := c.do("POST", "/Users", `{"userName":"before@example.com"}`)
		Expect(r.code).To(Equal(201))
		id := str(r.body["id"])

		broken, err := scimserver.New(scimserver.Options{Client: unreachable{mgrClient}, APIReader: mgrReader, Log: logr.Discard()})
		Expect(err).NotTo(HaveOccurred())
		hs := httptest.NewServer(broken.Handler())
		defer hs.Close()
		bc := &scimClient{base: c.base, token: "down-token"}
		orig := httpSrv
		httpSrv = hs
		defer func() { httpSrv = orig }()

		r = bc.do("POST", "/Users", `{"userName":"during@example.com"}`)
		expectError(r, 503, "", "the Kubernetes API server is unavailable, retry later")
		Expect(r.header.Get("Retry-After")).To(Equal("5"))
		expectError(bc.do("PATCH", "/Users/"+id, `{"Operations":[{"op":"replace","path":"active","value":false}]}`), 503, "", "unavailable")
		expectError(bc.do("DELETE", "/Users/"+id, nil), 503, "", "unavailable")
		By("reads still work from the cache")
		Expect(bc.do("GET", "/Users/"+id, nil).code).To(Equal(200))

		ms := members(c.ns, c.config)
		Expect(ms).To(HaveLen(1))
		Expect(ms[0].Spec.Active).To(BeTrue())
	})
})

var _ = Describe("metrics", func() {
	It("counts requests per config, method, resource and code", func() {
		c := newEnv().config("metered", "metered-token")
		before := counter(c, "GET", "Users", "200")
		Expect(c.do("GET", "/Users", nil).code).To(Equal(200))
		Expect(counter(c, "GET", "Users", "200")).To(Equal(before + 1))
		families, err := metrics.Registry.Gather()
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, f := range families {
			names = append(names, f.GetName())
		}
		Expect(names).To(ContainElements("scim_requests_total", "scim_request_duration_seconds"))
	})
})

// counter reads scim_requests_total for one label set from the registry.
func counter(c *scimClient, method, resource, code string) float64 {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	want := map[string]string{"config": c.ns + "/" + c.config, "method": method, "resource": resource, "code": code}
	for _, f := range families {
		if f.GetName() != "scim_requests_total" {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

var _ = Describe("large groups", func() {
	// SCIM_GROUP_MEMBERS raises the size (for example 50000) for a long manual run.
	It("handles a large group: members added in batches, listed, and cleared", func() {
		c := newEnv().config("big", "big-token")
		n := 600
		if v, err := strconv.Atoi(os.Getenv("SCIM_GROUP_MEMBERS")); err == nil && v > 0 {
			n = (v + 199) / 200 * 200
		}
		ids := make([]string, n)
		if n <= 600 {
			for i := 0; i < n; i++ {
				r := c.do("POST", "/Users", fmt.Sprintf(`{"userName":"m%05d@example.com"}`, i))
				Expect(r.code).To(Equal(201), "%s", r)
				ids[i] = str(r.body["id"])
			}
		} else {
			// many members: create the OrgMembers directly, 16 at a time (POST is tested elsewhere)
			var wg sync.WaitGroup
			work := make(chan int)
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer GinkgoRecover()
					for i := range work {
						un := fmt.Sprintf("m%05d@example.com", i)
						m := &scimv1.OrgMember{
							ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: naming.MemberName(c.config, un), Labels: map[string]string{scimv1.LabelConfig: c.config}},
							Spec:       scimv1.OrgMemberSpec{ConfigName: c.config, UserName: un, Active: true},
						}
						Expect(k8s.Create(context.Background(), m)).To(Succeed())
						ids[i] = m.Name
					}
				}()
			}
			for i := 0; i < n; i++ {
				work <- i
			}
			close(work)
			wg.Wait()
			Eventually(func() any { return c.do("GET", "/Users?count=0", nil).body["totalResults"] }).
				WithTimeout(5 * time.Minute).Should(BeNumerically("==", n))
		}
		began := time.Now()
		r := c.do("POST", "/Groups", `{"displayName":"everyone"}`)
		gid := str(r.body["id"])
		for start := 0; start < n; start += 200 {
			var vals []string
			for _, id := range ids[start : start+200] {
				vals = append(vals, `{"value":"`+id+`"}`)
			}
			r = c.do("PATCH", "/Groups/"+gid+"?excludedAttributes=members", `{"Operations":[{"op":"add","path":"members","value":[`+strings.Join(vals, ",")+`]}]}`)
			Expect(r.code).To(Equal(200), "%s", r)
			Expect(r.body).NotTo(HaveKey("members"))
		}
		GinkgoWriter.Printf("added %d members in %s\n", n, time.Since(began))
		began = time.Now()
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(r.body["members"]).To(HaveLen(n))
		GinkgoWriter.Printf("GET group with %d members: %s, %d bytes\n", n, time.Since(began), len(r.raw))
		var g scimv1.OrgGroup
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: gid}, &g)).To(Succeed())
		raw, _ := json.Marshal(g)
		Expect(len(raw)).To(BeNumerically("<", 4096), "the OrgGroup object does not grow with its members")
		began = time.Now()
		r = c.do("GET", "/Groups?filter="+q(`displayName eq "everyone"`)+"&excludedAttributes=members", nil)
		Expect(resources(r)[0]).NotTo(HaveKey("members"))
		r = c.do("PATCH", "/Groups/"+gid+"?attributes=members", `{"Operations":[{"op":"remove","path":"members"}]}`)
		Expect(r.code).To(Equal(200))
		Expect(r.body["members"]).To(BeEmpty())
		GinkgoWriter.Printf("removed %d members in %s\n", n, time.Since(began))
	})
})

// goneMidway is an API server that goes away in the middle of a request: while down, the
// writes after the first `after` fail as unreachable. With afterCommit, writes count only
// once an OrgGroup was created or patched (the commit of a change of its members).
type goneMidway struct {
	client.Client
	mu          sync.Mutex
	down        bool
	after       int
	writes      int
	afterCommit bool
	committed   bool
}

func (g *goneMidway) fail() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.afterCommit && !g.committed {
		return nil
	}
	g.writes++
	if g.down && g.writes > g.after {
		return unreachable{}.err()
	}
	return nil
}

func (g *goneMidway) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	if _, ok := o.(*scimv1.OrgGroup); ok {
		if err := g.fail(); err != nil {
			return err
		}
		err := g.Client.Create(ctx, o, opts...)
		g.commit(err)
		return err
	}
	return g.Client.Create(ctx, o, opts...)
}

func (g *goneMidway) commit(err error) {
	g.mu.Lock()
	g.committed = g.committed || err == nil
	g.mu.Unlock()
}

func (g *goneMidway) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	if err := g.fail(); err != nil {
		return err
	}
	err := g.Client.Patch(ctx, o, p, opts...)
	if _, ok := o.(*scimv1.OrgGroup); ok {
		g.commit(err)
	}
	return err
}

func (g *goneMidway) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	if err := g.fail(); err != nil {
		return err
	}
	return g.Client.Delete(ctx, o, opts...)
}

// midwayServer is a client of a SCIM server of its own that writes through the flaky
// client (the suite's server, with the manager's client, stays healthy beside it).
func midwayServer(flaky client.Client, base, token string) *scimClient {
	GinkgoHelper()
	broken, err := scimserver.New(scimserver.Options{Client: flaky, APIReader: mgrReader, Cache: mgrCache, Log: logr.Discard()})
	Expect(err).NotTo(HaveOccurred())
	hs := httptest.NewServer(broken.Handler())
	DeferCleanup(hs.Close)
	return &scimClient{base: base, token: token, url: hs.URL}
}

// groupMemberIDs is the sorted member ids of a SCIM group answer.
func groupMemberIDs(body map[string]any) []string {
	ids := []string{}
	ms, _ := body["members"].([]any)
	for _, m := range ms {
		ids = append(ids, str(m.(map[string]any)["value"]))
	}
	sort.Strings(ids)
	return ids
}

var _ = Describe("an API server gone in the middle of a group's create (issue 9, defect 3)", func() {
	var c *scimClient
	var ids []string
	var vals []string
	BeforeEach(func() {
		c = newEnv().config("midway", "midway-token")
		ids, vals = nil, nil
		for i := 0; i < 5; i++ {
			r := c.do("POST", "/Users", fmt.Sprintf(`{"userName":"mid%d@example.com"}`, i))
			Expect(r.code).To(Equal(201))
			ids = append(ids, str(r.body["id"]))
			vals = append(vals, `{"value":"`+ids[i]+`"}`)
		}
		sort.Strings(ids)
	})
	liveGroups := func() []string {
		var list scimv1.OrgGroupList
		Expect(k8s.List(context.Background(), &list, client.InNamespace(c.ns))).To(Succeed())
		out := []string{}
		for _, g := range list.Items {
			if g.DeletionTimestamp.IsZero() {
				out = append(out, g.Spec.DisplayName)
			}
		}
		return out
	}
	labelled := func() int {
		n := 0
		for _, m := range members(c.ns, c.config) {
			for k := range m.Labels {
				if strings.HasPrefix(k, scimv1.LabelGroupPrefix) {
					n++
				}
			}
		}
		return n
	}

	It("before the commit: answers 503, and no reader ever sees the group; the IdP's retry succeeds", func() {
		// two of the five members are marked, then the API server is gone
		flaky := &goneMidway{Client: mgrClient, down: true, after: 2}
		bc := midwayServer(flaky, c.base, "midway-token")
		r := bc.do("POST", "/Groups", `{"displayName":"midway","members":[`+strings.Join(vals, ",")+`]}`)
		expectError(r, 503, "", "unavailable")
		Expect(liveGroups()).To(BeEmpty())
		for _, id := range ids {
			r := c.do("GET", "/Users/"+id, nil)
			Expect(r.body).NotTo(HaveKey("groups"), "a mark of a change that never committed means nothing")
		}
		Expect(labelled()).To(BeZero())

		flaky.mu.Lock()
		flaky.down = false
		flaky.mu.Unlock()
		// (the displayName's claim is released once the API server answers: the IdP's
		// retry is not refused for the claim's minute of grace)
		Eventually(func() int {
			r = bc.do("POST", "/Groups", `{"displayName":"midway","members":[`+strings.Join(vals, ",")+`]}`)
			return r.code
		}, 15*time.Second, 500*time.Millisecond).Should(Equal(201))
		Expect(groupMemberIDs(r.body)).To(Equal(ids))
	})

	It("after the commit: answers 201 with every member, readers see them all at once, and the labels follow", func() {
		// the group's create gets through, then one label write, then the API server is gone
		flaky := &goneMidway{Client: mgrClient, down: true, after: 1, afterCommit: true}
		bc := midwayServer(flaky, c.base, "midway-token")
		r := bc.do("POST", "/Groups", `{"displayName":"midway","members":[`+strings.Join(vals, ",")+`]}`)
		Expect(r.code).To(Equal(201), "the change committed with the group: it is there, so it is answered")
		Expect(groupMemberIDs(r.body)).To(Equal(ids))
		gid := str(r.body["id"])
		// every reader, on the healthy server, sees the whole group at once
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(groupMemberIDs(r.body)).To(Equal(ids))
		for _, id := range ids {
			r := c.do("GET", "/Users/"+id, nil)
			Expect(r.body["groups"]).To(HaveLen(1), "user %s", id)
		}
		Expect(filterCount(c, "Groups", "displayName", "midway")).To(Equal(1))
		// the operator's finisher moves the marks to labels
		Eventually(labelled, 30*time.Second).Should(Equal(len(ids)))
		Eventually(func() string {
			var g scimv1.OrgGroup
			Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: gid}, &g)).To(Succeed())
			return g.Annotations[scimv1.AnnotationMembersChange]
		}, 30*time.Second).Should(HaveSuffix(" done"))
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(groupMemberIDs(r.body)).To(Equal(ids))
	})
})

var _ = Describe("an API server gone in the middle of a group's membership change (issue 9, defect 3)", func() {
	It("answers the committed change, shows it whole to every reader, finishes it, and the next change converges", func() {
		c := newEnv().config("midpatch", "midpatch-token")
		var ids []string
		for i := 0; i < 10; i++ {
			ids = append(ids, userID(c, fmt.Sprintf("p%d@example.com", i)))
		}
		vals := func(ids []string) string {
			var out []string
			for _, id := range ids {
				out = append(out, `{"value":"`+id+`"}`)
			}
			return strings.Join(out, ",")
		}
		r := c.do("POST", "/Groups", `{"displayName":"midpatch","members":[`+vals(ids[:5])+`]}`)
		Expect(r.code).To(Equal(201), "%s", r)
		gid := str(r.body["id"])
		etag := r.header.Get("ETag")
		want := append(append([]string(nil), ids[2:5]...), ids[5:]...)
		sort.Strings(want)

		// the commit and one label write get through, then the API server is gone
		flaky := &goneMidway{Client: mgrClient, down: true, after: 1, afterCommit: true}
		bc := midwayServer(flaky, c.base, "midpatch-token")
		r = bc.do("PATCH", "/Groups/"+gid+"?attributes=members", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+
			`{"op":"add","path":"members","value":[`+vals(ids[5:])+`]},`+
			`{"op":"remove","path":"members","value":[`+vals(ids[:2])+`]}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(groupMemberIDs(r.body)).To(Equal(want))
		Expect(r.header.Get("ETag")).NotTo(Equal(etag))
		r = c.do("GET", "/Groups/"+gid, nil)
		Expect(groupMemberIDs(r.body)).To(Equal(want), "readers see the whole change")
		for i, id := range ids {
			r := c.do("GET", "/Users/"+id, nil)
			if i < 2 {
				Expect(r.body).NotTo(HaveKey("groups"), "user %d was removed", i)
			} else {
				Expect(r.body["groups"]).To(HaveLen(1), "user %d is a member", i)
			}
		}
		// a retry of the same request (the IdP never got its answer) changes nothing more
		r = c.do("PATCH", "/Groups/"+gid+"?attributes=members", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+
			`{"op":"add","path":"members","value":[`+vals(ids[5:])+`]},`+
			`{"op":"remove","path":"members","value":[`+vals(ids[:2])+`]}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(groupMemberIDs(r.body)).To(Equal(want))
		// and the labels follow
		Eventually(func() []string { return labelled(c.ns, gid) }, 30*time.Second).Should(Equal(want))
		// the next change, through the healthy server, lands on top of it
		r = c.do("PATCH", "/Groups/"+gid+"?attributes=members", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+
			`{"op":"remove","path":"members","value":[`+vals(ids[9:])+`]}]}`)
		Expect(r.code).To(Equal(200), "%s", r)
		var last []string
		for _, id := range want {
			if id != ids[9] {
				last = append(last, id)
			}
		}
		Expect(groupMemberIDs(r.body)).To(Equal(last))
		Expect(labelled(c.ns, gid)).To(Equal(last))
	})
})

// behindCache is a manager client whose cache has not caught up (its informers are
// reconnecting after an API server restart): it has no OrgGroup and no OrgMember labels.
type behindCache struct{ client.Client }

func (b *behindCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*scimv1.OrgGroup); ok {
		return apierrors.NewNotFound(scimv1.GroupVersion.WithResource("orggroups").GroupResource(), key.Name)
	}
	return b.Client.Get(ctx, key, obj, opts...)
}

func (b *behindCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*scimv1.OrgMemberList); ok {
		return nil // nothing yet
	}
	return b.Client.List(ctx, list, opts...)
}

var _ = Describe("a group read while the cache is behind (after an API server restart)", func() {
	It("answers the group with its members read from the API server, never with the members of an older version", func() {
		c := newEnv().config("behind", "behind-token")
		var ids []string
		var vals []any
		for i := 0; i < 3; i++ {
			id := userID(c, fmt.Sprintf("b%d@example.com", i))
			ids = append(ids, id)
			vals = append(vals, map[string]any{"value": id})
		}
		sort.Strings(ids)
		r := c.do("POST", "/Groups", map[string]any{"displayName": "behind", "members": vals})
		Expect(r.code).To(Equal(201), "%s", r)
		st := &scimstore.Store{Client: &behindCache{Client: mgrClient}, APIReader: mgrReader, Log: logr.Discard()}
		res, err := st.GetGroup(context.Background(), scopeOf(c), str(r.body["id"]), true)
		Expect(err).NotTo(HaveOccurred())
		Expect(groupMemberIDs(res)).To(Equal(ids))
	})
})
