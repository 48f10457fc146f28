package controllers_test

import (
	"errors"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/naming"
)

func newGroup(ns, cfgName, displayName string) *scimv1.OrgGroup {
	return &scimv1.OrgGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.GroupName(cfgName, displayName),
			Labels: map[string]string{scimv1.LabelConfig: cfgName}},
		Spec: scimv1.OrgGroupSpec{ConfigName: cfgName, DisplayName: displayName},
	}
}

// groupState is "<team>/<memberCount>/<Ready status>/<Ready reason>" for the current generation.
func groupState(g *scimv1.OrgGroup) func() string {
	return func() string {
		var got scimv1.OrgGroup
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(g), &got); err != nil {
			return "gone"
		}
		c := meta.FindStatusCondition(got.Status.Conditions, scimv1.ConditionReady)
		if c == nil || got.Status.ObservedGeneration != got.Generation {
			return "?"
		}
		return got.Status.Team + "/" + itoa(got.Status.MemberCount) + "/" + string(c.Status) + "/" + c.Reason
	}
}

func getGroup(g *scimv1.OrgGroup) *scimv1.OrgGroup {
	var got scimv1.OrgGroup
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(g), &got)).To(Succeed())
	return &got
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func setGroupLabel(m *scimv1.OrgMember, group string, in bool) {
	updateMember(m, func(o *scimv1.OrgMember) {
		if in {
			o.Labels[scimv1.LabelGroupPrefix+group] = ""
		} else {
			delete(o.Labels, scimv1.LabelGroupPrefix+group)
		}
	})
}

var _ = Describe("OrgGroup controller", func() {
	var (
		ns string
		mb *memBackend
	)
	BeforeEach(func() {
		ns = newNamespace()
		mb = newMemBackend()
		provider.register(ns, "acme", mb)
		Expect(k8s.Create(ctx, newConfig(ns, "acme"))).To(Succeed())
	})

	It("maps org:team to a team, keeps its members in step with the labels and deletes it with the group", func() {
		g := newGroup(ns, "acme", "acme:devs")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		Eventually(groupState(g)).Should(Equal("devs/0/True/TeamSynced"))
		_, ok := mb.team("devs")
		Expect(ok).To(BeTrue(), "a missing team is created")

		a := newMember(ns, "acme", "ann@example.com")
		a.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
		b := newMember(ns, "acme", "ben@example.com")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Expect(k8s.Create(ctx, b)).To(Succeed())
		settled(a, "Active/True/Active")
		settled(b, "Active/True/Active")
		Eventually(func() []string { t, _ := mb.team("devs"); return t }).Should(ConsistOf("ann@example.com"))

		By("a person in the team who is no OrgMember of SCIM's is left alone")
		Expect(mb.EnsureTeamMember(ctx, "devs", "hand-added")).To(Succeed())

		setGroupLabel(b, g.Name, true)
		Eventually(func() []string { t, _ := mb.team("devs"); return t }).Should(
			ConsistOf("ann@example.com", "ben@example.com", "hand-added"))
		Eventually(groupState(g)).Should(Equal("devs/2/True/TeamSynced"))

		setGroupLabel(a, g.Name, false)
		Eventually(func() []string { t, _ := mb.team("devs"); return t }).Should(ConsistOf("ben@example.com", "hand-added"))

		By("a deactivated member leaves the team")
		updateMember(b, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		Eventually(func() []string { t, _ := mb.team("devs"); return t }).Should(ConsistOf("hand-added"))

		Expect(k8s.Delete(ctx, g)).To(Succeed())
		expectGone(g)
		_, ok = mb.team("devs")
		Expect(ok).To(BeFalse(), "the team is deleted with its group")
		Eventually(reasonsOf(ns, g.Name)).Should(Equal([]string{
			"TeamCreated", "TeamMemberAdded", "TeamMemberAdded", "TeamMemberRemoved", "TeamMemberRemoved", "TeamDeleted"}))
	})

	It("lets only the oldest of the groups that map to one team sync it, and never deletes the team for a newer one", func() {
		teamOf := func() []string { t, _ := mb.team("eng"); return t }
		g1 := newGroup(ns, "acme", "acme:eng")
		Expect(k8s.Create(ctx, g1)).To(Succeed())
		Eventually(groupState(g1)).Should(Equal("eng/0/True/TeamSynced"))
		// a newer group mapping to the same team; its name sorts after g1's so that it is
		// the newer one even when both were created within the same second
		var g2 *scimv1.OrgGroup
		for _, org := range []string{"b", "c", "d", "e", "f", "g", "h"} {
			if g2 = newGroup(ns, "acme", org+":ENG"); g2.Name > g1.Name {
				break
			}
		}
		Expect(g2.Name > g1.Name).To(BeTrue())
		a := newMember(ns, "acme", "ann@example.com")
		a.Labels[scimv1.LabelGroupPrefix+g1.Name] = ""
		b := newMember(ns, "acme", "ben@example.com")
		b.Labels[scimv1.LabelGroupPrefix+g2.Name] = ""
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Expect(k8s.Create(ctx, b)).To(Succeed())
		settled(a, "Active/True/Active")
		settled(b, "Active/True/Active")
		Eventually(teamOf).Should(ConsistOf("ann@example.com"))

		Expect(k8s.Create(ctx, g2)).To(Succeed())
		Eventually(groupState(g2)).Should(Equal("ENG/1/False/TeamConflict"))
		msg := "team ENG is already synced by OrgGroup " + g1.Name + ` (displayName "acme:eng"), created earlier; ` +
			"this group leaves the team alone until that group is deleted or one of them is renamed"
		Expect(meta.FindStatusCondition(getGroup(g2).Status.Conditions, scimv1.ConditionReady).Message).To(Equal(msg))
		Eventually(eventsOf(ns, g2.Name)).Should(Equal([]string{"Failed: " + msg}))
		requestReconcile(g1)
		Eventually(groupState(g1)).Should(Equal("eng/1/True/TeamSynced"))
		Expect(teamOf()).To(ConsistOf("ann@example.com"), "the newer group neither adds ben nor removes ann")

		Expect(k8s.Delete(ctx, g2)).To(Succeed())
		expectGone(g2)
		_, ok := mb.team("eng")
		Expect(ok).To(BeTrue(), "deleting the newer group leaves the team")
		Expect(teamOf()).To(ConsistOf("ann@example.com"))

		By("a waiting group takes the team over when the owner is deleted")
		g3 := g2.DeepCopy()
		g3.ResourceVersion, g3.UID, g3.Finalizers, g3.CreationTimestamp = "", "", nil, metav1.Time{}
		Expect(k8s.Create(ctx, g3)).To(Succeed())
		Eventually(groupState(g3)).Should(Equal("ENG/1/False/TeamConflict"))
		Expect(k8s.Delete(ctx, g1)).To(Succeed())
		expectGone(g1)
		Eventually(groupState(g3)).Should(Equal("ENG/1/True/TeamSynced"))
		// (the in-memory backend's team names are case-sensitive; Docker Hub's are not)
		Eventually(func() []string { t, _ := mb.team("ENG"); return t }).Should(ConsistOf("ben@example.com"))
	})

	It("keeps in its team the members whose spec.docker.team names it", func() {
		teamOf := func() []string { t, _ := mb.team("devs"); return t }
		g := newGroup(ns, "acme", "acme:devs")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		Eventually(groupState(g)).Should(Equal("devs/0/True/TeamSynced"))
		a := newMember(ns, "acme", "ann@example.com")
		a.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
		b := newMember(ns, "acme", "ben@example.com")
		b.Spec.Docker = &scimv1.DockerUser{Team: "devs"} // not in the group, but hinted to its team
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Expect(k8s.Create(ctx, b)).To(Succeed())
		settled(a, "Active/True/Active")
		settled(b, "Active/True/Active")
		Eventually(teamOf).Should(ConsistOf("ann@example.com", "ben@example.com"))

		// a later change of the group syncs the team again, with ben known to be managed
		c := newMember(ns, "acme", "cy@example.com")
		c.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
		Expect(k8s.Create(ctx, c)).To(Succeed())
		settled(c, "Active/True/Active")
		Eventually(groupState(g)).Should(Equal("devs/2/True/TeamSynced"))
		Eventually(teamOf).Should(ContainElement("cy@example.com"))
		Expect(teamOf()).To(ConsistOf("ann@example.com", "ben@example.com", "cy@example.com"),
			"the group does not take out a member the member controller put in by its team hint")
		Expect(reasonsOf(ns, g.Name)()).NotTo(ContainElement("TeamMemberRemoved"))
		Eventually(reasonsOf(ns, b.Name)).Should(Equal([]string{"Added", "TeamJoined"}), "joined once, never again")
	})

	It("uses a plain displayName as the team, surfaces refusals, and keeps the team when the config is disabled", func() {
		Expect(controllers.TeamName("other-org:ops")).To(Equal("ops"))
		Expect(controllers.TeamName("ops")).To(Equal("ops"))
		mb.failAlways("EnsureTeam", backend.NewPermanent("InvalidTeam", errors.New("team name is taken by an owner team")))
		g := newGroup(ns, "acme", "ops")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		Eventually(groupState(g)).Should(Equal("ops/0/False/InvalidTeam"))
		Eventually(eventsOf(ns, g.Name)).Should(Equal([]string{
			"Failed: could not create team ops: InvalidTeam (Permanent): team name is taken by an owner team"}))

		mb.failAlways("EnsureTeam", nil)
		requestReconcile(g)
		Eventually(groupState(g)).Should(Equal("ops/0/True/TeamSynced"))

		updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { f := false; c.Spec.Enabled = &f })
		Eventually(groupState(g)).Should(Equal("ops/0/Unknown/Paused"))
		Expect(k8s.Delete(ctx, g)).To(Succeed())
		expectGone(g)
		_, ok := mb.team("ops")
		Expect(ok).To(BeTrue(), "disabling SCIM leaves teams in place")
	})

	// An organization's people adopted at once change phase and identity by the thousand,
	// and each change enqueues their groups: a group that reconciled again on each of them
	// while the budget was spent listed its members and was refused again, thousands of
	// times a minute (the bench's Docker Hub adoption of 10,000: half the manager's CPU).
	It("waits out a refusal of the organization's request budget, whatever its members do meanwhile, unless asked to reconcile", func() {
		a := newMember(ns, "acme", "ann@example.com")
		g := newGroup(ns, "acme", "acme:ops")
		a.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
		c := newMember(ns, "acme", "cy@example.com")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Expect(k8s.Create(ctx, c)).To(Succeed())
		settled(a, "Active/True/Active")
		settled(c, "Active/True/Active")

		mb.fail("ObserveTeam", backend.NewRateLimited(30*time.Second, errors.New("429 Rate limit exceeded")))
		Expect(k8s.Create(ctx, g)).To(Succeed())
		Eventually(func() int { return mb.callsOf("ObserveTeam") }).Should(Equal(1))
		Eventually(func() string {
			c := meta.FindStatusCondition(getGroup(g).Status.Conditions, scimv1.ConditionSynced)
			if c == nil {
				return ""
			}
			return c.Reason
		}).Should(Equal(controllers.ReasonRateLimited))

		By("its members' changes meanwhile do not take it to the backend again before the wait is over")
		for _, in := range []bool{true, false, true} {
			setGroupLabel(c, g.Name, in)
		}
		Consistently(func() int { return mb.callsOf("ObserveTeam") }, time.Second, 50*time.Millisecond).Should(Equal(1))

		By("a reconcile asked for (kubectl scim resync) goes ahead before the 30 s wait is over, and syncs it with the members it has now")
		requestReconcile(g)
		Eventually(groupState(g), 10*time.Second).Should(Equal("ops/2/True/TeamSynced"))
		Expect(mb.callsOf("ObserveTeam")).To(BeNumerically(">=", 2))
		Eventually(func() []string { t, _ := mb.team("ops"); return t }).Should(ConsistOf("ann@example.com", "cy@example.com"))
	})
})
