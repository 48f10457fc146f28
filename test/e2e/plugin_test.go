package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// pluginBin is set by BeforeSuite: kubectl-scim builds while the control plane starts.
var pluginBin func() (string, error)

// buildPlugin starts building cmd/kubectl-scim into dir and returns a function that waits
// for the build and returns dir.
func buildPlugin(dir string) func() (string, error) {
	done := make(chan error, 1)
	go func() {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "kubectl-scim"), "./cmd/kubectl-scim")
		cmd.Dir = testenv.RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("go build ./cmd/kubectl-scim: %w\n%s", err, out)
		}
		done <- err
	}()
	var once sync.Once
	var err error
	return func() (string, error) {
		once.Do(func() { err = <-done })
		return dir, err
	}
}

// The kubectl plugin prints a token only when asked: `kubectl scim token` prints it (and
// nothing else); every other command, and every error, never does.
var _ = Describe("the kubectl plugin", func() {
	It("prints a token only for `kubectl scim token`", func() {
		By("putting kubectl-scim on a PATH the built kubectl searches for plugins")
		binDir, err := pluginBin()
		Expect(err).NotTo(HaveOccurred())
		plugin := func(args ...string) (string, string, error) {
			cmd := exec.CommandContext(ctx, filepath.Join(testenv.AssetsDir(), "kubectl"), append([]string{"scim"}, args...)...)
			cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			return stdout.String(), stderr.String(), err
		}

		ns, cfg, c := readyConfig()
		code, body, _ := c.do("POST", "/Users", user("pat@example.com"))
		Expect(code).To(Equal(201), "%v", body)
		id := body["id"].(string)
		// every token this namespace has had, the previous one after a rotation too
		tokens := func() []string {
			var s corev1.Secret
			Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: cfg.Status.TokenSecretName}, &s)).To(Succeed())
			var out []string
			for _, k := range []string{naming.TokenKey, naming.PreviousTokenKey} {
				if v := string(s.Data[k]); v != "" {
					out = append(out, v)
				}
			}
			return out
		}
		seen := map[string]bool{}
		// noToken runs a command that must succeed (or fail) and print want, and finds no
		// token of this run in what it printed
		noToken := func(ok bool, want string, args ...string) {
			stdout, stderr, err := plugin(args...)
			cmd := "kubectl scim " + strings.Join(args, " ")
			for _, t := range tokens() {
				seen[t] = true
			}
			for t := range seen {
				for _, f := range forms(t) {
					Expect(stdout+stderr).NotTo(ContainSubstring(f), "%s printed a token (%s)", cmd, redact(t))
				}
			}
			if ok {
				Expect(err).NotTo(HaveOccurred(), "%s: %s", cmd, stderr)
			} else {
				Expect(err).To(HaveOccurred(), "%s: %s", cmd, stdout)
			}
			Expect(stdout+stderr).To(ContainSubstring(want), cmd)
		}

		By("`kubectl scim token` prints the token, a newline, and nothing else")
		stdout, stderr, err := plugin("token", "example", "-n", ns)
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(stdout).To(Equal(c.token + "\n"))
		Expect(stderr).To(BeEmpty())

		By("every other command never prints it")
		noToken(true, cfg.Status.BasePath, "status", "-n", ns)
		noToken(false, "unknown shorthand flag", "status", "-n", ns, "-o", "yaml") // and the usage text
		noToken(true, "kubectl-scim", "--help")
		noToken(true, "Usage", "status", "--help")
		noToken(true, "Print the bearer token", "token", "--help")
		noToken(false, "accepts 1 arg", "token")
		noToken(false, "not found", "token", "nosuchconfig", "-n", ns)
		noToken(true, "annotated", "resync", "config", "example", "-n", ns)
		noToken(true, "annotated", "resync", "member", id, "-n", ns)
		noToken(false, "unknown kind", "resync", "widget", "example", "-n", ns)
		noToken(true, "annotated", "rotate", "example", "-n", ns)
		Eventually(tokens, readyTimeout).Should(HaveLen(2), "rotated: a new token and the previous one")
		noToken(true, cfg.Status.BasePath, "status", "-n", ns)
		noToken(false, "unknown shorthand flag", "status", "-n", ns, "-v=10")

		By("after the rotation, `token` prints the new token")
		Eventually(func() string { out, _, _ := plugin("token", "example", "-n", ns); return out }, readyTimeout).
			Should(Equal(tokens()[0] + "\n"))
		Expect(tokens()[0]).NotTo(Equal(c.token))
		Expect(seen).To(HaveLen(2))
	})
})
