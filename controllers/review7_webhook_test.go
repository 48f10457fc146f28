package controllers_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// review7: a ScimConfig in the Webhook grant layout on a manager that serves no
// authorization webhook (this suite's manager, like the shipped install and Helm chart:
// docs/authorization-webhook.md "does not turn the webhook on yet") reports its backend
// Connected and its members Active while no member has any access: the OrgGrants it writes
// are honoured by nothing. Switching a live Bindings config to Webhook there silently
// revokes everyone. Either the config must say so (BackendReady not True) or Active must
// mean access.
var _ = Describe("review7: Webhook layout without a webhook", func() {
	It("does not report a member Active whose grant nothing honours", func() {
		ns := newNamespace()
		kubernetesConfig(ns, func(c *scimv1.ScimConfig) { c.Spec.Backend.Kubernetes.GrantLayout = scimv1.GrantLayoutWebhook })
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionBackendReady)).ShouldNot(BeEmpty())
		if conditionStatus(ns, "acme", scimv1.ConditionBackendReady)() != "True/Connected" {
			return // the config says its grants cannot take effect
		}
		user := "nowebhook@example.com"
		m := newMember(ns, "acme", user)
		Expect(k8s.Create(ctx, m)).To(Succeed())
		settled(m, "Active/True/Active")
		Expect(canListConfigMaps(user, ns)()).To(BeTrue(),
			"the member is Active and its config Connected, but the API server grants it nothing: no authorization webhook is served")
	})
})
