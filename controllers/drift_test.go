package controllers_test

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// driftMembers is the organization size of the Docker Hub drift spec (DRIFT_MEMBERS, 150
// by default: two pages of 100).
func driftMembers() int {
	if n, err := strconv.Atoi(os.Getenv("DRIFT_MEMBERS")); err == nil && n > 0 {
		return n
	}
	return 150
}

// hubUser is the i-th person of the drift spec.
func hubUser(i int) (id, email string) {
	return fmt.Sprintf("p%05d", i), fmt.Sprintf("p%05d@example.com", i)
}

var _ = Describe("Drift repair by listing", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("costs the Docker Hub emulator one call per page of the organization plus the changes, not a call per member", func() {
		// Members are found in the organization (adopted), so the spec is in steady state
		// once they are Active. A pass then lists the organization once (pages of 100) and
		// reconciles only the members that differ: one removed by hand, one whose role was
		// changed by hand. Before drift by listing, the same pass (the config's reconcile
		// annotation, or every member's own resync) searched and listed invites for every
		// member: 2 calls each.
		n := driftMembers()
		emu := hubConfig(ns, func(c *scimv1.ScimConfig) {
			c.Spec.Policies.Adoption = scimv1.AdoptionAdopt
			c.Spec.Backend.DockerHub.RequestsPerMinute = 60000
		})
		for i := range n {
			id, email := hubUser(i)
			emu.AddMember(id, email, "member")
		}
		members := make([]*scimv1.OrgMember, n)
		for i := range n {
			_, email := hubUser(i)
			members[i] = newMember(ns, "acme", email)
			Expect(k8s.Create(ctx, members[i])).To(Succeed())
		}
		Eventually(func() int {
			var list scimv1.OrgMemberList
			Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			active := 0
			for _, m := range list.Items {
				if m.Status.Phase == scimv1.PhaseActive && m.Generation == m.Status.ObservedGeneration {
					active++
				}
			}
			return active
		}).WithTimeout(5 * time.Minute).Should(Equal(n))

		removed, promoted := members[n/2], members[n/3]
		removedID, _ := hubUser(n / 2)
		promotedID, _ := hubUser(n / 3)
		Expect(emu.RemoveMember(removedID)).To(BeTrue())
		emu.AddMember(promotedID, "", "editor") // changed by hand in Docker Hub
		Expect(roleOf(emu, promotedID)()).To(Equal("editor"))
		emu.ResetLog()

		requestReconcile(&scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}})
		Eventually(func() int { return emu.InvitesSent(removed.Spec.UserName) }).Should(Equal(1), "the removed member is invited again")
		Eventually(roleOf(emu, promotedID)).Should(Equal("member"), "the role changed by hand is put back")
		settled(removed, "Invited/True/Invited")
		settled(promoted, "Active/True/Active")

		pages := int(math.Ceil(float64(n) / 100))
		const perChange = 4 // search, invites list, the repair, one spare (a token exchange)
		calls := len(emu.Requests())
		GinkgoWriter.Printf("drift pass over %d members: %d Docker Hub calls (%d pages + 2 changes)\n", n, calls, pages)
		AddReportEntry("docker hub calls per drift pass", fmt.Sprintf("%d members: %d calls", n, calls))
		Expect(calls).To(BeNumerically("<=", pages+2*perChange),
			"a pass costs a call per page and a few per member that differs: %v", emu.Requests())
		Expect(emu.Count("GET", "/v2/orgs/"+ns+"/members")).To(BeNumerically(">=", pages))
	})

	It("repairs a binding deleted by hand and leaves the others alone (kubernetes)", func() {
		kubernetesConfig(ns, nil)
		a := newMember(ns, "acme", "ann@example.com")
		b := newMember(ns, "acme", "ben@example.com")
		off := newMember(ns, "acme", "cid@example.com")
		off.Spec.Active = false
		for _, m := range []*scimv1.OrgMember{a, b, off} {
			Expect(k8s.Create(ctx, m)).To(Succeed())
		}
		settled(a, "Active/True/Active")
		settled(b, "Active/True/Active")
		settled(off, "Deactivated/True/Deactivated")
		Expect(canListConfigMaps("ann@example.com", ns)()).To(BeTrue())
		synced := getMember(b).Status.LastSyncTime

		var rbs rbacv1.RoleBindingList
		Expect(k8s.List(ctx, &rbs, client.InNamespace(ns))).To(Succeed())
		deleted := 0
		for i := range rbs.Items {
			if s := rbs.Items[i].Subjects; len(s) == 1 && s[0].Name == "ann@example.com" {
				Expect(k8s.Delete(ctx, &rbs.Items[i])).To(Succeed())
				deleted++
			}
		}
		Expect(deleted).To(Equal(1))
		Eventually(canListConfigMaps("ann@example.com", ns)).Should(BeFalse())

		requestReconcile(&scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}})
		Eventually(canListConfigMaps("ann@example.com", ns)).Should(BeTrue(), "the drift pass found the binding missing")
		Expect(getMember(b).Status.LastSyncTime).To(Equal(synced), "a member that matches the backend is not reconciled")
	})
})
