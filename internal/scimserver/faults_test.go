package scimserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scimserver"
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
// writes after the first `after` fail as unreachable.
type goneMidway struct {
	client.Client
	mu     sync.Mutex
	down   bool
	after  int
	writes int
}

func (g *goneMidway) fail() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes++
	if g.down && g.writes > g.after {
		return unreachable{}.err()
	}
	return nil
}

func (g *goneMidway) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	if err := g.fail(); err != nil {
		return err
	}
	return g.Client.Patch(ctx, o, p, opts...)
}

func (g *goneMidway) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	if err := g.fail(); err != nil {
		return err
	}
	return g.Client.Delete(ctx, o, opts...)
}

var _ = Describe("an API server gone in the middle of a group's create", func() {
	It("answers 503 and takes the group and its labels back out once the API server answers again", func() {
		c := newEnv().config("midway", "midway-token")
		var ids []string
		for i := 0; i < 5; i++ {
			r := c.do("POST", "/Users", fmt.Sprintf(`{"userName":"mid%d@example.com"}`, i))
			Expect(r.code).To(Equal(201))
			ids = append(ids, str(r.body["id"]))
		}
		// the group's create and two label patches get through, then the API server is gone
		flaky := &goneMidway{Client: mgrClient, down: true, after: 2}
		broken, err := scimserver.New(scimserver.Options{Client: flaky, APIReader: mgrReader, Cache: mgrCache, Log: logr.Discard()})
		Expect(err).NotTo(HaveOccurred())
		hs := httptest.NewServer(broken.Handler())
		defer hs.Close()
		orig := httpSrv
		httpSrv = hs
		defer func() { httpSrv = orig }()
		bc := &scimClient{base: c.base, token: "midway-token"}

		var vals []string
		for _, id := range ids {
			vals = append(vals, `{"value":"`+id+`"}`)
		}
		r := bc.do("POST", "/Groups", `{"displayName":"midway","members":[`+strings.Join(vals, ",")+`]}`)
		expectError(r, 503, "", "unavailable")
		groups := func() []string {
			var list scimv1.OrgGroupList
			Expect(k8s.List(context.Background(), &list, client.InNamespace(c.ns))).To(Succeed())
			var out []string
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
		Expect(groups()).To(ConsistOf("midway"), "half-written while the API server is away")
		Expect(labelled()).To(BeNumerically(">", 0))

		flaky.mu.Lock()
		flaky.down = false
		flaky.mu.Unlock()
		Eventually(groups, 30*time.Second).Should(BeEmpty())
		Eventually(labelled, 30*time.Second).Should(BeZero())
	})
})
