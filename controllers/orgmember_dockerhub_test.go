package controllers_test

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/metrics"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// hubConfig starts a Docker Hub emulator on 127.0.0.1 for a fresh organization (named
// after the namespace, so no two tests share a rate limiter) and a ScimConfig pointing at it.
func hubConfig(ns string, change func(*scimv1.ScimConfig)) *hubemu.Emulator {
	emu := hubemu.New(hubemu.Options{Org: ns}).Start()
	DeferCleanup(emu.Close)
	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hub"},
		StringData: map[string]string{"token": hubemu.DefaultToken},
	})).To(Succeed())
	c := newConfig(ns, "acme")
	c.Spec.Organization = emu.Org()
	c.Spec.Backend = scimv1.BackendSpec{Type: scimv1.BackendDockerHub, DockerHub: &scimv1.DockerHubBackend{
		BaseURL:              emu.URL(),
		AccessTokenSecretRef: scimv1.SecretKeyRef{Name: "hub", Key: "token"},
		DefaultRole:          "member",
		RequestsPerMinute:    6000,
	}}
	if change != nil {
		change(c)
	}
	Expect(k8s.Create(ctx, c)).To(Succeed())
	return emu
}

func roleOf(emu *hubemu.Emulator, id string) func() string {
	return func() string {
		m, ok := emu.Member(id)
		if !ok {
			return "absent"
		}
		return m.Role
	}
}

// activeAndTwin makes <id>@example.com an Active member (invited, accepted as Docker ID id)
// and then a second member of the same userName, adopted (the config must adopt).
func activeAndTwin(emu *hubemu.Emulator, ns, id string) (a, twin *scimv1.OrgMember) {
	GinkgoHelper()
	userName := id + "@example.com"
	a = newMember(ns, "acme", userName)
	Expect(k8s.Create(ctx, a)).To(Succeed())
	settled(a, "Invited/True/Invited")
	Expect(emu.AcceptInvite(userName, id)).To(Succeed())
	requestReconcile(a)
	settled(a, "Active/True/Active")
	twin = newMember(ns, "acme", userName)
	twin.Name = id + "-twice"
	Expect(k8s.Create(ctx, twin)).To(Succeed())
	Eventually(func() scimv1.MemberOrigin { return getMember(twin).Status.Origin }).Should(Equal(scimv1.OriginAdopted))
	return a, twin
}

var _ = Describe("OrgMember controller with the Docker Hub emulator", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("invites, activates on acceptance, changes the role, deactivates, re-invites and removes", func() {
		emu := hubConfig(ns, nil)
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		m := newMember(ns, "acme", "ada@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Invited/True/Invited")
		Expect(emu.Invites()).To(HaveLen(1))
		Expect(getMember(m).Status.InviteID).To(Equal(emu.Invites()[0].ID))

		Expect(emu.AcceptInvite("ada@example.com", "ada")).To(Succeed())
		requestReconcile(m)
		settled(m, "Active/True/Active")
		Expect(getMember(m).Status.BackendID).To(Equal("ada"))
		Expect(getMember(m).Status.InviteID).To(BeEmpty())

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Docker = &scimv1.DockerUser{Role: "editor"} })
		Eventually(roleOf(emu, "ada")).Should(Equal("editor"))
		settled(m, "Active/True/Active")
		Expect(getMember(m).Status.Message).To(Equal("member of organization " + ns + " as editor"))

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(m, "Deactivated/True/Deactivated")
		Expect(emu.IsMember("ada")).To(BeFalse(), "deactivation removes from the organization")

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = true })
		settled(m, "Invited/True/Invited")
		Expect(emu.InvitesSent("ada@example.com")).To(Equal(2), "reactivation re-invites, once")
		Expect(emu.Invites()[0].Role).To(Equal("editor"))

		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(emu.Invites()).To(BeEmpty(), "deletion cancels the pending invitation")
		Eventually(eventsOf(ns, m.Name)).Should(Equal([]string{
			"Invited: ada@example.com invited to organization " + ns + " as member",
			"RoleChanged: ada@example.com's role in organization " + ns + " changed from member to editor",
			"Deactivated: ada@example.com deactivated: removed from organization " + ns +
				"; the OrgMember is kept so a reactivation re-adds them",
			"Reactivated: ada@example.com reactivated: invited to organization " + ns + " as editor",
			"Removed: ada@example.com deleted: removed from organization " + ns,
		}))
	})

	It("leaves the person to another member of the same userName when one of two is deleted", func() {
		// Two members of one userName: a SCIM create that lost its name to a concurrent
		// rename, until it deletes itself again, or one made with kubectl. Docker Hub knows
		// only the person, so removing them for the deleted one would take the access the
		// other wants (issue 10).
		emu := hubConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Policies.Adoption = scimv1.AdoptionAdopt })
		a, dup := activeAndTwin(emu, ns, "sam")
		Expect(k8s.Delete(ctx, dup)).To(Succeed())
		expectGone(dup)
		Expect(emu.IsMember("sam")).To(BeTrue(), "the other member of the userName keeps the person")
		settled(a, "Active/True/Active")
	})

	It("leaves the person to another member of the same userName deactivated under Keep", func() {
		// Keep keeps a deactivated member's access: that member still wants the person
		// (review 10).
		emu := hubConfig(ns, func(c *scimv1.ScimConfig) {
			c.Spec.Policies.Adoption = scimv1.AdoptionAdopt
			c.Spec.Policies.Deactivation = scimv1.DeactivationKeep
		})
		a, dup := activeAndTwin(emu, ns, "kim")
		updateMember(a, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(a, "Deactivated/True/Deactivated")
		Expect(emu.IsMember("kim")).To(BeTrue(), "Keep keeps the access")
		Expect(k8s.Delete(ctx, dup)).To(Succeed())
		expectGone(dup)
		Expect(emu.IsMember("kim")).To(BeTrue(), "the member deactivated under Keep still wants the person")
	})

	It("repairs drift on a resync of the config: a member removed by hand and an expired invitation", func() {
		// The periodic resync (spec.resyncInterval, at least 1m) re-runs every member's
		// reconcile; the config's reconcile annotation runs the same pass at once, without
		// touching any member, so the spec needs no sub-minute interval.
		emu := hubConfig(ns, nil)
		cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}}
		a := newMember(ns, "acme", "ann@example.com")
		b := newMember(ns, "acme", "ben@example.com")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Expect(k8s.Create(ctx, b)).To(Succeed())
		settled(a, "Invited/True/Invited")
		settled(b, "Invited/True/Invited")
		Expect(emu.AcceptInvite("ann@example.com", "ann")).To(Succeed())
		requestReconcile(cfg)
		settled(a, "Active/True/Active") // found by the resync, no request on the member

		Expect(emu.RemoveMember("ann")).To(BeTrue())
		Expect(emu.ExpireInvite(getMember(b).Status.InviteID)).To(BeTrue())
		requestReconcile(cfg)
		Eventually(func() int { return emu.InvitesSent("ann@example.com") }).Should(Equal(2))
		Eventually(func() int { return emu.InvitesSent("ben@example.com") }).Should(Equal(2))
		settled(a, "Invited/True/Invited")
		Eventually(eventsOf(ns, a.Name)).Should(ContainElement(
			"Invited: ann@example.com was missing from organization " + ns +
				" (removed outside SCIM, or the invitation expired): invited to it again as member"))
	})

	It("keeps finding a member under its Docker ID once its account email changed: no drift, no new invitation", func() {
		// review F6: the Docker ID an invitation was accepted under stays the member's
		// identity (plan.StaleIdentities), so the drift pass, the member's reconcile and
		// EnsureMember look under it too (plan.LookupIdentities).
		emu := hubConfig(ns, nil)
		cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}}
		m := acceptedThenEmailChanged(emu, ns)

		By("the member's own reconcile finds her under the Docker ID")
		// (a search of the members under it: a member found lists no invitations)
		searchesForAnn := func() int {
			n := 0
			for _, r := range emu.Requests() {
				if q, _ := url.ParseQuery(r.Query); r.Method == "GET" && r.Path == "/v2/orgs/"+ns+"/members" && q.Get("search") == "ann" {
					n++
				}
			}
			return n
		}
		searched := searchesForAnn()
		requestReconcile(m)
		Eventually(searchesForAnn).Should(BeNumerically(">", searched))
		Consistently(func() int { return emu.InvitesSent("ann@example.com") }, "2s").Should(Equal(1), "not invited again")
		settled(m, "Active/True/Active")

		By("a role change is made in place, on the Docker ID")
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Docker = &scimv1.DockerUser{Role: "editor"} })
		Eventually(roleOf(emu, "ann")).Should(Equal("editor"))
		settled(m, "Active/True/Active")
		Expect(emu.InvitesSent("ann@example.com")).To(Equal(1), "not invited again")
		Expect(emu.Invites()).To(BeEmpty())

		By("the drift pass finds nothing to repair")
		passes := func() float64 { return testutil.ToFloat64(metrics.DriftPasses.WithLabelValues(ns, "acme", "success")) }
		differing := func() float64 { return testutil.ToFloat64(metrics.DriftDiffering.WithLabelValues(ns, "acme")) }
		before := passes()
		requestReconcile(cfg)
		Eventually(passes).Should(BeNumerically(">", before))
		Eventually(differing).Should(BeZero())
		Consistently(differing, "1s").Should(BeZero(), "a member listed under its Docker ID is no drift")
		Expect(emu.InvitesSent("ann@example.com")).To(Equal(1), "not invited again")
	})

	It("takes a renamed member's former Docker ID away even when its first removal fails, and never takes it for the new name", func() {
		// review 19 (F1): the Docker ID is looked up while it is still the member's
		// (plan.LookupIdentities), and a rename is known by the former identity in
		// status.grantedIdentities. Removing the former identities one by one stripped that
		// evidence before the Docker ID went: a refused removal of the Docker ID left the
		// member Active under the former name's account, and the new name never invited.
		emu := hubConfig(ns, nil)
		m := acceptedThenEmailChanged(emu, ns)
		emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, RetryAfter: time.Second, Method: "DELETE",
			Path: "/v2/orgs/" + ns + "/members/ann"})

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.UserName = "ann.new@example.com" })
		Eventually(func() int { return emu.InvitesSent("ann.new@example.com") }).Should(Equal(1), "the new name is invited")
		settled(m, "Invited/True/Invited")
		Expect(emu.IsMember("ann")).To(BeFalse(), "the former name's Docker ID is removed")

		By("the former Docker ID, added back by hand, is not the renamed member's")
		emu.AddMember("ann", "ann@home.example", "member")
		requestReconcile(m)
		Consistently(func() scimv1.MemberPhase { return getMember(m).Status.Phase }, "2s").Should(Equal(scimv1.PhaseInvited))
	})

	It("finds, and cancels on deactivation and deletion, the invitation sent to the email of a userName that is not one", func() {
		emu := hubConfig(ns, nil)
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		m := newMember(ns, "acme", "ada")
		m.Spec.Emails = []scimv1.MultiValue{{Value: "ada@example.com", Primary: true}}
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Invited/True/Invited")
		Expect(emu.Invites()).To(HaveLen(1))
		Expect(emu.Invites()[0].Invitee).To(Equal("ada@example.com"))

		// A resync observes the invitation instead of taking the person for missing.
		listed := emu.Count("GET", "/v2/orgs/"+ns+"/invites")
		requestReconcile(m)
		Eventually(func() int { return emu.Count("GET", "/v2/orgs/"+ns+"/invites") }).Should(BeNumerically(">", listed))

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(m, "Deactivated/True/Deactivated")
		Expect(emu.Invites()).To(BeEmpty(), "deactivation cancels the invitation sent to the email")
		Expect(getMember(m).Status.InviteID).To(BeEmpty())

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = true })
		settled(m, "Invited/True/Invited")
		Expect(emu.InvitesSent("ada@example.com")).To(Equal(2))
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(emu.Invites()).To(BeEmpty(), "deletion cancels the invitation sent to the email")
		Eventually(eventsOf(ns, m.Name)).Should(Equal([]string{
			"Invited: ada invited to organization " + ns + " as member",
			"Deactivated: ada deactivated: removed from organization " + ns +
				"; the OrgMember is kept so a reactivation re-adds them",
			"Reactivated: ada reactivated: invited to organization " + ns + " as member",
			"Removed: ada deleted: removed from organization " + ns,
		}))
	})

	It("leaves preexisting members alone with adoption off", func() {
		emu := hubConfig(ns, nil)
		emu.AddMember("bob", "bob@example.com", "editor")
		m := newMember(ns, "acme", "bob@example.com")
		m.Spec.Docker = &scimv1.DockerUser{Role: "member"}
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Preexisting")
		Expect(getMember(m).Status.Origin).To(Equal(scimv1.OriginPreexisting))
		Expect(getMember(m).Status.BackendID).To(Equal("bob"))
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(m, "Active/True/Preexisting")
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(roleOf(emu, "bob")()).To(Equal("editor"), "never changed, never removed")
	})

	It("adopts preexisting members with adoption on, and surfaces a last-owner refusal", func() {
		emu := hubConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Policies.Adoption = scimv1.AdoptionAdopt })
		emu.AddMember("bob", "bob@example.com", "member")
		bob := newMember(ns, "acme", "bob@example.com")
		bob.Spec.Docker = &scimv1.DockerUser{Role: "editor"}
		Expect(k8s.Create(ctx, bob)).To(Succeed())
		settled(bob, "Active/True/Active")
		Expect(getMember(bob).Status.Origin).To(Equal(scimv1.OriginAdopted))
		Eventually(roleOf(emu, "bob")).Should(Equal("editor"), "an adopted member is managed")

		owner := newMember(ns, "acme", "owner")
		owner.Spec.Docker = &scimv1.DockerUser{Role: "owner"}
		Expect(k8s.Create(ctx, owner)).To(Succeed())
		settled(owner, "Active/True/Active")
		updateMember(owner, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(owner, "Failed/False/LastOwner")
		Expect(getMember(owner).Status.Message).To(HavePrefix("could not remove the deactivated member: LastOwner (Permanent): "))
		Expect(emu.IsMember("owner")).To(BeTrue())

		Expect(k8s.Delete(ctx, bob)).To(Succeed())
		expectGone(bob)
		Expect(emu.IsMember("bob")).To(BeFalse(), "an adopted member is removed on deletion")
	})

	It("converges through 429 storms, 5xx bursts and lost answers without duplicate invitations", func() {
		emu := hubConfig(ns, nil)
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, RetryAfter: time.Second, Count: 6})
		emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: http.StatusServiceUnavailable, Count: 4, Every: 2})
		emu.Inject(hubemu.Fault{Kind: hubemu.FaultHTML, Status: http.StatusBadGateway, Count: 2, Path: "/v2/orgs"})
		emu.Inject(hubemu.Fault{Kind: hubemu.FaultDrop, AfterHandling: true, Method: http.MethodPost, Path: "/v2/invites/bulk", Count: 2})
		users := []string{"u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com", "u5@example.com", "u6@example.com"}
		var ms []*scimv1.OrgMember
		for _, u := range users {
			m := newMember(ns, "acme", u)
			Expect(k8s.Create(ctx, m)).To(Succeed())
			ms = append(ms, m)
		}
		for _, m := range ms {
			settled(m, "Invited/True/Invited")
		}
		for _, u := range users {
			Expect(emu.InvitesSent(u)).To(Equal(1), u+" is invited exactly once")
		}
		Expect(emu.CountStatus(http.StatusTooManyRequests)).To(BeNumerically(">=", 1), "the storm happened")
		Expect(emu.Invites()).To(HaveLen(len(users)))
		for _, m := range ms {
			Expect(reasonsOf(ns, m.Name)()).To(Equal([]string{"Invited"}))
		}
	})
})

var _ = Describe("OrgGroup controller with the Docker Hub emulator", func() {
	It("syncs a team that existed before SCIM: adds accepted members, removes those who leave the group, and keeps the team (without them) on deletion", func() {
		ns := newNamespace()
		emu := hubConfig(ns, nil)
		emu.AddMember("hand", "hand@example.com", "member")
		emu.AddTeam("devs", "hand") // a team that exists, with someone SCIM does not manage
		g := newGroup(ns, "acme", ns+":devs")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		a := newMember(ns, "acme", "ann@example.com")
		a.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
		Expect(k8s.Create(ctx, a)).To(Succeed())
		settled(a, "Invited/True/Invited")
		Eventually(groupState(g)).Should(Equal("devs/1/True/TeamSynced"))
		team := func() []string { t, _ := emu.Team("devs"); return t.Members }
		Expect(team()).To(ConsistOf("hand"), "an invitee cannot join a team yet")

		Expect(emu.AcceptInvite("ann@example.com", "ann")).To(Succeed())
		requestReconcile(a)
		settled(a, "Active/True/Active")
		Eventually(team).Should(ConsistOf("hand", "ann"))

		setGroupLabel(a, g.Name, false)
		Eventually(team).Should(ConsistOf("hand"))
		Expect(emu.IsMember("ann")).To(BeTrue(), "leaving a group leaves the organization alone")

		Expect(getGroup(g).Status.TeamCreated).To(BeFalse(), "the team existed before SCIM")
		setGroupLabel(a, g.Name, true)
		Eventually(team).Should(ConsistOf("hand", "ann"))
		Expect(k8s.Delete(ctx, g)).To(Succeed())
		expectGone(g)
		Expect(team()).To(ConsistOf("hand"),
			"a team SCIM did not create is left in place, without the members SCIM put in it for the group")
		Expect(reasonsOf(ns, g.Name)()).NotTo(ContainElement("TeamDeleted"))

		By("a team SCIM created is deleted with its group")
		g2 := newGroup(ns, "acme", ns+":ops")
		Expect(k8s.Create(ctx, g2)).To(Succeed())
		Eventually(groupState(g2)).Should(Equal("ops/0/True/TeamSynced"))
		Expect(getGroup(g2).Status.TeamCreated).To(BeTrue())
		Expect(k8s.Delete(ctx, g2)).To(Succeed())
		expectGone(g2)
		_, ok := emu.Team("ops")
		Expect(ok).To(BeFalse())
	})
})

// joins creates m, waits for its invitation, accepts it as the Docker ID id, and waits
// until the member is Active.
func joins(emu *hubemu.Emulator, m *scimv1.OrgMember, id string) {
	GinkgoHelper()
	Expect(k8s.Create(ctx, m)).To(Succeed())
	settled(m, "Invited/True/Invited")
	Expect(emu.AcceptInvite(m.Spec.UserName, id)).To(Succeed())
	requestReconcile(m)
	settled(m, "Active/True/Active")
}

// memberInGroup makes <id>@example.com an Active member (invited, accepted as Docker ID
// id) labelled as a member of group g.
func memberInGroup(emu *hubemu.Emulator, ns string, g *scimv1.OrgGroup, id string) *scimv1.OrgMember {
	GinkgoHelper()
	m := newMember(ns, "acme", id+"@example.com")
	m.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
	joins(emu, m, id)
	return m
}

var _ = Describe("OrgGroup drift repair by listing (Docker Hub)", func() {
	var (
		ns   string
		emu  *hubemu.Emulator
		cfg  *scimv1.ScimConfig
		team func(name string) func() []string
	)
	// teamCalls counts the calls about one team (the group's own observation and writes);
	// listings the listings of the teams (a drift pass that judges groups).
	teamCalls := func() int { return emu.Count("", "/v2/orgs/"+ns+"/groups/*") }
	listings := func() int { return emu.Count("GET", "/v2/orgs/"+ns+"/groups") }
	// quietPass runs a pass and answers the team calls that followed it. Until the config's
	// first pass has judged its groups, its reconcile annotation also reconciles every
	// group; once a pass has, a pass with nothing changed makes no group call, and the
	// annotation reaches the groups only through the pass.
	quietPass := func() int {
		emu.ResetLog()
		requestReconcile(cfg)
		Eventually(listings).Should(BeNumerically(">=", 1))
		time.Sleep(2 * time.Second) // room for any group reconcile the pass would start
		return teamCalls()
	}
	BeforeEach(func() {
		ns = newNamespace()
		emu = hubConfig(ns, nil)
		cfg = &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}}
		team = func(name string) func() []string {
			return func() []string { t, _ := emu.Team(name); return t.Members }
		}
	})

	It("judges a team from the drift pass's listings: no call of its own when nothing changed, and repairs a member or the team removed by hand", func() {
		// Review 20 F5: every synced group used to observe its team every interval (two
		// calls a group at least). The config's pass now judges the groups from its
		// members listing (each member's teams) and one listing of the teams, and
		// reconciles only the groups whose team differs.
		g := newGroup(ns, "acme", ns+":devs")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		memberInGroup(emu, ns, g, "ann")
		Eventually(team("devs")).Should(ConsistOf("ann"))
		Eventually(groupState(g)).Should(Equal("devs/1/True/TeamSynced"))
		// a displayName with two colons: its team part ("<org>:qa") is the team qa to Docker
		// Hub, so the pass must look the listed name up as the backend names it (review 22 F3)
		qa := newGroup(ns, "acme", "x:"+ns+":qa")
		Expect(k8s.Create(ctx, qa)).To(Succeed())
		Eventually(groupState(qa)).Should(Equal("qa/0/True/TeamSynced"), "status.team is the backend's name")

		By("a pass with nothing changed lists the teams and makes no call for the group")
		Eventually(quietPass, 30*time.Second, 100*time.Millisecond).Should(BeZero())

		By("a member taken out of the team by hand is put back by the next pass")
		Expect(emu.RemoveFromTeam("devs", "ann")).To(BeTrue())
		requestReconcile(cfg)
		Eventually(team("devs")).Should(ConsistOf("ann"))

		By("the team deleted by hand is created again, with its member, by the next pass")
		Expect(emu.DeleteTeam("devs")).To(BeTrue())
		emu.ResetLog()
		requestReconcile(cfg)
		Eventually(team("devs")).Should(ConsistOf("ann"))
		Expect(emu.Count("POST", "/v2/orgs/"+ns+"/groups")).To(Equal(1), "the team is created again")
	})

	It("falls back to each group observing its team while the teams cannot be listed", func() {
		// Review 22 F1: the pass used to count a failed listing of the teams as judged, so
		// neither it nor the config's annotation reached the groups.
		g := newGroup(ns, "acme", ns+":devs")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		memberInGroup(emu, ns, g, "ann")
		Eventually(team("devs")).Should(ConsistOf("ann"))
		// the groups are the pass's (else the annotation below would reconcile them itself)
		Eventually(quietPass, 30*time.Second, 100*time.Millisecond).Should(BeZero())
		emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: http.StatusForbidden, Method: "GET",
			Path: "/v2/orgs/" + ns + "/groups", Exact: true, Count: -1})
		Expect(emu.RemoveFromTeam("devs", "ann")).To(BeTrue())
		requestReconcile(cfg)
		Eventually(team("devs")).Should(ConsistOf("ann"))
	})

	It("wakes the groups whose team another group takes over or gives up", func() {
		// Review 22 F2: who syncs a team changes with a rename; a group in TeamConflict
		// waits without a requeue, and a synced group no longer requeues itself, so the
		// pass judges that for every group.
		older := newGroup(ns, "acme", ns+":x")
		older.Name = "a-older"
		Expect(k8s.Create(ctx, older)).To(Succeed())
		Eventually(groupState(older)).Should(Equal("x/0/True/TeamSynced"))
		newer := newGroup(ns, "acme", ns+":eng")
		newer.Name = "b-newer"
		Expect(k8s.Create(ctx, newer)).To(Succeed())
		memberInGroup(emu, ns, newer, "bob")
		Eventually(team("eng")).Should(ConsistOf("bob"))
		Eventually(groupState(newer)).Should(Equal("eng/1/True/TeamSynced"))
		// the groups are the pass's (else the annotations below would reconcile them)
		Eventually(quietPass, 30*time.Second, 100*time.Millisecond).Should(BeZero())

		By("the older group renamed onto the team: the newer one reports the conflict at the next pass")
		updateGroup(older, func(o *scimv1.OrgGroup) { o.Spec.DisplayName = ns + ":eng" })
		Eventually(groupState(older)).Should(Equal("eng/0/True/TeamSynced"))
		requestReconcile(cfg)
		Eventually(groupState(newer)).Should(Equal("eng/1/False/TeamConflict"))

		By("the older group renamed away: the newer one takes the team back at the next pass")
		updateGroup(older, func(o *scimv1.OrgGroup) { o.Spec.DisplayName = ns + ":ops" })
		Eventually(groupState(older)).Should(Equal("ops/0/True/TeamSynced"))
		requestReconcile(cfg)
		Eventually(groupState(newer)).Should(Equal("eng/1/True/TeamSynced"))
		Eventually(team("eng")).Should(ConsistOf("bob"))
	})

	// Review 22 (pre-existing): Docker Hub's team names are case-insensitive, but a
	// displayName whose case changed made the old name a "former" team, which the group
	// deleted (it had created it) before creating it again empty. Review 23 F1: Docker Hub
	// strips the organization prefix from what the displayName's own prefix leaves
	// ("x:acme:qa" -> "acme:qa" -> team qa), and the group compared the forms as text.
	DescribeTable("keeps its team, and what others put in it, when a rename names the same team",
		func(from, to, was, renamed string) {
			g := newGroup(ns, "acme", fmt.Sprintf(from, ns))
			Expect(k8s.Create(ctx, g)).To(Succeed())
			memberInGroup(emu, ns, g, "ann")
			Eventually(groupState(g)).Should(Equal(was + "/1/True/TeamSynced"))
			Expect(getGroup(g).Status.TeamCreated).To(BeTrue())
			emu.AddMember("hand", "hand@example.com", "member")
			emu.AddTeam(was, "hand") // someone adds a person to the team outside SCIM

			updateGroup(g, func(o *scimv1.OrgGroup) { o.Spec.DisplayName = fmt.Sprintf(to, ns) })
			Eventually(func() string { return getGroup(g).Spec.DisplayName }).Should(Equal(fmt.Sprintf(to, ns)))
			Eventually(groupState(g)).Should(Equal(renamed+"/1/True/TeamSynced"), "status.team is the backend's name")
			Consistently(team(renamed), 2*time.Second, 100*time.Millisecond).Should(ConsistOf("ann", "hand"))
			Expect(getGroup(g).Status.TeamCreated).To(BeTrue(), "still the team SCIM created")
			Expect(reasonsOf(ns, g.Name)()).NotTo(ContainElement("TeamDeleted"))
		},
		Entry("only the case of its name changes", "%s:Devs", "%s:devs", "Devs", "devs"),
		Entry("the new name names the organization twice (x:org:team)", "%s:qa", "x:%s:qa", "qa", "qa"),
	)

	It("keeps a member whose team hint names the organization (org:team) in the team, at no call a pass", func() {
		// Review 23 F1, for hints: the backend takes "acme:qa" as team qa, but the member's
		// hint was compared with the listing's "qa" as text, so every pass judged the
		// member out of its team and its reconcile added it again. Review 24 F1: the
		// backend's name for "acme: qa" kept the space.
		m := newMember(ns, "acme", "tia@example.com")
		m.Spec.Docker = &scimv1.DockerUser{Team: ns + ": qa"} // (review 24 F1: and a space)
		joins(emu, m, "tia")
		Eventually(team("qa")).Should(ConsistOf("tia"))
		// (quietPass waits for the teams' listing, which a config without groups skips)
		memberPass := func() int {
			emu.ResetLog()
			requestReconcile(cfg)
			Eventually(func() int { return emu.Count("GET", "/v2/orgs/"+ns+"/members") }).Should(BeNumerically(">=", 1))
			time.Sleep(2 * time.Second) // room for any member reconcile the pass would start
			return teamCalls()
		}
		Eventually(memberPass, 30*time.Second, 100*time.Millisecond).Should(BeZero())
		Expect(memberPass()).To(BeZero(), "a second pass makes no team call either")

		By("the hint restated without the organization is the same team: nothing is left or joined")
		emu.ResetLog()
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Docker = &scimv1.DockerUser{Team: "QA"} })
		settled(m, "Active/True/Active")
		Consistently(team("qa"), 2*time.Second, 100*time.Millisecond).Should(ConsistOf("tia"))
		Expect(emu.Count("DELETE", "/v2/orgs/"+ns+"/groups/*")).To(BeZero(), "the member never left the team")
	})

	It("sees the conflict of two groups whose names differ only by a second organization prefix", func() {
		// Review 23 F1: acme:qa and x:acme:qa are both team qa at Docker Hub.
		older := newGroup(ns, "acme", ns+":qa")
		older.Name = "a-older"
		Expect(k8s.Create(ctx, older)).To(Succeed())
		Eventually(groupState(older)).Should(Equal("qa/0/True/TeamSynced"))
		newer := newGroup(ns, "acme", "x:"+ns+":qa")
		newer.Name = "b-newer"
		Expect(k8s.Create(ctx, newer)).To(Succeed())
		Eventually(groupState(newer)).Should(Equal("qa/0/False/TeamConflict"))
	})

	It("hands the team to the newer group of the same team once the older is deleted, at once and keeping the team", func() {
		// Review 24 F6: the group waiting in TeamConflict is woken by the older group's
		// deletion (groupsOfSameTeam: names that end alike), not by the next drift pass,
		// which is 10 minutes away here; the team is not deleted, the newer group syncs it.
		older := newGroup(ns, "acme", ns+":qa")
		older.Name = "a-older"
		Expect(k8s.Create(ctx, older)).To(Succeed())
		memberInGroup(emu, ns, older, "ann")
		Eventually(groupState(older)).Should(Equal("qa/1/True/TeamSynced"))
		newer := newGroup(ns, "acme", "x:"+ns+":QA")
		newer.Name = "b-newer"
		Expect(k8s.Create(ctx, newer)).To(Succeed())
		memberInGroup(emu, ns, newer, "bob")
		Eventually(groupState(newer)).Should(Equal("QA/1/False/TeamConflict"))

		emu.ResetLog()
		Expect(k8s.Delete(ctx, older)).To(Succeed())
		Eventually(groupState(newer)).Should(Equal("QA/1/True/TeamSynced"))
		Eventually(team("qa")).Should(ConsistOf("bob"))
		Expect(emu.Count("DELETE", "/v2/orgs/"+ns+"/groups/qa")+emu.Count("DELETE", "/v2/orgs/"+ns+"/groups/QA")).To(BeZero(),
			"the team is the newer group's now")
		Expect(emu.Count("POST", "/v2/orgs/"+ns+"/groups")).To(BeZero(), "nor made again")
	})

	It("does not carry a creation recorded under a name Docker Hub once refused over to the team, and leaves that team, made by hand, when deleted", func() {
		// Review 25 F1 (an upgrade): before d72dd40, "x:<org>: qa" named Docker Hub's " qa",
		// which it refused, and the group kept {team: "<org>: qa", teamCreated: true}. Its
		// team by the backend's name, qa, was made by hand: the record must not carry over
		// (plan.TeamCreatedKept), or deleting the group would delete that team.
		emu.AddMember("hand", "hand@example.com", "member")
		emu.AddTeam("qa", "hand")
		g := newGroup(ns, "acme", "x:"+ns+": qa")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		Eventually(groupState(g)).Should(Equal("qa/0/True/TeamSynced"))
		Expect(getGroup(g).Status.TeamCreated).To(BeFalse(), "the team was there before the group")

		By("the status an older version wrote")
		Eventually(func() error {
			got := getGroup(g)
			got.Status.Team, got.Status.TeamCreated = ns+": qa", true
			return k8s.Status().Update(ctx, got)
		}).Should(Succeed())
		requestReconcile(g)
		Eventually(func() string {
			got := getGroup(g)
			return fmt.Sprintf("%s/%v", got.Status.Team, got.Status.TeamCreated)
		}).Should(Equal("qa/false"))

		Expect(k8s.Delete(ctx, g)).To(Succeed())
		Eventually(groupState(g)).Should(Equal("gone"))
		Expect(team("qa")()).To(ConsistOf("hand"), "the team made by hand is still there, with its member")
	})

	It("keeps a member in its group's team (x:org:team) when the member's hint leaves that team", func() {
		// The member side of the same key (leaveHintedTeam): the former hint qa is the team
		// of the member's group x:<org>:qa, so the member stays in it.
		g := newGroup(ns, "acme", "x:"+ns+":qa")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		m := newMember(ns, "acme", "tia@example.com")
		m.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
		m.Spec.Docker = &scimv1.DockerUser{Team: "qa"}
		joins(emu, m, "tia")
		Eventually(team("qa")).Should(ConsistOf("tia"))
		Eventually(groupState(g)).Should(Equal("qa/1/True/TeamSynced"))

		emu.ResetLog()
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Docker = &scimv1.DockerUser{Team: "devs"} })
		settled(m, "Active/True/Active")
		Eventually(team("devs")).Should(ConsistOf("tia"))
		Consistently(team("qa"), 2*time.Second, 50*time.Millisecond).Should(ConsistOf("tia"))
		Expect(emu.Count("DELETE", "/v2/orgs/"+ns+"/groups/qa/members/*")).To(BeZero(), "the member never left its group's team")
	})

	It("leaves a member hinted into its team (org:team) in it, though the member is not in the group", func() {
		// Review 24 F6, the group side of plan.ManagedIDs: the hint "<org>:qa" names the
		// group's team qa, so the group keeps the member its hint put there.
		g := newGroup(ns, "acme", "x:"+ns+":qa")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		memberInGroup(emu, ns, g, "bob")
		Eventually(groupState(g)).Should(Equal("qa/1/True/TeamSynced"))
		m := newMember(ns, "acme", "tia@example.com")
		m.Spec.Docker = &scimv1.DockerUser{Team: ns + ":qa"}
		joins(emu, m, "tia")
		Eventually(team("qa")).Should(ConsistOf("bob", "tia"))
		emu.ResetLog()
		// a sync of the group the spec asked for, after the member joined: lastSyncTime has
		// whole seconds, so the request waits for the next one (a sync that ended before it
		// records an earlier second)
		next := time.Now().Truncate(time.Second).Add(time.Second)
		time.Sleep(time.Until(next))
		requestReconcile(g)
		Eventually(func() bool {
			t := getGroup(g).Status.LastSyncTime
			return t != nil && !t.Before(&metav1.Time{Time: next})
		}).Should(BeTrue())
		Consistently(team("qa"), 2*time.Second, 50*time.Millisecond).Should(ConsistOf("bob", "tia"))
		Expect(emu.Count("DELETE", "/v2/orgs/"+ns+"/groups/qa/members/*")).To(BeZero(), "the group never took the member out")
	})
})

var _ = Describe("OrgMember controller at scale", Label("long"), func() {
	It("invites every member across many pages, each exactly once", func() {
		// make test runs a short variant (250 members, 3 pages of the backend's listing);
		// make test-long runs 2,000 (-ginkgo.label-filter=long).
		n := 250
		if strings.Contains(GinkgoLabelFilter(), "long") {
			n = 2000
		}
		ns := newNamespace()
		emu := hubConfig(ns, nil)
		users := make([]string, n)
		for i := range users {
			users[i] = fmt.Sprintf("user%04d@example.com", i)
			Expect(k8s.Create(ctx, newMember(ns, "acme", users[i]))).To(Succeed())
		}
		Eventually(func() *scimv1.MemberCounts {
			var c scimv1.ScimConfig
			_ = k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, &c)
			return c.Status.Members
		}, 5*time.Minute, time.Second).Should(Equal(&scimv1.MemberCounts{Total: int32(n), Invited: int32(n)}))
		Expect(emu.Invites()).To(HaveLen(n))
		for _, u := range users {
			Expect(emu.InvitesSent(u)).To(Equal(1), u)
		}
	})
})

var _ = Describe("OrgMember controller with a misconfigured Docker Hub backend", func() {
	It("waits without failing while the credentials Secret is missing, and resumes when it appears", func() {
		ns := newNamespace()
		emu := hubemu.New(hubemu.Options{Org: ns}).Start()
		DeferCleanup(emu.Close)
		c := newConfig(ns, "acme")
		c.Spec.Organization = emu.Org()
		c.Spec.Backend = scimv1.BackendSpec{Type: scimv1.BackendDockerHub, DockerHub: &scimv1.DockerHubBackend{
			BaseURL: emu.URL(), AccessTokenSecretRef: scimv1.SecretKeyRef{Name: "hub", Key: "token"}, RequestsPerMinute: 6000}}
		Expect(k8s.Create(ctx, c)).To(Succeed())
		m := newMember(ns, "acme", "zed@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("False/CredentialsMissing"))
		settled(m, "Pending/False/CredentialsMissing")
		Expect(reasonsOf(ns, m.Name)()).To(BeEmpty(), "no event per member for the config's problem")

		Expect(k8s.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hub"},
			StringData: map[string]string{"token": hubemu.DefaultToken},
		})).To(Succeed())
		settled(m, "Invited/True/Invited")
	})
})

// Issue 11 review: with transient errors no longer config-wide, a backend down for good
// (nothing listens at its baseURL) never showed BackendReady=False and emitted no warning,
// while its members retried quietly. After a run of failed checks as long as the members'
// longest backoff, BackendReady=False (BackendUnavailable) and one Warning event say so;
// the members keep retrying on their own, never waiting for the config.
var _ = Describe("ScimConfig with a Docker Hub that is down for good", func() {
	It("shows BackendReady=False BackendUnavailable with a Warning event, and its members keep retrying", func() {
		ns := newNamespace()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		closed := "http://" + l.Addr().String()
		Expect(l.Close()).To(Succeed()) // nothing listens there any more
		hubConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Backend.DockerHub.BaseURL = closed })
		m := newMember(ns, "acme", "zed@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady), 3*time.Minute, time.Second).
			Should(Equal("False/BackendUnavailable"))
		Eventually(reasonsOf(ns, "acme")).Should(ContainElement("BackendUnavailable"))
		By("the member is not held back by the config: it retries its own calls")
		Consistently(func() string {
			c := meta.FindStatusCondition(getMember(m).Status.Conditions, scimv1.ConditionSynced)
			if c == nil {
				return ""
			}
			return c.Reason
		}, 3*time.Second, 100*time.Millisecond).ShouldNot(Equal("BackendNotReady"))
	})
})

// acceptedThenEmailChanged provisions ann@example.com in config acme, has her accept the
// invitation as Docker ID ann, then change her Docker account's email: from then on Docker
// Hub lists her under the Docker ID only.
func acceptedThenEmailChanged(emu *hubemu.Emulator, ns string) *scimv1.OrgMember {
	GinkgoHelper()
	m := newMember(ns, "acme", "ann@example.com")
	joins(emu, m, "ann")
	Expect(getMember(m).Status.BackendID).To(Equal("ann"))
	emu.AddAccount("ann", "ann@home.example")
	return m
}
