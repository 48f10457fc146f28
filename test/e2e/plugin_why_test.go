package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// The plugin's own tests write statuses by hand; this one asks it about what the real
// manager wrote: who is in, who is out, why, and what a resync would change.
var _ = Describe("kubectl scim on the manager's own state", func() {
	It("answers who is in, who is out, why, and that a converged config needs no change", func() {
		binDir, err := pluginBin()
		Expect(err).NotTo(HaveOccurred())
		scim := func(args ...string) string {
			cmd := exec.CommandContext(ctx, filepath.Join(testenv.AssetsDir(), "kubectl"), append([]string{"scim"}, args...)...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			Expect(cmd.Run()).To(Succeed(), "kubectl scim %v: %s", args, stderr.String())
			return stdout.String()
		}
		ns, _, c := readyConfig()
		code, body, _ := c.do("POST", "/Users", user("ann@example.com"))
		Expect(code).To(Equal(201), "%v", body)
		ann := body["id"].(string)
		code, body, _ = c.do("POST", "/Users", user("bo@example.com"))
		Expect(code).To(Equal(201), "%v", body)
		bo := body["id"].(string)
		phase := func(id string) func() scimv1.MemberPhase {
			return func() scimv1.MemberPhase {
				var m scimv1.OrgMember
				Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: id}, &m)).To(Succeed())
				return m.Status.Phase
			}
		}
		Eventually(phase(ann), readyTimeout).Should(Equal(scimv1.PhaseActive))
		Eventually(phase(bo), readyTimeout).Should(Equal(scimv1.PhaseActive))
		code, body, _ = c.do("PATCH", "/Users/"+bo, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`)
		Expect(code).To(Equal(200), "%v", body)
		Eventually(phase(bo), readyTimeout).Should(Equal(scimv1.PhaseDeactivated))

		Expect(scim("members", "-n", ns)).To(And(
			MatchRegexp(`(?m)^ann@example\.com\s+example\s+true\s+Active\s+\S+\s+Synced\s`),
			MatchRegexp(`(?m)^bo@example\.com\s+example\s+false\s+Deactivated\s`)))
		Expect(scim("members", "-n", ns, "--phase", "deactivated")).NotTo(ContainSubstring("ann@example.com"))
		Expect(scim("explain", "ann@example.com", "-n", ns)).To(ContainSubstring("Why: ann@example.com is in: active, Synced"))
		Expect(scim("explain", bo, "-n", ns)).To(ContainSubstring("Why: bo@example.com is out: deactivated under policy Remove"))
		Expect(scim("plan", "example", "-n", ns)).To(ContainSubstring("No changes; 2 members: 2 unchanged"))
	})
})
