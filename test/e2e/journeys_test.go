package e2e

// IdP journeys (issue 11, item 1): Okta, Entra ID and OneLogin, each in its own dialect
// (docs/idp/*.md, ../shared/docs/SCIM-CLIENTS.md), against the real manager over HTTPS:
// Test Connection, a full sync of FAULTS_USERS people (a lookup by userName, then a create,
// as each IdP does; every tenth create's answer is lost and the IdP retries), profile
// updates, a rename, deactivation, reactivation, a group pushed with members, deletion.
// After each step the backend is checked (the kubernetes backend through the API server's
// authorizer; OneLogin's journey against the Docker Hub emulator) and so is
// `kubectl get orgmembers`; each journey ends with the access invariant: the identities
// holding access equal the ones the policies allow (test/access).

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/test/access"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// person is one person of a journey, as the IdP knows them.
type person struct {
	i               int
	id              string
	userName, email string
	externalID      string
	active, deleted bool
	former          []string // userNames they had before
	dockerID        string   // dockerhub: the Docker ID they accepted an invitation as
	familyName      string
}

func (p *person) live() bool { return !p.deleted }

// jgroup is one group of a journey.
type jgroup struct {
	id, displayName string
	members         map[string]bool // person ids
	deleted         bool
	formerTeams     []string
}

// journey is one IdP's run against one ScimConfig.
type journey struct {
	spec   string
	ns     string
	cfg    types.NamespacedName
	c      idpClient
	people []*person
	groups []*jgroup
	faults atomic.Int32
	roles  []access.Role
	// invites: how many invitations the dockerhub journey expects each invitee to have
	// been sent (folded address); more is a duplicate.
	invites map[string]int
	emu     *hubemu.Emulator // the dockerhub journey's organization
	// orphans: holder keys a policy left in place (a member deleted while disabled)
	orphans []string
	// importDups: ids an IdP's import listed twice
	importDups []string
}

// sync provisions n people the way the IdP does, with workers concurrent connections:
// for each, a lookup by userName (no match), then a create. Every tenth create's answer
// is lost on the way back (the IdP never sees it) and the IdP retries, alternately by
// looking the userName up again (Okta's way: the person is found, with the id the lost
// answer had) or by creating again (409 uniqueness, then the lookup finds them).
func (j *journey) sync(n int, lookup func(userName string) string, body func(p *person) string) {
	for i := 0; i < n; i++ {
		j.people = append(j.people, &person{i: i, userName: fmt.Sprintf("p%03d.%s@example.com", i, j.ns), active: true,
			externalID: fmt.Sprintf("%08x-0000-4000-8000-%012d", i, i)})
		j.people[i].email = j.people[i].userName
	}
	work := make(chan *person)
	var mu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
	}
	found := func(p *person, what string) (string, bool) {
		code, out, err := j.c.send("GET", lookup(p.userName), "")
		if err != nil || code != 200 {
			fail("%s lookup of %s: %d %v %v", what, p.userName, code, out, err)
			return "", false
		}
		res, _ := out["Resources"].([]any)
		if n, _ := out["totalResults"].(float64); n != float64(len(res)) || len(res) > 1 {
			fail("%s lookup of %s: totalResults %v with %d resources", what, p.userName, out["totalResults"], len(res))
			return "", false
		}
		if len(res) == 0 {
			return "", true
		}
		id, _ := res[0].(map[string]any)["id"].(string)
		return id, true
	}
	var wg sync.WaitGroup
	for w := 0; w < faultsWorkers(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if id, ok := found(p, "first"); !ok || id != "" {
					if ok {
						fail("the first lookup of %s found %s", p.userName, id)
					}
					continue
				}
				code, out, err := j.c.send("POST", "/Users", body(p))
				if err != nil || code != 201 {
					fail("create %s: %d %v %v", p.userName, code, out, err)
					continue
				}
				if _, ok := out["password"]; ok {
					fail("create %s returned the password", p.userName)
				}
				id, _ := out["id"].(string)
				if p.i%10 == 9 { // the answer is lost: the IdP retries
					j.faults.Add(1)
					if (p.i/10)%2 == 1 {
						code, out, err := j.c.send("POST", "/Users", body(p))
						if err != nil || code != 409 || out["scimType"] != "uniqueness" {
							fail("create %s again: want 409 uniqueness, got %d %v %v", p.userName, code, out, err)
							continue
						}
					}
					again, ok := found(p, "retry")
					if !ok {
						continue
					}
					if again != id {
						fail("the retry's lookup of %s found %q, the lost answer said %q", p.userName, again, id)
					}
				}
				p.id = id
			}
		}()
	}
	for _, p := range j.people {
		work <- p
	}
	close(work)
	wg.Wait()
	Expect(errs).To(BeEmpty(), "the full sync")
}

// importAll reads every user back a page at a time (count per page), as Okta's import
// does, and records any id listed twice; every live person must be listed.
func (j *journey) importAll(count int) {
	seen := map[string]int{}
	for start := 1; ; start += count {
		out := j.c.must(200, "GET", fmt.Sprintf("/Users?startIndex=%d&count=%d", start, count), "")
		n := total(out)
		Expect(out["startIndex"]).To(BeEquivalentTo(start))
		res, _ := out["Resources"].([]any)
		Expect(out["itemsPerPage"]).To(BeEquivalentTo(len(res)))
		for _, r := range res {
			seen[r.(map[string]any)["id"].(string)]++
		}
		if start+count > n {
			break
		}
	}
	for id, c := range seen {
		if c > 1 {
			j.importDups = append(j.importDups, id)
		}
	}
	for _, p := range j.people {
		if p.live() {
			Expect(seen).To(HaveKey(p.id), "the import lists %s", p.userName)
		}
	}
}

func (j *journey) person(i int) *person { return j.people[i] }

// some are the people whose index satisfies f, in order.
func (j *journey) some(f func(i int) bool) []*person {
	var out []*person
	for _, p := range j.people {
		if f(p.i) && p.live() {
			out = append(out, p)
		}
	}
	return out
}

func (j *journey) config() *scimv1.ScimConfig {
	cfg := &scimv1.ScimConfig{}
	ExpectWithOffset(1, cluster.Client.Get(ctx, j.cfg, cfg)).To(Succeed())
	return cfg
}

// members lists the OrgMembers of the journey's namespace by name.
func (j *journey) members() map[string]*scimv1.OrgMember {
	var ml scimv1.OrgMemberList
	ExpectWithOffset(1, cluster.Client.List(ctx, &ml, client.InNamespace(j.ns))).To(Succeed())
	out := map[string]*scimv1.OrgMember{}
	for i := range ml.Items {
		out[ml.Items[i].Name] = &ml.Items[i]
	}
	return out
}

// objectsAgree says what the OrgMembers and OrgGroups show that the journey does not
// ("" when they agree): each live person with their userName, active flag and the phase
// wantPhase names, processed at their current generation; no one else; the live groups.
func (j *journey) objectsAgree(wantPhase func(p *person) scimv1.MemberPhase) string {
	var problems []string
	ms := j.members()
	for _, p := range j.people {
		m, ok := ms[p.id]
		delete(ms, p.id)
		switch {
		case !p.live() && ok:
			problems = append(problems, fmt.Sprintf("%s (deleted) still has OrgMember %s", p.userName, p.id))
		case !p.live():
		case !ok:
			problems = append(problems, fmt.Sprintf("%s has no OrgMember %s", p.userName, p.id))
		case m.Spec.UserName != p.userName || m.Spec.Active != p.active:
			problems = append(problems, fmt.Sprintf("OrgMember %s is %q active=%v, the IdP sent %q active=%v", p.id, m.Spec.UserName, m.Spec.Active, p.userName, p.active))
		case m.Status.Phase != wantPhase(p) || m.Status.ObservedGeneration != m.Generation:
			problems = append(problems, fmt.Sprintf("OrgMember %s (%s) is %s at generation %d/%d, want %s (%s)", p.id, p.userName,
				m.Status.Phase, m.Status.ObservedGeneration, m.Generation, wantPhase(p), m.Status.Message))
		}
	}
	for name, m := range ms {
		problems = append(problems, fmt.Sprintf("OrgMember %s (%s) is no one the IdP created", name, m.Spec.UserName))
	}
	var gl scimv1.OrgGroupList
	Expect(cluster.Client.List(ctx, &gl, client.InNamespace(j.ns))).To(Succeed())
	gs := map[string]string{}
	for _, g := range gl.Items {
		gs[g.Name] = g.Spec.DisplayName
	}
	for _, g := range j.groups {
		if dn, ok := gs[g.id]; g.deleted && ok {
			problems = append(problems, "OrgGroup "+g.id+" (deleted) is still there")
		} else if !g.deleted && dn != g.displayName {
			problems = append(problems, fmt.Sprintf("OrgGroup %s is %q, want %q", g.id, dn, g.displayName))
		}
	}
	if len(problems) > 3 {
		problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
	}
	return strings.Join(problems, "; ")
}

// ---- the kubernetes backend ----

func kubePhase(p *person) scimv1.MemberPhase {
	if p.active {
		return scimv1.PhaseActive
	}
	return scimv1.PhaseDeactivated
}

// kubeExpected is what the journey says the config's role is bound to: every live active
// person's userName, every live group's team.
func (j *journey) kubeExpected() map[string]bool {
	want := map[string]bool{}
	for _, p := range j.people {
		if p.live() && p.active {
			want[access.Grant(0, "User", p.userName)] = true
		}
	}
	for _, g := range j.groups {
		if !g.deleted {
			want[access.Grant(0, "Group", access.TeamName(g.displayName))] = true
		}
	}
	return want
}

// kubeCheck is "" once the objects agree with the journey and the role's bindings equal
// both what the journey expects and what the policies allow (access.KubeWanted).
func (j *journey) kubeCheck() string {
	if d := j.objectsAgree(kubePhase); d != "" {
		return "objects: " + d
	}
	holders, err := access.KubeHolders(ctx, cluster.Client, j.roles)
	if err != nil {
		return err.Error()
	}
	if d := access.Diff(j.kubeExpected(), holders); d != "" {
		return "bindings, against the journey:\n" + d
	}
	wanted, err := access.KubeWanted(ctx, cluster.Client, j.config())
	if err != nil {
		return err.Error()
	}
	if d := access.Diff(wanted, holders); d != "" {
		return "bindings, against the policies:\n" + d
	}
	return ""
}

// authorizerAgrees asks the API server's authorizer about every userName and team the
// journey ever used: allowed exactly for the current names of live active people and live
// groups' teams. It returns the people it found without access they should have.
func (j *journey) authorizerAgrees() []string {
	rbacSynced()
	want := j.kubeExpected()
	var wrong, lost []string
	ask := func(user string, groups []string, key string) {
		ok, err := access.Allowed(ctx, cluster.Client, user, groups, readerAttrs(j.ns))
		Expect(err).NotTo(HaveOccurred())
		if ok != want[key] {
			wrong = append(wrong, fmt.Sprintf("%s allowed=%v", key, ok))
			if want[key] {
				lost = append(lost, key)
			}
		}
	}
	for _, p := range j.people {
		for _, n := range append([]string{p.userName}, p.former...) {
			ask(n, nil, access.Grant(0, "User", n))
		}
	}
	probe := "probe." + j.ns + "@example.com"
	for _, g := range j.groups {
		for _, t := range append([]string{access.TeamName(g.displayName)}, g.formerTeams...) {
			ask(probe, []string{t}, access.Grant(0, "Group", t))
		}
	}
	ExpectWithOffset(1, wrong).To(BeEmpty(), "the API server's authorizer disagrees with the journey")
	return lost
}

// kubectlShows checks `kubectl get orgmembers`: one line per live person, with their
// userName, active flag and phase, and no other line.
func (j *journey) kubectlShows(wantPhase func(p *person) scimv1.MemberPhase) {
	out := mustKubectl("get", "orgmembers", "-n", j.ns)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	ExpectWithOffset(1, strings.Fields(lines[0])).To(Equal([]string{"NAME", "USER", "ACTIVE", "PHASE", "READY", "AGE"}))
	rows := map[string][]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		ExpectWithOffset(1, rows).NotTo(HaveKey(f[0]), "kubectl lists %s twice", f[0])
		rows[f[0]] = f
	}
	live := 0
	for _, p := range j.people {
		if !p.live() {
			ExpectWithOffset(1, rows).NotTo(HaveKey(p.id), "kubectl still lists deleted %s", p.userName)
			continue
		}
		live++
		ExpectWithOffset(1, rows).To(HaveKey(p.id), "kubectl lists %s", p.userName)
		ExpectWithOffset(1, rows[p.id][1:4]).To(Equal([]string{p.userName, fmt.Sprint(p.active), string(wantPhase(p))}), "kubectl's line for %s", p.id)
	}
	ExpectWithOffset(1, rows).To(HaveLen(live), "kubectl lists exactly the live people:\n%s", out)
}

// canListPods is `kubectl auth can-i list pods --as user`, as an admin checks a person.
func canListPods(user string, groups ...string) string {
	args := []string{"auth", "can-i", "list", "pods", "-n", "default", "--as", user}
	for _, g := range groups {
		args = append(args, "--as-group", g)
	}
	out, _ := kubectl(args...)
	lines := strings.Split(strings.TrimSpace(out), "\n") // kubectl may warn first
	return strings.TrimSpace(lines[len(lines)-1])
}

// kubeSettle waits until the backend matches the journey (kubeCheck), then asks the
// authorizer and kubectl, and returns how long the backend took.
func (j *journey) kubeSettle(what string) time.Duration {
	By("waiting for the backend: " + what)
	took, last := settle(settleTimeout(len(j.people)), j.kubeCheck)
	Expect(last).To(BeEmpty(), "after %s (%s)", took.Round(time.Second), what)
	j.authorizerAgrees()
	j.kubectlShows(kubePhase)
	GinkgoWriter.Printf("%s: %s settled in %s\n", j.spec, what, took.Round(100*time.Millisecond))
	return took
}

// kubeFigures counts duplicates and lost people in the final state and prints the line.
func (j *journey) kubeFigures(converge time.Duration, more string) {
	f := figures{spec: j.spec, users: len(j.people), faults: int(j.faults.Load()), converge: converge, more: more}
	byName := map[string][]string{}
	for name, m := range j.members() {
		byName[strings.ToLower(m.Spec.UserName)] = append(byName[strings.ToLower(m.Spec.UserName)], name)
	}
	for u, names := range byName {
		if len(names) > 1 {
			f.duplicates += len(names) - 1
			f.duplicatesExplain = append(f.duplicatesExplain, fmt.Sprintf("OrgMembers %v all have userName %s", names, u))
		}
	}
	n, why := bindingDuplicates(j.roles)
	f.duplicates += n
	f.duplicatesExplain = append(f.duplicatesExplain, why...)
	f.duplicates += len(j.importDups)
	if len(j.importDups) > 0 {
		f.duplicatesExplain = append(f.duplicatesExplain, fmt.Sprintf("listed twice by the SCIM API: %v", j.importDups))
	}
	lostAccess := j.authorizerAgrees()
	ms := j.members()
	for _, p := range j.people {
		if !p.live() {
			continue
		}
		code, _, err := j.c.send("GET", "/Users/"+p.id, "")
		switch {
		case err != nil || code != 200:
			f.lostExplain = append(f.lostExplain, fmt.Sprintf("GET /Users/%s (%s) answered %d %v", p.id, p.userName, code, err))
		case ms[p.id] == nil:
			f.lostExplain = append(f.lostExplain, fmt.Sprintf("%s has no OrgMember", p.userName))
		default:
			continue
		}
		f.lost++
	}
	f.lost += len(lostAccess)
	f.lostExplain = append(f.lostExplain, lostAccess...)
	f.report()
}

// ---- the dockerhub backend (the emulator) ----

// hubOwner is the emulator's organization owner: there before SCIM, foreign to it.
const hubOwner = "owner"

func hubPhase(p *person) scimv1.MemberPhase {
	switch {
	case !p.active:
		return scimv1.PhaseDeactivated
	case p.dockerID != "":
		return scimv1.PhaseActive
	}
	return scimv1.PhaseInvited
}

// hubExpected is who the journey says is in the organization: the Docker ID of every live
// active person who accepted an invitation (and was not removed since), the pending
// invitation of every other live active person, and the orphans.
func (j *journey) hubExpected() map[string]bool {
	want := map[string]bool{}
	for _, p := range j.people {
		switch {
		case !p.live() || !p.active:
		case p.dockerID != "":
			want["member:"+strings.ToLower(p.dockerID)] = true
		default:
			want["invite:"+strings.ToLower(p.email)] = true
		}
	}
	for _, o := range j.orphans {
		want[strings.ToLower(o)] = true
	}
	return want
}

// hubTeams says how the emulator's teams differ from the journey's live groups: a team
// per group, whose members are the group's live, active people who joined the
// organization.
func (j *journey) hubTeams() string {
	for _, g := range j.groups {
		team := access.TeamName(g.displayName)
		t, ok := j.emu.Team(team)
		if g.deleted {
			continue // Docker Hub keeps a team; its members are what matters, and they left with the group's grants
		}
		if !ok {
			return "no team " + team
		}
		want := map[string]bool{}
		for _, p := range j.people {
			if g.members[p.id] && p.live() && p.active && p.dockerID != "" {
				want[strings.ToLower(p.dockerID)] = true
			}
		}
		got := map[string]bool{}
		for _, m := range t.Members {
			got[strings.ToLower(m)] = true
		}
		if d := access.Diff(want, got); d != "" {
			return "team " + team + ":\n" + d
		}
	}
	return ""
}

// hubCheck is "" once the objects agree with the journey and the organization's people
// equal both what the journey expects and what the policies allow (access.HubWanted).
func (j *journey) hubCheck() string {
	if d := j.objectsAgree(hubPhase); d != "" {
		return "objects: " + d
	}
	holders := access.HubHolders(j.emu, hubOwner)
	if d := access.Diff(j.hubExpected(), holders); d != "" {
		return "organization, against the journey:\n" + d
	}
	wanted, err := access.HubWanted(ctx, cluster.Client, j.config())
	if err != nil {
		return err.Error()
	}
	for _, o := range j.orphans {
		wanted[strings.ToLower(o)] = true
	}
	if d := access.Diff(wanted, holders); d != "" {
		return "organization, against the policies (and the orphans):\n" + d
	}
	return j.hubTeams()
}

// hubSettle waits until the organization matches the journey, then checks kubectl.
func (j *journey) hubSettle(what string) time.Duration {
	By("waiting for the organization: " + what)
	took, last := settle(settleTimeout(len(j.people)), j.hubCheck)
	Expect(last).To(BeEmpty(), "after %s (%s)", took.Round(time.Second), what)
	j.kubectlShows(hubPhase)
	GinkgoWriter.Printf("%s: %s settled in %s\n", j.spec, what, took.Round(100*time.Millisecond))
	return took
}

// invited records one more invitation the journey expects to be sent to invitee.
func (j *journey) invited(invitee string) { j.invites[strings.ToLower(invitee)]++ }

// hubFigures counts duplicates (invitations sent more often than the journey asked for,
// two OrgMembers for one userName, ids listed twice) and lost people, and prints the line.
func (j *journey) hubFigures(converge time.Duration, more string) {
	f := figures{spec: j.spec, users: len(j.people), faults: int(j.faults.Load()), converge: converge, more: more}
	invitees := map[string]bool{}
	for k := range j.invites {
		invitees[k] = true
	}
	for _, p := range j.people {
		for _, n := range append([]string{p.userName, p.email}, p.former...) {
			invitees[strings.ToLower(n)] = true
		}
	}
	for inv := range invitees {
		if sent := j.emu.InvitesSent(inv); sent > j.invites[inv] {
			f.duplicates += sent - j.invites[inv]
			f.duplicatesExplain = append(f.duplicatesExplain, fmt.Sprintf("%d invitations to %s, the journey asked for %d", sent, inv, j.invites[inv]))
		}
	}
	byName := map[string][]string{}
	for name, m := range j.members() {
		byName[strings.ToLower(m.Spec.UserName)] = append(byName[strings.ToLower(m.Spec.UserName)], name)
	}
	for u, names := range byName {
		if len(names) > 1 {
			f.duplicates += len(names) - 1
			f.duplicatesExplain = append(f.duplicatesExplain, fmt.Sprintf("OrgMembers %v all have userName %s", names, u))
		}
	}
	f.duplicates += len(j.importDups)
	holders := access.HubHolders(j.emu, hubOwner)
	ms := j.members()
	for _, p := range j.people {
		if !p.live() {
			continue
		}
		code, _, err := j.c.send("GET", "/Users/"+p.id, "")
		switch {
		case err != nil || code != 200:
			f.lostExplain = append(f.lostExplain, fmt.Sprintf("GET /Users/%s (%s) answered %d %v", p.id, p.userName, code, err))
		case ms[p.id] == nil:
			f.lostExplain = append(f.lostExplain, p.userName+" has no OrgMember")
		case p.active && !holders["member:"+strings.ToLower(p.dockerID)] && !holders["invite:"+strings.ToLower(p.email)]:
			f.lostExplain = append(f.lostExplain, p.userName+" is neither a member nor invited")
		default:
			continue
		}
		f.lost++
	}
	f.report()
}

// hubJourney sets up a dockerhub ScimConfig (applied with kubectl) on an emulator of its own.
func hubJourney(spec, agent, ctype string) *journey {
	ns := newNamespace()
	oat := randomOAT()
	emu := hubemu.New(hubemu.Options{Org: ns, Owner: hubOwner, Tokens: map[string]hubemu.TokenSpec{oat: {}}, Middleware: jwtCatcher}).Start()
	Expect(cluster.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hub"},
		StringData: map[string]string{"token": oat}})).To(Succeed())
	path := writeTemp("config.yaml", fmt.Sprintf(`apiVersion: scim.operator.dev/v1alpha1
kind: ScimConfig
metadata: {name: example, namespace: %s}
spec:
  organization: %s
  verifiedDomains: [example.com]
  backend:
    type: dockerhub
    dockerhub:
      baseURL: %s
      accessTokenSecretRef: {name: hub, key: token}
      defaultRole: member
      requestsPerMinute: 6000
`, ns, ns, emu.URL()))
	mustKubectl("apply", "-f", path)
	key := types.NamespacedName{Namespace: ns, Name: "example"}
	DeferCleanup(func() {
		// disabled before its organization goes, so that nothing keeps calling it
		mustKubectl("patch", "-n", ns, "scimconfig", "example", "--type=merge", "-p", `{"spec":{"enabled":false}}`)
		emu.Close()
	})
	cfg, err := devenv.WaitReady(ctx, cluster.Client, key, readyTimeout)
	Expect(err).NotTo(HaveOccurred())
	tok, err := devenv.Token(ctx, cluster.Client, cfg)
	Expect(err).NotTo(HaveOccurred())
	return &journey{spec: spec, ns: ns, cfg: key, emu: emu, invites: map[string]int{},
		c: idpClient{base: mgr.SCIMURL + cfg.Status.BasePath, token: tok, agent: agent, ctype: ctype}}
}

// requestReconcile asks for a pass over the config's members (Docker Hub tells nobody
// that an invitation was accepted: the operator finds out when it looks).
func (j *journey) requestReconcile() {
	mustKubectl("annotate", "-n", j.ns, "scimconfig", j.cfg.Name, "--overwrite",
		scimv1.AnnotationReconcile+"="+time.Now().UTC().Format(time.RFC3339Nano))
}

// kubeJourney sets up an own config for a kubernetes journey.
func kubeJourney(spec, agent, ctype string) *journey {
	ns, cfg, tok := ownConfig("0s")
	return &journey{spec: spec, ns: ns, cfg: client.ObjectKeyFromObject(cfg),
		c:     idpClient{base: mgr.SCIMURL + cfg.Status.BasePath, token: tok, agent: agent, ctype: ctype},
		roles: access.RolesOf(cfg), invites: map[string]int{}}
}

func filterQuery(attr, value string, extra string) string {
	return "/Users?filter=" + url.QueryEscape(fmt.Sprintf(`%s eq "%s"`, attr, value)) + extra
}

const (
	patchSchema = `"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]`
	userSchema  = `"urn:ietf:params:scim:schemas:core:2.0:User"`
	groupSchema = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]`
)

var _ = Describe("IdP journeys, end to end", Label(faultsLabel), func() {
	It("Okta: test connection, full sync, profile pushes, a rename, deactivation, reactivation, group push, group deletion", func() {
		n := faultsUsers()
		j := kubeJourney("okta-journey", "Okta SCIM Client 1.0.0", "application/json; charset=utf-8")

		By("Test Connector Configuration")
		Expect(total(j.c.must(200, "GET", "/Users?startIndex=1&count=2", ""))).To(BeZero())
		Expect(total(j.c.must(200, "GET", "/Groups?startIndex=1&count=100", ""))).To(BeZero())

		By(fmt.Sprintf("a full sync of %d people: lookup, then create", n))
		start := time.Now()
		j.sync(n, func(u string) string { return filterQuery("userName", u, "&startIndex=1&count=100") }, func(p *person) string {
			return fmt.Sprintf(`{"schemas":[%s],"userName":%q,"name":{"givenName":"P","familyName":"%03d"},
				"emails":[{"primary":true,"value":%q,"type":"work"}],"displayName":"P %03d","locale":"en-US",
				"externalId":%q,"groups":[],"password":"1mz050nq","active":true}`, userSchema, p.userName, p.i, p.email, p.i, p.externalID)
		})
		j.kubeSettle("the full sync")
		syncTook := time.Since(start)
		j.importAll(100)
		// an upper-cased lookup finds the same person (userName is case-insensitive)
		out := j.c.must(200, "GET", filterQuery("userName", strings.ToUpper(j.person(0).userName), "&startIndex=1&count=100"), "")
		Expect(total(out)).To(Equal(1))
		Expect(out["Resources"].([]any)[0].(map[string]any)["id"]).To(Equal(j.person(0).id))

		By("profile pushes: GET, then PUT of the whole object echoing what Okta does not map")
		put := func(p *person, edit func(u map[string]any)) {
			u := j.c.must(200, "GET", "/Users/"+p.id, "")
			edit(u)
			raw, err := jsonString(u)
			Expect(err).NotTo(HaveOccurred())
			j.c.must(200, "PUT", "/Users/"+p.id, raw)
		}
		for _, p := range j.some(func(i int) bool { return i%3 == 0 }) {
			p.familyName = fmt.Sprintf("Pushed-%03d", p.i)
			put(p, func(u map[string]any) {
				u["name"].(map[string]any)["familyName"] = p.familyName
				u["title"] = "Engineer"
			})
		}

		By("a rename: the userName changes in Okta")
		renamed := j.person(1)
		renamed.former = append(renamed.former, renamed.userName)
		renamed.userName = "renamed." + renamed.userName
		put(renamed, func(u map[string]any) { u["userName"] = renamed.userName })

		By("deactivating every fifth person (PATCH without a path)")
		patchActive := func(p *person, active bool) {
			p.active = active
			j.c.must(200, "PATCH", "/Users/"+p.id, fmt.Sprintf(`{%s,"Operations":[{"op":"replace","value":{"active":%v}}]}`, patchSchema, active))
		}
		for _, p := range j.some(func(i int) bool { return i%5 == 4 }) {
			patchActive(p, false)
		}
		j.kubeSettle("profile pushes, a rename, deactivations")
		for _, p := range j.some(func(i int) bool { return i%3 == 0 }) {
			got := j.c.must(200, "GET", "/Users/"+p.id, "")
			Expect(got["name"].(map[string]any)["familyName"]).To(Equal(p.familyName))
		}
		Expect(mustKubectl("get", "orgmember", "-n", j.ns, j.person(0).id, "-o", "jsonpath={.spec.name.familyName}")).To(Equal(j.person(0).familyName))
		Expect(canListPods(renamed.userName)).To(Equal("yes"))
		Expect(canListPods(renamed.former[0])).To(Equal("no"), "the old userName lost access in the rename")
		Expect(canListPods(j.person(4).userName)).To(Equal("no"), "deactivated")
		out = j.c.must(200, "GET", filterQuery("userName", j.person(4).userName, "&startIndex=1&count=100"), "")
		Expect(out["Resources"].([]any)[0].(map[string]any)["active"]).To(BeFalse(), "a deactivated person is still found, inactive")

		By("reactivating half of them")
		for _, p := range j.some(func(i int) bool { return i%10 == 4 }) {
			patchActive(p, true)
		}

		By("Push Groups: a group with members")
		g := &jgroup{displayName: "eng-" + j.ns, members: map[string]bool{}}
		var mems []string
		for _, p := range j.people[:min(10, n)] {
			if p.live() {
				mems = append(mems, fmt.Sprintf(`{"value":%q,"display":%q}`, p.id, p.userName))
				g.members[p.id] = true
			}
		}
		out = j.c.must(201, "POST", "/Groups", fmt.Sprintf(`{%s,"displayName":%q,"members":[%s]}`, groupSchema, g.displayName, strings.Join(mems, ",")))
		g.id = out["id"].(string)
		j.groups = append(j.groups, g)
		j.kubeSettle("reactivations and a pushed group")
		Expect(canListPods(j.person(4).userName)).To(Equal("yes"), "reactivated")
		Expect(canListPods("probe."+j.ns+"@example.com", access.TeamName(g.displayName))).To(Equal("yes"), "the team's Group is bound")
		Expect(strings.Fields(mustKubectl("get", "orgmembers", "-n", j.ns, "-l", scimv1.LabelGroupPrefix+g.id, "-o", "name"))).To(HaveLen(len(g.members)))

		By("a later push renames the group (Okta's id in the value) and removes a member")
		g.formerTeams = append(g.formerTeams, access.TeamName(g.displayName))
		g.displayName = "acme:ops-" + j.ns
		j.c.must(200, "PATCH", "/Groups/"+g.id, fmt.Sprintf(`{%s,"Operations":[{"op":"replace","value":{"id":%q,"displayName":%q}}]}`, patchSchema, g.id, g.displayName))
		j.c.must(200, "PATCH", "/Groups/"+g.id, fmt.Sprintf(`{%s,"Operations":[{"op":"remove","path":"members[value eq \"%s\"]"}]}`, patchSchema, j.person(0).id))
		delete(g.members, j.person(0).id)
		got := j.c.must(200, "GET", "/Groups/"+g.id, "")
		Expect(got["members"]).To(HaveLen(len(g.members)))
		j.kubeSettle("the group renamed")

		By("deleting the pushed group (Okta never deletes users: deactivation is its deletion)")
		j.c.must(204, "DELETE", "/Groups/"+g.id, "")
		g.deleted = true
		converge := j.kubeSettle("the group deleted")

		By("the access invariant: who holds the role = who the policies allow")
		Expect(j.kubeCheck()).To(BeEmpty())
		j.kubeFigures(converge, fmt.Sprintf("sync=%s", syncTook.Round(100*time.Millisecond)))
	})
	It("Entra ID: test connection, initial cycle, dotted PATCHes, a rename, soft delete, restore, group with batched members, hard delete", func() {
		n := faultsUsers()
		j := kubeJourney("entra-journey", "", "application/scim+json")

		By("Test Connection: a filter for a user that cannot exist")
		Expect(total(j.c.must(200, "GET", filterQuery("userName", "non-existent user 8d0a3e62-0d4e-4f7e-a43f-5b5a1e1f5d9f", ""), ""))).To(BeZero())

		By(fmt.Sprintf("the initial cycle over %d people: lookup by externalId or userName, then create", n))
		start := time.Now()
		j.sync(n, func(u string) string { return filterQuery("userName", u, "") }, func(p *person) string {
			return fmt.Sprintf(`{"schemas":[%s,"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
				"externalId":%q,"userName":%q,"active":true,
				"emails":[{"primary":true,"type":"work","value":%q}],"meta":{"resourceType":"User"},
				"name":{"formatted":"P %03d","familyName":"%03d","givenName":"P"},"roles":[],
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Platform"}}`,
				userSchema, p.externalID, p.userName, p.email, p.i, p.i)
		})
		j.kubeSettle("the initial cycle")
		syncTook := time.Since(start)
		for _, p := range j.some(func(i int) bool { return i%7 == 0 }) {
			out := j.c.must(200, "GET", filterQuery("externalId", p.externalID, ""), "")
			Expect(total(out)).To(Equal(1), "Entra matches by externalId too")
			Expect(out["Resources"].([]any)[0].(map[string]any)["id"]).To(Equal(p.id))
		}

		By("profile updates: path-less Replace with dotted and extension keys, and a value-filtered path")
		for _, p := range j.some(func(i int) bool { return i%3 == 0 }) {
			p.familyName = fmt.Sprintf("Updated-%03d", p.i)
			p.email = fmt.Sprintf("p%03d.work.%s@example.com", p.i, j.ns)
			j.c.must(200, "PATCH", "/Users/"+p.id, fmt.Sprintf(`{%s,"Operations":[
				{"op":"Replace","value":{"name.givenName":"Q","name.familyName":%q,
				 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"SRE"}},
				{"op":"Replace","path":"emails[type eq \"work\"].value","value":%q}]}`, patchSchema, p.familyName, p.email))
		}

		By("a rename: the userPrincipalName changes")
		renamed := j.person(2)
		renamed.former = append(renamed.former, renamed.userName)
		renamed.userName = "renamed." + renamed.userName
		j.c.must(200, "PATCH", "/Users/"+renamed.id, fmt.Sprintf(`{%s,"Operations":[{"op":"Replace","path":"userName","value":%q}]}`, patchSchema, renamed.userName))

		By("soft delete of every fifth person: active as the string \"False\"")
		setActive := func(p *person, active bool) {
			p.active = active
			v := "False"
			if active {
				v = "True"
			}
			j.c.must(200, "PATCH", "/Users/"+p.id, fmt.Sprintf(`{%s,"Operations":[{"op":"Replace","path":"active","value":%q}]}`, patchSchema, v))
		}
		for _, p := range j.some(func(i int) bool { return i%5 == 4 }) {
			setActive(p, false)
		}
		j.kubeSettle("profile updates, a rename, soft deletes")
		for _, p := range j.some(func(i int) bool { return i%3 == 0 }) {
			got := j.c.must(200, "GET", "/Users/"+p.id, "")
			Expect(got["name"].(map[string]any)["familyName"]).To(Equal(p.familyName))
			Expect(got["emails"]).To(ContainElement(HaveKeyWithValue("value", p.email)))
		}
		got := j.c.must(200, "GET", "/Users/"+j.person(4).id, "")
		Expect(got["active"]).To(BeFalse(), "a soft-deleted user is still returned by GET")
		Expect(canListPods(renamed.userName)).To(Equal("yes"))
		Expect(canListPods(renamed.former[0])).To(Equal("no"), "the old userName lost access in the rename")
		Expect(canListPods(j.person(4).userName)).To(Equal("no"), "soft-deleted")

		By("restoring half of them within 30 days")
		for _, p := range j.some(func(i int) bool { return i%10 == 4 }) {
			setActive(p, true)
		}

		By("a group: lookup by displayName, create without members, members added in batches")
		g := &jgroup{displayName: "platform-" + j.ns, members: map[string]bool{}}
		Expect(total(j.c.must(200, "GET", "/Groups?filter="+url.QueryEscape(fmt.Sprintf(`displayName eq "%s"`, g.displayName))+"&excludedAttributes=members", ""))).To(BeZero())
		out := j.c.must(201, "POST", "/Groups", fmt.Sprintf(`{%s,"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-%012d","displayName":%q,"members":[]}`, groupSchema, 1, g.displayName))
		g.id = out["id"].(string)
		j.groups = append(j.groups, g)
		var batch []string
		flush := func() {
			if len(batch) > 0 {
				j.c.must(200, "PATCH", "/Groups/"+g.id, fmt.Sprintf(`{%s,"Operations":[{"op":"Add","path":"members","value":[%s]}]}`, patchSchema, strings.Join(batch, ",")))
				batch = nil
			}
		}
		for _, p := range j.people[:min(12, n)] {
			batch = append(batch, fmt.Sprintf(`{"$ref":null,"value":%q}`, p.id))
			g.members[p.id] = true
			if len(batch) == 5 {
				flush()
			}
		}
		flush()
		j.c.must(200, "PATCH", "/Groups/"+g.id, fmt.Sprintf(`{%s,"Operations":[{"op":"Remove","path":"members","value":[{"value":%q}]}]}`, patchSchema, j.person(0).id))
		delete(g.members, j.person(0).id)
		got = j.c.must(200, "GET", "/Groups/"+g.id+"?excludedAttributes=members", "")
		Expect(got).NotTo(HaveKey("members"))
		Expect(j.c.must(200, "GET", "/Groups/"+g.id, "")["members"]).To(HaveLen(len(g.members)))
		j.kubeSettle("restores and a group")
		Expect(canListPods(j.person(4).userName)).To(Equal("yes"), "restored")
		Expect(canListPods("probe."+j.ns+"@example.com", g.displayName)).To(Equal("yes"), "the team's Group is bound")
		Expect(strings.Fields(mustKubectl("get", "orgmembers", "-n", j.ns, "-l", scimv1.LabelGroupPrefix+g.id, "-o", "name"))).To(HaveLen(len(g.members)))

		By("hard delete, some 30 days after the soft delete, of the ones still soft-deleted, and of the group")
		for _, p := range j.some(func(i int) bool { return i%10 == 9 }) {
			j.c.must(204, "DELETE", "/Users/"+p.id, "")
			p.deleted = true
			delete(g.members, p.id)
		}
		j.c.must(204, "DELETE", "/Groups/"+g.id, "")
		g.deleted = true
		converge := j.kubeSettle("hard deletes")
		for _, p := range j.people {
			if p.deleted {
				j.c.must(404, "GET", "/Users/"+p.id, "")
				Expect(canListPods(p.userName)).To(Equal("no"), "hard-deleted")
			}
		}

		By("the access invariant: who holds the role = who the policies allow")
		Expect(j.kubeCheck()).To(BeEmpty())
		j.kubeFigures(converge, fmt.Sprintf("sync=%s", syncTook.Round(100*time.Millisecond)))
	})
	It("OneLogin on Docker Hub: check connection, provisioning, accepted invitations, template PUTs, a rename, suspension, reactivation, group push, deletion", func() {
		n := faultsUsers()
		j := hubJourney("onelogin-dockerhub-journey", "OneLogin SCIM", "application/scim+json; charset=utf-8")
		template := func(p *person, role string) string {
			return fmt.Sprintf(`{"schemas":[%s,"urn:ietf:params:scim:schemas:extension:docker:2.0:User"],
				"userName":%q,"name":{"givenName":"P","familyName":%q},"emails":[{"value":%q,"primary":true}],
				"urn:ietf:params:scim:schemas:extension:docker:2.0:User":{"dockerRole":%q}}`,
				userSchema, p.userName, p.familyName, p.email, role)
		}

		By("checking URL and token")
		Expect(total(j.c.must(200, "GET", "/Users?startIndex=1&count=1", ""))).To(BeZero())

		By(fmt.Sprintf("provisioning %d people: lookup, then the template filled in", n))
		start := time.Now()
		j.sync(n, func(u string) string { return filterQuery("userName", u, "") }, func(p *person) string {
			return template(p, "member")
		})
		for _, p := range j.people {
			j.invited(p.email)
		}
		j.hubSettle("the invitations")
		syncTook := time.Since(start)
		j.importAll(50)

		By("every third person accepts the invitation")
		for _, p := range j.some(func(i int) bool { return i%3 == 0 }) {
			p.dockerID = fmt.Sprintf("dkr%03d", p.i)
			Expect(j.emu.AcceptInvite(p.email, p.dockerID)).To(Succeed())
		}
		j.requestReconcile()
		j.hubSettle("accepted invitations")

		By("profile pushes: the template PUT without active, some with dockerRole editor")
		for _, p := range j.some(func(i int) bool { return i%4 == 0 }) {
			p.familyName = "Smith"
			j.c.must(200, "PUT", "/Users/"+p.id, template(p, "editor"))
		}

		By("renames: a person who joined and one still invited get a new userName and email")
		for _, p := range []*person{j.person(3), j.person(1)} {
			p.former = append(p.former, p.userName, p.email)
			p.userName = "renamed." + p.userName
			p.email = p.userName
			p.dockerID = "" // the old Docker ID leaves; the new address is invited
			j.invited(p.email)
			j.c.must(200, "PUT", "/Users/"+p.id, template(p, "member"))
		}

		By("suspending every fifth person")
		setActive := func(p *person, active bool) {
			p.active = active
			j.c.must(200, "PATCH", "/Users/"+p.id, fmt.Sprintf(`{%s,"Operations":[{"op":"replace","path":"active","value":%v}]}`, patchSchema, active))
		}
		for _, p := range j.some(func(i int) bool { return i%5 == 4 }) {
			setActive(p, false)
			p.dockerID = "" // removed from the organization
		}
		j.hubSettle("profile pushes, renames, suspensions")
		if n > 12 {
			m, ok := j.emu.Member(j.person(12).dockerID)
			Expect(ok).To(BeTrue())
			Expect(m.Role).To(Equal("editor"), "dockerRole editor reached the organization")
		}
		Expect(j.emu.IsMember("dkr003")).To(BeFalse(), "the renamed person's old Docker ID left")

		By("reactivating half of the suspended: invited again")
		for _, p := range j.some(func(i int) bool { return i%10 == 4 }) {
			setActive(p, true)
			j.invited(p.email)
		}

		By("group push: acme:platform with its members")
		g := &jgroup{displayName: "acme:platform", members: map[string]bool{}}
		var mems []string
		for _, p := range j.people[:min(10, n)] {
			mems = append(mems, fmt.Sprintf(`{"value":%q}`, p.id))
			g.members[p.id] = true
		}
		out := j.c.must(201, "POST", "/Groups", fmt.Sprintf(`{%s,"displayName":%q,"members":[%s]}`, groupSchema, g.displayName, strings.Join(mems, ",")))
		g.id = out["id"].(string)
		j.groups = append(j.groups, g)
		j.hubSettle("reactivations and the team")
		t, ok := j.emu.Team("platform")
		Expect(ok).To(BeTrue())
		Expect(t.Members).To(ContainElement(Equal("dkr000")), "a member who joined is in the team")

		By("OneLogin replaces the member list with PUT")
		j.c.must(200, "PUT", "/Groups/"+g.id, fmt.Sprintf(`{%s,"displayName":%q,"members":[]}`, groupSchema, g.displayName))
		g.members = map[string]bool{}
		j.hubSettle("the team emptied")

		By("deletion (the Delete setting): the still suspended people, and the group")
		for _, p := range j.some(func(i int) bool { return i%10 == 9 }) {
			j.c.must(204, "DELETE", "/Users/"+p.id, "")
			p.deleted = true
		}
		j.c.must(204, "DELETE", "/Groups/"+g.id, "")
		g.deleted = true
		converge := j.hubSettle("deletions")

		By("the access invariant: who is in the organization = who the policies allow")
		Expect(j.hubCheck()).To(BeEmpty())
		j.hubFigures(converge, fmt.Sprintf("sync=%s", syncTook.Round(100*time.Millisecond)))
	})
})

// jsonString marshals v.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
