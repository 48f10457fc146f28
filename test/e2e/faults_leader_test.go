package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// leaseAcquired is what client-go's leader election logs when this replica becomes the
// leader.
const leaseAcquired = "Successfully acquired lease"

// eventRejected is what client-go logs when the API server refuses an Event (the leader
// election's "became leader" among them) for want of RBAC.
const eventRejected = "Server rejected event"

// grantLeaderElection gives the manager's ServiceAccount (the one p.mgrKubeconfig
// authenticates as, devenv.ManagerServiceAccount) the install's leader election Role
// (config/rbac/leader_election_role.yaml) in ns.
func grantLeaderElection(p *ownPlane, ns string) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "leader_election_role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var role rbacv1.Role
	Expect(sigsyaml.UnmarshalStrict(raw, &role)).To(Succeed())
	role.Namespace = ns
	Expect(p.cluster.Client.Create(ctx, &role)).To(Succeed())
	Expect(p.cluster.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: devenv.ManagerServiceAccount, Namespace: ns}},
	})).To(Succeed())
}

// workersStarted is what controller-runtime logs when a controller starts its workers:
// only the Lease holder runs controllers.
const workersStarted = "Starting workers"

type replica struct {
	name string
	m    *devenv.Manager
	log  *lineWriter
}

var _ = Describe("faults survived end to end: two replicas", Label("faults"), func() {
	It("serves SCIM on both replicas, runs the controllers on the Lease holder, and hands over within the lease when the leader is killed", func() {
		n := faultUsers(60)
		plane := startOwnPlane()
		const leaseNS = "scim-operator-system" // the manager's namespace (ManagerKubeconfig)
		grantLeaderElection(plane, leaseNS)
		args := []string{"--leader-elect", "--leader-election-namespace=" + leaseNS}
		var reps [2]*replica
		for i, name := range []string{"a", "b"} {
			m, w := plane.startManager(fmt.Sprintf("[faults-replica-%s] ", name), []string{leaseAcquired, eventRejected, workersStarted}, args...)
			reps[i] = &replica{name: name, m: m, log: w}
		}

		By("one replica holds the Lease: the one that logged acquiring it")
		var leader, follower *replica
		Eventually(func() int {
			n := 0
			for i, r := range reps {
				if r.log.logged(leaseAcquired) {
					leader, follower = r, reps[1-i]
					n++
				}
			}
			return n
		}, time.Minute).Should(Equal(1))
		lease := &coordinationv1.Lease{}
		leaseKey := types.NamespacedName{Namespace: leaseNS, Name: manager.LeaderElectionID}
		Expect(plane.cluster.Client.Get(ctx, leaseKey, lease)).To(Succeed())
		firstHolder := *lease.Spec.HolderIdentity
		leaseDuration := time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second
		Consistently(func() bool { return follower.log.logged(leaseAcquired) }, 3*time.Second).Should(BeFalse())
		Expect(leader.log.logged(eventRejected)).To(BeFalse(), "the install's leader election Role lets the leader record that it became leader")

		// Only now a ScimConfig: without a leader (a replica denied the Lease) it could never
		// become Ready, and the failure would name the config rather than the Lease.
		ns := plane.namespace()
		org := newHubOrg(plane.cluster.Client, ns, 3000)
		path := org.cfg.Status.BasePath

		idpOf := func(r *replica) *faultIdP {
			return newFaultIdP(func() string { return r.m.SCIMURL + path }, org.token)
		}
		on := [2]*faultIdP{idpOf(reps[0]), idpOf(reps[1])}
		var extra []idpUser

		By("a write through either replica is visible through the other")
		lag := time.Duration(0)
		for i := 0; i < 10; i++ {
			u := idpUser{userName: fmt.Sprintf("seen-%04d@example.com", i), active: true}
			extra = append(extra, u)
			w, r := on[i%2], on[1-i%2]
			code, out, _, err := w.post(u)
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(201), "%v", out)
			wrote := time.Now()
			Eventually(func() string { id, _ := r.lookup(u.userName); return id }, 10*time.Second, 10*time.Millisecond).
				Should(Equal(out["id"]))
			lag = max(lag, time.Since(wrote))
		}

		By("uniqueness across replicas: the same userName POSTed at once through both, twice each, is created once")
		for i := 0; i < 10; i++ {
			u := idpUser{userName: fmt.Sprintf("twice-%04d@example.com", i), active: true}
			extra = append(extra, u)
			start := make(chan struct{})
			codes := make(chan int, 4)
			var wg sync.WaitGroup
			for k := 0; k < 4; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					code, _, _, err := on[k%2].post(u)
					if err != nil {
						code = 0
					}
					codes <- code
				}()
			}
			close(start)
			wg.Wait()
			close(codes)
			got := map[int]int{}
			for c := range codes {
				got[c]++
			}
			Expect(got).To(Equal(map[int]int{201: 1, 409: 3}), u.userName)
		}

		By(fmt.Sprintf("a full sync of %d users through both replicas (a Service in front); the leader is SIGKILLed in the middle", n))
		var live atomic.Pointer[[]*replica]
		live.Store(&[]*replica{reps[0], reps[1]})
		var rr atomic.Int64
		idp := newFaultIdP(func() string {
			l := *live.Load()
			return l[int(rr.Add(1))%len(l)].m.SCIMURL + path
		}, org.token)
		users := idpUsers("ha", n)
		active := activeCount(users)
		progress := &counter{}
		pushed := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			pushed <- idp.pushAll(users, 4, 100*time.Millisecond, time.Now().Add(3*time.Minute), progress)
		}()
		Eventually(func() int { return len(org.emu.Invites()) }, 2*time.Minute, 5*time.Millisecond).
			Should(BeNumerically(">=", (active+len(extra))/3))
		Expect(plane.cluster.Client.Get(ctx, leaseKey, lease)).To(Succeed())
		lastRenew := lease.Spec.RenewTime.Time
		invitedAtKill := len(org.emu.Invites())
		Expect(invitedAtKill).To(BeNumerically("<", active+len(extra)), "the kill lands in the middle of the sync")
		// Only the leader runs controllers: the follower serves SCIM but has started no
		// controller's workers (the leader's invitations so far were all its own).
		Expect(leader.log.logged(workersStarted)).To(BeTrue(), "the leader runs the controllers")
		Expect(follower.log.logged(workersStarted)).To(BeFalse(), "the follower started controller workers while the leader held the Lease")
		Expect(leader.m.Kill()).To(Succeed())
		killedAt := time.Now()
		live.Store(&[]*replica{follower})
		GinkgoWriter.Printf("killed the leader %s (pid %d) with %d/%d users pushed and %d invited\n",
			leader.name, leader.m.PID(), progress.get(), n, invitedAtKill)

		By("the other replica takes the Lease within its duration and finishes the sync")
		Eventually(func() bool { return follower.log.logged(leaseAcquired) }, leaseDuration+30*time.Second, 100*time.Millisecond).
			Should(BeTrue())
		handover := time.Since(killedAt)
		Eventually(func() bool { return follower.log.logged(workersStarted) }, time.Minute, 100*time.Millisecond).
			Should(BeTrue(), "the new leader starts the controllers")
		Expect(plane.cluster.Client.Get(ctx, leaseKey, lease)).To(Succeed())
		Expect(*lease.Spec.HolderIdentity).NotTo(Equal(firstHolder))
		sinceRenew := lease.Spec.AcquireTime.Time.Sub(lastRenew)
		Expect(leaseDuration).To(Equal(manager.LeaderLeaseDuration))
		// The honest bound (internal/manager, docs/faults.md): client-go's follower times the
		// lease from when it saw the last renewal, never sooner, and looks every RetryPeriod
		// (jittered up to 1.2 times): it sees the renewal up to one period late and takes the
		// Lease up to one period after it expired. Every look is an API request; on two
		// loaded cores each may take a second, so two seconds are allowed for those.
		looks := time.Duration(2 * 1.2 * float64(manager.LeaderRetryPeriod))
		const apiTime = 2 * time.Second
		bound := leaseDuration + looks + apiTime
		Expect(sinceRenew).To(BeNumerically(">=", leaseDuration), "no replica takes a Lease before it expired")
		// The upper bound is a figure, not an assertion: on a loaded machine any look may be
		// slow (no timed assertions in tests); the Eventually above is the liveness check.
		GinkgoWriter.Printf("handover: the Lease was taken %s after the leader's last renewal (expected at most lease %s + two looks %s + API time %s = %s)\n",
			sinceRenew.Round(100*time.Millisecond), leaseDuration, looks, apiTime, bound)
		Expect(<-pushed).To(Succeed())
		Eventually(org.converged, 3*time.Minute+settleTimeout(len(users)+len(extra)), time.Second).Should(BeEmpty())
		converge := time.Since(killedAt)

		all := append(append([]idpUser{}, users...), extra...)
		for _, p := range on {
			p.mu.Lock()
			idp.mu.Lock()
			for k, v := range p.created {
				idp.created[k] = v
			}
			idp.mu.Unlock()
			p.mu.Unlock()
		}
		dups, dupDetail := org.duplicates(all)
		Expect(dupDetail).To(BeEmpty())
		lost, lostDetail := lostUsers(idp, org, all)
		Expect(lostDetail).To(BeEmpty())
		faultFigures{spec: "leader-killed", users: len(all), faults: 1, converge: converge, duplicates: dups, lost: lost,
			extra: []string{fmt.Sprintf("max_cross_replica_lag=%s invited_at_kill=%d handover=%s lease_taken_after_last_renew=%s (bound %s = lease %s + looks %s + API %s) killed_after_last_renew=%s",
				lag.Round(time.Millisecond), invitedAtKill, handover.Round(100*time.Millisecond), sinceRenew.Round(100*time.Millisecond),
				bound, leaseDuration, looks, apiTime, killedAt.Sub(lastRenew).Round(100*time.Millisecond))}}.print()
	})
})
