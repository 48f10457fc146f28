package controllers_test

// Issue 8, the deputy problem, through the controllers and the real registry: the manager
// here is admin (it could bind anything), and still a namespaced tenant's ScimConfig grants
// no more than the tenant's ServiceAccount could, because the kubernetes backend writes
// every binding by impersonating that ServiceAccount.

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

// allConfigBindings lists the ClusterRoleBindings and RoleBindings (any namespace) that the
// config ns/name wrote, as "<kind> <namespace>/<name>".
func allConfigBindings(ns, name string) func() []string {
	return func() []string {
		sel := client.MatchingLabels{k8sbackend.LabelConfig: name, k8sbackend.LabelConfigNamespace: ns}
		var crbs rbacv1.ClusterRoleBindingList
		var rbs rbacv1.RoleBindingList
		Expect(k8s.List(ctx, &crbs, sel)).To(Succeed())
		Expect(k8s.List(ctx, &rbs, sel)).To(Succeed())
		var out []string
		for _, b := range crbs.Items {
			out = append(out, "ClusterRoleBinding /"+b.Name)
		}
		for _, b := range rbs.Items {
			out = append(out, "RoleBinding "+b.Namespace+"/"+b.Name)
		}
		return out
	}
}

// allowed is `kubectl auth can-i` for user.
func allowed(user string, attrs authorizationv1.ResourceAttributes) func() bool {
	return func() bool {
		r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &attrs}}
		Expect(k8s.Create(ctx, r)).To(Succeed())
		return r.Status.Allowed
	}
}

// createdNamespace creates a namespace named from prefix.
func createdNamespace(prefix string) string {
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	Expect(k8s.Create(ctx, n)).To(Succeed())
	return n.Name
}

// clusterRoleFor creates a ClusterRole for one spec and deletes it afterwards.
func clusterRoleFor(prefix string, rule rbacv1.PolicyRule) string {
	r := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}, Rules: []rbacv1.PolicyRule{rule}}
	Expect(k8s.Create(ctx, r)).To(Succeed())
	DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, r))).To(Succeed()) })
	return r.Name
}

// tenantBinder lets ServiceAccount ns/sa create and patch RoleBindings in where and bind
// the Role team-reader there: what a tenant admin grants its provisioner.
func tenantBinder(where, ns, sa string) {
	Expect(k8s.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "scim-binder-" + sa, Namespace: where},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"rolebindings"}, Verbs: []string{"create", "patch"}},
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles"}, Verbs: []string{"bind"}, ResourceNames: []string{"team-reader"}},
		},
	})).To(Succeed())
	Expect(k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scim-binder-" + sa, Namespace: where},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "scim-binder-" + sa},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
	})).To(Succeed())
}

var _ = Describe("A namespaced tenant's ScimConfig grants no more than its ServiceAccount could (issue 8)", func() {
	const sa = k8sbackend.DefaultServiceAccountName
	var teamA, teamB, secretReader, bindingAdmin string

	BeforeEach(func() {
		teamA, teamB = createdNamespace("team-a-"), createdNamespace("team-b-")
		for _, ns := range []string{teamA, teamB} {
			Expect(k8s.Create(ctx, &rbacv1.Role{
				ObjectMeta: metav1.ObjectMeta{Name: "team-reader", Namespace: ns},
				Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}},
			})).To(Succeed())
		}
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: teamA}})).To(Succeed())
		tenantBinder(teamA, teamA, sa)
		secretReader = clusterRoleFor("secret-reader-", rbacv1.PolicyRule{
			APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list"}})
		bindingAdmin = clusterRoleFor("binding-admin-", rbacv1.PolicyRule{
			APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterrolebindings", "rolebindings"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}})
	})

	// tenantConfig creates the tenant's ScimConfig "acme", acting as sa, granting what k names.
	tenantConfig := func(k scimv1.KubernetesBackend) {
		if k.ServiceAccountName == "" {
			k.ServiceAccountName = sa
		}
		c := newConfig(teamA, "acme")
		c.Spec.Backend.Kubernetes = &k
		Expect(k8s.Create(ctx, c)).To(Succeed())
	}

	// refused asserts the config's BackendReady=False/NotAllowedToBind names the role and
	// the ServiceAccount, that a member sent by the IdP waits, and that nothing is written.
	refused := func(role string, power authorizationv1.ResourceAttributes) {
		Eventually(conditionStatus(teamA, "acme", scimv1.ConditionBackendReady)).Should(Equal("False/NotAllowedToBind"))
		msg := condition(teamA, "acme", scimv1.ConditionBackendReady)().Message
		Expect(msg).To(ContainSubstring(`ServiceAccount "` + sa + `" in namespace "` + teamA + `" may not`))
		Expect(msg).To(ContainSubstring(role))
		Expect(conditionStatus(teamA, "acme", scimv1.ConditionReady)()).To(Equal("False/NotAllowedToBind"))

		m := newMember(teamA, "acme", "mallory@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberCond(m, scimv1.ConditionSynced)).Should(Equal("False/BackendNotReady"))
		g := newGroup(teamA, "acme", "acme:crew")
		Expect(k8s.Create(ctx, g)).To(Succeed())
		// two status passes (StatusInterval is 2s in this suite) and member retries later
		Consistently(allConfigBindings(teamA, "acme"), 5*time.Second, 250*time.Millisecond).Should(BeEmpty())
		Expect(allowed("mallory@example.com", power)()).To(BeFalse())
		Expect(getMember(m).Status.Phase).NotTo(Equal(scimv1.PhaseActive))
	}

	It("refuses cluster-admin", func() {
		tenantConfig(scimv1.KubernetesBackend{ClusterRoles: []string{"cluster-admin"}})
		refused(`ClusterRole "cluster-admin"`, authorizationv1.ResourceAttributes{Verb: "delete", Resource: "namespaces"})
	})

	It("refuses a ClusterRole that reads Secrets", func() {
		tenantConfig(scimv1.KubernetesBackend{ClusterRoles: []string{secretReader}})
		refused(`ClusterRole "`+secretReader+`"`, authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"})
	})

	It("refuses a ClusterRole that may create ClusterRoleBindings", func() {
		tenantConfig(scimv1.KubernetesBackend{ClusterRoles: []string{bindingAdmin}})
		refused(`ClusterRole "`+bindingAdmin+`"`,
			authorizationv1.ResourceAttributes{Verb: "create", Group: rbacv1.GroupName, Resource: "clusterrolebindings"})
	})

	It("refuses RoleBindings in another namespace, next to a legitimate one, and grants once the tenant may", func() {
		tenantConfig(scimv1.KubernetesBackend{Roles: []scimv1.NamespacedRole{
			{Namespace: teamA, Kind: "Role", Name: "team-reader"},
			{Namespace: teamB, Kind: "Role", Name: "team-reader"},
		}})
		refused(`Role "team-reader" in namespace "`+teamB+`"`,
			authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: teamB})
		Expect(allowed("mallory@example.com", authorizationv1.ResourceAttributes{
			Verb: "list", Resource: "configmaps", Namespace: teamA})()).To(BeFalse(), "all or nothing: not even the legitimate binding")

		By("team-b's admin lets the tenant bind team-reader there: the config recovers by itself")
		tenantBinder(teamB, teamA, sa)
		Eventually(conditionStatus(teamA, "acme", scimv1.ConditionBackendReady), 30*time.Second).Should(Equal("True/Connected"))
		m := newMember(teamA, "acme", "mallory@example.com")
		settled(m, "Active/True/Active")
		Eventually(allowed("mallory@example.com", authorizationv1.ResourceAttributes{
			Verb: "list", Resource: "configmaps", Namespace: teamB})).Should(BeTrue())
	})

	It("grants what the tenant may grant, and takes it away without the tenant holding delete", func() {
		tenantConfig(scimv1.KubernetesBackend{Roles: []scimv1.NamespacedRole{{Namespace: teamA, Kind: "Role", Name: "team-reader"}}})
		Eventually(conditionStatus(teamA, "acme", scimv1.ConditionBackendReady)).Should(Equal("True/Connected"))
		lists := authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: teamA}
		m := newMember(teamA, "acme", "ada@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Eventually(allowed("ada@example.com", lists)).Should(BeTrue())
		Expect(allConfigBindings(teamA, "acme")()).To(HaveLen(1))

		Expect(k8s.Delete(ctx, m)).To(Succeed())
		expectGone(m)
		Eventually(allowed("ada@example.com", lists)).Should(BeFalse())
		Expect(allConfigBindings(teamA, "acme")()).To(BeEmpty())
	})

	It("says so when the ServiceAccount does not exist, and recovers when it is created", func() {
		tenantConfig(scimv1.KubernetesBackend{ServiceAccountName: "provisioner-2",
			Roles: []scimv1.NamespacedRole{{Namespace: teamA, Kind: "Role", Name: "team-reader"}}})
		Eventually(conditionStatus(teamA, "acme", scimv1.ConditionBackendReady)).Should(Equal("False/ServiceAccountMissing"))
		Expect(condition(teamA, "acme", scimv1.ConditionBackendReady)().Message).To(
			ContainSubstring(`ServiceAccount "provisioner-2" in namespace "` + teamA + `" does not exist`))
		m := newMember(teamA, "acme", "bea@example.com")
		Expect(k8s.Create(ctx, m)).To(Succeed())
		Eventually(memberCond(m, scimv1.ConditionSynced)).Should(Equal("False/BackendNotReady"))
		Expect(allConfigBindings(teamA, "acme")()).To(BeEmpty())

		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "provisioner-2", Namespace: teamA}})).To(Succeed())
		tenantBinder(teamA, teamA, "provisioner-2")
		Eventually(conditionStatus(teamA, "acme", scimv1.ConditionBackendReady), 30*time.Second).Should(Equal("True/Connected"))
		settled(m, "Active/True/Active")
	})
})
