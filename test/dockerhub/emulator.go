// Package hubemu is an in-process emulator of the Docker Hub organization API
// (the part docs/dockerhub-contract.md and ../shared/docs/DOCKERHUB.md describe):
// access-token exchange, members, invites, teams ("groups"), pagination with absolute
// next/previous URLs, rate-limit headers and injectable faults (429 and 5xx bursts,
// latency, dropped connections, HTML error pages).
//
// One Emulator is one organization. It is safe for concurrent use. Tests drive it with
// the control methods (AddMember, AcceptInvite, ExpireInvite, RemoveMember, Inject, ...)
// and inspect it with Members, Invites, Teams and the request log. Contract.Middleware
// validates every request and response against Docker's published OpenAPI file.
package hubemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure an Emulator.
type Options struct {
	// Org is the organization's name (default "acme").
	Org string
	// Tokens maps organization access token secrets (dckr_oat_...) to what they may do.
	// When empty, one token "dckr_oat_test" with full access is configured.
	Tokens map[string]TokenSpec
	// Owner is the Docker ID of the organization's first owner (default "owner").
	Owner string
	// TokenTTL is the lifetime of the JWTs /v2/auth/token returns (default 10 minutes).
	TokenTTL time.Duration
	// RateLimit is the number of requests allowed per minute (0: unlimited, but the
	// X-RateLimit-* headers are still sent with a limit of 600). Over it the emulator
	// answers 429 with Retry-After.
	RateLimit int
	// Now is the emulator's clock (default time.Now); see Clock.
	Now func() time.Time
	// Middleware wraps the emulator's handler (for example Contract.Middleware).
	Middleware func(http.Handler) http.Handler
	// DevEndpoints also serves the emulator's own endpoints under DevPrefix (dev.go): the
	// organization as a table, and accepting an invitation, for a person trying the
	// operator against the emulator. They are not part of Docker Hub's API.
	DevEndpoints bool
}

// TokenSpec is what one organization access token may do.
type TokenSpec struct {
	// ReadOnly tokens get 403 on every write.
	ReadOnly bool
}

// DefaultToken is the access token configured when Options.Tokens is empty.
const DefaultToken = "dckr_oat_test"

// Emulator is a fake Docker Hub for one organization.
type Emulator struct {
	opts Options
	now  func() time.Time

	mu          sync.Mutex
	tokens      map[string]TokenSpec
	jwts        map[string]issuedJWT // jti -> token
	accounts    map[string]*account  // lower(username) -> account
	members     map[string]*member   // lower(username) -> member
	invites     map[string]*invite   // id -> invite
	teams       map[string]*team     // lower(name) -> team
	nextTeamID  int
	invitesSent map[string]int // lower(invitee) -> invitation emails sent
	log         []RequestRecord
	started     int // requests received
	inFlight    int // requests being handled
	faults      []*faultRule
	rlWindow    time.Time
	rlUsed      int

	handler http.Handler
	table   []route
	server  *httptest.Server
}

type account struct {
	ID, Username, Email, FullName string
	Joined                        time.Time
}

type member struct {
	Username string
	Role     string // owner | editor | member
	Joined   time.Time
}

type invite struct {
	ID, Inviter, Invitee, Team, Role string
	Created                          time.Time
}

type team struct {
	ID          int
	UUID        string
	Name        string
	Description string
	Members     map[string]bool // lower(username)
}

type issuedJWT struct {
	Secret string
	Exp    time.Time
}

// New returns an Emulator; call Start to serve it, or use Handler directly.
func New(opts Options) *Emulator {
	if opts.Org == "" {
		opts.Org = "acme"
	}
	if opts.Owner == "" {
		opts.Owner = "owner"
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Emulator{
		opts:        opts,
		now:         opts.Now,
		tokens:      map[string]TokenSpec{},
		jwts:        map[string]issuedJWT{},
		accounts:    map[string]*account{},
		members:     map[string]*member{},
		invites:     map[string]*invite{},
		teams:       map[string]*team{},
		invitesSent: map[string]int{},
	}
	if len(opts.Tokens) == 0 {
		e.tokens[DefaultToken] = TokenSpec{}
	}
	for k, v := range opts.Tokens {
		e.tokens[k] = v
	}
	e.AddMember(opts.Owner, opts.Owner+"@"+opts.Org+".example", "owner")
	e.teams["owners"] = &team{ID: 1, UUID: newID(), Name: "owners", Description: "Owners of the organization",
		Members: map[string]bool{strings.ToLower(opts.Owner): true}}
	e.nextTeamID = 2
	e.table = e.routes()
	var h http.Handler = http.HandlerFunc(e.serve)
	if opts.Middleware != nil {
		h = opts.Middleware(h)
	}
	if opts.DevEndpoints {
		api := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, DevPrefix) {
				e.serveDev(w, r)
				return
			}
			api.ServeHTTP(w, r)
		})
	}
	e.handler = h
	return e
}

// Handler is the emulator's HTTP handler (wrapped in Options.Middleware).
func (e *Emulator) Handler() http.Handler { return e.handler }

// Start serves the emulator on 127.0.0.1 on a free port and returns it.
func (e *Emulator) Start() *Emulator {
	e.server = httptest.NewServer(e.handler)
	return e
}

// URL is the base URL of a started emulator ("http://127.0.0.1:port").
func (e *Emulator) URL() string {
	if e.server == nil {
		return ""
	}
	return e.server.URL
}

// Close stops a started emulator.
func (e *Emulator) Close() {
	if e.server != nil {
		e.server.CloseClientConnections()
		e.server.Close()
	}
}

// Org is the organization's name.
func (e *Emulator) Org() string { return e.opts.Org }

// ---- test controls ----

// AddToken configures another organization access token.
func (e *Emulator) AddToken(secret string, spec TokenSpec) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.tokens[secret] = spec
}

// RemoveToken revokes an organization access token: exchanging it answers 401, and so
// does every JWT issued so far.
func (e *Emulator) RemoveToken(secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.tokens, secret)
	e.jwts = map[string]issuedJWT{}
}

// RevokeTokens invalidates every JWT issued so far (the next call with one gets 401).
func (e *Emulator) RevokeTokens() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.jwts = map[string]issuedJWT{}
}

// AddAccount registers a Docker account (not a member) so it can be invited by Docker ID.
func (e *Emulator) AddAccount(username, email string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addAccountLocked(username, email)
}

func (e *Emulator) addAccountLocked(username, email string) *account {
	key := strings.ToLower(username)
	if a, ok := e.accounts[key]; ok {
		if email != "" {
			a.Email = email
		}
		return a
	}
	a := &account{ID: strings.ReplaceAll(newID(), "-", ""), Username: username, Email: email,
		FullName: strings.ToUpper(username[:1]) + username[1:], Joined: e.now().UTC()}
	e.accounts[key] = a
	return a
}

// AddMember makes a person a member directly, the way an owner adds someone by hand
// (or just-in-time SSO does): no invite, no SCIM. role is owner, editor or member.
func (e *Emulator) AddMember(username, email, role string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addAccountLocked(username, email)
	if role == "" {
		role = "member"
	}
	e.members[strings.ToLower(username)] = &member{Username: username, Role: strings.ToLower(role), Joined: e.now().UTC()}
}

// RemoveMember removes a member by hand (drift), from every team too. It reports
// whether they were a member.
func (e *Emulator) RemoveMember(username string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.removeMemberLocked(username)
}

func (e *Emulator) removeMemberLocked(username string) bool {
	key := strings.ToLower(username)
	if _, ok := e.members[key]; !ok {
		return false
	}
	delete(e.members, key)
	for _, t := range e.teams {
		delete(t.Members, key)
	}
	return true
}

// AcceptInvite accepts the pending invitation of email (an email or the Docker ID it
// was sent to) as the Docker account username (created when missing): the person
// becomes a member with the invited role, in the invited team.
func (e *Emulator) AcceptInvite(email, username string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	inv := e.findInviteLocked(email)
	if inv == nil {
		return fmt.Errorf("hubemu: no pending invite for %q", email)
	}
	acctEmail := email
	if !strings.Contains(email, "@") {
		acctEmail = ""
	}
	e.addAccountLocked(username, acctEmail)
	key := strings.ToLower(username)
	if _, ok := e.members[key]; !ok {
		e.members[key] = &member{Username: username, Role: inv.Role, Joined: e.now().UTC()}
	}
	if t, ok := e.teams[strings.ToLower(inv.Team)]; ok && inv.Team != "" {
		t.Members[key] = true
	}
	delete(e.invites, inv.ID)
	return nil
}

// ExpireInvite removes a pending invitation as if it had expired. It reports whether
// the invitation existed.
func (e *Emulator) ExpireInvite(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.invites[id]
	delete(e.invites, id)
	return ok
}

// MemberView is one member as the emulator holds it.
type MemberView struct {
	Username string   `json:"username"`
	Email    string   `json:"email"`
	Role     string   `json:"role"`
	Teams    []string `json:"teams"`
}

// InviteView is one pending invitation.
type InviteView struct {
	ID      string `json:"id"`
	Invitee string `json:"invitee"`
	Role    string `json:"role"`
	Team    string `json:"team"`
}

// TeamView is one team.
type TeamView struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Members     []string `json:"members"`
}

// Members returns the members, sorted by username.
func (e *Emulator) Members() []MemberView {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]MemberView, 0, len(e.members))
	for _, m := range e.sortedMembersLocked() {
		a := e.accounts[strings.ToLower(m.Username)]
		out = append(out, MemberView{Username: m.Username, Email: a.Email, Role: m.Role, Teams: e.teamsOfLocked(m.Username)})
	}
	return out
}

// Member returns the member whose username or email is id (case-insensitively).
func (e *Emulator) Member(id string) (MemberView, bool) {
	for _, m := range e.Members() {
		if strings.EqualFold(m.Username, id) || (m.Email != "" && strings.EqualFold(m.Email, id)) {
			return m, true
		}
	}
	return MemberView{}, false
}

// IsMember reports whether id (a username or an email) is a member.
func (e *Emulator) IsMember(id string) bool {
	_, ok := e.Member(id)
	return ok
}

// Invites returns the pending invitations, oldest first.
func (e *Emulator) Invites() []InviteView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []InviteView
	for _, inv := range e.sortedInvitesLocked() {
		out = append(out, InviteView{ID: inv.ID, Invitee: inv.Invitee, Role: inv.Role, Team: inv.Team})
	}
	return out
}

// InvitesSent counts the invitation emails sent to invitee (case-insensitively), every
// re-invite of a pending invitee included.
func (e *Emulator) InvitesSent(invitee string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.invitesSent[strings.ToLower(invitee)]
}

// Teams returns the teams, sorted by name, with their members' usernames.
func (e *Emulator) Teams() []TeamView {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []TeamView
	for _, t := range e.sortedTeamsLocked() {
		out = append(out, TeamView{Name: t.Name, Description: t.Description, Members: e.teamMembersLocked(t)})
	}
	return out
}

// Team returns one team.
func (e *Emulator) Team(name string) (TeamView, bool) {
	for _, t := range e.Teams() {
		if strings.EqualFold(t.Name, name) {
			return t, true
		}
	}
	return TeamView{}, false
}

// AddTeam creates a team by hand.
func (e *Emulator) AddTeam(name string, members ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.createTeamLocked(name, "")
	for _, m := range members {
		t.Members[strings.ToLower(m)] = true
	}
}

// RemoveFromTeam takes a member out of a team by hand; false when the team or the
// membership is missing.
func (e *Emulator) RemoveFromTeam(team, username string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.teams[strings.ToLower(team)]
	if t == nil || !t.Members[strings.ToLower(username)] {
		return false
	}
	delete(t.Members, strings.ToLower(username))
	return true
}

// DeleteTeam deletes a team by hand; false when it is missing.
func (e *Emulator) DeleteTeam(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.teams[strings.ToLower(name)] == nil {
		return false
	}
	delete(e.teams, strings.ToLower(name))
	return true
}

// ---- internals shared by handlers ----

func (e *Emulator) sortedMembersLocked() []*member {
	out := make([]*member, 0, len(e.members))
	for _, m := range e.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Username) < strings.ToLower(out[j].Username) })
	return out
}

func (e *Emulator) sortedInvitesLocked() []*invite {
	out := make([]*invite, 0, len(e.invites))
	for _, inv := range e.invites {
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (e *Emulator) sortedTeamsLocked() []*team {
	out := make([]*team, 0, len(e.teams))
	for _, t := range e.teams {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name) })
	return out
}

func (e *Emulator) teamsOfLocked(username string) []string {
	key := strings.ToLower(username)
	out := []string{}
	for _, t := range e.sortedTeamsLocked() {
		if t.Members[key] {
			out = append(out, t.Name)
		}
	}
	return out
}

func (e *Emulator) teamMembersLocked(t *team) []string {
	out := []string{}
	for key := range t.Members {
		if a, ok := e.accounts[key]; ok {
			out = append(out, a.Username)
		} else {
			out = append(out, key)
		}
	}
	sort.Strings(out)
	return out
}

func (e *Emulator) createTeamLocked(name, desc string) *team {
	if t, ok := e.teams[strings.ToLower(name)]; ok {
		return t
	}
	t := &team{ID: e.nextTeamID, UUID: newID(), Name: name, Description: desc, Members: map[string]bool{}}
	e.nextTeamID++
	e.teams[strings.ToLower(name)] = t
	return t
}

// findMemberLocked finds a member by username or email, case-insensitively.
func (e *Emulator) findMemberLocked(id string) *member {
	if m, ok := e.members[strings.ToLower(id)]; ok {
		return m
	}
	for _, m := range e.members {
		if a := e.accounts[strings.ToLower(m.Username)]; a != nil && a.Email != "" && strings.EqualFold(a.Email, id) {
			return m
		}
	}
	return nil
}

func (e *Emulator) findInviteLocked(invitee string) *invite {
	for _, inv := range e.sortedInvitesLocked() {
		if strings.EqualFold(inv.Invitee, invitee) {
			return inv
		}
	}
	// An invite sent to a Docker ID can be found by that account's email too.
	for _, inv := range e.sortedInvitesLocked() {
		if a := e.accounts[strings.ToLower(inv.Invitee)]; a != nil && a.Email != "" && strings.EqualFold(a.Email, invitee) {
			return inv
		}
	}
	return nil
}

func (e *Emulator) ownerCountLocked() int {
	n := 0
	for _, m := range e.members {
		if m.Role == "owner" {
			n++
		}
	}
	return n
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func writeHTML(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><title>%d %s</title><style>body{font-family:sans-serif}</style></head>\n"+
		"<body><h1>%s</h1><p>%s</p>%s</body></html>\n", status, title, title,
		"The server could not complete your request. Please try again later.", strings.Repeat("<!-- padding -->", 40))
}

func atoiDefault(s string, def int) (int, bool) {
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, false
	}
	return n, true
}

// Clock is a settable clock for Options.Now (and the client's), so token expiry can be
// tested without waiting.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
