package e2e

// A ScimConfig disabled in the middle of a sync (issue 11, item 3): the IdP has sent
// everyone, the operator is part way through inviting them into a slow Docker Hub
// organization (the emulator, every call 100 ms late; every invitation after the first
// third held until the config is disabled), and the config is disabled. From the moment
// the manager shows it saw that (Paused=True) no backend call may start: the calls under
// way then (at most one per worker) finish, and the emulator's log stays as it is while the
// IdP keeps trying (403), a resync is asked for and a member is deleted with kubectl;
// everyone stays where they are. Enabled again, it resumes and converges: everyone invited
// exactly once, the member deleted meanwhile orphaned (its invitation left in place).

import (
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/test/access"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

var _ = Describe("a ScimConfig disabled in the middle of a sync", Label(faultsLabel), func() {
	It("leaves everyone where they are, calls the backend no more while disabled, and converges when enabled again", func() {
		n := faultsUsers()
		quiet := knobDuration("FAULTS_QUIET", 5*time.Second)
		j := hubJourney("disable-mid-sync", "Okta SCIM Client 1.0.0", "application/json; charset=utf-8")
		// The first n/3 invitations go through (100 ms late, like every call); every later
		// one is held by the emulator until the spec lets it go, after the disable: the
		// disable lands mid-sync whatever the machine's speed (before, a race with 4
		// workers and 6,000 calls a minute, which the operator could win).
		hold := make(chan struct{})
		var releaseOnce sync.Once
		release := func() { releaseOnce.Do(func() { close(hold) }) }
		DeferCleanup(release) // before the journey's cleanup closes the emulator
		j.emu.Inject(hubemu.Fault{Kind: hubemu.FaultLatency, Latency: 100 * time.Millisecond, Method: "POST", Path: "/v2/invites/bulk", Count: n / 3})
		j.emu.Inject(hubemu.Fault{Kind: hubemu.FaultHold, Until: hold, Method: "POST", Path: "/v2/invites/bulk", Count: -1})
		j.emu.Inject(hubemu.Fault{Kind: hubemu.FaultLatency, Latency: 100 * time.Millisecond, Count: -1})
		okta := func(u string) string { return filterQuery("userName", u, "&startIndex=1&count=100") }
		body := func(p *person) string {
			return fmt.Sprintf(`{"schemas":[%s],"userName":%q,"emails":[{"primary":true,"value":%q,"type":"work"}],"active":true}`,
				userSchema, p.userName, p.email)
		}

		By(fmt.Sprintf("the IdP sends %d people; the operator starts inviting them", n))
		j.sync(n, okta, body)
		for _, p := range j.people {
			j.invited(p.email)
		}
		Eventually(func() int { return len(j.emu.Invites()) }, settleTimeout(n), 20*time.Millisecond).Should(BeNumerically(">=", n/3))

		By("disabling the config mid-sync")
		mustKubectl("patch", "-n", j.ns, "scimconfig", "example", "--type=merge", "-p", `{"spec":{"enabled":false}}`)
		Eventually(func() bool {
			cfg := j.config()
			c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionPaused)
			return c != nil && c.Status == "True" && c.ObservedGeneration == cfg.Generation
		}, readyTimeout, 20*time.Millisecond).Should(BeTrue(), "the manager says it saw the change (Paused=True)")
		// Paused=True is written: from now on no backend call may start. The calls under
		// way (held invitations, each worker's one) may finish, nothing more.
		startedAtPaused, inFlight, atPaused := j.emu.Started(), j.emu.InFlight(), len(j.emu.Requests())
		Expect(inFlight).To(BeNumerically("<=", controllers.DefaultMaxConcurrentReconciles), "at most one call per worker under way")
		release()
		Eventually(j.emu.InFlight, readyTimeout, 20*time.Millisecond).Should(BeZero(), "the calls under way at Paused=True finish")
		before := j.emu.Requests()
		Expect(j.emu.Started()).To(Equal(startedAtPaused), "no backend call started after Paused=True: %v", before[atPaused:])
		Expect(len(before)-atPaused).To(BeNumerically("<=", inFlight), "only the calls under way at Paused=True finished after it")
		holdersBefore := access.HubHolders(j.emu, hubOwner)
		invitedWhenDisabled := len(holdersBefore)
		Expect(invitedWhenDisabled).To(BeNumerically("<", n), "disabled before the sync was over")
		Eventually(func() []string {
			var busy []string
			for name, m := range j.members() {
				if c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced); c == nil || c.Reason != "Paused" {
					busy = append(busy, name)
				}
			}
			return busy
		}, readyTimeout, 20*time.Millisecond).Should(BeEmpty(), "every OrgMember says it is paused")
		phasesBefore := map[string]scimv1.MemberPhase{}
		for name, m := range j.members() {
			phasesBefore[name] = m.Status.Phase
		}

		By(fmt.Sprintf("for %s: the IdP keeps trying, a resync is asked for, a member is deleted with kubectl", quiet))
		refused := 0
		for _, path := range []string{okta("late@example.com"), "/Users?startIndex=1&count=2"} {
			j.c.must(403, "GET", path, "")
			refused++
		}
		j.c.must(403, "POST", "/Users", fmt.Sprintf(`{"schemas":[%s],"userName":"late.%s@example.com"}`, userSchema, j.ns))
		refused++
		_, stderr, err := kubectlScim("resync", "config", "example", "-n", j.ns)
		Expect(err).NotTo(HaveOccurred(), stderr)
		var gone *person
		for _, p := range j.people {
			if holdersBefore["invite:"+p.email] {
				gone = p
				break
			}
		}
		Expect(gone).NotTo(BeNil(), "someone was invited before the config was disabled")
		mustKubectl("delete", "orgmember", "-n", j.ns, gone.id, "--wait=true", "--timeout=60s")
		gone.deleted = true
		j.orphans = append(j.orphans, "invite:"+gone.email) // deleted while disabled: left in place
		time.Sleep(quiet)

		after := j.emu.Requests()
		Expect(after[len(before):]).To(BeEmpty(), "no backend call while the config is disabled")
		Expect(access.Diff(holdersBefore, access.HubHolders(j.emu, hubOwner))).To(BeEmpty(), "everyone stays where they are")
		ms := j.members()
		for name, phase := range phasesBefore {
			if name == gone.id {
				continue
			}
			Expect(ms).To(HaveKey(name))
			if phase == "" {
				// never processed before the disable: it may now say Pending (not in the
				// backend, and not going there while disabled), which moves nobody
				Expect(ms[name].Status.Phase).To(Or(BeEmpty(), Equal(scimv1.PhasePending)), "OrgMember %s", name)
			} else {
				Expect(ms[name].Status.Phase).To(Equal(phase), "OrgMember %s stays where it was", name)
			}
			c := meta.FindStatusCondition(ms[name].Status.Conditions, scimv1.ConditionSynced)
			Expect(c).NotTo(BeNil())
			Expect(c.Reason).To(Equal("Paused"), "OrgMember %s says why nothing happens", name)
		}

		By("enabling it again: the sync resumes and converges")
		mustKubectl("patch", "-n", j.ns, "scimconfig", "example", "--type=merge", "-p", `{"spec":{"enabled":true}}`)
		converge := j.hubSettle("the resumed sync")
		err = cluster.Client.Get(ctx, types.NamespacedName{Namespace: j.ns, Name: gone.id}, &scimv1.OrgMember{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the member deleted while disabled stays deleted: %v", err)

		By("the access invariant: the organization = what the policies allow, and the orphan")
		Expect(j.hubCheck()).To(BeEmpty())
		j.faults.Add(1) // the disable (besides the sync's lost answers)
		j.hubFigures(converge, fmt.Sprintf("invited-when-disabled=%d calls-while-disabled=%d in-flight-after-paused=%d refused-while-disabled=%d quiet=%s",
			invitedWhenDisabled, len(after)-len(before), inFlight, refused, quiet))
	})
})
