package main

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend/dockerhub"
	"github.com/scim-operator/scim-operator/internal/devenv"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// dockerHub measures drift repair against the Docker Hub emulator at its rate limit: for
// each size, an organization whose people are already members in Docker Hub when their
// OrgMembers appear, adopted (spec.policies.adoption: Adopt), then
//   - in steady state, the calls an interval costs and how long a whole pass (page 1 to
//     the last page, found in the emulator's log) takes;
//   - drift: -hub-drift members removed by hand in Docker Hub, and the time and calls until
//     every one of them is invited back.
//
// With -hub-groups, the members are shared out among that many OrgGroups, each syncing a
// team that already holds its members: the steady state then shows that groups cost the
// teams' listing (a page per 100 teams), not calls per group.
func (b *bench) dockerHub(ctx context.Context) error {
	h := b.hub
	if h == nil {
		if len(b.o.hubSizes) == 0 {
			return nil
		}
		var err error
		if h, err = b.startHub(ctx, say); err != nil {
			return err
		}
		b.hub = h
	}
	from := 0
	if h.beside != nil { // the first size's steady state ran beside the kubernetes steps
		say("  Docker Hub organization of %d members: waiting for its steady state, measured beside the steps above", b.o.hubSizes[0])
		if err := b.joinHub(); err != nil {
			return err
		}
		h.say = say // the sizes after the first run here, in the foreground
		if err := b.hubRepair(ctx, h, b.o.hubSizes[0]); err != nil {
			return err
		}
		from = 1
	}
	for _, size := range b.o.hubSizes[from:] {
		if err := b.hubSize(ctx, h, size, b.rep.add, func() {}); err != nil {
			return err
		}
		if err := b.hubRepair(ctx, h, size); err != nil {
			return err
		}
	}
	return nil
}

// hubRun is the Docker Hub step's organization, from one size to the next.
type hubRun struct {
	hub    *devenv.Hub
	groups []*scimv1.OrgGroup
	have   int // people in the organization so far
	// longest is the longest whole drift pass the last steady state saw (0: none)
	longest time.Duration
	say     func(string, ...any)

	// With the first size's steady state beside the kubernetes steps (hubBeside): its
	// rows, kept until joinHub adds them (the table keeps the steps' order), its
	// outcome, and adopted, closed once its people are adopted and its groups synced (or
	// it failed), with adoptedAll telling whether every one of them was Active.
	rows       []row
	beside     chan error
	adopted    chan struct{}
	adoptedAll bool
	cancel     context.CancelFunc
}

func (b *bench) startHub(ctx context.Context, say func(string, ...any)) (*hubRun, error) {
	// Adopt: the people already in the organization are SCIM's from the start, so one of
	// them removed by hand is invited back (adoption off would leave them Preexisting, and
	// SCIM never touches those: the drift row would measure nothing).
	hub, err := devenv.StartHubWith(ctx, b.s.cluster.Client, b.s.ns, devenv.HubOptions{
		RateLimit: b.o.hubRate, ResyncInterval: b.o.hubResync.String(), Adoption: scimv1.AdoptionAdopt})
	if err != nil {
		return nil, err
	}
	if _, err := devenv.WaitReady(ctx, b.s.cluster.Client, hub.Config, 2*time.Minute); err != nil {
		hub.Stop()
		return nil, err
	}
	h := &hubRun{hub: hub, groups: make([]*scimv1.OrgGroup, b.o.hubGroups), say: say}
	for j := range h.groups {
		h.groups[j] = rawGroup(b.s.ns, hub.Config.Name, hub.Emulator.Org()+":"+hubTeam(j))
	}
	return h, nil
}

// hubBeside starts the first Docker Hub size in the background, unless -hub-apart: its
// adoption, its groups and its steady state, whose figures are call counts and waits on
// the resync interval; what it costs the kubernetes steps is a listing or two an
// interval (the drift pass, the steady state's only calls). Its adoption runs while the
// throughput step's members are deleted, which nothing times; their reconciles share the
// controllers' one queue with its people's, so its adoption's time and calls and its
// groups' time count that deletion too (read them as upper bounds), and its steady
// passes run beside the size steps' load. The memory reading after the throughput step
// is taken after the adoption (clearThroughput), so its members are in it, and in no
// size's figure counted from it (the verdicts count from the first reading, and the
// organization beside is in them). The last step, dockerHub, waits for it, then measures
// its drift repair alone.
func (b *bench) hubBeside(ctx context.Context) error {
	h, err := b.startHub(ctx, func(format string, a ...any) { say("  [Docker Hub, beside] "+strings.TrimLeft(format, " "), a...) })
	if err != nil {
		return err
	}
	b.hub = h
	bctx, cancel := context.WithCancel(ctx)
	h.cancel, h.beside, h.adopted = cancel, make(chan error, 1), make(chan struct{})
	var once sync.Once
	adopted := func() { once.Do(func() { close(h.adopted) }) }
	go func() {
		defer adopted()
		h.beside <- b.hubSize(bctx, h, b.o.hubSizes[0], h.keep(bctx), adopted)
	}()
	return nil
}

// keep keeps the rows of the size beside until joinHub adds them, but for a row made
// once ctx ended (the run ended early: stopHub), which is not a figure: a wait cut short
// reads as a timeout, a steady state cut short as no pass seen.
func (h *hubRun) keep(ctx context.Context) func(row) {
	return func(r row) {
		if ctx.Err() == nil {
			h.rows = append(h.rows, r)
		}
	}
}

// joinHub waits for the Docker Hub size running beside (hubBeside) and adds its rows.
func (b *bench) joinHub() error {
	h := b.hub
	err := <-h.beside
	h.cancel()
	h.beside = nil
	for _, r := range h.rows {
		b.rep.add(r)
	}
	return err
}

// stopHub ends the Docker Hub step: its size beside, if the run ends before dockerHub
// waited for it (the rows it made before are still added to the table), then the
// emulator.
func (b *bench) stopHub() {
	h := b.hub
	if h == nil {
		return
	}
	if h.beside != nil {
		h.cancel()
		_ = b.joinHub()
	}
	h.hub.Stop()
}

// hubSize grows the Docker Hub organization to size and measures its adoption, its
// groups and its steady state (dockerHub), adding their rows through add; adopted is
// called once its people are adopted and its groups synced.
func (b *bench) hubSize(ctx context.Context, h *hubRun, size int, add func(row), adopted func()) error {
	emu, cfg, groups, have, say := h.hub.Emulator, h.hub.Config.Name, h.groups, h.have, h.say
	// inGroup is the group of the i-th person, if any
	inGroup := func(i int) (*scimv1.OrgGroup, bool) {
		if len(groups) == 0 {
			return nil, false
		}
		return groups[i%len(groups)], true
	}
	say("  Docker Hub organization of %d members in %d groups (emulator at %d requests a minute, resync %s)",
		size, len(groups), b.o.hubRate, b.o.hubResync)
	for i := have; i < size; i++ {
		emu.AddMember(hubID(i), hubUser(i), "member")
		if len(groups) > 0 {
			emu.AddTeam(hubTeam(i%len(groups)), hubID(i))
		}
	}
	emu.ResetLog() // the adoption's calls, not the previous size's drift repair
	if err := parallel(size-have, 32, func(i int) error {
		m := rawMember(b.s.ns, cfg, hubUser(have+i), true)
		if g, ok := inGroup(have + i); ok {
			m.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
		}
		return b.s.cluster.Client.Create(ctx, m)
	}); err != nil {
		return err
	}
	if have == 0 {
		for _, g := range groups {
			if err := b.s.cluster.Client.Create(ctx, g); err != nil {
				return err
			}
		}
	}
	added := size - have // people whose OrgMembers appear at this size
	h.have = size
	took, ok := b.s.settleOf(ctx, cfg, b.o.settle, size, say)
	h.adoptedAll = ok
	adoption := emu.Requests()
	if err := writeRequests(filepath.Join(b.o.out, fmt.Sprintf("hub-adopt-%d.tsv", size)), adoption); err != nil {
		return err
	}
	res := fmt.Sprintf("all %d Active after %s; %d calls, %.1f per 100 people adopted (%s)", size, took.Round(time.Second),
		len(adoption), 100*float64(len(adoption))/float64(max(1, added)), callShapes(adoption))
	if !ok {
		res = fmt.Sprintf("NOT all Active after -settle %s (%d calls: %s)", b.o.settle, len(adoption), callShapes(adoption))
	}
	// the people were in their teams before SCIM: adopting them takes no one out of one
	takenOut := 0
	for _, r := range adoption {
		if r.Method == "DELETE" && strings.Contains(r.Path, "/groups/") {
			takenOut++
		}
	}
	add(row{Measure: "Docker Hub: members already in the organization adopted", Size: size, Result: res,
		Target: "no one taken out of a team", Verdict: verdict(ok && takenOut == 0),
		Figures: map[string]float64{"settle_s": took.Seconds(), "calls": float64(len(adoption)), "adopted": float64(added),
			"calls_per_100": 100 * float64(len(adoption)) / float64(max(1, added)), "taken_out_of_teams": float64(takenOut)}})
	if len(groups) > 0 {
		// every group synced with its share of the people, each of them in its team, and
		// no group reconcile in flight before the steady state's log starts
		t0 := time.Now()
		err := b.s.groupsSynced(ctx, groups, size, b.o.settle)
		if err == nil {
			err = waitTeamsWhole(ctx, emu, len(groups), size, b.o.settle)
		}
		if err == nil {
			err = groupsQuiet(ctx, emu, 3*time.Second, b.o.settle)
		}
		res := fmt.Sprintf("%d groups synced, each person in their group's team, after %s", len(groups), time.Since(t0).Round(time.Second))
		if err != nil {
			res = err.Error()
		}
		add(row{Measure: "Docker Hub: groups synced with their teams", Size: size, Result: res,
			Target: "within -settle", Verdict: verdict(err == nil), Figures: map[string]float64{"groups": float64(len(groups))}})
	}
	adopted()

	// steady state, nothing changed: watch until a whole pass has been seen and at least
	// two intervals have gone by (a window of one interval opens mid-pass as often as
	// not, and passes are jittered)
	emu.ResetLog()
	pages := (len(emu.Members()) + len(emu.Invites()) + dockerhub.DefaultPageSize - 1) / dockerhub.DefaultPageSize
	teamPages := (len(emu.Teams()) + dockerhub.DefaultPageSize - 1) / dockerhub.DefaultPageSize
	window, passes := watchPasses(ctx, emu.Requests, pages, b.o.hubResync)
	log := emu.Requests()
	if err := writeRequests(filepath.Join(b.o.out, fmt.Sprintf("hub-steady-%d.tsv", size)), log); err != nil {
		return err
	}
	budget := int(float64(b.o.hubRate) * b.o.hubResync.Minutes())
	perInterval := busiest(log, b.o.hubResync)
	longest := time.Duration(0)
	for _, p := range passes {
		longest = max(longest, p.end.Sub(p.start))
	}
	// Nothing changed, so the log holds the drift listing's pages (a pass an interval,
	// at most one more in the window; with groups, the teams' listing too), the
	// config's checks and token exchanges, and nothing else: any other call is a call
	// per member or per group, which the listings are there to avoid. The rate limit
	// alone would not tell (the manager's own limiter keeps every window within the
	// budget, whatever it spends the budget on).
	listing, checks, tokens, other := steadyCalls(log)
	perPass := pages
	if len(groups) > 0 {
		perPass += teamPages
	}
	maxListing := perPass * (int(window/b.o.hubResync) + 2)
	steadyOK := other == 0 && listing <= maxListing
	res = fmt.Sprintf("%d calls in the busiest interval (budget %d): %d listing pages (at most %d: %d a pass, %d of them the %d groups' teams), %d checks, %d token exchanges, %d other; a pass took %s (longest of %d in %s)",
		perInterval, budget, listing, maxListing, perPass, perPass-pages, len(groups), checks, tokens, other,
		longest.Round(time.Millisecond), len(passes), window.Round(time.Second))
	if len(passes) == 0 {
		res = fmt.Sprintf("no whole pass of %d pages in %s (%d calls)", pages, window.Round(time.Second), len(log))
	}
	add(row{Measure: fmt.Sprintf("Docker Hub drift pass, nothing changed (resync %s)", b.o.hubResync), Size: size,
		Result: res, Target: "pages per interval, not calls per member; the pass fits the interval at the rate limit",
		Verdict: verdict(len(passes) > 0 && steadyOK && perInterval <= budget && longest < b.o.hubResync),
		Figures: map[string]float64{"calls_busiest_interval": float64(perInterval), "budget": float64(budget), "pass_s": longest.Seconds(),
			"listing_calls": float64(listing), "max_listing_calls": float64(maxListing), "check_calls": float64(checks),
			"token_calls": float64(tokens), "other_calls": float64(other),
			"pages": float64(pages), "team_pages": float64(perPass - pages), "groups": float64(len(groups)),
			"passes": float64(len(passes))}})
	h.longest = longest
	return ctx.Err() // (a steady state cut short is no ground for a repair)
}

// hubRepair measures the drift repair of the Docker Hub organization at size (dockerHub),
// after its steady state (hubSize): always in the foreground, since the members a pass
// finds wait in the one OrgMember queue behind every other tenant's, and a kubernetes
// step's thousands of creates would be in the figure.
func (b *bench) hubRepair(ctx context.Context, h *hubRun, size int) error {
	emu, cfg, groups, longest := h.hub.Emulator, h.hub.Config.Name, h.groups, h.longest
	// drift: people removed by hand in Docker Hub are invited back
	k := min(b.o.hubDrift, size)
	// A pass under way when the people are removed may have read their page already;
	// the next one starts an interval (+10% jitter) after it ends and finds them; then
	// their re-invitations take a few calls each at the rate limit.
	pass := longest
	if pass == 0 { // no whole pass was seen: the steady row says so; bound by an interval
		pass = b.o.hubResync
	}
	bound := b.o.hubResync*11/10 + 2*pass + 30*time.Second
	emu.ResetLog()
	t0 := time.Now()
	for i := range k {
		emu.RemoveMember(hubID(i))
	}
	repaired := false
	for time.Since(t0) < 2*bound && !repaired && ctx.Err() == nil {
		invited := map[string]bool{}
		for _, inv := range emu.Invites() {
			invited[strings.ToLower(inv.Invitee)] = true
		}
		repaired = true
		for i := range k {
			if !invited[hubUser(i)] && !emu.IsMember(hubID(i)) {
				repaired = false
			}
		}
		if !repaired {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	took := time.Since(t0)
	repair := emu.Requests()
	if err := writeRequests(filepath.Join(b.o.out, fmt.Sprintf("hub-drift-%d.tsv", size)), repair); err != nil {
		return err
	}
	res := fmt.Sprintf("%d removed by hand: all invited back after %s, %d calls (%s)", k, took.Round(time.Second), len(repair), callShapes(repair))
	if !repaired {
		res = fmt.Sprintf("%d removed by hand: NOT all invited back after %s (%d calls: %s)", k, took.Round(time.Second), len(repair), callShapes(repair))
	}
	b.rep.add(row{Measure: "Docker Hub drift repair", Size: size, Result: res,
		Target: fmt.Sprintf("<= interval + 2 passes + 30 s (%s)", bound.Round(time.Second)), Verdict: verdict(repaired && took <= bound),
		Figures: map[string]float64{"repair_s": took.Seconds(), "calls": float64(len(repair)), "drifted": float64(k)}})
	// the removed people come back as members, for the next size's steady state: they
	// accept the invitation (one left pending would count as repaired at the next size
	// before anything happened)
	for i := range k {
		if emu.AcceptInvite(hubUser(i), hubID(i)) != nil {
			emu.AddMember(hubID(i), hubUser(i), "member")
		}
	}
	if _, ok := b.s.settleOf(ctx, cfg, b.o.settle, size, say); !ok {
		return fmt.Errorf("the Docker Hub organization did not settle again after the drift")
	}
	// and their groups put them back in their teams (removing a member takes them out
	// of every team), before the next size's steady state
	if err := waitTeamsWhole(ctx, emu, len(groups), k, b.o.settle); err != nil {
		return err
	}
	return nil
}

// writeRequests writes the emulator's request log, one request a line: when it arrived
// (seconds after the first), method, path, query, status, the Retry-After of a 429.
func writeRequests(path string, log []hubemu.RequestRecord) error {
	log = byArrival(log)
	var sb strings.Builder
	sb.WriteString("received_s\tmethod\tpath\tquery\tstatus\tretry_after_s\n")
	for _, r := range log {
		fmt.Fprintf(&sb, "%.3f\t%s\t%s\t%s\t%d\t%.0f\n", r.Received.Sub(log[0].Received).Seconds(), r.Method, r.Path, r.Query, r.Status, r.RetryAfter.Seconds())
	}
	return os.WriteFile(path, []byte(sb.String()), 0o600)
}

func hubUser(i int) string { return fmt.Sprintf("hub%06d@example.com", i) }

// hubID is the i-th person's Docker ID.
func hubID(i int) string { return fmt.Sprintf("hubuser%06d", i) }

// hubTeam is the j-th group's team.
func hubTeam(j int) string { return fmt.Sprintf("team-%03d", j) }

// groupsQuiet waits until no call about one team (a group's own reconcile) has reached
// the emulator for quiet.
func groupsQuiet(ctx context.Context, emu *hubemu.Emulator, quiet, timeout time.Duration) error {
	return until(ctx, timeout, func() (bool, error) {
		var last time.Time
		for _, r := range emu.Requests() {
			if strings.Contains(r.Path, "/groups/") && r.Received.After(last) {
				last = r.Received
			}
		}
		return time.Since(last) >= quiet, nil
	}, func() error { return fmt.Errorf("the groups still called Docker Hub after -settle %s", timeout) })
}

// waitTeamsWhole waits until each of the first k people is in their group's team (person
// i is in team i mod groups).
func waitTeamsWhole(ctx context.Context, emu *hubemu.Emulator, groups, k int, timeout time.Duration) error {
	if groups == 0 {
		return nil
	}
	return until(ctx, timeout, func() (bool, error) {
		for i := range k {
			t, _ := emu.Team(hubTeam(i % groups))
			if !slices.ContainsFunc(t.Members, func(m string) bool { return strings.EqualFold(m, hubID(i)) }) {
				return false, nil
			}
		}
		return true, nil
	}, func() error {
		return fmt.Errorf("not each of %d people was in their group's team within -settle %s", k, timeout)
	})
}

// until asks cond every 200 ms until it holds (or fails), and answers timedOut() once
// timeout has passed.
func until(ctx context.Context, timeout time.Duration, cond func() (bool, error), timedOut func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok || err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return timedOut()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// busiest is the most requests log holds in any window of length d, by arrival.
func busiest(log []hubemu.RequestRecord, d time.Duration) int {
	log = byArrival(log)
	most, j := 0, 0
	for i := range log {
		for log[i].Received.Sub(log[j].Received) >= d {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// steadyCalls sorts a steady state's log (nothing changed in the organization): the drift
// listings' pages (members with invites=true, and the teams), the config's checks (a
// members page of one), token exchanges, and the rest, which a steady state should not
// make.
func steadyCalls(log []hubemu.RequestRecord) (listing, checks, tokens, other int) {
	for _, r := range log {
		q, _ := url.ParseQuery(r.Query)
		members := r.Method == "GET" && strings.HasSuffix(r.Path, "/members")
		teams := r.Method == "GET" && strings.HasSuffix(r.Path, "/groups") // the listing, not a team's own path
		switch {
		case members && q.Get("invites") == "true" && q.Get("search") == "":
			listing++
		case teams && q.Get("search") == "":
			listing++
		case members && q.Get("page_size") == "1" && q.Get("search") == "":
			checks++
		case strings.HasSuffix(r.Path, "/auth/token"):
			tokens++
		default:
			other++
		}
	}
	return listing, checks, tokens, other
}

// callShapes counts a log's calls by shape, most first: method, path with its names
// replaced by {} (organization, team, person, invite), and the query's keys other than
// paging ("GET /v2/orgs/{}/members?invites,type: 101"), so that a call per person shows
// beside the listing's pages.
func callShapes(log []hubemu.RequestRecord) string {
	count := map[string]int{}
	for _, r := range log {
		parts := strings.Split(strings.Trim(r.Path, "/"), "/")
		for i := 1; i < len(parts); i++ {
			switch parts[i-1] {
			case "orgs", "groups", "members", "invites", "users":
				parts[i] = "{}"
			}
		}
		shape := r.Method + " /" + strings.Join(parts, "/")
		q, _ := url.ParseQuery(r.Query)
		var keys []string
		for k := range q {
			if k != "page" && k != "page_size" {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			slices.Sort(keys)
			shape += "?" + strings.Join(keys, ",")
		}
		count[shape]++
	}
	shapes := slices.Collect(maps.Keys(count))
	slices.SortFunc(shapes, func(a, b string) int {
		if c := count[b] - count[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	words := make([]string, len(shapes))
	for i, sh := range shapes {
		words[i] = fmt.Sprintf("%s: %d", sh, count[sh])
	}
	return strings.Join(words, ", ")
}

// hubPass is one whole drift listing in the emulator's log.
type hubPass struct{ start, end time.Time }

// watchPasses polls the emulator's log until it holds a whole pass and at least two
// intervals have gone by (four at most), and returns how long it watched and the passes.
func watchPasses(ctx context.Context, log func() []hubemu.RequestRecord, pages int, interval time.Duration) (time.Duration, []hubPass) {
	t0 := time.Now()
	for ctx.Err() == nil {
		passes := listingPasses(log(), pages)
		if w := time.Since(t0); (len(passes) > 0 && w >= 2*interval) || w >= 4*interval {
			return w, passes
		}
		time.Sleep(500 * time.Millisecond)
	}
	return time.Since(t0), nil
}

// listingPasses finds the whole drift listings in log: the organization's members listed
// with invites=true from page 1 through page pages, in order (a page that failed and was
// asked again counts once). A run that starts mid-listing (the log was reset during a
// pass) or stops before the last page is not a pass.
func listingPasses(log []hubemu.RequestRecord, pages int) []hubPass {
	log = byArrival(log)
	var out []hubPass
	var cur hubPass
	next := 0 // the page the run under way wants next; 0: no run
	for _, r := range log {
		q, err := url.ParseQuery(r.Query)
		if err != nil || r.Method != "GET" || !strings.HasSuffix(r.Path, "/members") || q.Get("invites") != "true" {
			continue
		}
		page := 1
		if v := q.Get("page"); v != "" {
			if page, err = strconv.Atoi(v); err != nil {
				continue
			}
		}
		switch {
		case page == 1 && next != 1:
			// a run starts at its first ask of page 1, whatever the answer (a page 1
			// that failed and was asked again is part of the pass's time)
			cur, next = hubPass{start: r.Received}, 1
		case next > 0 && page == next:
		default:
			next = 0
			continue
		}
		if r.Status != 200 {
			continue // asked again next
		}
		if next++; next > pages {
			cur.end = r.Answered
			out = append(out, cur)
			next = 0
		}
	}
	return out
}

// byArrival is log in the order its requests arrived (the emulator logs each request when
// it has answered it, so requests that overlapped may be out of order).
func byArrival(log []hubemu.RequestRecord) []hubemu.RequestRecord {
	out := slices.Clone(log)
	slices.SortStableFunc(out, func(a, b hubemu.RequestRecord) int { return a.Received.Compare(b.Received) })
	return out
}
