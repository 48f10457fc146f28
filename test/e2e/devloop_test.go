package e2e

// `make run DOCKERHUB=1` as a newcomer runs it: hack/devloop built as make run builds it,
// started with --dockerhub (what DOCKERHUB=1 adds) and a control plane of its own, its
// banner and .dev/env read, docs/try-dockerhub.md run verbatim against it, then Ctrl-C.

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// readEnvFile reads the `export KEY="value"` lines devenv.WriteEnvFile writes.
func readEnvFile(path string) map[string]string {
	f, err := os.Open(path)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kv, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		uq, err := strconv.Unquote(v)
		ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s: %s", path, sc.Text())
		out[k] = uq
	}
	ExpectWithOffset(1, sc.Err()).NotTo(HaveOccurred())
	return out
}

// withoutEnv is environ less the variables names.
func withoutEnv(environ []string, names ...string) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

var _ = Describe("make run DOCKERHUB=1", func() {
	It("starts the Docker Hub emulator and a dockerhub ScimConfig pointing at it, docs/try-dockerhub.md runs as written, and Ctrl-C stops the emulator", func() {
		guide := filepath.Join(testenv.RepoRoot(), "docs", "try-dockerhub.md")
		steps, err := parseGuide(guide)
		Expect(err).NotTo(HaveOccurred())
		raw, err := os.ReadFile(guide)
		Expect(err).NotTo(HaveOccurred())
		doc := string(raw)
		Expect(doc).To(ContainSubstring(devenv.HubInspectCommand), "the guide shows the command make run prints")

		dir := GinkgoT().TempDir()
		By("building hack/devloop as make run does")
		bin := filepath.Join(dir, "devloop")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./hack/devloop")
		build.Dir = testenv.RepoRoot()
		out, err := build.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", out)

		By("devloop --dockerhub (make run DOCKERHUB=1), with a control plane of its own (--local) and .dev in a temporary directory")
		// The suite's cluster has a manager already: a second one would fight it.
		cmd := exec.Command(bin, "--local", "--dockerhub", "--dir="+filepath.Join(dir, ".dev"), "--manager-bin="+filepath.Join(dir, "manager"))
		cmd.Dir = dir // as make run at the repository root: .dev/env is printed as ".dev/env"
		cmd.Env = withoutEnv(os.Environ(), "KUBECONFIG")
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			if session.ExitCode() != -1 {
				return
			}
			session.Interrupt()
			select {
			case <-session.Exited:
			case <-time.After(60 * time.Second):
				session.Kill()
			}
		})
		Eventually(session.Out, 5*time.Minute).Should(gbytes.Say("Ctrl-C stops everything this command started"))
		Expect(session.ExitCode()).To(Equal(-1), "devloop exited")
		banner := string(session.Out.Contents())

		By(".dev/env keeps make run's variables and adds the Docker Hub ones")
		env := readEnvFile(filepath.Join(dir, ".dev", "env"))
		for _, k := range []string{"KUBECONFIG", "SCIM_HOST", "SCIM_URL", "SCIM_TOKEN", "SCIM_CA_CERT",
			"HUB_SCIM_URL", "HUB_SCIM_TOKEN", "HUB_URL", "HUB_TOKEN", "HUB_ORG"} {
			Expect(env).To(HaveKeyWithValue(k, Not(BeEmpty())))
		}
		Expect(env["SCIM_URL"]).To(MatchRegexp(`^https://127\.0\.0\.1:\d+/scim/v2/default/example$`))
		Expect(env["SCIM_URL"]).To(HavePrefix(env["SCIM_HOST"]+"/scim/v2/"), "the IdP guides make SCIM_URL from SCIM_HOST and status.basePath")
		Expect(env["HUB_SCIM_URL"]).To(MatchRegexp(`^https://127\.0\.0\.1:\d+/scim/v2/default/dockerhub$`))
		Expect(env["HUB_URL"]).To(MatchRegexp(`^http://127\.0\.0\.1:\d+$`), "the emulator listens on loopback")
		Expect(env["HUB_TOKEN"]).To(MatchRegexp(`^dckr_oat_[0-9a-f]{32}$`))
		Expect(env["HUB_ORG"]).To(Equal("my-docker-org"))
		Expect(env["HUB_SCIM_TOKEN"]).NotTo(Equal(env["SCIM_TOKEN"]))

		By("the banner prints the dockerhub config's SCIM URL and token and the command that shows the emulator's organization")
		Expect(banner).To(ContainSubstring("SCIM base URL:   " + env["HUB_SCIM_URL"]))
		Expect(banner).To(ContainSubstring("Bearer token:    " + env["HUB_SCIM_TOKEN"]))
		Expect(banner).To(ContainSubstring(devenv.HubInspectCommand))
		printed := regexp.MustCompile(`(?m)^  Organization:\s+(curl .*)$`).FindStringSubmatch(banner)
		Expect(printed).NotTo(BeNil(), "no Organization: line in\n%s", banner)
		Expect(printed[1]).To(Equal(`curl -sS -H "Authorization: Bearer ` + env["HUB_TOKEN"] + `" "` + env["HUB_URL"] + `/_emulator/org"`))

		By("the printed command shows the fresh organization exactly as the guide does")
		org, err := exec.CommandContext(ctx, "bash", "-c", printed[1]).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", org)
		_, afterText, found := strings.Cut(doc, "```text\n")
		Expect(found).To(BeTrue(), "the guide shows no output")
		shown, _, _ := strings.Cut(afterText, "```")
		Expect(strings.TrimSpace(string(org))).To(Equal(strings.TrimSpace(shown)))

		By("each ScimConfig answers its own token only")
		pem, err := os.ReadFile(env["SCIM_CA_CERT"])
		Expect(err).NotTo(HaveOccurred())
		pool := x509.NewCertPool()
		Expect(pool.AppendCertsFromPEM(pem)).To(BeTrue())
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		status := func(base, tok string) int {
			req, err := http.NewRequestWithContext(ctx, "GET", base+"/Users", nil)
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := hc.Do(req)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			return resp.StatusCode
		}
		Expect(status(env["SCIM_URL"], env["SCIM_TOKEN"])).To(Equal(200))
		Expect(status(env["HUB_SCIM_URL"], env["HUB_SCIM_TOKEN"])).To(Equal(200))
		Expect(status(env["SCIM_URL"], env["HUB_SCIM_TOKEN"])).To(Equal(401))
		Expect(status(env["HUB_SCIM_URL"], env["SCIM_TOKEN"])).To(Equal(401))

		By("docs/try-dockerhub.md, every block in order, in the directory of .dev with .dev/env sourced, as the guide says")
		runSteps(guide, steps, append(withoutEnv(os.Environ(), "KUBECONFIG", "PATH"),
			"PATH="+testenv.AssetsDir()+string(os.PathListSeparator)+os.Getenv("PATH")), dir, ". .dev/env\n", "default")

		By("Ctrl-C stops the manager, the emulator and the control plane")
		session.Interrupt()
		Eventually(session, 2*time.Minute).Should(gexec.Exit(0))
		Expect(session.Out).To(gbytes.Say(`stopping the manager \(pid \d+\)`))
		Expect(session.Out).To(gbytes.Say(`stopping the Docker Hub emulator \(` + regexp.QuoteMeta(env["HUB_URL"]) + `\)`))
		Expect(session.Out).To(gbytes.Say("stopping the local control plane"))
		for _, u := range []string{env["HUB_URL"], env["HUB_SCIM_URL"]} {
			pu, err := url.Parse(u)
			Expect(err).NotTo(HaveOccurred())
			conn, err := net.DialTimeout("tcp", pu.Host, 2*time.Second)
			if err == nil {
				conn.Close()
			}
			Expect(err).To(HaveOccurred(), "%s still answers after Ctrl-C", pu.Host)
		}
	})
})
