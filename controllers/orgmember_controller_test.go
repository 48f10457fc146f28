package controllers_test

import (
	"errors"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/naming"
)

func newMember(ns, cfgName, userName string) *scimv1.OrgMember {
	return &scimv1.OrgMember{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName(cfgName, userName),
			Labels: map[string]string{scimv1.LabelConfig: cfgName}},
		Spec: scimv1.OrgMemberSpec{ConfigName: cfgName, UserName: userName, Active: true},
	}
}

func getMember(m *scimv1.OrgMember) *scimv1.OrgMember {
	var got scimv1.OrgMember
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(m), &got); err != nil {
		return nil
	}
	return &got
}

// memberCond is "<status>/<reason>" of a member condition, "" when absent.
func memberCond(m *scimv1.OrgMember, t string) func() string {
	return func() string {
		got := getMember(m)
		if got == nil {
			return "gone"
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, t); c != nil {
			return string(c.Status) + "/" + c.Reason
		}
		return ""
	}
}

// memberPhase is "<phase>/<Ready status>/<Ready reason>", observed for the current generation.
func memberPhase(m *scimv1.OrgMember) func() string {
	return func() string {
		got := getMember(m)
		if got == nil {
			return "gone"
		}
		c := meta.FindStatusCondition(got.Status.Conditions, scimv1.ConditionReady)
		if c == nil || got.Status.ObservedGeneration != got.Generation {
			return string(got.Status.Phase) + "/?"
		}
		return string(got.Status.Phase) + "/" + string(c.Status) + "/" + c.Reason
	}
}

// updateMember changes a member's spec the way the SCIM server does (a patch).
func updateMember(m *scimv1.OrgMember, change func(*scimv1.OrgMember)) {
	Eventually(func() error {
		got := getMember(m)
		if got == nil {
			return errors.New("member gone")
		}
		orig := got.DeepCopy()
		change(got)
		return k8s.Patch(ctx, got, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner("scim-server"))
	}).Should(Succeed())
}

// requestReconcile sets the reconcile-requested-at annotation.
func requestReconcile(o client.Object) {
	Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
			return err
		}
		orig := o.DeepCopyObject().(client.Object)
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[scimv1.AnnotationReconcile] = time.Now().Format(time.RFC3339Nano)
		o.SetAnnotations(a)
		return k8s.Patch(ctx, o, client.MergeFrom(orig))
	}).Should(Succeed())
}

func updateConfig(ns, name string, change func(*scimv1.ScimConfig)) {
	Eventually(func() error {
		var c scimv1.ScimConfig
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &c); err != nil {
			return err
		}
		orig := c.DeepCopy()
		change(&c)
		return k8s.Patch(ctx, &c, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	}).Should(Succeed())
}

// eventsOf lists "<reason>: <note>" of the events regarding an object, oldest first.
func eventsOf(ns, name string) func() []string {
	return func() []string {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil
		}
		items := list.Items
		sort.SliceStable(items, func(i, j int) bool {
			return items[i].EventTime.Time.Before(items[j].EventTime.Time)
		})
		var out []string
		for _, e := range items {
			if e.Regarding.Name == name {
				out = append(out, e.Reason+": "+e.Note)
			}
		}
		return out
	}
}

func reasonsOf(ns, name string) func() []string {
	return func() []string {
		var out []string
		for _, e := range eventsOf(ns, name)() {
			for i := range e {
				if e[i] == ':' {
					out = append(out, e[:i])
					break
				}
			}
		}
		return out
	}
}

func expectGone(o client.Object) {
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(o), o))
	}).Should(BeTrue(), "the object is released by its finalizer")
}

var _ = Describe("OrgMember controller, pure logic (in-memory backend)", func() {
	var (
		ns string
		mb *memBackend
	)
	BeforeEach(func() {
		ns = newNamespace()
		mb = newMemBackend()
		provider.register(ns, "acme", mb)
	})
	createConfig := func(change func(*scimv1.ScimConfig)) {
		c := newConfig(ns, "acme")
		if change != nil {
			change(c)
		}
		Expect(k8s.Create(ctx, c)).To(Succeed())
	}

	It("provisions, deactivates, reactivates and deprovisions with one event per change", func() {
		createConfig(nil)
		m := newMember(ns, "acme", "ada@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberPhase(m)).Should(Equal("Active/True/Active"))
		got := getMember(m)
		Expect(got.Status.Origin).To(Equal(scimv1.OriginProvisioned))
		Expect(got.Status.BackendID).To(Equal("ada@example.com"))
		Expect(got.Status.LastSyncTime).NotTo(BeNil())
		Expect(got.Finalizers).To(ContainElement(controllers.FinalizerDeprovision))
		Expect(memberCond(m, scimv1.ConditionSynced)()).To(Equal("True/Synced"))
		Expect(got.Status.Conditions[0].Type).To(Equal(scimv1.ConditionReady), "Ready is listed first")

		By("deactivating: removed from the organization, the OrgMember kept")
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		Eventually(memberPhase(m)).Should(Equal("Deactivated/True/Deactivated"))
		_, in := mb.get("ada@example.com")
		Expect(in).To(BeFalse())
		Expect(getMember(m).Status.Message).To(ContainSubstring("reactivation re-adds them"))

		By("reactivating: added again")
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = true })
		Eventually(memberPhase(m)).Should(Equal("Active/True/Active"))
		_, in = mb.get("ada@example.com")
		Expect(in).To(BeTrue())

		By("deleting: removed from the backend and released")
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		_, in = mb.get("ada@example.com")
		Expect(in).To(BeFalse())
		Eventually(reasonsOf(ns, m.Name)).Should(Equal([]string{"Added", "Deactivated", "Reactivated", "Removed"}))
		Expect(eventsOf(ns, m.Name)()[0]).To(Equal("Added: ada@example.com added to organization acme"))
	})

	It("leaves a person who was already a member alone when adoption is off", func() {
		createConfig(nil)
		mb.put("bob@example.com", "owner", backend.StateMember)
		m := newMember(ns, "acme", "Bob@Example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberPhase(m)).Should(Equal("Active/True/Preexisting"))
		got := getMember(m)
		Expect(got.Status.Origin).To(Equal(scimv1.OriginPreexisting))
		Expect(got.Status.Message).To(Equal("already in organization acme before SCIM; adoption is off, so SCIM never changes or removes them"))

		updateMember(m, func(o *scimv1.OrgMember) {
			o.Spec.Active = false
			o.Spec.Docker = &scimv1.DockerUser{Role: "member"}
		})
		Eventually(memberPhase(m)).Should(Equal("Active/True/Preexisting"))
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		b, in := mb.get("bob@example.com")
		Expect(in).To(BeTrue(), "a preexisting member is never removed")
		Expect(b.Role).To(Equal("owner"), "nor changed")
		Expect(mb.callsOf("EnsureMember") + mb.callsOf("EnsureMemberAbsent")).To(BeZero())
		Eventually(reasonsOf(ns, m.Name)).Should(Equal([]string{"Preexisting", "Orphaned"}))
	})

	It("adopts a person who was already a member when adoption is on, and removes them on deletion", func() {
		createConfig(func(c *scimv1.ScimConfig) { c.Spec.Policies.Adoption = scimv1.AdoptionAdopt })
		mb.put("cy@example.com", "member", backend.StateMember)
		m := newMember(ns, "acme", "cy@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberPhase(m)).Should(Equal("Active/True/Active"))
		Expect(getMember(m).Status.Origin).To(Equal(scimv1.OriginAdopted))
		Expect(getMember(m).Status.Message).To(Equal("member of organization acme as member (adopted)"))
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		_, in := mb.get("cy@example.com")
		Expect(in).To(BeFalse())
		Eventually(reasonsOf(ns, m.Name)).Should(Equal([]string{"Adopted", "Removed"}))
	})

	It("stalls a refused removal as Failed with the backend's reason, retrying on the resync interval, not in a loop", func() {
		createConfig(nil)
		m := newMember(ns, "acme", "owner@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberPhase(m)).Should(Equal("Active/True/Active"))

		mb.fail("EnsureMemberAbsent", backend.NewPermanent("LastOwner", errors.New("cannot remove the last owner of organization acme")))
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		Eventually(memberPhase(m)).Should(Equal("Failed/False/LastOwner"))
		got := getMember(m)
		Expect(got.Status.Message).To(Equal("could not remove the deactivated member: LastOwner (Permanent): cannot remove the last owner of organization acme"))
		Expect(memberCond(m, scimv1.ConditionSynced)()).To(Equal("False/LastOwner"))
		Eventually(eventsOf(ns, m.Name)).Should(ContainElement(
			"Failed: could not remove the deactivated member: LastOwner (Permanent): cannot remove the last owner of organization acme"))
		Expect(mb.callsOf("EnsureMemberAbsent")).To(Equal(1), "a permanent error is not retried in a loop")

		By("retrying on the next request once the cause is gone")
		requestReconcile(m)
		Eventually(memberPhase(m)).Should(Equal("Deactivated/True/Deactivated"))
		Expect(mb.callsOf("EnsureMemberAbsent")).To(Equal(2))
	})

	It("waits out rate limits and transient failures, and never adds a member twice", func() {
		createConfig(nil)
		mb.fail("ObserveMember", backend.NewRateLimited(500*time.Millisecond, errors.New("429 Rate limit exceeded")))
		mb.fail("EnsureMember", backend.NewTransient("BackendUnavailable", errors.New("503 Service Unavailable")),
			backend.NewTransient("BackendUnavailable", errors.New("502 Bad Gateway")))
		m := newMember(ns, "acme", "dee@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberPhase(m)).Should(Equal("Active/True/Active"))
		Expect(mb.callsOf("EnsureMember")).To(Equal(3), "two failed calls and one that worked")
		Expect(getMember(m).Status.Origin).To(Equal(scimv1.OriginProvisioned))
		Expect(reasonsOf(ns, m.Name)()).To(Equal([]string{"Added"}))
	})

	It("retries a transient failure per member: a flaky backend does not pause its config", func() {
		createConfig(nil)
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		// The backend answers the config's check with 503s and 429s from now on, and two of
		// each member's first calls fail with 5xx: failures of single calls, not of the
		// organization connection.
		mb.failAlways("Check", backend.NewTransient("BackendUnavailable", errors.New("503 Service Unavailable")))
		var ms []*scimv1.OrgMember
		for _, u := range []string{"flo@example.com", "gus@example.com", "hal@example.com"} {
			mb.fail("EnsureMember", backend.NewTransient("BackendUnavailable", errors.New("503 Service Unavailable")),
				backend.NewTransient("BackendUnavailable", errors.New("502 Bad Gateway")))
			m := newMember(ns, "acme", u)
			Expect(k8s.Create(ctx, m)).To(Succeed())
			ms = append(ms, m)
		}
		requestReconcile(newConfigRef(ns, "acme"))
		for _, m := range ms {
			Eventually(memberPhase(m)).Should(Equal("Active/True/Active"), "the member retries its own call")
		}
		Expect(mb.callsOf("EnsureMember")).To(Equal(9), "six failed calls and three that worked")
		Expect(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)()).To(Equal("True/Connected"),
			"a transient failure of the check is not an outage of the organization")
		Expect(reasonsOf(ns, "acme")()).NotTo(ContainElement("BackendNotReady"))

		By("a config-wide failure (the credentials refused) still pauses the config")
		mb.failAlways("Check", backend.NewPermanent("InvalidCredentials", errors.New("401 Unauthorized")))
		requestReconcile(newConfigRef(ns, "acme"))
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("False/InvalidCredentials"))
	})

	It("does nothing while the config is disabled and resumes when it is enabled", func() {
		createConfig(func(c *scimv1.ScimConfig) { c.Spec.Enabled = ptr.To(false) })
		m := newMember(ns, "acme", "eve@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberCond(m, scimv1.ConditionReady)).Should(Equal("Unknown/Paused"))
		Expect(getMember(m).Status.Phase).To(Equal(scimv1.PhasePending))
		Expect(mb.callsOf("ObserveMember")).To(BeZero())

		updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { c.Spec.Enabled = ptr.To(true) })
		Eventually(memberPhase(m)).Should(Equal("Active/True/Active"))

		By("disabling again, deletion leaves the member in place")
		updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { c.Spec.Enabled = ptr.To(false) })
		Eventually(memberCond(m, scimv1.ConditionSynced)).Should(Equal("Unknown/Paused"))
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		_, in := mb.get("eve@example.com")
		Expect(in).To(BeTrue(), "disabling SCIM never deprovisions anyone")
	})

	It("leaves access in place on deletion with policy Orphan, and when the config is deleted under Orphan", func() {
		createConfig(func(c *scimv1.ScimConfig) { c.Spec.Policies.Deletion = scimv1.DeletionOrphan })
		a := newMember(ns, "acme", "fay@example.com")
		b := newMember(ns, "acme", "gus@example.com")
		Expect(k8s.Create(ctx, a)).To(Succeed())
		Expect(k8s.Create(ctx, b)).To(Succeed())
		Eventually(memberPhase(a)).Should(Equal("Active/True/Active"))
		Eventually(memberPhase(b)).Should(Equal("Active/True/Active"))
		Expect(k8s.Delete(ctx, a)).To(Succeed())
		expectGone(a)
		Eventually(eventsOf(ns, a.Name)).Should(ContainElement(
			"Orphaned: fay@example.com deleted; access left in place because the deletion policy is Orphan"))

		Expect(k8s.Delete(ctx, newConfig(ns, "acme"))).To(Succeed())
		Eventually(memberCond(b, scimv1.ConditionReady)).Should(Equal("False/ConfigNotFound"))
		Expect(k8s.Delete(ctx, b)).To(Succeed())
		expectGone(b)
		for _, u := range []string{"fay@example.com", "gus@example.com"} {
			_, in := mb.get(u)
			Expect(in).To(BeTrue(), u+" keeps access")
		}
		Expect(mb.callsOf("EnsureMemberAbsent")).To(BeZero())
	})

	It("repairs drift: a member removed by hand is added again on the next resync", func() {
		createConfig(nil)
		m := newMember(ns, "acme", "hal@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberPhase(m)).Should(Equal("Active/True/Active"))
		mb.remove("hal@example.com")
		requestReconcile(m)
		Eventually(func() bool { _, in := mb.get("hal@example.com"); return in }).Should(BeTrue())
		Eventually(eventsOf(ns, m.Name)).Should(ContainElement(
			"Added: hal@example.com was missing from organization acme (removed outside SCIM, or the invitation expired): added to it again"))
	})

	It("tracks an invitation to acceptance, changes roles and joins the docker team", func() {
		mb.invite = true
		createConfig(nil)
		m := newMember(ns, "acme", "ivy@example.com")
		m.Spec.Docker = &scimv1.DockerUser{Team: "devs"}
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberPhase(m)).Should(Equal("Invited/True/Invited"))
		Expect(getMember(m).Status.InviteID).NotTo(BeEmpty())
		Expect(getMember(m).Status.Message).To(Equal("invited to organization acme; waiting for the person to accept"))

		mb.put("ivy@example.com", "member", backend.StateMember) // the person accepts
		requestReconcile(m)
		Eventually(memberPhase(m)).Should(Equal("Active/True/Active"))
		Expect(getMember(m).Status.InviteID).To(BeEmpty())
		team, ok := mb.team("devs")
		Expect(ok).To(BeTrue())
		Expect(team).To(Equal([]string{"ivy@example.com"}))

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Docker.Role = "editor" })
		Eventually(func() string { b, _ := mb.get("ivy@example.com"); return b.Role }).Should(Equal("editor"))
		Eventually(reasonsOf(ns, m.Name)).Should(Equal([]string{"Invited", "TeamJoined", "RoleChanged"}))
		Expect(mb.callsOf("EnsureMember")).To(Equal(2), "one invitation and one role change")
	})
})

var _ = Describe("ScimConfig backend status", func() {
	It("reports BackendReady and counts members by phase", func() {
		ns := newNamespace()
		mb := newMemBackend()
		provider.register(ns, "acme", mb)
		Expect(k8s.Create(ctx, newConfig(ns, "acme"))).To(Succeed())
		for _, u := range []string{"a@example.com", "b@example.com"} {
			Expect(k8s.Create(ctx, newMember(ns, "acme", u))).To(Succeed())
		}
		off := newMember(ns, "acme", "c@example.com")
		off.Spec.Active = false
		Expect(k8s.Create(ctx, off)).To(Succeed())
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		Eventually(func() *scimv1.MemberCounts {
			var c scimv1.ScimConfig
			_ = k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, &c)
			return c.Status.Members
		}).Should(Equal(&scimv1.MemberCounts{Total: 3, Active: 2, Deactivated: 1}))
		// lastFullSyncTime is set by a pass that found every member synced: the config's
		// first pass may have come before the members were (it did under load), so ask
		// for one now
		requestReconcile(newConfigRef(ns, "acme"))
		Eventually(func() *metav1.Time {
			var c scimv1.ScimConfig
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, &c)).To(Succeed())
			return c.Status.LastFullSyncTime
		}).ShouldNot(BeNil())
		Eventually(func() float64 {
			return testutil.ToFloat64(metrics.MembersByPhase.WithLabelValues(ns, "acme", "Active"))
		}).Should(Equal(2.0))
		Expect(testutil.ToFloat64(metrics.MembersByPhase.WithLabelValues(ns, "acme", "Deactivated"))).To(Equal(1.0))
		Expect(testutil.ToFloat64(metrics.DriftPasses.WithLabelValues(ns, "acme", "success"))).To(
			BeNumerically(">=", 1), "lastFullSyncTime is the drift pass's: one listing compared with every member")

		By("a failing check shows on BackendReady and Ready")
		// every Check fails until it shows: a check whose status write meets a conflict is
		// retried, and a one-shot fault was then spent on a verdict nobody wrote (a flake)
		mb.failAlways("Check", backend.NewPermanent("InvalidCredentials", errors.New("401 Unauthorized")))
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("False/InvalidCredentials"))
		Expect(condition(ns, "acme", scimv1.ConditionBackendReady)().Message).To(
			Equal("kubernetes backend for organization acme: InvalidCredentials (Permanent): 401 Unauthorized"))
		mb.failAlways("Check", nil)
	})
})
