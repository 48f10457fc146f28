package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
)

// memberCalls tracks the Docker Hub calls of reconciles (not the backend check, not the
// token exchange) that are in flight: when each began, and whether it was answered. While
// hold is open, a call that holds matches (a member lookup, a members search, when nil) is
// held until it is closed: a backend that stalls exactly as long as the spec wants, each
// stalled call holding the worker whose reconcile made it.
type memberCalls struct {
	mu      sync.Mutex
	calls   []*memberCall
	hold    chan struct{}
	holds   func(*http.Request) bool
	holding int
}

type memberCall struct {
	start   time.Time
	done    bool
	stalled bool // held by hold
}

func (m *memberCalls) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page_size") == "1" || strings.HasSuffix(r.URL.Path, "/auth/token") {
			next.ServeHTTP(w, r)
			return
		}
		c := &memberCall{start: time.Now()}
		m.mu.Lock()
		m.calls = append(m.calls, c)
		hold := m.hold
		m.mu.Unlock()
		defer func() { m.mu.Lock(); c.done = true; m.mu.Unlock() }()
		if hold != nil && (m.holds == nil && r.URL.Query().Has("search") || m.holds != nil && m.holds(r)) {
			m.mu.Lock()
			m.holding++
			c.stalled = true
			m.mu.Unlock()
			select {
			case <-hold:
			case <-r.Context().Done():
			}
			m.mu.Lock()
			m.holding--
			m.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// stalledOpen counts the calls of cs that were held and are not answered yet (neither
// released nor given up by the manager).
func (m *memberCalls) stalledOpen(cs []*memberCall) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range cs {
		if c.stalled && !c.done {
			n++
		}
	}
	return n
}

// held counts the member lookups held now.
func (m *memberCalls) held() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holding
}

// startedBefore returns the calls begun before t.
func (m *memberCalls) startedBefore(t time.Time) []*memberCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*memberCall
	for _, c := range m.calls {
		if c.start.Before(t) {
			out = append(out, c)
		}
	}
	return out
}

// awaitPlateau waits until the held calls stop growing for 2 s, at half the workers or
// more: tenant A holds as many workers as it may. With the shares that is at most every
// worker but one left free for another config and the spare (fewer while other configs
// hold workers); without them, A goes on to every worker, and B has none to run in.
func (m *memberCalls) awaitPlateau(what string) {
	var plateau int
	EventuallyWithOffset(1, func() bool {
		n := m.held()
		stable := n >= controllers.DefaultMaxConcurrentReconciles/2 && n == plateau
		plateau = n
		return stable
	}, readyTimeout, 2*time.Second).Should(BeTrue(), what)
}

// now is the moment tenant B acts: the time, the calls begun before it, and how many of
// them are stalled then.
func (m *memberCalls) now() (time.Time, []*memberCall, int) {
	start := time.Now()
	before := m.startedBefore(start)
	return start, before, m.stalledOpen(before)
}

// open counts the calls of cs not answered yet.
func (m *memberCalls) open(cs []*memberCall) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, c := range cs {
		if !c.done {
			n++
		}
	}
	return n
}

// fairnessBacklog is the size of tenant A's backlog (FAIRNESS_BACKLOG, 24 by default).
func fairnessBacklog() int {
	if n, err := strconv.Atoi(os.Getenv("FAIRNESS_BACKLOG")); err == nil && n > 0 {
		return n
	}
	return 24
}

var _ = Describe("fairness between tenants", Label("fairness"), func() {
	It("deprovisions tenant B (kubernetes) while tenant A's slow, rate-limited Docker Hub backlog is still pending", func() {
		By("tenant B: the kubernetes sample config and one Active user")
		nsB, _, b := readyConfig()
		user := "fair-" + nsB + "@example.com"
		code, body, _ := b.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+user+`","active":true}`)
		Expect(code).To(Equal(201), "%v", body)
		id := body["id"].(string)
		canI := func() string {
			out, _ := kubectl("auth", "can-i", "list", "pods", "-n", "default", "--as", user)
			return strings.TrimSpace(out)
		}
		Eventually(canI, readyTimeout).Should(Equal("yes"))

		// A's backlog has more active members than the manager has workers, its budget lets
		// all of them call at once, and its lookups stall until the spec lets them go: left
		// to itself, A would hold every worker, each in a stalled call, and B's deactivation
		// would wait for one of them. Only the share of the workers a tenant may hold
		// (controllers.ConfigSlots) leaves one for B. (A budget of 30 a minute and a 10 s
		// latency let A hold a few workers only: the spec passed without the shares, and a
		// 429 answered at once frees a worker too. Review 20.)
		By("tenant A: a Docker Hub organization whose member lookups stall, on a budget of 600 requests a minute")
		nsA := newNamespace()
		inflight := memberCalls{hold: make(chan struct{})}
		release := sync.OnceFunc(func() { close(inflight.hold) })
		DeferCleanup(release)
		a := newHubOrg(cluster.Client, nsA, 600, inflight.wrap)
		idpA := newFaultIdP(func() string { return mgr.SCIMURL + a.cfg.Status.BasePath }, a.token)
		n := fairnessBacklog()
		usersA := idpUsers("fair-a", n)
		Expect(activeCount(usersA)).To(BeNumerically(">", controllers.DefaultMaxConcurrentReconciles),
			"FAIRNESS_BACKLOG: A needs more active members than the manager has workers, or the spec cannot fail")
		for _, u := range usersA {
			code, _, _, err := idpA.post(u)
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(201))
		}
		// backlogA counts tenant A's members not settled yet (pending), and those the
		// controller has not reconciled even once (untouched: no status for their generation).
		backlogA := func() (pending, untouched int) {
			var list scimv1.OrgMemberList
			Expect(cluster.Client.List(ctx, &list, client.InNamespace(nsA))).To(Succeed())
			for _, m := range list.Items {
				switch m.Status.Phase {
				case scimv1.PhaseInvited, scimv1.PhaseActive, scimv1.PhaseDeactivated: // settled (idpUsers has inactive ones)
				default:
					pending++
				}
				if m.Status.ObservedGeneration != m.Generation {
					untouched++
				}
			}
			return pending, untouched
		}
		pendingA := func() int { p, _ := backlogA(); return p }
		inflight.awaitPlateau("tenant A's workers are busy with its stalled organization")

		By("tenant B deactivates its user")
		start, before, stalledAtStart := inflight.now()
		code, body, _ = b.do("PATCH", "/Users/"+id,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`)
		Expect(code).To(Equal(200), "%v", body)
		// The property: B converges while every lookup A had stalled when B's PATCH came is
		// still stalled, so B did not wait for a worker A held. (Without the shares, A
		// holds every worker, and B converges only once the manager gives up a stalled
		// call: its request timeout, 30 s.)
		Eventually(canI, readyTimeout, 100*time.Millisecond).Should(Equal("no"))
		took := time.Since(start)
		stillOpen := inflight.open(before)
		left, untouched := backlogA()
		fig := fmt.Sprintf("tenant B deprovisioned (SubjectAccessReview denies) %s after active=false, while %d of tenant A's "+
			"%d members were still waiting for its stalled Docker Hub (%d not yet reconciled once; %d of A's member calls begun "+
			"before B's PATCH still unanswered; %d lookups stalled)", took.Round(time.Millisecond), left, n, untouched, stillOpen,
			inflight.held())
		GinkgoWriter.Println(fig)
		AddReportEntry("fairness", fig)
		Expect(inflight.stalledOpen(before)).To(Equal(stalledAtStart),
			"B converged only once a lookup A had stalled was given up: B waited for a worker A held")
		Expect(left).To(BeNumerically(">", 0), "A's backlog is pending while its lookups stall")

		By("tenant A's backlog still drains once its Docker Hub recovers")
		release()
		Eventually(func() error {
			cfg := &scimv1.ScimConfig{}
			if err := cluster.Client.Get(ctx, a.key, cfg); err != nil {
				return err
			}
			cfg.Spec.Backend.DockerHub.RequestsPerMinute = 6000
			return cluster.Client.Update(ctx, cfg)
		}).Should(Succeed())
		Eventually(pendingA, 5*time.Minute).Should(BeZero())
	})

	// The OrgGroup controller's workers are shared the same way (review 79 F4: they were
	// not). A group's deletion on the kubernetes backend takes its team's grant away, so
	// it is deprovisioning too: tenant B's must not wait behind tenant A's groups stalled
	// on a slow Docker Hub.
	It("deletes tenant B's group (kubernetes) while tenant A's groups wait on a stalled Docker Hub", func() {
		By("tenant B: the kubernetes sample config and a group its team's people get access through")
		nsB, _, b := readyConfig()
		code, body, _ := b.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"fair-team-`+nsB+`","members":[]}`)
		Expect(code).To(Equal(201), "%v", body)
		gid := body["id"].(string)
		var team string
		Eventually(func() string {
			team, _ = kubectl("get", "orggroup", "-n", nsB, gid, "-o", "jsonpath={.status.team}")
			return strings.TrimSpace(team)
		}, readyTimeout).ShouldNot(BeEmpty())
		team = strings.TrimSpace(team)
		person := "someone-" + nsB + "@example.com" // not a member: the team's grant alone
		canI := func() string { return canListPods(person, team) }
		Eventually(canI, readyTimeout).Should(Equal("yes"))

		By("tenant A: a Docker Hub organization whose team calls stall, with more groups than the manager has workers")
		nsA := newNamespace()
		inflight := memberCalls{hold: make(chan struct{}), holds: func(r *http.Request) bool {
			return strings.Contains(r.URL.Path, "/groups")
		}}
		release := sync.OnceFunc(func() { close(inflight.hold) })
		DeferCleanup(release)
		a := newHubOrg(cluster.Client, nsA, 600, inflight.wrap)
		idpA := newFaultIdP(func() string { return mgr.SCIMURL + a.cfg.Status.BasePath }, a.token)
		n := fairnessBacklog()
		Expect(n).To(BeNumerically(">", controllers.DefaultMaxConcurrentReconciles),
			"FAIRNESS_BACKLOG: A needs more groups than the manager has workers, or the spec cannot fail")
		for i := range n {
			code, _, _, err := idpA.call("POST", "/Groups", fmt.Sprintf(
				`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"fair-a-%02d","members":[]}`, i))
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(201))
		}
		inflight.awaitPlateau("tenant A's group workers are busy with its stalled organization")

		By("tenant B deletes its group")
		start, before, stalledAtStart := inflight.now()
		code, _, _ = b.do("DELETE", "/Groups/"+gid, "")
		Expect(code).To(Equal(204))
		// The property: the team loses its access while every call A had stalled when B's
		// DELETE came is still stalled. (Without the shares, A's groups hold every worker,
		// and B's deletion waits until the manager gives up a stalled call: 30 s.)
		Eventually(canI, readyTimeout, 100*time.Millisecond).Should(Equal("no"))
		took := time.Since(start)
		fig := fmt.Sprintf("tenant B's group deleted (SubjectAccessReview denies its team) %s after DELETE, while %d of tenant A's "+
			"calls begun before it were still unanswered (%d team calls stalled)", took.Round(time.Millisecond), inflight.open(before), inflight.held())
		GinkgoWriter.Println(fig)
		AddReportEntry("fairness", fig)
		Expect(inflight.stalledOpen(before)).To(Equal(stalledAtStart),
			"B's team lost access only once a call A had stalled was given up: B waited for a worker A held")
		release()
	})
})
