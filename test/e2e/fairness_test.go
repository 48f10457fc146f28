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
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// memberCalls tracks the Docker Hub calls of member reconciles (not the backend check, not
// the token exchange) that are in flight: when each began, and whether it was answered.
type memberCalls struct {
	mu    sync.Mutex
	calls []*memberCall
}

type memberCall struct {
	start time.Time
	done  bool
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
		m.mu.Unlock()
		defer func() { m.mu.Lock(); c.done = true; m.mu.Unlock() }()
		next.ServeHTTP(w, r)
	})
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

		By("tenant A: a Docker Hub organization answering in 10 s, with a 429 every seventh call, on a budget of 30 requests a minute")
		nsA := newNamespace()
		var inflight memberCalls
		a := newHubOrg(cluster.Client, nsA, 30, inflight.wrap)
		a.emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, RetryAfter: 2 * time.Second, Every: 7, Count: -1})
		a.emu.Inject(hubemu.Fault{Kind: hubemu.FaultLatency, Latency: 10 * time.Second, Count: -1})
		idpA := newFaultIdP(func() string { return mgr.SCIMURL + a.cfg.Status.BasePath }, a.token)
		n := fairnessBacklog()
		for _, u := range idpUsers("fair-a", n) {
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
		Eventually(func() int { // a member reconcile of A is in a slow call (its search has reached Hub)
			n := 0
			for _, r := range a.emu.Requests() {
				if strings.Contains(r.Query, "search=") {
					n++
				}
			}
			return n
		}, readyTimeout).Should(BeNumerically(">", 0), "tenant A's workers are busy with its slow organization")

		By("tenant B deactivates its user")
		start := time.Now()
		before := inflight.startedBefore(start)
		code, body, _ = b.do("PATCH", "/Users/"+id,
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`)
		Expect(code).To(Equal(200), "%v", body)
		Eventually(canI, readyTimeout, 100*time.Millisecond).Should(Equal("no"))
		took := time.Since(start)
		stillOpen := inflight.open(before)
		left, untouched := backlogA()
		fig := fmt.Sprintf("tenant B deprovisioned (SubjectAccessReview denies) %s after active=false, while %d of tenant A's "+
			"%d members were still waiting for its slow Docker Hub (%d not yet reconciled once; %d of A's member calls begun "+
			"before B's PATCH still unanswered)", took.Round(time.Millisecond), left, n, untouched, stillOpen)
		GinkgoWriter.Println(fig)
		AddReportEntry("fairness", fig)
		// B's deactivation was queued behind all of A's backlog. The property: B converges
		// while A's backlog is still pending. (With one worker, or with workers that A's
		// slow calls and its rate limiter's waits can all hold, B waits for A's backlog:
		// on the code before this change the SubjectAccessReview still allowed B after
		// readyTimeout.)
		Expect(left).To(BeNumerically(">", 0),
			"B converged only after A's backlog: A's slow backend held the workers B needed")
		// And B did not wait for A's calls: some of A's member calls that were in flight
		// when B's deactivation came are still unanswered when B converged. (A worker that
		// B could only get once A's reconcile returned sees none.)
		Expect(stillOpen).To(BeNumerically(">", 0),
			"B converged only once the member calls A had in flight were answered: B waited for a worker A held")

		By("tenant A's backlog still drains once its Docker Hub recovers")
		a.emu.ClearFaults()
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
})
