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
// A read-only `# expect: exit N` block that assigns nothing may say what its output shows:
// `# shows: TEXT` (some line has TEXT) and `# lacks: TEXT` (no line has it), each line's
// runs of blanks collapsed to one space as a reader of a table does. The manager works in
// the background, so such a block is run again until its output says so and it exits N,
// for up to a minute (docs/try-dockerhub.md, run by devloop_test.go). (`# expect: exit 1`
// is for a check whose answer is its exit status: `kubectl auth can-i` says no with 1.)
// A request block may have `# shows:`/`# lacks:` too; its output is checked once (a SCIM
// request is answered when it returns), never by sending the request again.
//
// A `json` (or `http`: headers, a blank line, the body) block whose previous fenced block
// is a request step is the body that request answers: the step must answer its status,
// scimType (or none) and detail (the shown detail a part of the real one, "…" standing for
// what varies; the guide's namespace reads as make run's "default"). An error body (a `json` block with the SCIM
// Error schema) anywhere else is refused: the guide must show the request that answers it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
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
	expect string // "201", ... or "exit 0", "exit 1"
	assign []string
	// shows and lacks: what the block's output must and must not show (see above)
	shows, lacks []string
	// body: the error body the request answers (the json block that follows it), or nil
	body *scimError
}

// scimError is the part of a SCIM error body a guide's troubleshooting shows and the test
// compares.
type scimError struct {
	line     int // of the block's opening fence
	Schemas  []string
	Status   string
	ScimType string
	Detail   string
}

const errorSchema = "urn:ietf:params:scim:api:messages:2.0:Error"

var (
	stepFence    = regexp.MustCompile("^```sh scim-step(?:\\s+(.*))?$")
	expectLine   = regexp.MustCompile(`(?m)^# expect: (\d{3}|exit [01])\s*$`)
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
	otherLang := "" // the info string of the other block being read
	var otherBody []string
	prevStep := -1 // the step whose block is the last fenced block closed, or -1
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
				prevStep = len(steps) - 1
				continue
			}
			// a block inside a list item is indented like its fence: strip that much
			body = append(body, strings.TrimPrefix(line, indent))
		case inOther:
			if trimmed == "```" {
				inOther = false
				e, err := errorBody(otherLang, otherBody)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %v", path, otherStart, err)
				}
				if e != nil {
					e.line = otherStart
					if prevStep < 0 {
						return nil, fmt.Errorf("%s:%d: the error body (status %s) follows no request step: show the request that answers it as a `sh scim-step` block right before it", path, otherStart, e.Status)
					}
					steps[prevStep].body = e
				}
				prevStep = -1
				continue
			}
			otherBody = append(otherBody, line)
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
		case strings.HasPrefix(trimmed, "```"):
			inOther, otherStart = true, n
			otherLang, otherBody = strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), nil
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
		if !strings.HasPrefix(s.expect, "exit") && curls == 0 {
			return nil, fmt.Errorf("%s:%d: scim-step %q expects HTTP %s but sends no curl request", path, s.line, s.name, s.expect)
		}
		if !strings.HasPrefix(s.expect, "exit") && !strings.Contains(s.script, `-w '\n%{http_code}\n'`) {
			return nil, fmt.Errorf("%s:%d: scim-step %q must print its status with -w '\\n%%{http_code}\\n'", path, s.line, s.name)
		}
		for _, m := range assignLine.FindAllStringSubmatch(s.script, -1) {
			s.assign = append(s.assign, m[1])
		}
		if s.body != nil && s.expect != s.body.Status {
			return nil, fmt.Errorf("%s:%d: the error body at line %d has status %q but follows scim-step %q, which expects %s", path, s.body.line, s.body.line, s.body.Status, s.name, s.expect)
		}
		for _, m := range outputLine.FindAllStringSubmatch(s.script, -1) {
			if strings.HasPrefix(s.expect, "exit") && len(s.assign) > 0 {
				return nil, fmt.Errorf("%s:%d: scim-step %q has `# %s:` but assigns a variable: a block that is not a request is run until its output matches", path, s.line, s.name, m[1])
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

	By("the built kubectl-scim on PATH, as make install-plugin puts it")
	pluginDir, err := pluginBin()
	Expect(err).NotTo(HaveOccurred())

	// SCIM_URL and SCIM_TOKEN are not given: section 1 of the guide makes them, as a reader
	// does, from SCIM_HOST, status.basePath and `kubectl scim token`.
	env := append(withoutEnv(os.Environ(), "SCIM_URL", "SCIM_TOKEN", "PATH"),
		"SCIM_HOST="+mgr.SCIMURL, "SCIM_CA_CERT="+certs.CAFile, "KUBECONFIG="+kc,
		"PATH="+testenv.AssetsDir()+string(os.PathListSeparator)+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	Expect(steps[0].assign).To(ConsistOf("SCIM_URL", "SCIM_TOKEN"), "%s: the first step makes SCIM_URL and SCIM_TOKEN (section 1)", path)
	vars := runSteps(path, steps, env, dir, "", ns)

	By("section 1 made the suite's own URL and token")
	got, err := exec.Command("bash", "-c", ". "+shellQuote(vars)+`; printf '%s\n%s' "$SCIM_URL" "$SCIM_TOKEN"`).Output()
	Expect(err).NotTo(HaveOccurred())
	Expect(string(got)).To(Equal(c.base+"\n"+c.token), "section 1 of %s does not make the ScimConfig's URL and token", path)
}

// runSteps runs a guide's blocks in order in dir with env, each script starting with
// prelude (after the variables the blocks before it assigned). ns is the namespace the
// guide's "default" stands for. It returns a shell file that sets what the blocks assigned.
func runSteps(path string, steps []guideStep, env []string, dir, prelude, ns string) string {
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
		// exitMiss says how an `# expect: exit N` block's run differs from N, or ""
		exitMiss := func(err error) string {
			want := 0
			if s.expect == "exit 1" {
				want = 1
			}
			got := 0
			if err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					return err.Error()
				}
				got = ee.ExitCode()
			}
			if got != want || (err == nil) != (want == 0) {
				return fmt.Sprintf("exits %d, not %d", got, want)
			}
			return ""
		}
		output, err := run()
		if !strings.HasPrefix(s.expect, "exit") {
			Expect(err).NotTo(HaveOccurred(), "%s:%d step %q failed:\n%s", path, s.line, s.name, output)
			Expect(outputMisses(output, s.shows, s.lacks)).To(BeEmpty(), "%s:%d step %q: the output:\n%s", path, s.line, s.name, output)
		} else if len(s.shows)+len(s.lacks) == 0 {
			Expect(exitMiss(err)).To(BeEmpty(), "%s:%d step %q (expect %s):\n%s", path, s.line, s.name, s.expect, output)
		} else {
			deadline := time.Now().Add(readyTimeout)
			for {
				miss := outputMisses(output, s.shows, s.lacks)
				if miss == "" {
					miss = exitMiss(err)
				}
				if miss == "" {
					break
				}
				Expect(time.Now().Before(deadline)).To(BeTrue(), "%s:%d step %q: after %s the output still %s:\n%s",
					path, s.line, s.name, readyTimeout, miss, output)
				time.Sleep(500 * time.Millisecond)
				output, err = run()
			}
		}
		if !strings.HasPrefix(s.expect, "exit") {
			codes := statusLine.FindAllStringSubmatch(output, -1)
			Expect(codes).To(HaveLen(1), "%s:%d step %q must print exactly one status line:\n%s", path, s.line, s.name, output)
			Expect(codes[0][1]).To(Equal(s.expect), "%s:%d step %q: the guide says `# expect: %s`, the server answered %s:\n%s",
				path, s.line, s.name, s.expect, codes[0][1], output)
		}
		if s.body != nil {
			Expect(bodyMisses(output, *s.body, ns)).To(BeEmpty(), "%s:%d step %q: the error body the guide shows at line %d is not what the server answered:\n%s",
				path, s.line, s.name, s.body.line, output)
		}
		for _, v := range s.assign {
			got, err := exec.Command(bash, "-c", ". "+shellQuote(state)+"; printf %s \"$"+v+"\"").Output()
			Expect(err).NotTo(HaveOccurred())
			Expect(string(got)).NotTo(BeEmpty(), "%s:%d step %q assigned an empty %s:\n%s", path, s.line, s.name, v, output)
		}
	}
	return state
}

// errorBody is the SCIM error body a `json` or `http` block shows, or nil when the block
// is not one (another language, or JSON without the SCIM Error schema).
func errorBody(lang string, lines []string) (*scimError, error) {
	text := strings.Join(lines, "\n")
	switch lang {
	case "json":
	case "http":
		_, after, ok := strings.Cut(text, "\n\n")
		if !ok {
			return nil, nil
		}
		text = after
	default:
		return nil, nil
	}
	if !strings.Contains(text, errorSchema) {
		return nil, nil
	}
	var e scimError
	if err := json.Unmarshal([]byte(text), &e); err != nil {
		return nil, fmt.Errorf("the error body is not JSON: %v", err)
	}
	if e.Status == "" || e.Detail == "" {
		return nil, fmt.Errorf("the error body shows no status or no detail")
	}
	return &e, nil
}

// bodyMisses says how the SCIM error body in a request's output differs from want, or "":
// the same status and scimType, and want's detail a part of the real one (whose namespace
// ns reads as "default").
func bodyMisses(output string, want scimError, ns string) string {
	var got *scimError
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "{") || !strings.Contains(l, errorSchema) {
			continue
		}
		var e scimError
		if json.Unmarshal([]byte(l), &e) == nil {
			got = &e
		}
	}
	switch {
	case got == nil:
		return "the output has no SCIM error body"
	case got.Status != want.Status:
		return fmt.Sprintf("status %q, not %q", got.Status, want.Status)
	case got.ScimType != want.ScimType:
		return fmt.Sprintf("scimType %q, not %q", got.ScimType, want.ScimType)
	}
	detail := got.Detail
	if ns != "" && ns != "default" {
		detail = strings.ReplaceAll(detail, ns+"/", "default/")
	}
	// "…" in the shown detail stands for what varies (the seconds of a Retry-After)
	rest := detail
	for _, part := range strings.Split(want.Detail, "…") {
		i := strings.Index(rest, part)
		if i < 0 {
			return fmt.Sprintf("detail %q, which does not contain %q", got.Detail, want.Detail)
		}
		rest = rest[i+len(part):]
	}
	return ""
}

// errJSON is a SCIM error body with status code, as a guide shows one.
func errJSON(code string) string {
	return `{"schemas":["` + errorSchema + `"],"status":"` + code + `","detail":"x (ScimConfig default/example has enabled: false)"}`
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
			fence + "sh\ncurl -sS \"$HUB_SCIM_URL/Users\"\n" + fence + "\n":                                                                                        "sends a request to $HUB_SCIM_URL but is not",
			fence + "sh\ncurl -sS \"${HUB_URL}/_emulator/org\"\n" + fence + "\n":                                                                                   "sends a request to $HUB_URL but is not",
			fence + "sh scim-step name=a\n# expect: exit 0\n# lacks: x\nX=$(kubectl get om)\n" + fence + "\n":                                                      "but assigns a variable",
			fence + "sh scim-step name=a\n# expect: exit 2\ntrue\n" + fence + "\n":                                                                                 "exactly one `# expect:",
			"text\n" + fence + "json\n" + errJSON("401") + "\n" + fence + "\n":                                                                                     "follows no request step",
			fence + "sh\nkubectl get om\n" + fence + "\n" + fence + "json\n" + errJSON("401") + "\n" + fence + "\n":                                                "follows no request step",
			fence + "sh scim-step name=a\n# expect: 200\n" + curl + "\n" + fence + "\nIt answers:\n" + fence + "json\n" + errJSON("401") + "\n" + fence + "\n":     "has status \"401\" but follows scim-step \"a\", which expects 200",
			fence + "sh scim-step name=a\n# expect: 401\n" + curl + "\n" + fence + "\n" + fence + "json\n{\"schemas\":[\"" + errorSchema + "\"],\n" + fence + "\n": "is not JSON",
		} {
			p := filepath.Join(dir, "guide.md")
			Expect(os.WriteFile(p, []byte(guide), 0o600)).To(Succeed())
			_, err := parseGuide(p)
			Expect(err).To(MatchError(ContainSubstring(want)), "guide:\n%s", guide)
		}
	})

	It("reads the error body that follows a request as what it must answer", func() {
		fence := "```"
		p := filepath.Join(GinkgoT().TempDir(), "guide.md")
		Expect(os.WriteFile(p, []byte(fence+"sh scim-step name=a\n# expect: 403\ncurl -sS -w '\\n%{http_code}\\n' \"$SCIM_URL/Users\"\n"+fence+
			"\n\nIt answers:\n\n"+fence+"http\nHTTP/1.1 403 Forbidden\nRetry-After: 2\n\n"+errJSON("403")+"\n"+fence+"\n"), 0o600)).To(Succeed())
		steps, err := parseGuide(p)
		Expect(err).NotTo(HaveOccurred())
		Expect(steps).To(HaveLen(1))
		Expect(steps[0].body).NotTo(BeNil())
		want := *steps[0].body
		Expect(want.Status).To(Equal("403"))
		Expect(bodyMisses(`{"schemas":["`+errorSchema+`"],"status":"403","detail":"x (ScimConfig ns-1/example has enabled: false)"}`+"\n403\n", want, "ns-1")).To(BeEmpty())
		Expect(bodyMisses(`{"schemas":["`+errorSchema+`"],"status":"403","detail":"x (ScimConfig ns-1/example has enabled: false)"}`, want, "ns-2")).To(ContainSubstring("does not contain"))
		Expect(bodyMisses(`{"schemas":["`+errorSchema+`"],"status":"401","detail":"x (ScimConfig default/example has enabled: false)"}`, want, "")).To(Equal(`status "401", not "403"`))
		Expect(bodyMisses(`{"schemas":["`+errorSchema+`"],"status":"403","scimType":"invalidValue","detail":"x (ScimConfig default/example has enabled: false)"}`, want, "")).To(ContainSubstring("scimType"))
		Expect(bodyMisses("403\n", want, "")).To(Equal("the output has no SCIM error body"))
		want.Detail = "retry after … seconds (a valid"
		Expect(bodyMisses(`{"schemas":["`+errorSchema+`"],"status":"403","detail":"x; retry after 1 seconds (a valid token)"}`, want, "")).To(BeEmpty())
		Expect(bodyMisses(`{"schemas":["`+errorSchema+`"],"status":"403","detail":"x; retry after 1 minutes (a valid token)"}`, want, "")).To(ContainSubstring("does not contain"))
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
