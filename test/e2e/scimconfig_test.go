package e2e

import (
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/scim-operator/scim-operator/internal/devenv"
)

var _ = Describe("a ScimConfig as a cluster operator sees it", func() {
	It("becomes Ready with a generated token Secret, and kubectl shows its columns", func() {
		ns := newNamespace()
		mustKubectl("apply", "-n", ns, "-f", sampleIn(ns))

		cfg, err := devenv.WaitReady(ctx, cluster.Client, types.NamespacedName{Namespace: ns, Name: "example"}, readyTimeout)
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.Status.BasePath).To(Equal("/scim/v2/" + ns + "/example"))

		out := mustKubectl("get", "secret", "-n", ns, cfg.Status.TokenSecretName, "-o", "jsonpath={.data.token}")
		Expect(out).NotTo(BeEmpty(), "the token Secret holds a token")

		out = mustKubectl("get", "scimconfigs", "-n", ns)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(lines).To(HaveLen(2), out)
		Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "ENABLED", "ORGANIZATION", "BACKEND", "READY", "MEMBERS", "AGE"}))
		Expect(lines[1]).To(MatchRegexp(`^example\s+true\s+example\s+kubernetes\s+True\s+\d+\s+\d+s$`))

		By("finding it through the scim category and the short name")
		Expect(mustKubectl("get", "scim", "-n", ns)).To(ContainSubstring("scimconfig.scim.operator.dev/example"))
		Expect(mustKubectl("get", "scimcfg", "-n", ns, "-o", "name")).To(Equal("scimconfig.scim.operator.dev/example\n"))

		By("leaving the built-in short names alone: `kubectl get sc` lists StorageClasses")
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: ns}, Provisioner: "example.com/none"}
		Expect(cluster.Client.Create(ctx, sc)).To(Succeed())
		DeferCleanup(func() { Expect(cluster.Client.Delete(ctx, sc)).To(Succeed()) })
		// combined output: a "short name could also match" warning would fail the comparison
		Expect(mustKubectl("get", "sc", sc.Name, "-o", "name")).To(Equal("storageclass.storage.k8s.io/" + sc.Name + "\n"))

		By("showing the wide columns")
		wide := mustKubectl("get", "scimconfigs", "-n", ns, "-o", "wide")
		Expect(wide).To(ContainSubstring("/scim/v2/" + ns + "/example"))

		By("documenting every field in kubectl explain")
		explain := mustKubectl("explain", "scimconfig.spec.verifiedDomains")
		Expect(strings.Join(strings.Fields(explain), " ")).To(ContainSubstring("the email domains the organization has verified"))
	})

	It("refuses an invalid manifest with a readable message", func() {
		ns := newNamespace()
		bad := filepath.Join(GinkgoT().TempDir(), "bad.yaml")
		Expect(writeFile(bad, `apiVersion: scim.operator.dev/v1alpha1
kind: ScimConfig
metadata: {name: bad}
spec:
  organization: acme
  backend: {type: gitlab}
`)).To(Succeed())
		want := regexp.QuoteMeta(`spec.backend.type: Unsupported value: "gitlab": supported values: "kubernetes", "dockerhub"`)

		By("a server-side dry run reports it before anything is applied")
		out, err := kubectl("apply", "-n", ns, "-f", bad, "--dry-run=server", "-o", "name")
		Expect(err).To(HaveOccurred(), out)
		Expect(out).To(MatchRegexp(want))

		By("a real apply is refused with the same message and creates nothing")
		out, err = kubectl("apply", "-n", ns, "-f", bad)
		Expect(err).To(HaveOccurred(), out)
		Expect(out).To(MatchRegexp(want))
		Expect(mustKubectl("get", "scimconfigs", "-n", ns, "-o", "name")).To(BeEmpty())
	})
})
