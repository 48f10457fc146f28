package e2e

// The IdP guides (docs/idp/*.md) show every request an identity provider sends as a curl
// command. This spec runs those commands, verbatim and in order, with the real curl and
// bash against the suite's manager, so a guide that stops matching the server fails here.
//
// A runnable block is a fenced block whose info string is `sh scim-step name=<name>`:
//
//	```sh scim-step name=okta-create
//	# expect: 201
//	USER_ID=$(curl -sS --cacert "$SCIM_CA_CERT" ... -w '\n%{http_code}\n' | tee /dev/stderr | sed -n '...')
//	```
//
// `# expect: NNN` is the HTTP status the block's one request must answer (curl's
// `-w '\n%{http_code}\n'` prints it on a line of its own); `# expect: exit 0` marks a block
// without a SCIM request (kubectl) that must only succeed. A variable a block assigns
// (`NAME=...` at the start of a line) is handed to the following blocks and must not be
// empty. The environment is the one `make run` writes to .dev/env: SCIM_URL, SCIM_TOKEN,
// SCIM_CA_CERT and KUBECONFIG (whose namespace is the guide's fresh one, so `kubectl ...
// scimconfig example` names the guide's ScimConfig as it names make run's sample).

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scim-operator/scim-operator/internal/testenv"
)

// guideStep is one runnable block of a guide.
type guideStep struct {
	name   string
	line   int    // of the opening fence, 1-based
	script string // the block's text, verbatim
	expect string // "201", ... or "exit 0"
	assign []string
}

var (
	stepFence    = regexp.MustCompile("^```sh scim-step(?:\\s+(.*))?$")
	expectLine   = regexp.MustCompile(`(?m)^# expect: (\d{3}|exit 0)\s*$`)
	assignLine   = regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*)=`)
	statusLine   = regexp.MustCompile(`(?m)^(\d{3})$`)
	curlInScript = regexp.MustCompile(`(?m)(^|[\s(|;])curl\s`)
)

// parseGuide extracts the runnable blocks of a markdown guide in document order. It
// refuses a malformed guide: an unterminated or nameless block, a duplicate name, a block
// without exactly one `# expect:` line, a request block without exactly one curl, and
// any other fenced block that sends a request to $SCIM_URL (every request shown must be
// checked).
func parseGuide(path string) ([]guideStep, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var steps []guideStep
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	n := 0
	var cur *guideStep
	var body []string
	inOther := false
	otherStart := 0
	indent := ""
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil:
			if trimmed == "```" {
				cur.script = strings.Join(body, "\n") + "\n"
				steps = append(steps, *cur)
				cur, body = nil, nil
				continue
			}
			// a block inside a list item is indented like its fence: strip that much
			body = append(body, strings.TrimPrefix(line, indent))
		case inOther:
			if trimmed == "```" {
				inOther = false
				continue
			}
			if strings.Contains(line, "$SCIM_URL") || strings.Contains(line, "${SCIM_URL}") {
				return nil, fmt.Errorf("%s:%d: the block at line %d sends a request to $SCIM_URL but is not a `sh scim-step` block: every request a guide shows must be run by the test", path, n, otherStart)
			}
		case strings.HasPrefix(trimmed, "```sh scim-step"):
			m := stepFence.FindStringSubmatch(trimmed)
			if m == nil {
				return nil, fmt.Errorf("%s:%d: malformed scim-step fence %q", path, n, trimmed)
			}
			cur = &guideStep{line: n}
			indent = line[:len(line)-len(strings.TrimLeft(line, " "))]
			for _, kv := range strings.Fields(m[1]) {
				k, v, _ := strings.Cut(kv, "=")
				if k == "name" {
					cur.name = v
				}
			}
			if cur.name == "" {
				return nil, fmt.Errorf("%s:%d: scim-step block without name=", path, n)
			}
			if seen[cur.name] {
				return nil, fmt.Errorf("%s:%d: duplicate scim-step name %q", path, n, cur.name)
			}
			seen[cur.name] = true
		case strings.HasPrefix(trimmed, "```") && trimmed != "```":
			inOther, otherStart = true, n
		case trimmed == "```":
			inOther, otherStart = true, n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: scim-step block %q is not terminated", path, cur.line, cur.name)
	}
	if inOther {
		return nil, fmt.Errorf("%s:%d: fenced block is not terminated", path, otherStart)
	}
	for i := range steps {
		s := &steps[i]
		ex := expectLine.FindAllStringSubmatch(s.script, -1)
		if len(ex) != 1 {
			return nil, fmt.Errorf("%s:%d: scim-step %q needs exactly one `# expect: NNN` (or `# expect: exit 0`) line, has %d", path, s.line, s.name, len(ex))
		}
		s.expect = ex[0][1]
		curls := len(curlInScript.FindAllString(s.script, -1))
		if s.expect != "exit 0" && curls == 0 {
			return nil, fmt.Errorf("%s:%d: scim-step %q expects HTTP %s but sends no curl request", path, s.line, s.name, s.expect)
		}
		if s.expect != "exit 0" && !strings.Contains(s.script, `-w '\n%{http_code}\n'`) {
			return nil, fmt.Errorf("%s:%d: scim-step %q must print its status with -w '\\n%%{http_code}\\n'", path, s.line, s.name)
		}
		for _, m := range assignLine.FindAllStringSubmatch(s.script, -1) {
			s.assign = append(s.assign, m[1])
		}
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("%s: no scim-step blocks", path)
	}
	return steps, nil
}

// runGuide runs the guide's blocks in order against a fresh copy of make run's sample
// ScimConfig ("example") in a namespace of its own.
func runGuide(path string) {
	steps, err := parseGuide(path)
	Expect(err).NotTo(HaveOccurred())

	bash, err := exec.LookPath("bash")
	Expect(err).NotTo(HaveOccurred(), "the IdP guides are shell: bash must be on PATH")
	_, err = exec.LookPath("curl")
	Expect(err).NotTo(HaveOccurred(), "the IdP guides promise curl: install curl (apt-get install curl) to run this test; it is not skipped")

	ns, _, c := readyConfig()
	dir := GinkgoT().TempDir()

	By("a kubeconfig whose namespace is the guide's, as make run's is default")
	kc := filepath.Join(dir, "kubeconfig")
	raw, err := os.ReadFile(cluster.Kubeconfig)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(kc, raw, 0o600)).To(Succeed())
	out, err := exec.Command(filepath.Join(testenv.AssetsDir(), "kubectl"), "--kubeconfig", kc,
		"config", "set-context", "--current", "--namespace="+ns).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s", out)

	state := filepath.Join(dir, "state.sh")
	Expect(os.WriteFile(state, nil, 0o600)).To(Succeed())
	env := append(os.Environ(),
		"SCIM_URL="+c.base, "SCIM_TOKEN="+c.token, "SCIM_CA_CERT="+certs.CAFile, "KUBECONFIG="+kc,
		"PATH="+testenv.AssetsDir()+string(os.PathListSeparator)+os.Getenv("PATH"))

	for _, s := range steps {
		By(fmt.Sprintf("%s:%d %s (expect %s)", filepath.Base(path), s.line, s.name, s.expect))
		var script strings.Builder
		script.WriteString("set -o pipefail\n. " + shellQuote(state) + "\n")
		script.WriteString(s.script)
		for _, v := range s.assign {
			fmt.Fprintf(&script, "printf 'export %s=%%q\\n' \"$%s\" >> %s\n", v, v, shellQuote(state))
		}
		cmd := exec.CommandContext(ctx, bash, "-c", script.String())
		cmd.Env, cmd.Dir = env, dir
		outb, err := cmd.CombinedOutput()
		output := string(outb)
		GinkgoWriter.Printf("--- %s\n%s\n", s.name, output)
		Expect(err).NotTo(HaveOccurred(), "%s:%d step %q failed:\n%s", path, s.line, s.name, output)
		if s.expect != "exit 0" {
			codes := statusLine.FindAllStringSubmatch(output, -1)
			Expect(codes).To(HaveLen(1), "%s:%d step %q must print exactly one status line:\n%s", path, s.line, s.name, output)
			Expect(codes[0][1]).To(Equal(s.expect), "%s:%d step %q: the guide says `# expect: %s`, the server answered %s:\n%s",
				path, s.line, s.name, s.expect, codes[0][1], output)
		}
		for _, v := range s.assign {
			got, err := exec.Command(bash, "-c", ". "+shellQuote(state)+"; printf %s \"$"+v+"\"").Output()
			Expect(err).NotTo(HaveOccurred())
			Expect(string(got)).NotTo(BeEmpty(), "%s:%d step %q assigned an empty %s:\n%s", path, s.line, s.name, v, output)
		}
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

var _ = Describe("the IdP guides, run as written", func() {
	It("refuses a malformed guide rather than skipping its blocks", func() {
		dir := GinkgoT().TempDir()
		fence := "```"
		curl := `curl -sS -w '\n%{http_code}\n' "$SCIM_URL/Users"`
		for guide, want := range map[string]string{
			"": "no scim-step blocks",
			fence + "sh scim-step\n# expect: 200\n" + curl + "\n" + fence + "\n":                "without name=",
			fence + "sh scim-step name=a\n" + curl + "\n" + fence + "\n":                        "exactly one `# expect:",
			fence + "sh scim-step name=a\n# expect: 200\n# expect: 201\n" + curl + "\n" + fence: "exactly one `# expect:",
			fence + "sh scim-step name=a\n# expect: 200\n" + curl + "\n":                        "not terminated",
			fence + "sh scim-step name=a\n# expect: 200\nkubectl get om\n" + fence + "\n":       "sends no curl request",
			fence + "sh scim-step name=a\n# expect: 200\ncurl \"$SCIM_URL\"\n" + fence + "\n":   "-w",
			fence + "sh\n" + curl + "\n" + fence + "\n":                                         "not a `sh scim-step` block",
			fence + "sh scim-step name=a\n# expect: exit 0\ntrue\n" + fence + "\n" +
				fence + "sh scim-step name=a\n# expect: exit 0\ntrue\n" + fence + "\n": "duplicate scim-step name",
		} {
			p := filepath.Join(dir, "guide.md")
			Expect(os.WriteFile(p, []byte(guide), 0o600)).To(Succeed())
			_, err := parseGuide(p)
			Expect(err).To(MatchError(ContainSubstring(want)), "guide:\n%s", guide)
		}
	})

	for _, doc := range []string{"okta.md", "entra-id.md", "onelogin.md"} {
		It("runs every request of docs/idp/"+doc, func() {
			runGuide(filepath.Join(testenv.RepoRoot(), "docs", "idp", doc))
		})
	}
})
