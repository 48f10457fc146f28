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
//
// A read-only `# expect: exit 0` block that assigns nothing may say what its output shows:
// `# shows: TEXT` (some line has TEXT) and `# lacks: TEXT` (no line has it), each line's
// runs of blanks collapsed to one space as a reader of a table does. The manager works in
// the background, so such a block is run again until its output says so, for up to a
// minute (docs/try-dockerhub.md, run by devloop_test.go).

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

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
	// shows and lacks: what the block's output must and must not show (see above)
	shows, lacks []string
}

var (
	stepFence    = regexp.MustCompile("^```sh scim-step(?:\\s+(.*))?$")
	expectLine   = regexp.MustCompile(`(?m)^# expect: (\d{3}|exit 0)\s*$`)
	assignLine   = regexp.MustCompile(`(?m)^([A-Z][A-Z0-9_]*)=`)
	statusLine   = regexp.MustCompile(`(?m)^(\d{3})$`)
	curlInScript = regexp.MustCompile(`(?m)(^|[\s(|;])curl\s`)
	outputLine   = regexp.MustCompile(`(?m)^# (shows|lacks): (.*\S)\s*$`)
	// a request to the SCIM endpoint or the Docker Hub emulator
	requestURL = regexp.MustCompile(`\$\{?(SCIM_URL|HUB_SCIM_URL|HUB_URL)\b`)
)

// parseGuide extracts the runnable blocks of a markdown guide in document order. It
// refuses a malformed guide: an unterminated or nameless block, a duplicate name, a block
// without exactly one `# expect:` line, a request block without exactly one curl, and
// any other fenced block that sends a request to $SCIM_URL, $HUB_SCIM_URL or $HUB_URL
// (every request shown must be checked), and `# shows:`/`# lacks:` on a block that expects
// an HTTP status or assigns a variable (such a block may be run more than once).
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
			if m := requestURL.FindStringSubmatch(line); m != nil {
				return nil, fmt.Errorf("%s:%d: the block at line %d sends a request to $%s but is not a `sh scim-step` block: every request a guide shows must be run by the test", path, n, otherStart, m[1])
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
		for _, m := range outputLine.FindAllStringSubmatch(s.script, -1) {
			if s.expect != "exit 0" || len(s.assign) > 0 {
				return nil, fmt.Errorf("%s:%d: scim-step %q has `# %s:` but is not a read-only `# expect: exit 0` block that assigns nothing: it is run until its output matches", path, s.line, s.name, m[1])
			}
			if m[1] == "shows" {
				s.shows = append(s.shows, collapseBlanks(m[2]))
			} else {
				s.lacks = append(s.lacks, collapseBlanks(m[2]))
			}
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

	env := append(os.Environ(),
		"SCIM_URL="+c.base, "SCIM_TOKEN="+c.token, "SCIM_CA_CERT="+certs.CAFile, "KUBECONFIG="+kc,
		"PATH="+testenv.AssetsDir()+string(os.PathListSeparator)+os.Getenv("PATH"))
	runSteps(path, steps, env, dir, "")
}

// runSteps runs a guide's blocks in order in dir with env, each script starting with
// prelude (after the variables the blocks before it assigned).
func runSteps(path string, steps []guideStep, env []string, dir, prelude string) {
	bash, err := exec.LookPath("bash")
	Expect(err).NotTo(HaveOccurred(), "the guides are shell: bash must be on PATH")
	_, err = exec.LookPath("curl")
	Expect(err).NotTo(HaveOccurred(), "the guides promise curl: install curl (apt-get install curl) to run this test; it is not skipped")
	state := filepath.Join(GinkgoT().TempDir(), "state.sh")
	Expect(os.WriteFile(state, nil, 0o600)).To(Succeed())

	for _, s := range steps {
		By(fmt.Sprintf("%s:%d %s (expect %s)", filepath.Base(path), s.line, s.name, s.expect))
		var script strings.Builder
		script.WriteString("set -o pipefail\n. " + shellQuote(state) + "\n" + prelude)
		script.WriteString(s.script)
		for _, v := range s.assign {
			fmt.Fprintf(&script, "printf 'export %s=%%q\\n' \"$%s\" >> %s\n", v, v, shellQuote(state))
		}
		logged := ""
		run := func() (string, error) {
			cmd := exec.CommandContext(ctx, bash, "-c", script.String())
			cmd.Env, cmd.Dir = env, dir
			outb, err := cmd.CombinedOutput()
			if string(outb) != logged { // a block run again is logged when its output changes
				GinkgoWriter.Printf("--- %s\n%s\n", s.name, outb)
				logged = string(outb)
			}
			return string(outb), err
		}
		output, err := run()
		Expect(err).NotTo(HaveOccurred(), "%s:%d step %q failed:\n%s", path, s.line, s.name, output)
		if len(s.shows)+len(s.lacks) > 0 {
			deadline := time.Now().Add(readyTimeout)
			for miss := outputMisses(output, s.shows, s.lacks); miss != ""; miss = outputMisses(output, s.shows, s.lacks) {
				Expect(time.Now().Before(deadline)).To(BeTrue(), "%s:%d step %q: after %s the output still %s:\n%s",
					path, s.line, s.name, readyTimeout, miss, output)
				time.Sleep(500 * time.Millisecond)
				output, err = run()
				Expect(err).NotTo(HaveOccurred(), "%s:%d step %q failed:\n%s", path, s.line, s.name, output)
			}
		}
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

// collapseBlanks is s with its runs of blanks made one space, and trimmed.
func collapseBlanks(s string) string { return strings.Join(strings.Fields(s), " ") }

// outputMisses says what output fails of `# shows:` and `# lacks:` (each line's blanks
// collapsed), or "" when it shows every shows and no lacks.
func outputMisses(output string, shows, lacks []string) string {
	var lines []string
	for _, l := range strings.Split(output, "\n") {
		lines = append(lines, collapseBlanks(l))
	}
	has := func(text string) bool {
		for _, l := range lines {
			if strings.Contains(l, text) {
				return true
			}
		}
		return false
	}
	for _, t := range shows {
		if !has(t) {
			return fmt.Sprintf("does not show %q", t)
		}
	}
	for _, t := range lacks {
		if has(t) {
			return fmt.Sprintf("shows %q", t)
		}
	}
	return ""
}

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
			fence + "sh\ncurl -sS \"$HUB_SCIM_URL/Users\"\n" + fence + "\n":                                   "sends a request to $HUB_SCIM_URL but is not",
			fence + "sh\ncurl -sS \"${HUB_URL}/_emulator/org\"\n" + fence + "\n":                              "sends a request to $HUB_URL but is not",
			fence + "sh scim-step name=a\n# expect: 200\n# shows: x\n" + curl + "\n" + fence + "\n":           "is not a read-only `# expect: exit 0` block",
			fence + "sh scim-step name=a\n# expect: exit 0\n# lacks: x\nX=$(kubectl get om)\n" + fence + "\n": "is not a read-only `# expect: exit 0` block",
		} {
			p := filepath.Join(dir, "guide.md")
			Expect(os.WriteFile(p, []byte(guide), 0o600)).To(Succeed())
			_, err := parseGuide(p)
			Expect(err).To(MatchError(ContainSubstring(want)), "guide:\n%s", guide)
		}
	})

	It("reads `# shows:` and `# lacks:` as a reader reads a table", func() {
		p := filepath.Join(GinkgoT().TempDir(), "guide.md")
		Expect(os.WriteFile(p, []byte("```sh scim-step name=a\n# expect: exit 0\n# shows: invited   dana@example.com member\n"+
			"# lacks: owner\ncurl -sS \"$HUB_URL/_emulator/org\"\n```\n"), 0o600)).To(Succeed())
		steps, err := parseGuide(p)
		Expect(err).NotTo(HaveOccurred())
		Expect(steps).To(HaveLen(1))
		Expect(steps[0].shows).To(Equal([]string{"invited dana@example.com member"}))
		Expect(steps[0].lacks).To(Equal([]string{"owner"}))
		table := "KIND     WHO               ROLE\ninvited  dana@example.com  member\n"
		Expect(outputMisses(table, steps[0].shows, steps[0].lacks)).To(BeEmpty())
		Expect(outputMisses(table+"member   owner             owner\n", steps[0].shows, steps[0].lacks)).To(Equal(`shows "owner"`))
		Expect(outputMisses("KIND WHO ROLE\n", steps[0].shows, nil)).To(Equal(`does not show "invited dana@example.com member"`))
		Expect(outputMisses("invited dana@example.com\nmember\n", steps[0].shows, nil)).NotTo(BeEmpty(), "one line must show it")
	})

	for _, doc := range []string{"okta.md", "entra-id.md", "onelogin.md"} {
		It("runs every request of docs/idp/"+doc, func() {
			runGuide(filepath.Join(testenv.RepoRoot(), "docs", "idp", doc))
		})
	}
})
