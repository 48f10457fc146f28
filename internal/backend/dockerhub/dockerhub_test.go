package dockerhub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/metrics"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

type env struct {
	emu   *hubemu.Emulator
	b     *Backend
	clock *hubemu.Clock
	v     *hubemu.Validator
}

var orgSeq int

// setup starts an emulator for a fresh organization, with the OpenAPI validator on
// when the file is present, and a backend pointed at it sharing the emulator's clock.
func setup(t testing.TB, tweak ...func(*hubemu.Options, *Options)) *env {
	t.Helper()
	orgSeq++
	org := fmt.Sprintf("org%d%s", orgSeq, strings.ToLower(strings.ReplaceAll(t.Name(), "/", "")))
	if len(org) > 40 {
		org = org[:40]
	}
	clock := hubemu.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	v := hubemu.OptionalValidator(t)
	eo := hubemu.Options{Org: org, Now: clock.Now, Middleware: v.Middleware}
	bo := Options{Org: org, AccessToken: hubemu.DefaultToken, Now: clock.Now,
		Limiter: rate.NewLimiter(rate.Inf, 1), Timeout: 5 * time.Second}
	if tt, ok := t.(*testing.T); ok {
		bo.Log = testr.NewWithOptions(tt, testr.Options{Verbosity: 0})
	}
	for _, f := range tweak {
		f(&eo, &bo)
	}
	emu := hubemu.New(eo).Start()
	t.Cleanup(emu.Close)
	bo.BaseURL = emu.URL()
	b, err := New(bo)
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, b: b, clock: clock, v: v}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustClass(t *testing.T, err error, class backend.Class, reason, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s %s error, got nil", class, reason)
	}
	if backend.ClassOf(err) != class || backend.ReasonOf(err) != reason || !strings.Contains(err.Error(), text) {
		t.Fatalf("want %s/%s containing %q, got %s/%s: %v", class, reason, text, backend.ClassOf(err), backend.ReasonOf(err), err)
	}
	if strings.Contains(err.Error(), hubemu.DefaultToken) || strings.Contains(err.Error(), "<html") {
		t.Fatalf("error leaks a secret or HTML: %v", err)
	}
}

// TestMemberAndTeamLifecycle walks the whole contract: invite once, accept, role change
// in place, teams, removal, idempotency of every step.
func TestMemberAndTeamLifecycle(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	b := e.b
	if err := b.Check(c); err != nil {
		t.Fatal(err)
	}
	m, err := b.ObserveMember(c, "Ann@Corp.example")
	if err != nil || m.State != backend.StateAbsent {
		t.Fatalf("observe absent: %+v %v", m, err)
	}
	m, err = b.EnsureMember(c, backend.DesiredMember{UserName: "Ann@Corp.example", Role: "editor"})
	if err != nil || m.State != backend.StateInvited || m.InviteID == "" || m.Role != "editor" {
		t.Fatalf("invite: %+v %v", m, err)
	}
	// Again, with other casing: the pending invite is found, nobody is re-invited.
	m2, err := b.EnsureMember(c, backend.DesiredMember{UserName: "ann@corp.EXAMPLE", Role: "owner"})
	if err != nil || m2.State != backend.StateInvited || m2.InviteID != m.InviteID || m2.Role != "editor" {
		t.Fatalf("second ensure: %+v %v", m2, err)
	}
	if n := e.emu.Count("POST", "/v2/invites/bulk"); n != 1 {
		t.Fatalf("bulk invite posted %d times", n)
	}
	list, err := b.ListMembers(c)
	if err != nil || len(list) != 2 || list[1].State != backend.StateInvited || list[1].Email != "Ann@Corp.example" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := b.EnsureTeamMember(c, "devs", ""); err == nil {
		t.Fatal("an invitee without Docker ID joined a team")
	}

	if err := e.emu.AcceptInvite("ann@corp.example", "ann"); err != nil {
		t.Fatal(err)
	}
	m, err = b.EnsureMember(c, backend.DesiredMember{UserName: "Ann@Corp.example", Role: "member"})
	if err != nil || m.State != backend.StateMember || m.BackendID != "ann" || m.Role != "member" {
		t.Fatalf("after accept: %+v %v", m, err)
	}
	if got, _ := e.emu.Member("ann"); got.Role != "member" || e.emu.Count("PUT", "/v2/orgs/"+e.emu.Org()+"/members/ann") != 1 {
		t.Fatalf("role not changed in place: %+v", got)
	}

	// Teams, by name and by the SCIM "org:team" form.
	team := e.emu.Org() + ":devs"
	if tm, err := b.ObserveTeam(c, team); err != nil || tm != nil {
		t.Fatalf("observe missing team: %+v %v", tm, err)
	}
	for range 2 {
		if err := b.EnsureTeam(c, team); err != nil {
			t.Fatal(err)
		}
		if err := b.EnsureTeamMember(c, "devs", "ann"); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.emu.Count("POST", "/v2/orgs/"+e.emu.Org()+"/groups"); n != 1 {
		t.Fatalf("team created %d times", n)
	}
	if n := e.emu.Count("POST", "/v2/orgs/"+e.emu.Org()+"/groups/devs/members"); n != 1 {
		t.Fatalf("team member added %d times", n)
	}
	tm, err := b.ObserveTeam(c, "devs")
	if err != nil || tm == nil || tm.Name != "devs" || len(tm.Members) != 1 || tm.Members[0] != "ann" {
		t.Fatalf("observe team: %+v %v", tm, err)
	}
	m, _ = b.ObserveMember(c, "ann")
	if len(m.Teams) != 1 || m.Teams[0] != "devs" {
		t.Fatalf("member teams: %+v", m)
	}
	err = b.EnsureTeamMember(c, "nope", "ann")
	mustClass(t, err, backend.Permanent, "TeamNotFound", `team "nope"`)
	err = b.EnsureTeam(c, "not a valid name!")
	mustClass(t, err, backend.Permanent, "InvalidTeam", "Enter a valid team name")
	_, err = b.ObserveTeam(c, "other:devs")
	mustClass(t, err, backend.Permanent, "InvalidTeam", `belongs to organization "other"`)

	for range 2 {
		if err := b.EnsureTeamMemberAbsent(c, "devs", "ann"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.EnsureTeamMember(c, "devs", "ann"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.EnsureMemberAbsent(c, "ANN@corp.example"); err != nil {
			t.Fatal(err)
		}
	}
	if e.emu.IsMember("ann") {
		t.Fatal("still a member")
	}
	if tv, _ := e.emu.Team("devs"); len(tv.Members) != 0 {
		t.Fatalf("removed member still in team: %+v", tv)
	}
	for range 2 {
		if err := b.EnsureTeamAbsent(c, "devs"); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := e.emu.Team("devs"); ok {
		t.Fatal("team not deleted")
	}
	// Reactivation re-adds: a new invitation.
	m, err = b.EnsureMember(c, backend.DesiredMember{UserName: "ann@corp.example"})
	if err != nil || m.State != backend.StateInvited || m.Role != "member" {
		t.Fatalf("re-add: %+v %v", m, err)
	}
	if reqs, resps := e.v.Checked(); e.v != nil && (reqs < 30 || resps < 30) {
		t.Fatalf("validator saw only %d requests / %d responses", reqs, resps)
	}
	if got := testutil.ToFloat64(metrics.BackendCalls.WithLabelValues(BackendName, "EnsureMember", metrics.ResultSuccess)); got < 4 {
		t.Fatalf("EnsureMember success counter = %v", got)
	}
}

func TestPendingInviteCancelledByID(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	m, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: "bob@corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.EnsureMemberAbsent(c, "BOB@corp.example"); err != nil {
		t.Fatal(err)
	}
	if len(e.emu.Invites()) != 0 || e.emu.Count("DELETE", "/v2/invites/"+m.InviteID) != 1 {
		t.Fatalf("invite not cancelled by id: %+v", e.emu.Invites())
	}
	// An invite that expired meanwhile: nothing to do, no error.
	m, _ = e.b.EnsureMember(c, backend.DesiredMember{UserName: "bob@corp.example"})
	e.emu.ExpireInvite(m.InviteID)
	if err := e.b.EnsureMemberAbsent(c, "bob@corp.example"); err != nil {
		t.Fatal(err)
	}
}

func TestExistingMembersAreNotInvited(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	e.emu.AddMember("carol", "Carol@Corp.example", "owner")
	m, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: "carol@corp.example", Role: "owner"})
	if err != nil || m.State != backend.StateMember || m.BackendID != "carol" || m.Role != "owner" {
		t.Fatalf("%+v %v", m, err)
	}
	// A Docker ID userName with an email: found by either.
	e.emu.AddMember("dave", "dave@corp.example", "member")
	m, err = e.b.EnsureMember(c, backend.DesiredMember{UserName: "DAVE", Email: "dave@corp.example"})
	if err != nil || m.State != backend.StateMember || m.BackendID != "dave" {
		t.Fatalf("%+v %v", m, err)
	}
	if n := e.emu.Count("POST", "/v2/invites/bulk"); n != 0 {
		t.Fatalf("members were invited %d times", n)
	}
	// Review 20 F6: the invitations' listing is unpaged and grows with the organization; a
	// member found needs none of it, to be observed or ensured.
	if _, err := e.b.ObserveMember(c, "carol@corp.example"); err != nil {
		t.Fatal(err)
	}
	if n := e.emu.Count("GET", "/v2/orgs/"+e.emu.Org()+"/invites"); n != 0 {
		t.Fatalf("the invitations were listed %d times to observe or ensure members", n)
	}
	// A Docker account that is not a member yet is invited by its Docker ID.
	e.emu.AddAccount("erin", "erin@elsewhere.example")
	m, err = e.b.EnsureMember(c, backend.DesiredMember{UserName: "erin"})
	if err != nil || m.State != backend.StateInvited {
		t.Fatalf("%+v %v", m, err)
	}
	_, err = e.b.EnsureMember(c, backend.DesiredMember{UserName: "no such docker id"})
	mustClass(t, err, backend.Permanent, "InvalidUser", `refused to invite "no such docker id"`)
	_, err = e.b.EnsureMember(c, backend.DesiredMember{UserName: "x@corp.example", Role: "admin"})
	mustClass(t, err, backend.Permanent, "InvalidRole", `role "admin" is not member, editor or owner`)
}

// A removal cancels every pending invitation of the person, a member's too: one sent to
// an email before they joined under another (the observation of a member found skips
// the invitations' listing; a removal must not).
func TestRemovalCancelsAMembersOldInvitation(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	if _, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: "fay@corp.example"}); err != nil {
		t.Fatal(err)
	}
	e.emu.AddMember("fay", "fay@home.example", "member")
	if err := e.b.EnsureMemberAbsentWithEmail(c, "fay", "fay@corp.example"); err != nil {
		t.Fatal(err)
	}
	if e.emu.IsMember("fay") || len(e.emu.Invites()) != 0 {
		t.Fatalf("member %v, invitations %+v: want neither", e.emu.IsMember("fay"), e.emu.Invites())
	}
}

func TestLastOwnerIsRefused(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	err := e.b.EnsureMemberAbsent(c, "owner")
	mustClass(t, err, backend.Permanent, "LastOwner", "cannot remove the last owner of the organization")
	_, err = e.b.EnsureMember(c, backend.DesiredMember{UserName: "owner", Role: "member"})
	mustClass(t, err, backend.Permanent, "LastOwner", "cannot demote the last owner")
	if !e.emu.IsMember("owner") {
		t.Fatal("last owner removed")
	}
}

func TestListsTwoThousandMembersAcrossPages(t *testing.T) {
	e := setup(t)
	for i := range 2000 {
		e.emu.AddMember(fmt.Sprintf("user%04d", i), fmt.Sprintf("user%04d@corp.example", i), "member")
	}
	c := ctx(t)
	_, _ = e.b.EnsureMember(c, backend.DesiredMember{UserName: "pending@corp.example"})
	e.emu.ResetLog()
	list, err := e.b.ListMembers(c)
	if err != nil {
		t.Fatal(err)
	}
	members, invited := 0, 0
	seen := map[string]bool{}
	for _, m := range list {
		if seen[m.UserName] {
			t.Fatalf("duplicate %s", m.UserName)
		}
		seen[m.UserName] = true
		switch m.State {
		case backend.StateMember:
			members++
		case backend.StateInvited:
			invited++
		}
	}
	if members != 2001 || invited != 1 {
		t.Fatalf("members %d invited %d", members, invited)
	}
	// 2001 members at 100 a page: 21 pages, each fetched once through its next link.
	reqs := e.emu.Requests()
	pages := 0
	for _, r := range reqs {
		if r.Path == "/v2/orgs/"+e.emu.Org()+"/members" {
			pages++
			if pages > 1 && !strings.Contains(r.Query, fmt.Sprintf("page=%d", pages)) {
				t.Fatalf("page %d fetched as %q", pages, r.Query)
			}
		}
		if r.Status == http.StatusNotFound {
			t.Fatalf("a page answered 404: %+v", r)
		}
	}
	if pages != 21 {
		t.Fatalf("fetched %d pages", pages)
	}
}

// converge retries op the way a controller does, advancing the shared clock by the
// backend's retry hint instead of sleeping.
func converge(t *testing.T, e *env, what string, op func() error) (rateLimited, transient int) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil {
			return
		}
		if attempt > 100 {
			t.Fatalf("%s does not converge: %v", what, err)
		}
		switch backend.ClassOf(err) {
		case backend.RateLimited:
			rateLimited++
			d, _ := backend.RetryAfterOf(err)
			if d <= 0 {
				t.Fatalf("%s: rate limited without a hint: %v", what, err)
			}
			e.clock.Advance(d)
		case backend.Transient:
			transient++
		default:
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// TestStormsConvergeWithoutDuplicateInvites runs 60 people through 429 storms (both
// retry headers), 5xx bursts and HTML gateway pages.
func TestStormsConvergeWithoutDuplicateInvites(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, RetryAfter: 2 * time.Second, Every: 3, Count: 40})
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, LegacyRetryHeader: true, RetryAfter: 3 * time.Second, Every: 5, Count: 20})
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: 503, Every: 4, Count: 30})
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultHTML, Status: 502, Every: 7, Count: 10})
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: 500, Method: "POST", Path: "/v2/invites/bulk", Every: 2, Count: 10})
	var rl, tr int
	for i := range 60 {
		who := fmt.Sprintf("p%02d@corp.example", i)
		r, x := converge(t, e, "invite "+who, func() error {
			_, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: who})
			return err
		})
		rl, tr = rl+r, tr+x
	}
	if rl == 0 || tr == 0 {
		t.Fatalf("the storm did not hit: %d rate limited, %d transient", rl, tr)
	}
	for i := range 60 {
		who := fmt.Sprintf("p%02d@corp.example", i)
		if n := e.emu.InvitesSent(who); n != 1 {
			t.Fatalf("%s got %d invitations", who, n)
		}
	}
	if n := len(e.emu.Invites()); n != 60 {
		t.Fatalf("%d pending invites", n)
	}
	// Then everyone accepts and leaves again through the same weather.
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, Every: 2, Count: 30})
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: 504, Every: 3, Count: 30})
	for i := range 60 {
		who := fmt.Sprintf("p%02d@corp.example", i)
		if i%2 == 0 {
			if err := e.emu.AcceptInvite(who, fmt.Sprintf("p%02d", i)); err != nil {
				t.Fatal(err)
			}
		}
		converge(t, e, "remove "+who, func() error { return e.b.EnsureMemberAbsent(c, who) })
	}
	if len(e.emu.Members()) != 1 || len(e.emu.Invites()) != 0 {
		t.Fatalf("left: %+v %+v", e.emu.Members(), e.emu.Invites())
	}
}

// TestDroppedConnections: an invitation whose answer is lost is not sent again.
func TestDroppedConnections(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultDrop, AfterHandling: true, Method: "POST", Path: "/v2/invites/bulk"})
	_, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: "frank@corp.example"})
	mustClass(t, err, backend.Transient, "BackendUnavailable", "POST /v2/invites/bulk")
	m, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: "frank@corp.example"})
	if err != nil || m.State != backend.StateInvited {
		t.Fatalf("%+v %v", m, err)
	}
	if n := e.emu.InvitesSent("frank@corp.example"); n != 1 {
		t.Fatalf("%d invitations", n)
	}
	// net/http retries an idempotent request once on a reused connection that closed:
	// drop a few in a row so the failure reaches the backend.
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultDrop, Method: "GET", Count: 3})
	_, err = e.b.ListMembers(backend.NoWait(c)) // as a worker sees it: a drift pass asks the page again
	mustClass(t, err, backend.Transient, "BackendUnavailable", "GET /v2/orgs/")
	converge(t, e, "list", func() error { _, err := e.b.ListMembers(c); return err })
}

func TestSlowAnswersTimeOut(t *testing.T) {
	e := setup(t, func(_ *hubemu.Options, o *Options) { o.Timeout = 100 * time.Millisecond })
	c := ctx(t)
	if err := e.b.Check(c); err != nil {
		t.Fatal(err)
	}
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultLatency, Latency: 10 * time.Second, Method: "GET"})
	_, err := e.b.ObserveMember(c, "x@corp.example")
	mustClass(t, err, backend.Transient, "BackendUnavailable", "context deadline exceeded")
	if _, err := e.b.ObserveMember(c, "x@corp.example"); err != nil {
		t.Fatal(err)
	}
}

func TestTokenExpiryAndRefresh(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	if err := e.b.EnsureTeam(c, "t1"); err != nil {
		t.Fatal(err)
	}
	auth := func() int { return e.emu.Count("POST", "/v2/auth/token") }
	if auth() != 1 {
		t.Fatalf("%d token exchanges", auth())
	}
	e.clock.Advance(5 * time.Minute)
	if err := e.b.EnsureTeam(c, "t1"); err != nil || auth() != 1 {
		t.Fatalf("cached token not reused: %d exchanges, %v", auth(), err)
	}
	// Close to exp: refreshed before use, without a 401.
	e.clock.Advance(4*time.Minute + 30*time.Second)
	if err := e.b.EnsureTeam(c, "t1"); err != nil || auth() != 2 || e.emu.CountStatus(401) != 0 {
		t.Fatalf("no proactive refresh: %d exchanges, %d 401s, %v", auth(), e.emu.CountStatus(401), err)
	}
	// Server-side invalidation: one 401, one refresh, one retry.
	e.emu.RevokeTokens()
	if err := e.b.EnsureTeam(c, "t1"); err != nil || auth() != 3 || e.emu.CountStatus(401) != 1 {
		t.Fatalf("no refresh on 401: %d exchanges, %d 401s, %v", auth(), e.emu.CountStatus(401), err)
	}
}

func TestCredentialProblemsArePermanent(t *testing.T) {
	e := setup(t, func(_ *hubemu.Options, o *Options) { o.AccessToken = "dckr_oat_wrong_secret" })
	err := e.b.Check(ctx(t))
	mustClass(t, err, backend.Permanent, "InvalidCredentials", "Incorrect authentication credentials")
	if strings.Contains(err.Error(), "dckr_oat_wrong_secret") {
		t.Fatalf("secret in error: %v", err)
	}
	if n := e.emu.Count("POST", "/v2/auth/token"); n != 1 {
		t.Fatalf("%d token exchanges for one check", n)
	}

	ro := setup(t, func(eo *hubemu.Options, o *Options) {
		eo.Tokens = map[string]hubemu.TokenSpec{"dckr_oat_ro": {ReadOnly: true}}
		o.AccessToken = "dckr_oat_ro"
	})
	if err := ro.b.Check(ctx(t)); err != nil {
		t.Fatal(err)
	}
	err = ro.b.EnsureTeam(ctx(t), "t")
	mustClass(t, err, backend.Permanent, "Forbidden", "You do not have permission")

	// A token that keeps being refused after the one refresh: InvalidCredentials.
	e2 := setup(t)
	e2.emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: 401, Path: "/v2/orgs", Count: 2})
	err = e2.b.Check(ctx(t))
	mustClass(t, err, backend.Permanent, "InvalidCredentials", "401 Unauthorized")
	if n := e2.emu.Count("POST", "/v2/auth/token"); n != 2 {
		t.Fatalf("%d token exchanges, want 2 (first and one refresh)", n)
	}
	_, err = New(Options{Org: "x"})
	mustClass(t, err, backend.Permanent, "InvalidCredentials", "access token is empty")
}

func TestLegacyLogin(t *testing.T) {
	e := setup(t, func(_ *hubemu.Options, o *Options) { o.LegacyLogin = true })
	if err := e.b.Check(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if e.emu.Count("POST", "/v2/users/login") != 1 || e.emu.Count("POST", "/v2/auth/token") != 0 {
		t.Fatal("deprecated login path not used")
	}
}

func TestHTMLAndOddErrorBodies(t *testing.T) {
	e := setup(t)
	c := backend.NoWait(ctx(t)) // the errors as a worker sees them (a drift pass asks a failed page again)
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultHTML, Status: 502, Method: "GET"})
	_, err := e.b.ListMembers(c)
	mustClass(t, err, backend.Transient, "BackendUnavailable", "502 Bad Gateway: HTML error page: 502 Bad Gateway")
	if len(err.Error()) > 300 {
		t.Fatalf("error too long: %v", err)
	}
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, LegacyRetryHeader: true, RetryAfter: 30 * time.Second})
	_, err = e.b.ListMembers(c)
	mustClass(t, err, backend.RateLimited, "RateLimited", "Rate limit exceeded")
	if d, _ := backend.RetryAfterOf(err); d != 30*time.Second {
		t.Fatalf("hint %v", d)
	}
	// While paused, calls fail fast without reaching the service.
	before := len(e.emu.Requests())
	_, err = e.b.ListMembers(c)
	mustClass(t, err, backend.RateLimited, "RateLimited", "slow down")
	if len(e.emu.Requests()) != before {
		t.Fatal("a paused call reached the service")
	}

	for _, tc := range []struct{ ct, body, want string }{
		{"application/json", `{"detail":"d1"}`, "d1"},
		{"application/json", `{"message":"m1"}`, "m1"},
		{"application/json", `{"errinfo":{},"detail":"same","message":"same"}`, "same"},
		{"application/json", `{"fields":{"name":["taken"]},"text":"bad"}`, `bad; name: ["taken"]`},
		{"application/json", `[1,2,3]`, "[1,2,3]"},
		{"text/html", "<html><head><title>404 Not Found</title></head><body>" + strings.Repeat("x", 5000), "HTML error page: 404 Not Found"},
		{"text/plain", strings.Repeat("y", 500), strings.Repeat("y", 120) + "..."},
	} {
		if got := summarize(tc.ct, []byte(tc.body)); got != tc.want {
			t.Errorf("summarize(%.30q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestRetryHints(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{http.Header{"X-Retry-After": {fmt.Sprint(now.Add(42 * time.Second).Unix())}}, 42 * time.Second},
		{http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {fmt.Sprint(now.Add(10 * time.Second).Unix())}}, 10 * time.Second},
		{http.Header{"Retry-After": {"99999"}}, time.Hour},
		{http.Header{}, 0},
	} {
		if got := retryHint(tc.h, now); got != tc.want {
			t.Errorf("retryHint(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestNextLinksAreFollowedAsGiven: a next link to another host is refused, and the
// emulator's absolute links work (a client that prefixed the base URL would get the
// HTML 404 at page two; TestListsTwoThousandMembersAcrossPages checks no 404 came).
func TestNextLinksAreFollowedAsGiven(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v2/auth/token" {
			fmt.Fprint(w, `{"access_token":"a.b.c"}`)
			return
		}
		fmt.Fprint(w, `{"count":2,"next":"http://192.0.2.1/v2/orgs/x/members?page=2","previous":null,"results":[{"username":"a","role":"Member"}]}`)
	}))
	defer srv.Close()
	b, err := New(Options{BaseURL: srv.URL, Org: "x", AccessToken: "dckr_oat_x", Limiter: rate.NewLimiter(rate.Inf, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.ListMembers(ctx(t))
	mustClass(t, err, backend.Permanent, "UnexpectedResponse", "refusing to follow a next link outside 127.0.0.1")
}

// requestsPerMinute is a promise about every minute: however the calls come (a full
// bucket spent at once, then as fast as it refills), no 60 s window holds more than that
// many. A token bucket refilling at the full rate would allow its burst on top in the
// first minute (3,300 for 3,000).
func TestSharedLimiterKeepsEveryMinuteWithinRequestsPerMinute(t *testing.T) {
	for _, perMinute := range []int{1, 2, 7, 60, 180, 3000, 6000} {
		l := SharedLimiter(fmt.Sprintf("every-minute-%d", perMinute), perMinute)
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var at []time.Time
		for now := t0; now.Before(t0.Add(3 * time.Minute)); now = now.Add(time.Millisecond) {
			for l.AllowN(now, 1) { // greedy: take every token the moment it exists
				at = append(at, now)
			}
		}
		most, j := 0, 0
		for i := range at {
			for at[i].Sub(at[j]) >= time.Minute {
				j++
			}
			most = max(most, i-j+1)
		}
		if most > perMinute {
			t.Errorf("requestsPerMinute %d: %d calls in one minute (burst %d)", perMinute, most, l.Burst())
		}
		// and the budget is used, not hoarded: over three minutes close to three budgets
		if perMinute >= 60 && len(at) < 3*perMinute*8/10 {
			t.Errorf("requestsPerMinute %d: only %d calls in three minutes", perMinute, len(at))
		}
	}
}

func TestSharedLimiterIsPerOrganization(t *testing.T) {
	a := SharedLimiter("Acme", 60)
	if SharedLimiter("acme", 60) != a || SharedLimiter("other", 60) == a {
		t.Fatal("limiters not shared per organization")
	}
	if SharedLimiter("ACME", 120); a.Limit() == SharedLimiter("other", 60).Limit() {
		t.Fatalf("a new requestsPerMinute does not change the shared limiter: %v", a.Limit())
	}
	if _, err := New(Options{Org: "acme", AccessToken: "x", BaseURL: "ftp://h"}); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Fatalf("bad base URL accepted: %v", err)
	}
	if !errors.Is(backend.NewPermanent("x", context.Canceled), context.Canceled) {
		t.Fatal("classified errors must unwrap")
	}
}

// TestServiceBudget: the emulator's own per-minute budget answers 429 with the
// X-RateLimit headers; the backend waits out the window and goes on.
func TestServiceBudget(t *testing.T) {
	e := setup(t, func(eo *hubemu.Options, _ *Options) { eo.RateLimit = 5 })
	c := ctx(t)
	done := 0
	rl, _ := converge(t, e, "ten lookups", func() error {
		for ; done < 10; done++ {
			if _, err := e.b.ObserveMember(c, fmt.Sprintf("u%d@corp.example", done)); err != nil {
				return err
			}
		}
		return nil
	})
	if rl == 0 || e.emu.CountStatus(http.StatusTooManyRequests) == 0 {
		t.Fatal("the budget was never hit")
	}
}

// TestEmailInviter: the invitation EnsureMember sends to the email of a person whose
// userName is not one is invisible under the userName alone, and found and cancelled
// under both; once accepted under another Docker ID, it is removed the same way.
func TestEmailInviter(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	got, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: "ada", Email: "ada@example.com", Role: "member"})
	if err != nil || got.State != backend.StateInvited {
		t.Fatalf("EnsureMember = %+v, %v; want an invitee", got, err)
	}
	if m, err := e.b.ObserveMember(c, "ada"); err != nil || m.State != backend.StateAbsent {
		t.Fatalf("ObserveMember(userName) = %+v, %v; want Absent (the invite is under the email)", m, err)
	}
	m, err := e.b.ObserveMemberWithEmail(c, "ada", "ada@example.com")
	if err != nil || m.State != backend.StateInvited || m.InviteID != got.InviteID || m.UserName != "ada" {
		t.Fatalf("ObserveMemberWithEmail = %+v, %v; want the invite %s under userName ada", m, err, got.InviteID)
	}
	if err := e.b.EnsureMemberAbsentWithEmail(c, "ada", "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.emu.Invites()); n != 0 {
		t.Fatalf("%d invites left, want the email's invite cancelled", n)
	}

	if _, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: "ada", Email: "ada@example.com", Role: "member"}); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.AcceptInvite("ada@example.com", "ada-hub"); err != nil {
		t.Fatal(err)
	}
	if m, err := e.b.ObserveMemberWithEmail(c, "ada", "ada@example.com"); err != nil || m.State != backend.StateMember || m.BackendID != "ada-hub" {
		t.Fatalf("ObserveMemberWithEmail after acceptance = %+v, %v; want member ada-hub", m, err)
	}
	if err := e.b.EnsureMemberAbsentWithEmail(c, "ada", "ada@example.com"); err != nil {
		t.Fatal(err)
	}
	if e.emu.IsMember("ada-hub") {
		t.Fatal("ada-hub is still a member")
	}
}

// TestDockerIDAfterEmailChange (review F6): a person accepted under a Docker ID whose
// account email then changed is listed under that Docker ID only. Looked up under the
// Docker ID too (backend.EmailInviter's also, DesiredMember.Also: plan.LookupIdentities)
// they are found, and EnsureMember changes their role in place instead of inviting the
// SCIM email again; the Docker ID costs a search only when the userName and the email
// find no member.
func TestDockerIDAfterEmailChange(t *testing.T) {
	e := setup(t)
	c := ctx(t)
	if _, err := e.b.EnsureMember(c, backend.DesiredMember{UserName: "ann@x.io", Role: "member"}); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.AcceptInvite("ann@x.io", "ann-hub"); err != nil {
		t.Fatal(err)
	}
	e.emu.AddAccount("ann-hub", "ann@home.example") // she changes her Docker account's email
	if m, err := e.b.ObserveMemberWithEmail(c, "ann@x.io", "ann@x.io"); err != nil || m.State != backend.StateAbsent {
		t.Fatalf("ObserveMemberWithEmail without the Docker ID = %+v, %v; want Absent (the point of this test)", m, err)
	}
	e.emu.ResetLog()
	m, err := e.b.ObserveMemberWithEmail(c, "ann@x.io", "ann@x.io", "ann@x.io", "ANN-hub")
	if err != nil || m.State != backend.StateMember || m.BackendID != "ann-hub" || m.UserName != "ann@x.io" {
		t.Fatalf("ObserveMemberWithEmail with the Docker ID = %+v, %v; want member ann-hub under userName ann@x.io", m, err)
	}
	if n := e.emu.Count("GET", "/v2/orgs/"+e.emu.Org()+"/members"); n != 2 {
		t.Fatalf("%d member searches, want 2 (the userName, then the Docker ID; duplicates once)", n)
	}

	e.emu.ResetLog()
	m, err = e.b.EnsureMember(c, backend.DesiredMember{UserName: "ann@x.io", Role: "editor", Also: []string{"ann-hub"}})
	if err != nil || m.State != backend.StateMember || m.BackendID != "ann-hub" || m.Role != "editor" {
		t.Fatalf("EnsureMember with the Docker ID = %+v, %v; want member ann-hub as editor", m, err)
	}
	if n := e.emu.Count("POST", "/v2/invites/bulk"); n != 0 || e.emu.InvitesSent("ann@x.io") != 1 || len(e.emu.Invites()) != 0 {
		t.Fatalf("EnsureMember invited again: %d invite calls, %d invitations sent to ann@x.io, pending %+v",
			n, e.emu.InvitesSent("ann@x.io"), e.emu.Invites())
	}
	if got := roleOfMember(t, e, "ann-hub"); got != "editor" {
		t.Fatalf("ann-hub's role = %s, want editor (changed in place)", got)
	}

	// Found under the userName, the Docker ID costs nothing.
	e.emu.AddMember("ben-hub", "ben@x.io", "member")
	e.emu.ResetLog()
	if m, err := e.b.ObserveMemberWithEmail(c, "ben@x.io", "", "ben-hub"); err != nil || m.BackendID != "ben-hub" {
		t.Fatalf("ObserveMemberWithEmail(ben) = %+v, %v", m, err)
	}
	if n := e.emu.Count("GET", "/v2/orgs/"+e.emu.Org()+"/members"); n != 1 {
		t.Fatalf("%d member searches for a member found under its userName, want 1", n)
	}
}

func roleOfMember(t *testing.T, e *env, id string) string {
	t.Helper()
	m, ok := e.emu.Member(id)
	if !ok {
		t.Fatalf("%s is no member", id)
	}
	return m.Role
}

// A controller worker (backend.NoWait) whose organization's budget is spent is told
// RateLimited with the limiter's delay at once, without a call to Hub, instead of sleeping
// in the worker; the budget it did not use is given back.
func TestNoWaitAnswersRateLimitedInsteadOfSleeping(t *testing.T) {
	e := setup(t, func(_ *hubemu.Options, o *Options) { o.Limiter = rate.NewLimiter(rate.Every(time.Minute), 1) })
	ctx := backend.NoWait(t.Context())
	if _, err := e.b.ObserveMember(ctx, "ann@x.io"); backend.ClassOf(err) != backend.RateLimited {
		// the token exchange took the one request of the burst: the search must wait a minute
		t.Fatalf("ObserveMember under NoWait with a spent budget: %v, want RateLimited", err)
	}
	_, err := e.b.ObserveMember(ctx, "ann@x.io")
	wait, ok := backend.RetryAfterOf(err)
	if backend.ClassOf(err) != backend.RateLimited || !ok || wait < 30*time.Second || wait > time.Minute {
		t.Fatalf("second ObserveMember under NoWait: %v (retry after %s), want RateLimited with about a minute", err, wait)
	}
	if n := len(e.emu.Requests()); n != 1 {
		t.Fatalf("Hub got %d requests, want 1 (the token exchange): a refused call must not reach it", n)
	}
}

// ListMembers (the drift pass) costs one call per page of 100 people, members and pending
// invitations together, and never the unpaged invites list.
func TestListMembersPagesMembersAndInvites(t *testing.T) {
	e := setup(t)
	for i := range 180 {
		e.emu.AddMember(fmt.Sprintf("m%03d", i), fmt.Sprintf("m%03d@x.io", i), "member")
	}
	for i := range 40 {
		if _, err := e.b.EnsureMember(t.Context(), backend.DesiredMember{UserName: fmt.Sprintf("i%03d@x.io", i)}); err != nil {
			t.Fatal(err)
		}
	}
	e.emu.ResetLog()
	list, err := e.b.ListMembers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	invited := 0
	for _, m := range list {
		if m.State == backend.StateInvited {
			invited++
			if m.InviteID == "" || !strings.HasSuffix(m.UserName, "@x.io") {
				t.Fatalf("an invitation listed as %+v, want its invitee and id", m)
			}
		}
	}
	if len(list) < 220 || invited != 40 {
		t.Fatalf("ListMembers listed %d people, %d invited; want at least 220 with 40 invited", len(list), invited)
	}
	pages := 0
	for _, r := range e.emu.Requests() {
		switch {
		case r.Path == "/v2/orgs/"+e.emu.Org()+"/invites":
			t.Fatalf("ListMembers read the unpaged invites list: %+v", r)
		case r.Path == "/v2/orgs/"+e.emu.Org()+"/members":
			pages++
		}
	}
	if want := (len(list) + 99) / 100; pages != want {
		t.Fatalf("ListMembers made %d page calls for %d people, want %d: %+v", pages, len(list), want, e.emu.Requests())
	}
}

// TestListMembersAsksAFailedPageAgain: a page that fails once in the middle of a listing
// is asked again, and the pages before it are kept (a drift pass at 10,000 members is 101
// pages of a 162-a-minute budget; starting again from page 1 after each 5xx spent most of
// an interval's budget again). A controller worker's NoWait context gets the error.
func TestListMembersAsksAFailedPageAgain(t *testing.T) {
	e := setup(t)
	for i := range 250 {
		e.emu.AddMember(fmt.Sprintf("m%03d", i), fmt.Sprintf("m%03d@x.io", i), "member")
	}
	members := "/v2/orgs/" + e.emu.Org() + "/members"
	e.emu.ResetLog()
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: 500, Method: "GET", Path: members, Every: 3, Count: 1})
	list, err := e.b.ListMembers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 251 {
		t.Fatalf("listed %d people, want 251", len(list))
	}
	var got []string
	for _, r := range e.emu.Requests() {
		if r.Path == members {
			got = append(got, fmt.Sprintf("%s %d", r.Query, r.Status))
		}
	}
	// pages 1 and 2, page 3 failing, page 3 again: not page 1 again
	if len(got) != 4 || !strings.Contains(got[2], "page=3") || !strings.HasSuffix(got[2], " 500") ||
		!strings.Contains(got[3], "page=3") || !strings.HasSuffix(got[3], " 200") {
		t.Fatalf("page calls %q, want pages 1, 2, 3 (500) and 3 again", got)
	}

	e.emu.ResetLog()
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: 500, Method: "GET", Path: members, Every: 2, Count: 1})
	if _, err = e.b.ListMembers(backend.NoWait(t.Context())); backend.ClassOf(err) != backend.Transient {
		t.Fatalf("under NoWait a failed page answered %v, want the Transient error", err)
	}
	if n := len(e.emu.Requests()); n != 2 {
		t.Fatalf("under NoWait: %d calls, want 2 (no retry)", n)
	}

	// only the whole-organization listing asks again: a search answers its 500 at once
	e.emu.ResetLog()
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: 500, Method: "GET", Path: members, Count: 1})
	if _, err := e.b.ObserveMember(t.Context(), "m001@x.io"); backend.ClassOf(err) != backend.Transient {
		t.Fatalf("a search's 500 answered %v, want the Transient error", err)
	}
	if n := e.emu.Count("GET", members); n != 1 {
		t.Fatalf("a search that failed: %d calls, want 1", n)
	}

	// a refusal that is not transient is not asked again
	e.emu.ResetLog()
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultStatus, Status: 400, Method: "GET", Path: members, Count: 1})
	if _, err := e.b.ListMembers(t.Context()); err == nil || backend.ClassOf(err) == backend.Transient || backend.ClassOf(err) == backend.RateLimited {
		t.Fatalf("a 400 answered %v, want a Permanent error", err)
	}
	if n := e.emu.Count("GET", members); n != 1 {
		t.Fatalf("a listing refused with 400: %d calls, want 1", n)
	}

	// a rate-limit hint longer than maxPageWait is not waited out in place: the drift
	// pass requeues itself after it instead of holding a worker
	e.emu.ResetLog()
	e.emu.Inject(hubemu.Fault{Kind: hubemu.FaultRateLimit, RetryAfter: 2 * maxPageWait, Method: "GET", Path: members, Every: 2, Count: 1})
	start := time.Now()
	_, err = e.b.ListMembers(t.Context())
	if backend.ClassOf(err) != backend.RateLimited || time.Since(start) > maxPageWait/2 {
		t.Fatalf("a hint of %s answered %v after %s, want RateLimited at once", 2*maxPageWait, err, time.Since(start))
	}
	if n := e.emu.Count("GET", members); n != 2 {
		t.Fatalf("a listing told to wait %s: %d calls, want 2", 2*maxPageWait, n)
	}
}

// ListedTeamName gives the name ListTeams and the members listing give a team, for every
// form the other methods accept: the drift pass looks the team of a displayName up by it
// (review 22).
func TestListedTeamName(t *testing.T) {
	e := setup(t)
	org := e.emu.Org()
	for _, tc := range []struct{ in, want string }{
		{"qa", "qa"}, {org + ":qa", "qa"}, {strings.ToUpper(org) + ":qa", "qa"},
		// review 24 F1: the name the team is acted on, so that a name given back is the same
		// team (the controllers compare and record ListedTeamName's answer)
		{org + ": qa", "qa"}, {" " + org + " :qa ", "qa"}, {org + ":" + org + ":qa", "qa"},
	} {
		if got, err := e.b.ListedTeamName(tc.in); err != nil || got != tc.want {
			t.Errorf("ListedTeamName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := e.b.ListedTeamName("other:qa"); err == nil {
		t.Errorf("ListedTeamName(other:qa) = nil error, want the refusal ObserveTeam gives")
	}
}
