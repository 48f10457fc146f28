package controllers_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
)

// syncedSince is the lastTransitionTime of a member's Synced condition.
func syncedSince(m *scimv1.OrgMember) time.Time {
	GinkgoHelper()
	c := meta.FindStatusCondition(getMember(m).Status.Conditions, scimv1.ConditionSynced)
	Expect(c).NotTo(BeNil())
	return c.LastTransitionTime.Time
}

// Issue 10: a member Docker Hub refuses (Permanent) cost its observation and invitation
// calls on every resync interval forever, so a thousand of them spent the organization's
// whole request budget. Its retries back off with how long it has been failing, and
// anything that can repair it (here its spec) still retries it at once.
var _ = Describe("A member Docker Hub keeps refusing", func() {
	It("is retried less and less often, and at once when its spec changes", func() {
		ns := newNamespace()
		emu := hubConfig(ns, nil)            // resyncInterval: the default 10 minutes
		m := newMember(ns, "acme", "nosuch") // neither an email nor a Docker ID
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Failed/False/InvalidUser")
		since := syncedSince(m)
		const bulk = "/v2/invites/bulk"

		By("a retry three hours into the failure (by the reconciler's clock) waits about three hours, not one interval")
		clk := clocktesting.NewFakePassiveClock(since.Add(3 * time.Hour))
		r := &controllers.OrgMemberReconciler{Client: k8s, Scheme: scheme, Backends: provider, Clock: clk}
		req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(m)}
		invites := emu.Count(http.MethodPost, bulk)
		res, err := r.Reconcile(ctx, req)
		Expect(err).NotTo(HaveOccurred())
		Expect(emu.Count(http.MethodPost, bulk)).To(Equal(invites+1), "the retry asks Docker Hub again")
		Expect(memberPhase(m)()).To(Equal("Failed/False/InvalidUser"))
		Expect(res.RequeueAfter).To(BeNumerically(">=", 3*time.Hour*9/10),
			"a member failing for 3 hours retries after about 3 hours, not every resync interval")
		Expect(syncedSince(m)).To(Equal(since), "the same failure keeps the time it began")

		By("days into the failure it waits a day at most")
		clk.SetTime(since.Add(5 * 24 * time.Hour))
		res, err = r.Reconcile(ctx, req)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.RequeueAfter).To(BeNumerically("~", 24*time.Hour, 24*time.Hour/10+time.Second))

		By("a change of its spec retries it at once, backoff or not")
		invites = emu.Count(http.MethodPost, bulk)
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.DisplayName = "No Such" })
		Eventually(func() int { return emu.Count(http.MethodPost, bulk) }).Should(BeNumerically(">", invites))
		settled(m, "Failed/False/InvalidUser")

		By("and a change that repairs it provisions it at once")
		updateMember(m, func(o *scimv1.OrgMember) {
			o.Spec.Emails = []scimv1.MultiValue{{Value: "nosuch@example.com", Primary: true}}
		})
		settled(m, "Invited/True/Invited")
	})
})
