package e2e

// Faults survived end to end (issue 11): the real manager binary, real HTTP and the Docker
// Hub emulator, with the faults a production install meets. Each spec ends with the access
// invariant (docs/access-invariant.md: the identities holding access in the backend are
// exactly the active members the IdP sent) and prints one figures line.
//
// make test runs the short variants; make test-faults runs the long ones (FAULT_USERS,
// FAULT_SECONDS): docs/faults.md.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// faultUsers is how many users a fault spec provisions: short unless FAULT_USERS says.
func faultUsers(short int) int {
	if n, err := strconv.Atoi(os.Getenv("FAULT_USERS")); err == nil && n > 0 {
		return n
	}
	return short
}

// faultSeconds is how long a fault lasts: short unless FAULT_SECONDS says.
func faultSeconds(short int) time.Duration {
	if n, err := strconv.Atoi(os.Getenv("FAULT_SECONDS")); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return time.Duration(short) * time.Second
}

// faultFigures is the one line each fault spec prints.
type faultFigures struct {
	spec             string
	users, faults    int
	converge         time.Duration
	duplicates, lost int
	extra            []string
}

func (f faultFigures) print() {
	line := fmt.Sprintf("FAULT FIGURES %s: users=%d faults=%d converge=%s duplicates=%d lost=%d",
		f.spec, f.users, f.faults, f.converge.Round(100*time.Millisecond), f.duplicates, f.lost)
	if len(f.extra) > 0 {
		line += " " + strings.Join(f.extra, " ")
	}
	AddReportEntry("figures", line, ReportEntryVisibilityAlways)
	collectFigures(line)
}

// collectFigures appends a figures line to the file FAULT_FIGURES names: go test shows a
// passing package's output only with -v, so the make targets print the file after the run.
func collectFigures(line string) {
	if path := os.Getenv("FAULT_FIGURES"); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_, _ = fmt.Fprintln(f, line)
			_ = f.Close()
		}
	}
}

func fold(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ---- the IdP ----

// faultIdP pushes users to a SCIM endpoint the way an IdP does when requests fail: it
// waits (Retry-After when given), then looks the user up before creating it again, so an
// answer lost on the way (the user was created) is found instead of created twice.
type faultIdP struct {
	base  func() string // the SCIM base URL of the moment: a restarted manager moves
	token string
	hc    *http.Client

	mu      sync.Mutex
	created map[string]string // userName -> id, answered 201
	found   map[string]string // userName -> id, found by a lookup after a failed create
	codes   map[int]int       // answers by status; 0 counts requests without an answer
	calls   []idpCall
}

type idpCall struct {
	start      time.Time
	took       time.Duration
	method     string
	path       string
	code       int
	retryAfter string
	err        string
}

func newFaultIdP(base func() string, token string) *faultIdP {
	tr := httpc.Transport.(*http.Transport).Clone()
	return &faultIdP{base: base, token: token, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		created: map[string]string{}, found: map[string]string{}, codes: map[int]int{}}
}

// call makes one request; a transport error is returned (code 0), never failed on.
func (p *faultIdP) call(method, path, body string) (int, map[string]any, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.base()+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/scim+json")
	start := time.Now()
	resp, err := p.hc.Do(req)
	c := idpCall{start: start, method: method, path: path}
	var out map[string]any
	var hdr http.Header
	if err == nil {
		raw, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.code, hdr, c.retryAfter = resp.StatusCode, resp.Header, resp.Header.Get("Retry-After")
		if rerr != nil {
			err = rerr
		} else if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
			err = fmt.Errorf("%s %s answered %d with a body that is not JSON: %.200s", method, path, c.code, raw)
		}
	}
	c.took = time.Since(start)
	if err != nil {
		c.err = err.Error()
	}
	p.mu.Lock()
	p.calls = append(p.calls, c)
	if err != nil {
		p.codes[0]++
	} else {
		p.codes[c.code]++
	}
	p.mu.Unlock()
	return c.code, out, hdr, err
}

// post creates a user once, without retrying, and records it when answered 201.
func (p *faultIdP) post(u idpUser) (int, map[string]any, http.Header, error) {
	code, out, hdr, err := p.call("POST", "/Users", u.body())
	if err == nil && code == 201 {
		p.mu.Lock()
		p.created[fold(u.userName)] = out["id"].(string)
		p.mu.Unlock()
	}
	return code, out, hdr, err
}

// lookup finds a user by userName: its id, and whether the endpoint answered.
func (p *faultIdP) lookup(userName string) (string, bool) {
	code, out, _, err := p.call("GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", userName)), "")
	if err != nil || code != 200 {
		return "", false
	}
	res, _ := out["Resources"].([]any)
	if len(res) != 1 {
		return "", true
	}
	id, _ := res[0].(map[string]any)["id"].(string)
	return id, true
}

func retryAfter(h http.Header, def time.Duration) time.Duration {
	if h != nil {
		if n, err := strconv.Atoi(h.Get("Retry-After")); err == nil && n > 0 {
			return time.Duration(n) * time.Second
		}
	}
	return def
}

// provision creates one user, retrying as an IdP does until deadline.
func (p *faultIdP) provision(userName, body string, deadline time.Time) error {
	wait := 200 * time.Millisecond
	for time.Now().Before(deadline) {
		code, out, hdr, err := p.call("POST", "/Users", body)
		switch {
		case err == nil && code == 201:
			p.mu.Lock()
			p.created[fold(userName)] = out["id"].(string)
			p.mu.Unlock()
			return nil
		case err == nil && code == 409:
			// taken: an earlier attempt whose answer was lost got through
		case err == nil && code >= 400 && code < 500 && code != 429:
			return fmt.Errorf("POST %s: %d %v", userName, code, out)
		default:
			time.Sleep(retryAfter(hdr, wait))
			wait = min(2*wait, 2*time.Second)
		}
		if id, ok := p.lookup(userName); ok && id != "" {
			p.mu.Lock()
			p.found[fold(userName)] = id
			p.mu.Unlock()
			return nil
		}
		time.Sleep(100 * time.Millisecond) // a 409 the lookup cannot explain: not in a tight loop
	}
	return fmt.Errorf("%s: not provisioned before the deadline", userName)
}

type idpUser struct {
	userName string
	active   bool
}

func (u idpUser) body() string {
	local, _, _ := strings.Cut(u.userName, "@")
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q,"externalId":"ext-%s",`+
		`"name":{"givenName":"Given %s","familyName":"Family %s"},"displayName":"Person %s",`+
		`"emails":[{"value":%q,"type":"work","primary":true}],"active":%v}`,
		u.userName, local, local, local, local, u.userName, u.active)
}

// idpUsers makes n users named prefix-NNNN@example.com; every tenth is inactive.
func idpUsers(prefix string, n int) []idpUser {
	us := make([]idpUser, n)
	for i := range us {
		us[i] = idpUser{userName: fmt.Sprintf("%s-%04d@example.com", prefix, i), active: i%10 != 9}
	}
	return us
}

func activeCount(us []idpUser) int {
	n := 0
	for _, u := range us {
		if u.active {
			n++
		}
	}
	return n
}

// pushAll provisions users over conns connections, each pausing pause between users (an
// IdP spreads a full push over time); progress counts users done.
func (p *faultIdP) pushAll(users []idpUser, conns int, pause time.Duration, deadline time.Time, progress *counter) error {
	work := make(chan idpUser)
	errs := make(chan error, len(users))
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				if err := p.provision(u.userName, u.body(), deadline); err != nil {
					errs <- err
				}
				progress.add(1)
				time.Sleep(pause)
			}
		}()
	}
	for _, u := range users {
		work <- u
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add(d int) { c.mu.Lock(); c.n += d; c.mu.Unlock() }
func (c *counter) get() int  { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// ---- a Docker Hub organization behind the emulator ----

// callLog timestamps every request the emulator receives (its own request log keeps the
// order and the answers, not the times): the rate the operator calls at.
type callLog struct {
	mu sync.Mutex
	at []time.Time
}

func (l *callLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.at = append(l.at, time.Now())
		l.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (l *callLog) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.at...)
}

// peak is the most calls in any window of length w.
func peak(at []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range at {
		for at[i].Sub(at[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// randomFaults has the emulator fail a random share of requests: for a request that draws
// a rule, the rule is injected (for one use, on the request's own method and path) just
// before the emulator sees the request, so the emulator's own fault machinery answers it
// and its request log records it. (The emulator's Every is periodic: a period shorter than
// a reconcile's calls would fail every reconcile at the same step.)
type randomFaults struct {
	mu    sync.Mutex
	rules []randomFault
}

type randomFault struct {
	share float64 // of the matching requests
	fault hubemu.Fault
}

func (r *randomFaults) set(rules ...randomFault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = rules
}

func (r *randomFaults) wrap(emu **hubemu.Emulator, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		for _, rule := range r.rules {
			f := rule.fault
			if (f.Method != "" && f.Method != req.Method) || !strings.HasPrefix(req.URL.Path, f.Path) || rand.Float64() >= rule.share {
				continue
			}
			f.Method, f.Path, f.Count, f.Every = req.Method, req.URL.Path, 1, 0
			(*emu).Inject(f)
			break
		}
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

type hubOrg struct {
	c       client.Client
	emu     *hubemu.Emulator
	calls   *callLog
	random  *randomFaults
	key     types.NamespacedName
	cfg     *scimv1.ScimConfig
	token   string
	foreign map[string]bool // identities in the organization before SCIM (its owner)
}

// newHubOrg starts a Docker Hub emulator for organization ns and a ScimConfig "hub" on it
// (through c, the suite's cluster or a spec's own), and waits until it is Ready.
func newHubOrg(c client.Client, ns string, requestsPerMinute int32, outer ...func(http.Handler) http.Handler) *hubOrg {
	oat := randomOAT()
	extraSecret(oat, "a Docker Hub access token of a fault spec")
	calls, random := &callLog{}, &randomFaults{}
	var emu *hubemu.Emulator
	emu = hubemu.New(hubemu.Options{Org: ns, Tokens: map[string]hubemu.TokenSpec{oat: {}},
		Middleware: func(h http.Handler) http.Handler {
			h = calls.wrap(random.wrap(&emu, jwtCatcher(h)))
			for _, w := range outer {
				h = w(h)
			}
			return h
		}}).Start()
	DeferCleanup(emu.Close)
	Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hub"},
		StringData: map[string]string{"token": oat}})).To(Succeed())
	cfg := &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hub"},
		Spec: scimv1.ScimConfigSpec{Organization: ns, Backend: scimv1.BackendSpec{Type: scimv1.BackendDockerHub,
			DockerHub: &scimv1.DockerHubBackend{BaseURL: emu.URL(), DefaultRole: "member", RequestsPerMinute: requestsPerMinute,
				AccessTokenSecretRef: scimv1.SecretKeyRef{Name: "hub", Key: "token"}}}},
	}
	Expect(c.Create(ctx, cfg)).To(Succeed())
	key := types.NamespacedName{Namespace: ns, Name: "hub"}
	cfg, err := devenv.WaitReady(ctx, c, key, readyTimeout)
	Expect(err).NotTo(HaveOccurred())
	tok, err := devenv.Token(ctx, c, cfg)
	Expect(err).NotTo(HaveOccurred())
	extraSecret(tok, "a SCIM token of a fault spec")
	foreign := map[string]bool{}
	for _, m := range emu.Members() {
		foreign[fold(m.Username)], foreign[fold(m.Email)] = true, true
	}
	return &hubOrg{c: c, emu: emu, calls: calls, random: random, key: key, cfg: cfg, token: tok, foreign: foreign}
}

func (o *hubOrg) members() []scimv1.OrgMember {
	var list scimv1.OrgMemberList
	Expect(o.c.List(ctx, &list, client.InNamespace(o.key.Namespace))).To(Succeed())
	return list.Items
}

// accessDiff is the access invariant for this organization: "" when the identities holding
// access in Docker Hub (members and pending invitations, but those there before SCIM) are
// exactly the active OrgMembers' userNames; else what differs.
func (o *hubOrg) accessDiff() string {
	want := map[string]bool{}
	for _, m := range o.members() {
		if m.Spec.Active && m.DeletionTimestamp.IsZero() {
			want[fold(m.Spec.UserName)] = true
		}
	}
	got := map[string]bool{}
	for _, m := range o.emu.Members() {
		if !o.foreign[fold(m.Username)] {
			got[fold(m.Email)] = true
		}
	}
	for _, inv := range o.emu.Invites() {
		got[fold(inv.Invitee)] = true
	}
	return diffSets(want, got)
}

// unsettled names the members whose status does not yet show their current spec synced.
func (o *hubOrg) unsettled() []string {
	var out []string
	for _, m := range o.members() {
		c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != m.Generation {
			out = append(out, fmt.Sprintf("%s (%s)", m.Spec.UserName, m.Status.Phase))
		}
	}
	sort.Strings(out)
	return out
}

// converged is "" once the invariant holds and every member is settled.
func (o *hubOrg) converged() string {
	if d := o.accessDiff(); d != "" {
		return "access differs from what the policies allow:\n" + d
	}
	if u := o.unsettled(); len(u) > 0 {
		return fmt.Sprintf("%d members not settled, e.g. %s", len(u), strings.Join(u[:min(5, len(u))], ", "))
	}
	return ""
}

// duplicates counts invitations sent beyond one per active user, and any sent to an
// inactive user (who must never be invited).
func (o *hubOrg) duplicates(users []idpUser) (dups int, detail []string) {
	for _, u := range users {
		sent := o.emu.InvitesSent(u.userName)
		want := 0
		if u.active {
			want = 1
		}
		if sent > want {
			dups += sent - want
			detail = append(detail, fmt.Sprintf("%s: %d invitations", u.userName, sent))
		}
	}
	return dups, detail
}

// lost checks that every user the IdP was told exists (a 201, or found after a failed
// create) exists exactly once, under the id the IdP holds, with what the IdP sent.
func lostUsers(p *faultIdP, o *hubOrg, users []idpUser) (lost int, detail []string) {
	byName := map[string][]scimv1.OrgMember{}
	for _, m := range o.members() {
		byName[fold(m.Spec.UserName)] = append(byName[fold(m.Spec.UserName)], m)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, u := range users {
		id, ok := p.created[fold(u.userName)]
		if !ok {
			id, ok = p.found[fold(u.userName)]
		}
		ms := byName[fold(u.userName)]
		switch {
		case !ok:
			lost++
			detail = append(detail, u.userName+": the IdP never got it provisioned")
		case len(ms) != 1:
			lost++
			detail = append(detail, fmt.Sprintf("%s: %d OrgMembers", u.userName, len(ms)))
		case ms[0].Name != id:
			lost++
			detail = append(detail, fmt.Sprintf("%s: the IdP holds id %s, the cluster %s", u.userName, id, ms[0].Name))
		case ms[0].Spec.Active != u.active || ms[0].Spec.ExternalID == "" || ms[0].Spec.Name == nil:
			lost++
			detail = append(detail, fmt.Sprintf("%s: not what the IdP sent: %+v", u.userName, ms[0].Spec))
		}
	}
	return lost, detail
}

// configEvents lists the notes of the events of reason about the ScimConfig key.
func configEvents(c client.Client, key types.NamespacedName, reason string) []string {
	var list eventsv1.EventList
	Expect(c.List(ctx, &list, client.InNamespace(key.Namespace))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == key.Name && e.Reason == reason {
			out = append(out, e.Note)
		}
	}
	return out
}

func diffSets(want, got map[string]bool) string {
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra) == 0 {
		return ""
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return fmt.Sprintf("missing %d %v\nextra %d %v", len(missing), missing[:min(10, len(missing))], len(extra), extra[:min(10, len(extra))])
}

// ---- the specs ----

var _ = Describe("faults survived end to end", Label("faults"), func() {
	It("loses nothing and invites nobody twice when the manager is SIGKILLed in the middle of a full sync", func() {
		n := faultUsers(100)
		ns := newNamespace()
		// 3,000 calls a minute: a full sync of 100 users takes seconds, long enough to land in.
		org := newHubOrg(cluster.Client, ns, 3000)
		var baseMu sync.Mutex
		base := mgr.SCIMURL + org.cfg.Status.BasePath
		idp := newFaultIdP(func() string { baseMu.Lock(); defer baseMu.Unlock(); return base }, org.token)
		users := idpUsers("kill", n)
		active := activeCount(users)

		// The IdP pushes the first half, then waits for the kill before pushing the second:
		// the kill lands while the IdP is pushing and before the backend sync is over,
		// whatever the machine's speed (before, a race the 4 workers could win).
		first, second := users[:n/2], users[n/2:]
		Expect(activeCount(first)).To(BeNumerically(">=", active/4), "the first half alone reaches the kill")
		Expect(activeCount(second)).To(BeNumerically(">", 0), "the second half has someone to invite")
		By(fmt.Sprintf("the IdP pushing %d users (%d active) over 4 connections, the second half after the kill", n, active))
		began := time.Now()
		deadline := began.Add(3*time.Minute + time.Duration(n)*200*time.Millisecond)
		progress := &counter{}
		pushed := make(chan error, 1)
		killed := make(chan struct{})
		var killOnce sync.Once
		markKilled := func() { killOnce.Do(func() { close(killed) }) }
		DeferCleanup(markKilled)
		go func() {
			defer GinkgoRecover()
			err := idp.pushAll(first, 4, 250*time.Millisecond, deadline, progress)
			<-killed
			pushed <- errors.Join(err, idp.pushAll(second, 4, 250*time.Millisecond, deadline, progress))
		}()

		By("SIGKILLing the manager once a quarter of the active users are invited")
		Eventually(func() int { return len(org.emu.Invites()) }, 2*time.Minute, 5*time.Millisecond).
			Should(BeNumerically(">=", active/4))
		pid := mgr.PID()
		Expect(mgr.Kill()).To(Succeed())
		killedAt := time.Now()
		invitedAtKill, pushedAtKill := len(org.emu.Invites()), progress.get()
		markKilled()
		GinkgoWriter.Printf("killed the manager (pid %d) with %d/%d users pushed and %d/%d invited\n", pid, pushedAtKill, n, invitedAtKill, active)
		Expect(invitedAtKill).To(BeNumerically("<", active), "the kill landed before the backend sync was done")
		Expect(pushedAtKill).To(BeNumerically("<", n), "the kill landed while the IdP was pushing")

		By("starting the manager again: the IdP finds it at its new address")
		restarted, err := devenv.StartManager(ctx, binPath, mgrKubeconfig, logFile, certs, managerArgs...)
		Expect(err).NotTo(HaveOccurred())
		mgr = restarted
		baseMu.Lock()
		base = mgr.SCIMURL + org.cfg.Status.BasePath
		baseMu.Unlock()
		Expect(<-pushed).To(Succeed())

		By("waiting for the backend to hold exactly the active users, every member settled")
		Eventually(org.converged, 3*time.Minute+time.Duration(n)*200*time.Millisecond, time.Second).Should(BeEmpty())
		converge := time.Since(killedAt)

		dups, dupDetail := org.duplicates(users)
		Expect(dupDetail).To(BeEmpty(), "no invitation twice, none to an inactive user")
		lost, lostDetail := lostUsers(idp, org, users)
		Expect(lostDetail).To(BeEmpty(), "every user the IdP was told exists is there exactly once")
		idp.mu.Lock()
		recovered, unanswered := len(idp.found), idp.codes[0]
		idp.mu.Unlock()
		faultFigures{spec: "manager-sigkill-mid-sync", users: n, faults: 1, converge: converge, duplicates: dups, lost: lost,
			extra: []string{fmt.Sprintf("pushed_at_kill=%d invited_at_kill=%d unanswered_requests=%d found_by_lookup=%d total=%s",
				pushedAtKill, invitedAtKill, unanswered, recovered, time.Since(began).Round(100*time.Millisecond))}}.print()
	})

	It("converges after a failing Docker Hub heals, calling it within the configured request budget", func() {
		n := faultUsers(40)
		faultFor := faultSeconds(20)
		// 300 calls a minute (5 a second, bursts of 30) for the short run, three per user for
		// a long one (6,000 at most): the sync needs more than that, so the budget binds and
		// the rate measured below is the limiter's, not the demand's.
		rpm := min(max(300, 3*n), 6000)
		// dockerhub.SharedLimiter's bucket: a tenth of the budget, refilled at the rest, so
		// that no minute holds more than rpm calls
		burst := rpm / 10
		refill := float64(rpm-burst) / 60 // a second
		ns := newNamespace()
		org := newHubOrg(cluster.Client, ns, int32(rpm))
		base := mgr.SCIMURL + org.cfg.Status.BasePath
		idp := newFaultIdP(func() string { return base }, org.token)
		users := idpUsers("flaky", n)
		logged := len(org.emu.Requests())

		By(fmt.Sprintf("Docker Hub failing for %s: ~30%% 5xx, 2 s latency, dropped connections, 429 bursts with Retry-After", faultFor))
		// One fault at most per request, drawn in this order. A third of the invitations are
		// carried out and their answers dropped: the operator must find them rather than
		// invite again.
		org.random.set(
			randomFault{0.3, hubemu.Fault{Kind: hubemu.FaultDrop, AfterHandling: true, Method: "POST", Path: "/v2/invites/bulk"}},
			randomFault{0.25, hubemu.Fault{Kind: hubemu.FaultStatus, Status: 503}},
			randomFault{0.05, hubemu.Fault{Kind: hubemu.FaultHTML, Status: 502}},
			randomFault{0.1, hubemu.Fault{Kind: hubemu.FaultLatency, Latency: 2 * time.Second}},
			randomFault{0.05, hubemu.Fault{Kind: hubemu.FaultDrop}},
		)
		stopBursts := make(chan struct{})
		burstsDone := make(chan struct{})
		go func() {
			// A burst of three 429s (Retry-After: 1) every 6 s, the next only once the last
			// was used up: the operator pauses the whole organization on each.
			defer close(burstsDone)
			t := time.NewTicker(6 * time.Second)
			defer t.Stop()
			for bursts := 0; ; {
				if org.emu.CountStatus(http.StatusTooManyRequests) >= 3*bursts {
					org.emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, RetryAfter: time.Second, Count: 3})
					bursts++
				}
				select {
				case <-stopBursts:
					return
				case <-t.C:
				}
			}
		}()
		began := time.Now()

		By(fmt.Sprintf("the IdP pushing %d users meanwhile: SCIM does not wait for the backend", n))
		Expect(idp.pushAll(users, 4, 0, time.Now().Add(time.Minute), &counter{})).To(Succeed())
		pushTook := time.Since(began)
		idp.mu.Lock()
		Expect(idp.codes).To(Equal(map[int]int{201: n}), "every push answered 201 at once, whatever Docker Hub does")
		idp.mu.Unlock()

		time.Sleep(time.Until(began.Add(faultFor)))
		By("Docker Hub heals")
		close(stopBursts)
		<-burstsDone
		org.random.set()
		org.emu.ClearFaults()
		healedAt := time.Now()
		invitedAtHeal := len(org.emu.Invites())
		// A failed call is the member's to retry, not a reason to pause the config: no member
		// waited for the config's backend, whose BackendReady never turned False.
		waiting := 0
		for _, m := range org.members() {
			if c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced); c != nil && c.Reason == "BackendNotReady" {
				waiting++
			}
		}
		Expect(waiting).To(BeZero(), "members waiting for the config's backend when the storm ended (a flaky backend paused the config)")

		Eventually(org.converged, 5*time.Minute+time.Duration(n)*time.Second, time.Second).Should(BeEmpty())
		converge := time.Since(healedAt)

		Expect(configEvents(org.c, org.key, "BackendNotReady")).To(BeEmpty(),
			"a flaky Docker Hub never paused the config (BackendReady=False)")
		dups, dupDetail := org.duplicates(users)
		Expect(dupDetail).To(BeEmpty(), "no invitation twice (dropped answers included), none to an inactive user")
		lost, lostDetail := lostUsers(idp, org, users)
		Expect(lostDetail).To(BeEmpty())

		By("measuring the call rate from the emulator's request log")
		reqs := org.emu.Requests()[logged:]
		faults, fiveXX := 0, 0
		for _, r := range reqs {
			if r.Fault != "" {
				faults++
			}
			if r.Status >= 500 {
				fiveXX++
			}
		}
		Expect(faults).To(BeNumerically(">", 0), "faults were injected")
		at := org.calls.times()
		Expect(at).To(HaveLen(len(org.emu.Requests())), "the timestamps are of every request the emulator logged")
		at = at[logged:]
		// The limiter's bound over any window w: its burst and its refill over w. The
		// emulator timestamps a call when it arrives, not when the limiter granted it, so
		// calls granted just before a window can land in it: two seconds of refill are
		// allowed for that transit. One second was not enough on a loaded 2-core machine
		// (make test runs the test packages side by side): 81 calls in the busiest 10 s
		// against a bound of 79, in one run of three. Over a minute the bound is then rpm,
		// the promise, plus those two seconds (2*rpm*0.9/60 calls), and the check says so.
		limits := map[time.Duration]int{}
		transit := 2 * (rpm - burst) / 60
		for _, w := range []time.Duration{time.Second, 10 * time.Second, time.Minute} {
			limits[w] = burst + (rpm-burst)*int(w/time.Second)/60 + transit
			Expect(peak(at, w)).To(BeNumerically("<=", limits[w]),
				"calls in the busiest %s: the configured %d a minute (a bucket of %d, refilled at %.1f/s) holds, %d allowed for transit",
				w, rpm, burst, refill, transit)
		}
		// Retry-After is honoured: after a 429 no call arrives until its Retry-After has
		// passed, but for calls already on their way when the 429 was answered (sent by
		// other workers before the operator read it): those arrive within inFlightSlack.
		const inFlightSlack = 200 * time.Millisecond
		var early []string
		limited := 0
		for _, r := range reqs {
			if r.Status != http.StatusTooManyRequests {
				continue
			}
			limited++
			Expect(r.RetryAfter).To(BeNumerically(">", 0), "the 429 told the client how long to wait")
			for _, c := range reqs { // the log is in order of answers: look at every arrival
				if c.Received.After(r.Answered.Add(inFlightSlack)) && c.Received.Before(r.Answered.Add(r.RetryAfter)) {
					early = append(early, fmt.Sprintf("%s %s %s after a 429 (Retry-After %s)", c.Method, c.Path, c.Received.Sub(r.Answered).Round(time.Millisecond), r.RetryAfter))
				}
			}
		}
		Expect(limited).To(BeNumerically(">", 0), "429s were answered")
		Expect(early).To(BeEmpty(), "calls during a Retry-After")
		// After the healing the sync is bound by the budget, not by backoff: the calls it
		// made need at least this long at the limiter's sustained rate (0.9 x rpm).
		afterHeal := 0
		for _, t := range at {
			if !t.Before(healedAt) {
				afterHeal++
			}
		}
		budgetTime := time.Duration(float64(max(afterHeal-burst, 0)) / refill * float64(time.Second))
		faultFigures{spec: "dockerhub-failing", users: n, faults: faults, converge: converge, duplicates: dups, lost: lost,
			extra: []string{fmt.Sprintf("fault_phase=%s invited_at_heal=%d/%d members_waiting_for_config_at_heal=%d calls=%d 5xx=%d dropped=%d "+
				"peak_calls_1s=%d/%d peak_calls_10s=%d/%d peak_calls_60s=%d/%d (requestsPerMinute=%d, +%d for transit) "+
				"calls_after_heal=%d (%s at the sustained budget) scim_push=%s total=%s",
				faultFor, invitedAtHeal, activeCount(users), waiting, len(at), fiveXX, org.emu.CountStatus(0),
				peak(at, time.Second), limits[time.Second], peak(at, 10*time.Second), limits[10*time.Second],
				peak(at, time.Minute), limits[time.Minute], rpm, transit, afterHeal, budgetTime.Round(100*time.Millisecond),
				pushTook.Round(100*time.Millisecond), time.Since(began).Round(100*time.Millisecond))}}.print()
	})
})
