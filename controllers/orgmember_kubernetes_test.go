package controllers_test

import (
	"fmt"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// canListConfigMaps asks the API server's own authorizer (a SubjectAccessReview, what
// `kubectl auth can-i --as` does) whether user may list ConfigMaps in ns.
func canListConfigMaps(user, ns string) func() bool {
	return func() bool {
		r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: "list", Resource: "configmaps", Namespace: ns},
		}}
		Expect(k8s.Create(ctx, r)).To(Succeed())
		return r.Status.Allowed
	}
}

// kubernetesConfig creates a Role that lists ConfigMaps and a ScimConfig that grants it.
func kubernetesConfig(ns string, change func(*scimv1.ScimConfig)) {
	Expect(k8s.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "configmap-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}},
	})).To(Succeed())
	c := newConfig(ns, "acme")
	c.Spec.Backend.Kubernetes = &scimv1.KubernetesBackend{
		Roles: []scimv1.NamespacedRole{{Namespace: ns, Kind: "Role", Name: "configmap-reader"}}}
	if change != nil {
		change(c)
	}
	Expect(k8s.Create(ctx, c)).To(Succeed())
}

// settled waits until the controller has acted on the member's current generation.
func settled(m *scimv1.OrgMember, phase string) {
	Eventually(memberPhase(m)).Should(Equal(phase))
}

var _ = Describe("OrgMember controller with the kubernetes backend", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("grants and takes away access through the member's whole life, as the API server's authorizer sees it", func() {
		kubernetesConfig(ns, nil)
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		user := "ada@example.com"
		Expect(canListConfigMaps(user, ns)()).To(BeFalse(), "no access before provisioning")

		m := newMember(ns, "acme", user)
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Expect(canListConfigMaps(user, ns)()).To(BeTrue(), "provisioned: access")
		Expect(getMember(m).Status.BackendID).To(Equal(user))

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(m, "Deactivated/True/Deactivated")
		Expect(canListConfigMaps(user, ns)()).To(BeFalse(), "deactivated: no access")

		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = true })
		settled(m, "Active/True/Active")
		Expect(canListConfigMaps(user, ns)()).To(BeTrue(), "reactivated: access")

		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(canListConfigMaps(user, ns)()).To(BeFalse(), "deleted: no access")
		Eventually(reasonsOf(ns, m.Name)).Should(Equal([]string{"Added", "Deactivated", "Reactivated", "Removed"}))
	})

	It("takes a member's access away ahead of a full sync's backlog", func() {
		kubernetesConfig(ns, nil)
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		leaver := newMember(ns, "acme", "leaver@example.com")
		Expect(k8s.Create(ctx, leaver)).To(Succeed())
		settled(leaver, "Active/True/Active")

		// an identity provider's first import: many new members queued at once
		const backlog = 300
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for i := range backlog {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				defer func() { <-sem }()
				Expect(k8s.Create(ctx, newMember(ns, "acme", fmt.Sprintf("new%03d@example.com", i)))).To(Succeed())
			}()
		}
		wg.Wait()
		updateMember(leaver, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(leaver, "Deactivated/True/Deactivated")
		Expect(canListConfigMaps("leaver@example.com", ns)()).To(BeFalse())

		active := activeIn(ns)
		Expect(active).To(BeNumerically("<", backlog/2),
			"the deactivation waited behind the new members: %d of %d were Active already", active, backlog)
		// the rest of the backlog rests while the config is disabled
		updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { c.Spec.Enabled = ptr.To(false) })
	})

	It("changes nothing while the config is disabled", func() {
		kubernetesConfig(ns, nil)
		user := "bo@example.com"
		m := newMember(ns, "acme", user)
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")

		updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { c.Spec.Enabled = ptr.To(false) })
		Eventually(memberCond(m, scimv1.ConditionSynced)).Should(Equal("Unknown/Paused"))
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(m, "Active/Unknown/Paused")
		Expect(canListConfigMaps(user, ns)()).To(BeTrue(), "a deactivation while disabled changes nothing")
		late := newMember(ns, "acme", "late@example.com")
		Expect(k8s.Create(ctx, late)).To(Succeed())
		settled(late, "Pending/Unknown/Paused")
		Expect(canListConfigMaps("late@example.com", ns)()).To(BeFalse(), "nobody is provisioned while disabled")

		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(canListConfigMaps(user, ns)()).To(BeTrue(), "disabling SCIM never deprovisions anyone")

		By("resuming when enabled again")
		updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { c.Spec.Enabled = ptr.To(true) })
		settled(late, "Active/True/Active")
		Expect(canListConfigMaps("late@example.com", ns)()).To(BeTrue())
	})

	It("moves every grant when grantLayout changes, and back", func() {
		kubernetesConfig(ns, nil)
		user := "lay@example.com"
		m := newMember(ns, "acme", user)
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		uid := string(getMember(m).UID)
		// the member's grants in ns (its role lives in the config's namespace, so the
		// RoleBinding and the OrgGrant share one name there): "<kind> <role kind>/<role>"
		grants := func() []string {
			own := client.MatchingLabels{"scim.operator.dev/owner-uid": uid}
			var l rbacv1.RoleBindingList
			Expect(k8s.List(ctx, &l, client.InNamespace(ns), own)).To(Succeed())
			var out []string
			for _, b := range l.Items {
				out = append(out, "RoleBinding "+b.RoleRef.Kind+"/"+b.RoleRef.Name)
			}
			var g scimv1.OrgGrantList
			Expect(k8s.List(ctx, &g, client.InNamespace(ns), own)).To(Succeed())
			for _, b := range g.Items {
				out = append(out, "OrgGrant "+string(b.Spec.Role.Kind)+"/"+b.Spec.Role.Name)
			}
			return out
		}
		Expect(grants()).To(Equal([]string{"RoleBinding Role/configmap-reader"}))

		updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { c.Spec.Backend.Kubernetes.GrantLayout = scimv1.GrantLayoutWebhook })
		Eventually(grants).Should(Equal([]string{"OrgGrant Role/configmap-reader"}))
		Eventually(canListConfigMaps(user, ns)).Should(BeTrue(), "the OrgGrant gives access through the manager's webhook")
		settled(m, "Active/True/Active")

		updateConfig(ns, "acme", func(c *scimv1.ScimConfig) { c.Spec.Backend.Kubernetes.GrantLayout = scimv1.GrantLayoutBindings })
		Eventually(grants).Should(Equal([]string{"RoleBinding Role/configmap-reader"}))
		Eventually(canListConfigMaps(user, ns)).Should(BeTrue(), "back on RBAC bindings")
	})

	It("keeps access on deletion with policy Orphan", func() {
		kubernetesConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Policies.Deletion = scimv1.DeletionOrphan })
		user := "cy@example.com"
		m := newMember(ns, "acme", user)
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Expect(canListConfigMaps(user, ns)()).To(BeTrue(), "orphaned: access left in place")
	})

	It("keeps access on deactivation with policy Keep", func() {
		kubernetesConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Policies.Deactivation = scimv1.DeactivationKeep })
		user := "di@example.com"
		m := newMember(ns, "acme", user)
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		updateMember(m, func(o *scimv1.OrgMember) { o.Spec.Active = false })
		settled(m, "Deactivated/True/Deactivated")
		Expect(getMember(m).Status.Message).To(Equal("deactivated; access kept in organization acme (deactivation policy Keep)"))
		Expect(canListConfigMaps(user, ns)()).To(BeTrue())
	})

	It("stalls a member the backend refuses as Failed with the backend's reason", func() {
		kubernetesConfig(ns, nil)
		m := newMember(ns, "acme", "system:admin")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Failed/False/InvalidUser")
		want := `could not add the member: InvalidUser (Permanent): userName "system:admin" starts with "system:", ` +
			`which Kubernetes reserves for its own identities; refusing to bind roles to it`
		Expect(getMember(m).Status.Message).To(Equal(want))
		Eventually(eventsOf(ns, m.Name)).Should(Equal([]string{"Failed: " + want}))
		Expect(canListConfigMaps("system:admin", ns)()).To(BeFalse())

		By("a deleted Failed member is released")
		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
	})
})
