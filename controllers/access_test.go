package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// canListConfigMapsAsGroup is canListConfigMaps for a stranger in group.
func canListConfigMapsAsGroup(group, ns string) func() bool {
	return func() bool {
		r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "stranger", Groups: []string{group},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: ns},
		}}
		Expect(k8s.Create(ctx, r)).To(Succeed())
		return r.Status.Allowed
	}
}

// configBindings are the RoleBindings of the namespace's config.
func configBindings(ns string) func() []rbacv1.RoleBinding {
	return func() []rbacv1.RoleBinding {
		var l rbacv1.RoleBindingList
		Expect(k8s.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{k8sbackend.LabelConfigNamespace: ns})).To(Succeed())
		return l.Items
	}
}

// twoRoleConfig creates two Roles that list ConfigMaps and a config binding both.
func twoRoleConfig(ns string, change func(*scimv1.ScimConfig)) {
	kubernetesConfig(ns, func(c *scimv1.ScimConfig) {
		Expect(k8s.Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe-writer"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list", "create"}}},
		})).To(Succeed())
		c.Spec.Backend.Kubernetes.Roles = append(c.Spec.Backend.Kubernetes.Roles,
			scimv1.NamespacedRole{Namespace: ns, Kind: "Role", Name: "probe-writer"})
		if change != nil {
			change(c)
		}
	})
}

// Issue 7's reproductions: each failed on the controllers that cleaned up by the member's
// current name and read a partial grant as no grant.
var _ = Describe("Access follows the identity provider (kubernetes backend)", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("takes access from the old userName at the rename, and from the new one at the deletion", func() {
		kubernetesConfig(ns, nil)
		m := newMember(ns, "acme", "alice.rename@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Expect(canListConfigMaps("alice.rename@example.com", ns)()).To(BeTrue())

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.UserName = "bob.rename@example.com" })
		Eventually(canListConfigMaps("bob.rename@example.com", ns)).Should(BeTrue())
		Expect(canListConfigMaps("alice.rename@example.com", ns)()).To(BeFalse(), "the old name keeps no access after the rename")
		Eventually(reasonsOf(ns, m.Name)).Should(ContainElement("Renamed"))

		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(canListConfigMaps("bob.rename@example.com", ns)()).To(BeFalse())
		Expect(canListConfigMaps("alice.rename@example.com", ns)()).To(BeFalse())
		Expect(configBindings(ns)()).To(BeEmpty(), "no binding outlives its member")
	})

	It("deactivates a member one of whose bindings was deleted by hand", func() {
		twoRoleConfig(ns, nil)
		user := "drift@example.com"
		m := newMember(ns, "acme", user)
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Eventually(configBindings(ns)).Should(HaveLen(2))
		var probe rbacv1.RoleBinding
		for _, b := range configBindings(ns)() {
			if b.RoleRef.Name == "probe-writer" {
				probe = b
			}
		}
		Expect(k8s.Delete(ctx, &probe)).To(Succeed())

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(m, "Deactivated/True/Deactivated")
		Eventually(canListConfigMaps(user, ns)).Should(BeFalse(), "the remaining binding goes too")
		Expect(configBindings(ns)()).To(BeEmpty())
	})

	It("grants nothing to a Group because one user carries a docker team hint", func() {
		kubernetesConfig(ns, nil)
		m := newMember(ns, "acme", "hinted@example.com")
		m.Spec.Docker = &scimv1.DockerUser{Team: "qa"}
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Expect(canListConfigMapsAsGroup("qa", ns)()).To(BeFalse())
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(canListConfigMapsAsGroup("qa", ns)()).To(BeFalse())
		Expect(configBindings(ns)()).To(BeEmpty())
	})

	It("reports no team membership changes for a group with members: its Group grant is all there is", func() {
		kubernetesConfig(ns, nil)
		g := newGroup(ns, "acme", "acme:platform")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		m := newMember(ns, "acme", "member@example.com")
		m.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Eventually(canListConfigMapsAsGroup("platform", ns)).Should(BeTrue())
		for i := range 3 { // more passes: each once reported "added 1 member(s)"
			updateGroup(g, func(o *scimv1.OrgGroup) {
				if o.Annotations == nil {
					o.Annotations = map[string]string{}
				}
				o.Annotations[scimv1.AnnotationReconcile] = fmt.Sprint(i)
			})
		}
		Eventually(reasonsOf(ns, g.Name)).Should(ContainElement("TeamCreated"))
		Consistently(reasonsOf(ns, g.Name), "3s").ShouldNot(ContainElement("TeamMemberAdded"))
	})

	It("moves a renamed group's access to its new Group and removes it with the group", func() {
		kubernetesConfig(ns, nil)
		g := newGroup(ns, "acme", "acme:red")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		Eventually(canListConfigMapsAsGroup("red", ns)).Should(BeTrue())
		updateGroup(g, func(o *scimv1.OrgGroup) { o.Spec.DisplayName = "acme:blue" })
		Eventually(canListConfigMapsAsGroup("blue", ns)).Should(BeTrue())
		Expect(canListConfigMapsAsGroup("red", ns)()).To(BeFalse(), "the old Group loses access at the rename")
		Expect(k8s.Delete(ctx, g)).To(Succeed())
		expectGone(g)
		Expect(canListConfigMapsAsGroup("blue", ns)()).To(BeFalse())
		Expect(configBindings(ns)()).To(BeEmpty())
	})

	It("gives a group renamed into a team another group holds no access under its former Group", func() {
		kubernetesConfig(ns, nil)
		first := newGroup(ns, "acme", "acme:eng")
		Expect(k8s.Create(ctx, first)).To(Succeed())
		Eventually(canListConfigMapsAsGroup("eng", ns)).Should(BeTrue())
		second := newGroup(ns, "acme", "acme:ops")
		Expect(k8s.Create(ctx, second)).To(Succeed())
		Eventually(canListConfigMapsAsGroup("ops", ns)).Should(BeTrue())
		updateGroup(second, func(o *scimv1.OrgGroup) { o.Spec.DisplayName = "acme:eng" })
		Eventually(canListConfigMapsAsGroup("ops", ns)).Should(BeFalse(), "the former Group loses access")
		Expect(k8s.Delete(ctx, first)).To(Succeed())
		expectGone(first)
		Expect(canListConfigMapsAsGroup("eng", ns)()).To(BeTrue(), "the renamed group still grants eng")
		Expect(k8s.Delete(ctx, second)).To(Succeed())
		expectGone(second)
		Expect(canListConfigMapsAsGroup("eng", ns)()).To(BeFalse())
	})

	It("takes the former name's access when a rename is refused by the backend", func() {
		kubernetesConfig(ns, nil)
		m := newMember(ns, "acme", "refused@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.UserName = "system:refused" })
		settled(m, "Failed/False/InvalidUser")
		Expect(canListConfigMaps("refused@example.com", ns)()).To(BeFalse(), "the former name keeps nothing")
		Expect(configBindings(ns)()).To(BeEmpty())
	})

	It("takes the former name's access at a rename while the backend is not ready", func() {
		twoRoleConfig(ns, nil)
		m := newMember(ns, "acme", "early@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Expect(k8s.Delete(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe-writer"}})).To(Succeed())
		requestReconcile(newConfigRef(ns, "acme"))
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(HavePrefix("False/"))
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.UserName = "late@example.com" })
		Eventually(canListConfigMaps("early@example.com", ns)).Should(BeFalse())
		Expect(canListConfigMaps("late@example.com", ns)()).To(BeFalse(), "nothing is granted while the backend is not ready")
		Eventually(memberCond(m, scimv1.ConditionSynced)).Should(Equal("False/" + controllers.ReasonBackendNotReady))
	})

	It("takes an orphan back: a member re-created under an orphaned name is SCIM's, not preexisting", func() {
		kubernetesConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Policies.Deletion = scimv1.DeletionOrphan })
		user := "again@example.com"
		first := newMember(ns, "acme", user)
		Expect(k8s.Create(ctx, first)).To(Succeed())
		settled(first, "Active/True/Active")
		Expect(k8s.Delete(ctx, first)).To(Succeed())
		expectGone(first)
		Expect(canListConfigMaps(user, ns)()).To(BeTrue(), "Orphan leaves the access")

		second := newMember(ns, "acme", user)
		second.Name = "again-2"
		Expect(k8s.Create(ctx, second)).To(Succeed())
		settled(second, "Active/True/Active")
		Expect(getMember(second).Status.Origin).To(Equal(scimv1.OriginProvisioned))
		updateMember(second, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(second, "Deactivated/True/Deactivated")
		Expect(canListConfigMaps(user, ns)()).To(BeFalse(), "the claimed grant follows the member")
		Expect(configBindings(ns)()).To(BeEmpty())
	})

	It("sweeps grants whose member is gone without its finalizer", func() {
		kubernetesConfig(ns, nil)
		m := newMember(ns, "acme", "forced@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		// someone strips the finalizer by hand: the member goes without deprovisioning
		got := getMember(m)
		got.Finalizers = nil
		Expect(k8s.Update(ctx, got)).To(Succeed())
		Expect(k8s.Delete(ctx, got)).To(Succeed())
		expectGone(m)
		requestReconcile(newConfigRef(ns, "acme"))
		Eventually(canListConfigMaps("forced@example.com", ns)).Should(BeFalse())
		Eventually(configBindings(ns)).Should(BeEmpty())
	})

	DescribeTable("deleting a ScimConfig has one outcome per policy, in any order of deletion",
		func(deletion scimv1.DeletionPolicy, enabled bool, membersFirst bool, wantAccess bool) {
			kubernetesConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Policies.Deletion = deletion })
			var ms []*scimv1.OrgMember
			for _, u := range []string{"p@example.com", "q@example.com", "r@example.com"} {
				m := newMember(ns, "acme", u)
				Expect(k8s.Create(ctx, m)).To(Succeed())
				ms = append(ms, m)
			}
			for _, m := range ms {
				settled(m, "Active/True/Active")
			}
			if !enabled {
				updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { c.Spec.Enabled = ptr.To(false) })
				Eventually(memberCond(ms[0], scimv1.ConditionSynced)).Should(Equal("Unknown/Paused"))
			}
			deleteAll(ns, ms, membersFirst)
			for _, m := range ms {
				Expect(canListConfigMaps(m.Spec.UserName, ns)()).To(Equal(wantAccess), m.Spec.UserName)
			}
		},
		Entry("Remove, config first", scimv1.DeletionRemove, true, false, false),
		Entry("Remove, members first", scimv1.DeletionRemove, true, true, false),
		Entry("Orphan, config first", scimv1.DeletionOrphan, true, false, true),
		Entry("Orphan, members first", scimv1.DeletionOrphan, true, true, true),
		Entry("disabled, config first", scimv1.DeletionRemove, false, false, true),
		Entry("disabled, members first", scimv1.DeletionRemove, false, true, true),
	)
})

// updateGroup changes a group's spec with a retry on conflicts.
func updateGroup(g *scimv1.OrgGroup, change func(*scimv1.OrgGroup)) {
	Eventually(func() error {
		got := getGroup(g)
		change(got)
		return k8s.Update(ctx, got)
	}).Should(Succeed())
}

// deleteAll deletes the config "acme" of ns and its members in one order or the other, as
// the namespace controller does, and waits until all are gone (the config's finalizer
// released).
func deleteAll(ns string, ms []*scimv1.OrgMember, membersFirst bool) {
	del := func(o client.Object) { Expect(client.IgnoreNotFound(k8s.Delete(ctx, o))).To(Succeed()) }
	if !membersFirst {
		del(newConfig(ns, "acme"))
	}
	for _, m := range ms {
		del(m)
	}
	if membersFirst {
		del(newConfig(ns, "acme"))
	}
	for _, m := range ms {
		expectGone(m)
	}
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, &scimv1.ScimConfig{}))
	}).Should(BeTrue(), "the config's finalizer is released")
}

func newConfigRef(ns, name string) client.Object {
	c := &scimv1.ScimConfig{}
	c.Namespace, c.Name = ns, name
	return c
}

var _ = Describe("Access follows the identity provider (Docker Hub emulator)", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	invitees := func(emu *hubemu.Emulator) func() []string {
		return func() []string {
			var out []string
			for _, inv := range emu.Invites() {
				out = append(out, inv.Invitee)
			}
			return out
		}
	}

	It("cancels the invitation of the old identity when the userName and email change", func() {
		emu := hubConfig(ns, nil)
		m := newMember(ns, "acme", "hubuser0@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Invited/True/Invited")
		Expect(invitees(emu)()).To(Equal([]string{"hubuser0@example.com"}))

		updateMember(m, func(o *scimv1.OrgMember) {
			o.Spec.UserName = "renamed0@example.com"
			o.Spec.Emails = []scimv1.MultiValue{{Value: "renamed0@example.com", Primary: true}}
		})
		Eventually(invitees(emu)).Should(Equal([]string{"renamed0@example.com"}), "the old invitation is cancelled")
		settled(m, "Invited/True/Invited")
		Expect(getMember(m).Status.GrantedIdentities).To(Equal([]string{"renamed0@example.com"}))

		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(invitees(emu)()).To(BeEmpty(), "nobody removed at the IdP can still accept an invitation")
	})

	It("removes the old Docker ID when a member's identity changes after acceptance", func() {
		emu := hubConfig(ns, nil)
		m := newMember(ns, "acme", "kim@example.com")
		joins(emu, m, "kim")
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.UserName = "kim.new@example.com" })
		Eventually(func() bool { return emu.IsMember("kim") }).Should(BeFalse())
		Eventually(invitees(emu)).Should(Equal([]string{"kim.new@example.com"}))
	})

	It("records the accepted Docker ID and removes it at DELETE even when the account email changes", func() {
		emu := hubConfig(ns, nil)
		m := newMember(ns, "acme", "kim@example.com")
		joins(emu, m, "kim")
		Eventually(func() []string { return getMember(m).Status.GrantedIdentities }).Should(ContainElement("kim"))
		emu.AddMember("kim", "kim@home.example", "member") // the person changes their account's email
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(emu.IsMember("kim")).To(BeFalse(), "the Docker ID SCIM granted goes with the member")
	})

	It("takes a member out of the team its former hint named", func() {
		emu := hubConfig(ns, nil)
		m := newMember(ns, "acme", "tia@example.com")
		m.Spec.Docker = &scimv1.DockerUser{Team: "qa"}
		joins(emu, m, "tia")
		inTeam := func(team string) func() bool {
			return func() bool {
				t, ok := emu.Team(team)
				return ok && slices.Contains(t.Members, "tia")
			}
		}
		Eventually(inTeam("qa")).Should(BeTrue())
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Docker = &scimv1.DockerUser{Team: "dev"} })
		Eventually(inTeam("dev")).Should(BeTrue())
		Eventually(inTeam("qa")).Should(BeFalse(), "the former hint's team is left")
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Docker = nil })
		Eventually(inTeam("dev")).Should(BeFalse(), "a removed hint leaves its team")
	})

	DescribeTable("deleting a ScimConfig has one outcome per policy, in any order of deletion",
		func(deletion scimv1.DeletionPolicy, membersFirst bool, wantIn bool) {
			emu := hubConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Policies.Deletion = deletion })
			var ms []*scimv1.OrgMember
			for _, u := range []string{"p@example.com", "q@example.com", "r@example.com"} {
				m := newMember(ns, "acme", u)
				Expect(k8s.Create(ctx, m)).To(Succeed())
				ms = append(ms, m)
			}
			for _, m := range ms {
				settled(m, "Invited/True/Invited")
			}
			deleteAll(ns, ms, membersFirst)
			Expect(invitees(emu)()).To(HaveLen(map[bool]int{true: 3, false: 0}[wantIn]))
		},
		Entry("Remove, config first", scimv1.DeletionRemove, false, false),
		Entry("Remove, members first", scimv1.DeletionRemove, true, false),
		Entry("Orphan, config first", scimv1.DeletionOrphan, false, true),
	)

	It("deletes the team SCIM created for a group when the group is renamed", func() {
		emu := hubConfig(ns, nil)
		g := newGroup(ns, "acme", ns+":red")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		Eventually(func() bool { _, ok := emu.Team("red"); return ok }).Should(BeTrue())
		updateGroup(g, func(o *scimv1.OrgGroup) { o.Spec.DisplayName = ns + ":blue" })
		Eventually(func() bool { _, ok := emu.Team("blue"); return ok }).Should(BeTrue())
		Eventually(func() bool { _, ok := emu.Team("red"); return ok }).Should(BeFalse(), "the old team goes with the rename")
	})

	It("reports a revoked token once on the config; members keep their phase and resume", func() {
		emu := hubConfig(ns, nil)
		var ms []*scimv1.OrgMember
		for _, u := range []string{"t1@example.com", "t2@example.com", "t3@example.com"} {
			m := newMember(ns, "acme", u)
			Expect(k8s.Create(ctx, m)).To(Succeed())
			ms = append(ms, m)
		}
		for _, m := range ms {
			settled(m, "Invited/True/Invited")
		}
		emu.RemoveToken(hubemu.DefaultToken)
		for _, m := range ms {
			requestReconcile(m)
		}
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("False/InvalidCredentials"))
		for _, m := range ms {
			Eventually(memberCond(m, scimv1.ConditionSynced)).Should(HavePrefix("False/"))
			Expect(getMember(m).Status.Phase).To(Equal(scimv1.PhaseInvited), "a config-wide problem is not a member failure")
			Consistently(reasonsOf(ns, m.Name), "1s").ShouldNot(ContainElement("Failed"))
		}
		count := func(reason string) func() int {
			return func() int {
				n := 0
				for _, r := range reasonsOf(ns, "acme")() {
					if r == reason {
						n++
					}
				}
				return n
			}
		}
		Eventually(count("BackendNotReady")).Should(Equal(1))
		Consistently(count("BackendNotReady"), "1s").Should(Equal(1), "one event on the config, not one per member or check")

		emu.AddToken(hubemu.DefaultToken, hubemu.TokenSpec{})
		requestReconcile(newConfigRef(ns, "acme"))
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		for _, m := range ms {
			settled(m, "Invited/True/Invited")
		}
	})
})

var _ = Describe("OrgMember reconciler, one reconcile at a time", func() {
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

	// reconcileWith runs one reconcile of m with a client that serves get as the member.
	reconcileWith := func(m *scimv1.OrgMember, get *scimv1.OrgMember) (ctrl.Result, error) {
		ww, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		c := interceptor.NewClient(ww, interceptor.Funcs{
			Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if om, ok := obj.(*scimv1.OrgMember); ok && key == client.ObjectKeyFromObject(m) && get != nil {
					get.DeepCopyInto(om)
					return nil
				}
				return cl.Get(ctx, key, obj, opts...)
			},
		})
		r := &controllers.OrgMemberReconciler{Client: c, Scheme: scheme, Backends: provider, Clock: clock.RealClock{}}
		return r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(m)})
	}

	It("writes nothing of a judgement made from a stale copy when its optimistic lock is refused", func() {
		m := newMember(ns, "acme", "stale@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		stale := getMember(m) // before any reconcile: no origin, an old resourceVersion
		stale.Finalizers = []string{controllers.FinalizerDeprovision}
		settled(m, "Active/True/Active")
		Expect(getMember(m).Status.Origin).To(Equal(scimv1.OriginProvisioned))

		// the person is in the backend now: judged from the stale copy they look preexisting
		_, err := reconcileWith(m, stale)
		Expect(apierrors.IsConflict(err)).To(BeTrue(), "the optimistic lock refuses the stale judgement: %v", err)
		Expect(getMember(m).Status.Origin).To(Equal(scimv1.OriginProvisioned), "the refused judgement is not written back")
	})

	It("retries a Permanent member error on the resync interval instead of stopping for good", func() {
		m := newMember(ns, "acme", "perm@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		mb.failAlways("ObserveMember", backend.NewPermanent("InvalidUser", errors.New("refused")))
		res, err := reconcileWith(m, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.RequeueAfter).To(BeNumerically(">", 0), "a later pass notices a repaired backend")
		mb.failAlways("ObserveMember", nil)
	})
})
