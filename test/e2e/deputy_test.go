package e2e

import (
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// Issue 8's reproduction of the deputy problem, as it was tried: the real manager binary
// with only the install's ClusterRole, a tenant namespace with no bind grant beyond the
// sample's role, a ScimConfig naming a Secrets reader and a binding admin, and one SCIM
// POST. Before the fix mallory could then read every Secret and create ClusterRoleBindings.
var _ = Describe("a tenant's ScimConfig as an attacker would write it (issue 8)", func() {
	It("grants nothing the tenant's ServiceAccount could not grant, with or without naming one", func() {
		ns := newNamespace()
		mustKubectl("apply", "-n", ns, "-f", sampleIn(ns)) // the tenant's ServiceAccount may bind scim-sample-reader only
		roles := writeTemp("roles.yaml", `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: secret-reader}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: binding-admin}
rules: [{apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings, rolebindings], verbs: [get, list, watch, create, update, patch, delete]}]
`)
		mustKubectl("apply", "-f", roles)
		grab := writeTemp("grab.yaml", `apiVersion: scim.operator.dev/v1alpha1
kind: ScimConfig
metadata: {name: grab}
spec:
  organization: grab
  backend:
    type: kubernetes
    kubernetes:
      serviceAccountName: scim-provisioner
      clusterRoles: [secret-reader, binding-admin]
---
apiVersion: scim.operator.dev/v1alpha1
kind: ScimConfig
metadata: {name: grab-as-manager}
spec:
  organization: grab
  backend:
    type: kubernetes
    kubernetes:
      clusterRoles: [secret-reader, binding-admin]
`)
		mustKubectl("apply", "-n", ns, "-f", grab)

		backendReady := func(name string) func() string {
			return func() string {
				var c scimv1.ScimConfig
				if err := cluster.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &c); err != nil {
					return err.Error()
				}
				if cond := meta.FindStatusCondition(c.Status.Conditions, scimv1.ConditionBackendReady); cond != nil {
					return string(cond.Status) + "/" + cond.Reason + ": " + cond.Message
				}
				return ""
			}
		}
		Eventually(backendReady("grab"), readyTimeout).Should(And(
			HavePrefix("False/NotAllowedToBind: "),
			ContainSubstring(`ServiceAccount "scim-provisioner" in namespace "`+ns+`" may not grant ClusterRole "secret-reader"`)))
		// the suite runs the manager with the install's lockdown flag: a config that names no
		// ServiceAccount acts as scim-provisioner of its namespace, never as the manager
		Eventually(backendReady("grab-as-manager"), readyTimeout).Should(And(
			HavePrefix("False/NotAllowedToBind: "),
			ContainSubstring(`ServiceAccount "scim-provisioner" in namespace "`+ns+`" may not grant ClusterRole "secret-reader"`)))

		By("the IdP sends mallory to both")
		for _, cfg := range []string{"grab", "grab-as-manager"} {
			var tok string
			Eventually(func() string {
				var s corev1.Secret
				if err := cluster.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: naming.TokenSecretName(cfg)}, &s); err != nil {
					return ""
				}
				tok = string(s.Data[naming.TokenKey])
				return tok
			}, readyTimeout).ShouldNot(BeEmpty())
			c := scimClient{base: mgr.SCIMURL + "/scim/v2/" + ns + "/" + cfg, token: tok}
			code, body, _ := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
				"userName":"mallory@example.com","active":true}`)
			Expect(code).To(Equal(201), "%v", body)
		}

		By("waiting two backend checks and member retries, then asking the API server")
		Consistently(func() string {
			return strings.TrimSpace(mustKubectl("get", "clusterrolebindings,rolebindings", "-A",
				"-l", "scim.operator.dev/config-namespace="+ns+",scim.operator.dev/config in (grab,grab-as-manager)", "-o", "name"))
		}, 10*time.Second, time.Second).Should(BeEmpty(), "no binding written")
		Expect(canI("get", "secrets", "-A")).To(Equal("no"))
		Expect(canI("create", "clusterrolebindings")).To(Equal("no"))
	})
})

// canI is the answer of `kubectl auth can-i ... --as mallory@example.com` (its last line:
// kubectl may warn first, and it exits 1 for "no").
func canI(args ...string) string {
	out, _ := kubectl(append([]string{"auth", "can-i"}, append(args, "--as", "mallory@example.com")...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func writeTemp(name, content string) string {
	p := filepath.Join(GinkgoT().TempDir(), name)
	ExpectWithOffset(1, writeFile(p, content)).To(Succeed())
	return p
}
