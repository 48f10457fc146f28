package scimserver_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/manager"
)

// raceRounds is how many times each race of issue 9, defect 2, is run.
const raceRounds = 40

// race runs the requests at once and answers their status codes, in order.
func race(reqs ...func() int) []int {
	codes := make([]int, len(reqs))
	var start, done sync.WaitGroup
	start.Add(1)
	for i, r := range reqs {
		done.Add(1)
		go func() {
			defer GinkgoRecover()
			defer done.Done()
			start.Wait()
			codes[i] = r()
		}()
	}
	start.Done()
	done.Wait()
	return codes
}

func winners(codes []int) int {
	n := 0
	for _, c := range codes {
		if c == 200 || c == 201 {
			n++
		}
	}
	return n
}

func filterCount(c *scimClient, rt, attr, v string) int {
	GinkgoHelper()
	r := c.do("GET", "/"+rt+"?filter="+url.QueryEscape(fmt.Sprintf("%s eq %q", attr, v)), nil)
	Expect(r.code).To(Equal(200), "%s", r)
	return int(r.body["totalResults"].(float64))
}

// liveNamed counts the OrgMembers of ns that carry userName in the API server itself (not
// being deleted), past every cache.
func liveNamed(ns, userName string) int {
	GinkgoHelper()
	var l scimv1.OrgMemberList
	Expect(k8s.List(context.Background(), &l, client.InNamespace(ns))).To(Succeed())
	n := 0
	for _, m := range l.Items {
		if m.DeletionTimestamp.IsZero() && strings.EqualFold(m.Spec.UserName, userName) {
			n++
		}
	}
	return n
}

// roundResult is what one race round ended with.
type roundResult struct {
	codes    []int
	answered int // objects holding the contested name: the filter's count (two replicas: the API server's, then each replica's filter)
}

// checkRounds asserts that every round had exactly one winner and one object under the
// contested name, and reports how many did not.
func checkRounds(what string, rs []roundResult) {
	GinkgoHelper()
	twoWinners, twoNamed := 0, 0
	for _, r := range rs {
		if winners(r.codes) != 1 {
			twoWinners++
		}
		if r.answered != 1 {
			twoNamed++
		}
	}
	AddReportEntry(what, fmt.Sprintf("%d rounds: %d without exactly one winner, %d where not exactly one object held the name", len(rs), twoWinners, twoNamed))
	Expect([2]int{twoWinners, twoNamed}).To(Equal([2]int{0, 0}),
		"%s: %d of %d rounds without exactly one winner, %d where not exactly one object held the name: %v",
		what, twoWinners, len(rs), twoNamed, rs)
}

func userID(c *scimClient, userName string) string {
	GinkgoHelper()
	r := c.do("POST", "/Users", map[string]any{"userName": userName})
	Expect(r.code).To(Equal(201), "%s", r)
	return str(r.body["id"])
}

func renameUser(c *scimClient, id, userName string) int {
	return c.do("PATCH", "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "userName", "value": userName}},
	}).code
}

func putUser(c *scimClient, id, userName string) int {
	return c.do("PUT", "/Users/"+id, map[string]any{"userName": userName}).code
}

func createUser(c *scimClient, userName string) int {
	return c.do("POST", "/Users", map[string]any{"userName": userName}).code
}

var _ = Describe("renames are atomic (issue 9, defect 2)", func() {
	var c *scimClient
	BeforeEach(func() {
		c = newEnv().config("renames", "renames-token")
	})

	It("lets exactly one of a PATCH/PUT rename and a POST of the same userName win", func() {
		var rs []roundResult
		for i := range raceRounds {
			a := userID(c, fmt.Sprintf("a%d@example.com", i))
			x := fmt.Sprintf("x%d@example.com", i)
			rename := func() int { return renameUser(c, a, x) }
			if i%2 == 1 {
				rename = func() int { return putUser(c, a, x) }
			}
			codes := race(rename, func() int { return createUser(c, x) })
			rs = append(rs, roundResult{codes, filterCount(c, "Users", "userName", x)})
		}
		checkRounds("rename vs create", rs)
	})

	It("lets exactly one of two renames to the same userName win", func() {
		var rs []roundResult
		for i := range raceRounds {
			a := userID(c, fmt.Sprintf("a%d@example.com", i))
			b := userID(c, fmt.Sprintf("b%d@example.com", i))
			x := fmt.Sprintf("x%d@example.com", i)
			codes := race(func() int { return renameUser(c, a, x) }, func() int { return putUser(c, b, x) })
			rs = append(rs, roundResult{codes, filterCount(c, "Users", "userName", x)})
		}
		checkRounds("rename vs rename", rs)
	})

	It("lets exactly one of a group rename and a group create of the same displayName win", func() {
		var rs []roundResult
		for i := range raceRounds {
			r := c.do("POST", "/Groups", map[string]any{"displayName": fmt.Sprintf("g%d", i)})
			Expect(r.code).To(Equal(201), "%s", r)
			g := str(r.body["id"])
			y := fmt.Sprintf("y%d", i)
			codes := race(func() int {
				return c.do("PATCH", "/Groups/"+g, map[string]any{
					"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
					"Operations": []any{map[string]any{"op": "replace", "path": "displayName", "value": y}},
				}).code
			}, func() int {
				return c.do("POST", "/Groups", map[string]any{"displayName": y}).code
			})
			rs = append(rs, roundResult{codes, filterCount(c, "Groups", "displayName", y)})
		}
		checkRounds("group rename vs group create", rs)
	})

	It("frees a userName for a create once its holder is renamed away or deleted", func() {
		a := userID(c, "free@example.com")
		Expect(renameUser(c, a, "elsewhere@example.com")).To(Equal(200))
		b := userID(c, "free@example.com")
		Expect(b).NotTo(Equal(a))
		Expect(c.do("DELETE", "/Users/"+b, nil).code).To(Equal(204))
		Eventually(func() int { return createUser(c, "free@example.com") }).Should(Equal(201))
		// renaming back and forth keeps working, and the old name stays free
		Expect(renameUser(c, a, "back@example.com")).To(Equal(200))
		Expect(renameUser(c, a, "elsewhere@example.com")).To(Equal(200))
		Expect(createUser(c, "back@example.com")).To(Equal(201))
		Expect(createUser(c, "elsewhere@example.com")).To(Equal(409))
	})
})

var _ = Describe("names held without a claim (issue 9, defect 2)", func() {
	It("refuses a create or rename to the userName of an OrgMember made with kubectl", func() {
		c := newEnv().config("raw", "raw-token")
		raw := &scimv1.OrgMember{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.ns, Name: "raw-member", Labels: map[string]string{scimv1.LabelConfig: c.config}},
			Spec:       scimv1.OrgMemberSpec{ConfigName: c.config, UserName: "raw@example.com", Active: true},
		}
		Expect(k8s.Create(context.Background(), raw)).To(Succeed())
		Eventually(func() int { return filterCount(c, "Users", "userName", "raw@example.com") }).Should(Equal(1))
		Expect(createUser(c, "RAW@example.com")).To(Equal(409))
		a := userID(c, "other@example.com")
		Expect(renameUser(c, a, "raw@example.com")).To(Equal(409))
		Expect(filterCount(c, "Users", "userName", "raw@example.com")).To(Equal(1))
		// once it is renamed away with SCIM, the name is free
		Expect(renameUser(c, "raw-member", "raw2@example.com")).To(Equal(200))
		Expect(createUser(c, "raw@example.com")).To(Equal(201))
		Expect(renameUser(c, a, "raw2@example.com")).To(Equal(409))
	})
})

var _ = Describe("renames are atomic across replicas (issue 9, defect 2)", Ordered, func() {
	var c, c2 *scimClient
	BeforeAll(func() {
		ctx := context.Background()
		// a second replica sharing the API server: it serves SCIM only, as a replica that
		// is not the leader does (the lease is held by a replica that is not here)
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "scim-leader-"}}
		Expect(k8s.Create(ctx, ns)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(context.Background(), ns) })
		now := metav1.NewMicroTime(time.Now())
		Expect(k8s.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: manager.LeaderElectionID},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("elsewhere"), LeaseDurationSeconds: ptr.To[int32](3600),
				AcquireTime: &now, RenewTime: &now},
		})).To(Succeed())
		mgr2, err := manager.New(testEnv.Config, manager.Options{
			MetricsAddr: "0", ProbeAddr: "0", ScimAddr: "127.0.0.1:0", ScimInsecureHTTP: true,
			LeaderElection: true, LeaderElectionNamespace: ns.Name, SkipControllerNameValidation: true,
		})
		Expect(err).NotTo(HaveOccurred())
		ctx2, cancel := context.WithCancel(context.Background())
		go func() {
			defer GinkgoRecover()
			Expect(mgr2.Start(ctx2)).To(Succeed())
		}()
		DeferCleanup(cancel)
		Expect(mgr2.GetCache().WaitForCacheSync(ctx2)).To(BeTrue())
		hs := httptest.NewServer(mgr2.SCIM.Handler())
		DeferCleanup(hs.Close)

		c = newEnv().config("replicas", "replicas-token")
		cc := *c
		cc.url = hs.URL
		c2 = &cc
		Eventually(func() int { return c2.do("GET", "/ServiceProviderConfig", nil).code }).Should(Equal(200))
	})

	It("lets exactly one of a rename on one replica and a create on another win", func() {
		var rs []roundResult
		for i := range raceRounds {
			a := userID(c, fmt.Sprintf("a%d@example.com", i))
			x := fmt.Sprintf("x%d@example.com", i)
			Eventually(func() int { return c2.do("GET", "/Users/"+a, nil).code }).Should(Equal(200))
			codes := race(func() int { return renameUser(c, a, x) }, func() int { return createUser(c2, x) })
			// The API server is the judge: a losing create has deleted its member before
			// answering 409, so two members that both keep the name are two there, whatever
			// either replica's cache shows yet.
			n := liveNamed(c.ns, x)
			// Then each replica's filter answers exactly that one. The loser waited for its
			// own replica's cache to show its member gone; the other replica's cache shows
			// it a moment later (caches are per replica).
			for _, rc := range []*scimClient{c, c2} {
				if n != 1 {
					break
				}
				n = filterCount(rc, "Users", "userName", x)
				for settle := time.Now().Add(2 * time.Second); n != 1 && time.Now().Before(settle); {
					time.Sleep(10 * time.Millisecond)
					n = filterCount(rc, "Users", "userName", x)
				}
			}
			rs = append(rs, roundResult{codes, n})
		}
		checkRounds("rename vs create on two replicas", rs)
	})
})
