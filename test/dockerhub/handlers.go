package hubemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// RequestRecord is one request the emulator received.
type RequestRecord struct {
	Method string
	// Path without query and without a trailing slash.
	Path  string
	Query string
	// Status answered (0 when the connection was dropped).
	Status int
	// Fault is the injected fault's kind, or "".
	Fault string
	// Received and Answered are when the request arrived and when its handling ended
	// (wall clock, whatever Options.Now says).
	Received, Answered time.Time
	// RetryAfter is what a 429 told the client to wait (Retry-After, or X-Retry-After
	// less the time of the answer); zero otherwise.
	RetryAfter time.Duration
}

// InFlight is how many requests the emulator is handling now.
func (e *Emulator) InFlight() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inFlight
}

// Started is how many requests the emulator has received so far, finished or not.
func (e *Emulator) Started() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started
}

// Requests returns the request log, oldest first.
func (e *Emulator) Requests() []RequestRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]RequestRecord(nil), e.log...)
}

// Count returns how many requests had this method and path (trailing slash ignored).
// A path ending in "*" counts every path with that prefix.
func (e *Emulator) Count(method, path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	prefix, wild := strings.CutSuffix(path, "*")
	path = strings.TrimSuffix(path, "/")
	for _, r := range e.log {
		if method != "" && r.Method != method {
			continue
		}
		if (wild && strings.HasPrefix(r.Path, prefix)) || (!wild && r.Path == path) {
			n++
		}
	}
	return n
}

// CountStatus returns how many answers had this status.
func (e *Emulator) CountStatus(status int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.log {
		if r.Status == status {
			n++
		}
	}
	return n
}

// ResetLog empties the request log.
func (e *Emulator) ResetLog() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = nil
}

// statusWriter remembers the status; it passes Hijack through for dropped connections.
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	w.hijacked = true
	return hj.Hijack()
}

var jwtKey = []byte(newID() + newID())

// serve is the emulator's entry point: rate-limit headers, faults, routing, auth.
func (e *Emulator) serve(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path == "" {
		path = "/"
	}
	rec := RequestRecord{Method: r.Method, Path: path, Query: r.URL.RawQuery, Received: time.Now()}
	e.mu.Lock()
	e.started++
	e.inFlight++
	e.mu.Unlock()
	defer func() {
		rec.Status = w.status
		if w.hijacked {
			rec.Status = 0
		}
		rec.Answered = time.Now()
		if rec.Status == http.StatusTooManyRequests {
			rec.RetryAfter = retryAfterOf(w.Header(), e.now())
		}
		e.mu.Lock()
		e.log = append(e.log, rec)
		e.inFlight--
		e.mu.Unlock()
	}()

	e.mu.Lock()
	limit, remaining, reset, limited := e.rateLimitLocked()
	f := e.pickFaultLocked(r.Method, path)
	e.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))

	// Route on the path without its trailing slash: the real service accepts both.
	r2 := r.Clone(r.Context())
	r2.URL.Path = path
	r2.URL.RawPath = ""
	serve := func(w http.ResponseWriter, r *http.Request) { e.route(w, r) }

	if f != nil {
		rec.Fault = f.Kind.String()
		handled, _ := e.applyFault(w, r2, f, serve)
		if handled {
			return
		}
	}
	if limited {
		after := reset.Sub(e.now())
		if after < time.Second {
			after = time.Second
		}
		h.Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"detail": "Rate limit exceeded", "error": false})
		return
	}
	serve(w, r2)
}

// retryAfterOf reads how long a 429 told the client to wait.
func retryAfterOf(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	if v := h.Get("X-Retry-After"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Unix(n, 0).Sub(now)
		}
	}
	return 0
}

// rateLimitLocked counts this request in the current one-minute window.
func (e *Emulator) rateLimitLocked() (limit, remaining int, reset time.Time, limited bool) {
	now := e.now()
	if e.rlWindow.IsZero() || !now.Before(e.rlWindow.Add(time.Minute)) {
		e.rlWindow = now.Truncate(time.Second)
		e.rlUsed = 0
	}
	reset = e.rlWindow.Add(time.Minute)
	limit = e.opts.RateLimit
	if limit <= 0 {
		return 600, 600, reset, false
	}
	e.rlUsed++
	if e.rlUsed > limit {
		return limit, 0, reset, true
	}
	return limit, limit - e.rlUsed, reset, false
}

type routeFunc func(w http.ResponseWriter, r *http.Request, tok TokenSpec, vars []string)

type route struct {
	method string
	parts  []string // "{}" is a variable
	auth   bool
	fn     routeFunc
}

func (e *Emulator) routes() []route {
	p := func(s string) []string { return strings.Split(strings.Trim(s, "/"), "/") }
	return []route{
		{"POST", p("v2/auth/token"), false, e.authToken},
		{"POST", p("v2/users/login"), false, e.usersLogin},
		{"GET", p("v2/orgs/{}/members"), true, e.listMembers},
		{"PUT", p("v2/orgs/{}/members/{}"), true, e.updateMember},
		{"DELETE", p("v2/orgs/{}/members/{}"), true, e.deleteMember},
		{"POST", p("v2/invites/bulk"), true, e.bulkInvite},
		{"GET", p("v2/orgs/{}/invites"), true, e.listInvites},
		{"DELETE", p("v2/invites/{}"), true, e.deleteInvite},
		{"PATCH", p("v2/invites/{}/resend"), true, e.resendInvite},
		{"GET", p("v2/orgs/{}/groups"), true, e.listTeams},
		{"POST", p("v2/orgs/{}/groups"), true, e.createTeam},
		{"GET", p("v2/orgs/{}/groups/{}"), true, e.getTeam},
		{"PUT", p("v2/orgs/{}/groups/{}"), true, e.updateTeam},
		{"PATCH", p("v2/orgs/{}/groups/{}"), true, e.updateTeam},
		{"DELETE", p("v2/orgs/{}/groups/{}"), true, e.deleteTeam},
		{"GET", p("v2/orgs/{}/groups/{}/members"), true, e.listTeamMembers},
		{"POST", p("v2/orgs/{}/groups/{}/members"), true, e.addTeamMember},
		{"DELETE", p("v2/orgs/{}/groups/{}/members/{}"), true, e.removeTeamMember},
	}
}

func (e *Emulator) route(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	pathMatched := false
	for _, rt := range e.table {
		vars, ok := matchParts(rt.parts, segs)
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method != r.Method {
			continue
		}
		var tok TokenSpec
		if rt.auth {
			var ok bool
			if tok, ok = e.authenticate(w, r); !ok {
				return
			}
			if tok.ReadOnly && r.Method != http.MethodGet {
				writeJSON(w, http.StatusForbidden, map[string]any{"detail": "You do not have permission to perform this action."})
				return
			}
			if len(vars) > 0 && strings.HasPrefix(r.URL.Path, "/v2/orgs/") && !strings.EqualFold(vars[0], e.opts.Org) {
				writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
				return
			}
		}
		rt.fn(w, r, tok, vars)
		return
	}
	if pathMatched {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"detail": fmt.Sprintf("Method \"%s\" not allowed.", r.Method)})
		return
	}
	// A path the API does not know answers the website's HTML 404, as the real one does.
	writeHTML(w, http.StatusNotFound, "Page Not Found")
}

func matchParts(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var vars []string
	for i, p := range pattern {
		if p == "{}" {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, false
			}
			vars = append(vars, v)
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return vars, true
}

// ---- authentication ----

func (e *Emulator) issueJWT(secret string) string {
	now := e.now()
	jti := newID()
	exp := now.Add(e.opts.TokenTTL)
	claims := jwt.MapClaims{"sub": e.opts.Org, "iat": now.Unix(), "exp": exp.Unix(), "jti": jti,
		"iss": "hubemu", "aud": "hub.docker.com"}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(jwtKey)
	if err != nil {
		panic(err) // HS256 with a fixed key cannot fail
	}
	e.mu.Lock()
	e.jwts[jti] = issuedJWT{Secret: secret, Exp: exp}
	e.mu.Unlock()
	return s
}

func (e *Emulator) authenticate(w http.ResponseWriter, r *http.Request) (TokenSpec, bool) {
	fail := func(msg string) (TokenSpec, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hub.docker.com"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": msg})
		return TokenSpec{}, false
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return fail("Authentication credentials were not provided.")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return jwtKey, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(e.now), jwt.WithExpirationRequired())
	if err != nil {
		return fail("Invalid or expired token.")
	}
	jti, _ := claims["jti"].(string)
	e.mu.Lock()
	issued, ok := e.jwts[jti]
	spec, known := e.tokens[issued.Secret]
	e.mu.Unlock()
	if !ok || !known || !e.now().Before(issued.Exp) {
		return fail("Invalid or expired token.")
	}
	return spec, true
}

func (e *Emulator) checkSecret(identifier, secret string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.tokens[secret]
	return ok && strings.EqualFold(identifier, e.opts.Org)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"fields": map[string]any{"body": []string{"invalid JSON"}},
			"text": "The request body could not be parsed."})
		return false
	}
	return true
}

func fieldError(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, map[string]any{"fields": map[string]any{field: []string{msg}}, "text": msg})
}

func (e *Emulator) authToken(w http.ResponseWriter, r *http.Request, _ TokenSpec, _ []string) {
	var req struct{ Identifier, Secret string }
	if !decodeBody(w, r, &req) {
		return
	}
	if !e.checkSecret(req.Identifier, req.Secret) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errinfo": map[string]any{},
			"detail": "Incorrect authentication credentials", "message": "Incorrect authentication credentials"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": e.issueJWT(req.Secret)})
}

func (e *Emulator) usersLogin(w http.ResponseWriter, r *http.Request, _ TokenSpec, _ []string) {
	var req struct{ Username, Password string }
	if !decodeBody(w, r, &req) {
		return
	}
	if !e.checkSecret(req.Username, req.Password) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Incorrect authentication credentials"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": e.issueJWT(req.Password)})
}

// ---- members ----

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }

func (e *Emulator) memberJSONLocked(m *member) map[string]any {
	a := e.accounts[strings.ToLower(m.Username)]
	return map[string]any{
		"id": a.ID, "username": a.Username, "email": a.Email, "full_name": a.FullName,
		"company": "", "location": "", "profile_url": "", "gravatar_url": "", "gravatar_email": "",
		"date_joined": stamp(a.Joined), "type": "User", "role": capitalize(m.Role),
		"groups": e.teamsOfLocked(m.Username), "is_guest": false,
	}
}

func (e *Emulator) inviteeJSONLocked(inv *invite) map[string]any {
	out := map[string]any{"id": inv.ID, "username": "", "email": "", "full_name": "", "type": "User",
		"role": "Invitee", "groups": []string{}, "is_guest": false, "date_joined": stamp(inv.Created)}
	if strings.Contains(inv.Invitee, "@") {
		out["email"] = inv.Invitee
	} else {
		out["username"] = inv.Invitee
	}
	return out
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// paginate answers {count,next,previous,results} with absolute next/previous URLs.
func paginate(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	q := r.URL.Query()
	page, ok1 := atoiDefault(q.Get("page"), 1)
	size, ok2 := atoiDefault(q.Get("page_size"), 25)
	if !ok1 || !ok2 || page < 1 || size < 1 {
		fieldError(w, http.StatusBadRequest, "page", "page and page_size must be positive integers")
		return
	}
	if size > 100 {
		size = 100
	}
	start := (page - 1) * size
	if start > 0 && start >= len(items) {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Invalid page."})
		return
	}
	end := min(start+size, len(items))
	link := func(p int) any {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		qq := r.URL.Query()
		qq.Set("page", strconv.Itoa(p))
		qq.Set("page_size", strconv.Itoa(size))
		return scheme + "://" + r.Host + r.URL.Path + "?" + qq.Encode()
	}
	var next, prev any
	if end < len(items) {
		next = link(page + 1)
	}
	if page > 1 {
		prev = link(page - 1)
	}
	results := items[start:end]
	if results == nil {
		results = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(items), "next": next, "previous": prev, "results": results})
}

func (e *Emulator) listMembers(w http.ResponseWriter, r *http.Request, _ TokenSpec, _ []string) {
	q := r.URL.Query()
	typ, role, search := q.Get("type"), strings.ToLower(q.Get("role")), q.Get("search")
	withInvites := q.Get("invites") == "true"
	switch typ {
	case "", "all", "member", "invitee":
	default:
		fieldError(w, http.StatusBadRequest, "type", "type must be one of all, invitee, member")
		return
	}
	e.mu.Lock()
	var items []map[string]any
	if typ != "invitee" {
		for _, m := range e.sortedMembersLocked() {
			if role != "" && m.Role != role {
				continue
			}
			a := e.accounts[strings.ToLower(m.Username)]
			if search != "" && !containsFold(a.Username, search) && !containsFold(a.Email, search) && !containsFold(a.FullName, search) {
				continue
			}
			items = append(items, e.memberJSONLocked(m))
		}
	}
	if typ == "invitee" || (withInvites && typ != "member") {
		for _, inv := range e.sortedInvitesLocked() {
			if role != "" || (search != "" && !containsFold(inv.Invitee, search)) {
				continue
			}
			items = append(items, e.inviteeJSONLocked(inv))
		}
	}
	e.mu.Unlock()
	paginate(w, r, items)
}

var validRoles = map[string]bool{"owner": true, "editor": true, "member": true}

func (e *Emulator) updateMember(w http.ResponseWriter, r *http.Request, _ TokenSpec, vars []string) {
	var req struct{ Role string }
	if !decodeBody(w, r, &req) {
		return
	}
	if !validRoles[req.Role] {
		fieldError(w, http.StatusBadRequest, "role", fmt.Sprintf("%q is not a valid choice.", req.Role))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.members[strings.ToLower(vars[1])]
	if m == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "member not found"})
		return
	}
	if m.Role == "owner" && req.Role != "owner" && e.ownerCountLocked() == 1 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errinfo": map[string]any{},
			"detail": "cannot demote the last owner of the organization", "message": "cannot demote the last owner of the organization"})
		return
	}
	m.Role = req.Role
	writeJSON(w, http.StatusOK, e.memberJSONLocked(m))
}

func (e *Emulator) deleteMember(w http.ResponseWriter, _ *http.Request, _ TokenSpec, vars []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.members[strings.ToLower(vars[1])]
	if m == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	if m.Role == "owner" && e.ownerCountLocked() == 1 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errinfo": map[string]any{},
			"detail": "cannot remove the last owner of the organization", "message": "cannot remove the last owner of the organization"})
		return
	}
	e.removeMemberLocked(m.Username)
	w.WriteHeader(http.StatusNoContent)
}

// ---- invites ----

func (e *Emulator) inviteJSON(inv *invite) map[string]any {
	return map[string]any{"id": inv.ID, "inviter_username": inv.Inviter, "invitee": inv.Invitee, "org": e.opts.Org,
		"team": inv.Team, "role": inv.Role, "created_at": stamp(inv.Created)}
}

func looksLikeEmail(s string) bool {
	at := strings.LastIndex(s, "@")
	return at > 0 && strings.Contains(s[at+1:], ".") && !strings.ContainsAny(s, " \t<>,;")
}

// bulkInvite answers 202 {"invitees":[{invitee,status,invite}]}. A second invite of a
// pending invitee is accepted ("invited"): the old invitation is replaced by a new one
// and another email goes out, which is how the real service behaves (Docker's own
// Terraform provider re-invited pending people on every run, issue #114 there, until
// it learned to check first).
func (e *Emulator) bulkInvite(w http.ResponseWriter, r *http.Request, _ TokenSpec, _ []string) {
	var req struct {
		Org      string   `json:"org"`
		Team     string   `json:"team"`
		Role     string   `json:"role"`
		Invitees []string `json:"invitees"`
		DryRun   bool     `json:"dry_run"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if !strings.EqualFold(req.Org, e.opts.Org) {
		fieldError(w, http.StatusBadRequest, "org", "organization not found")
		return
	}
	if len(req.Invitees) == 0 || len(req.Invitees) > 1000 {
		fieldError(w, http.StatusBadRequest, "invitees", "between 1 and 1000 invitees are required")
		return
	}
	if req.Role == "" {
		req.Role = "member"
	}
	if !validRoles[req.Role] {
		fieldError(w, http.StatusBadRequest, "role", fmt.Sprintf("%q is not a valid choice.", req.Role))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if req.Team != "" && e.teams[strings.ToLower(req.Team)] == nil {
		fieldError(w, http.StatusBadRequest, "team", "team not found")
		return
	}
	out := []map[string]any{}
	for _, raw := range req.Invitees {
		id := strings.TrimSpace(raw)
		entry := map[string]any{"invitee": raw}
		switch {
		case id != "" && e.findMemberLocked(id) != nil:
			entry["status"] = "existing_org_member"
		case looksLikeEmail(id) || (id != "" && e.accounts[strings.ToLower(id)] != nil):
			entry["status"] = "invited"
			if req.DryRun {
				break
			}
			if a := e.accounts[strings.ToLower(id)]; a != nil && !strings.Contains(id, "@") {
				id = a.Username
			}
			if old := e.findInviteLocked(id); old != nil {
				delete(e.invites, old.ID)
			}
			inv := &invite{ID: newID(), Inviter: e.opts.Owner, Invitee: id, Team: req.Team, Role: req.Role, Created: e.now().UTC()}
			e.invites[inv.ID] = inv
			e.invitesSent[strings.ToLower(id)]++
			entry["invite"] = e.inviteJSON(inv)
		default:
			entry["status"] = "invalid_email_or_docker_id"
		}
		out = append(out, entry)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"invitees": out})
}

func (e *Emulator) listInvites(w http.ResponseWriter, _ *http.Request, _ TokenSpec, _ []string) {
	e.mu.Lock()
	data := []map[string]any{}
	for _, inv := range e.sortedInvitesLocked() {
		data = append(data, e.inviteJSON(inv))
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func (e *Emulator) deleteInvite(w http.ResponseWriter, _ *http.Request, _ TokenSpec, vars []string) {
	if !e.ExpireInvite(vars[0]) {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) resendInvite(w http.ResponseWriter, _ *http.Request, _ TokenSpec, vars []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inv := e.invites[vars[0]]
	if inv == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	e.invitesSent[strings.ToLower(inv.Invitee)]++
	w.WriteHeader(http.StatusNoContent)
}

// ---- teams ----

func (e *Emulator) teamJSON(t *team) map[string]any {
	return map[string]any{"id": t.ID, "uuid": t.UUID, "name": t.Name, "description": t.Description, "member_count": len(t.Members)}
}

func (e *Emulator) listTeams(w http.ResponseWriter, r *http.Request, _ TokenSpec, _ []string) {
	q := r.URL.Query()
	e.mu.Lock()
	var items []map[string]any
	for _, t := range e.sortedTeamsLocked() {
		if s := q.Get("search"); s != "" && !containsFold(t.Name, s) {
			continue
		}
		if u := q.Get("username"); u != "" && !t.Members[strings.ToLower(u)] {
			continue
		}
		items = append(items, e.teamJSON(t))
	}
	e.mu.Unlock()
	paginate(w, r, items)
}

func validTeamName(s string) bool {
	if s == "" || len(s) > 30 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (e *Emulator) createTeam(w http.ResponseWriter, r *http.Request, _ TokenSpec, _ []string) {
	var req struct{ Name, Description string }
	if !decodeBody(w, r, &req) {
		return
	}
	if !validTeamName(req.Name) {
		fieldError(w, http.StatusBadRequest, "name", "Enter a valid team name: letters, digits, '-', '_' or '.', at most 30.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.teams[strings.ToLower(req.Name)] != nil {
		fieldError(w, http.StatusBadRequest, "name", "A team with this name already exists.")
		return
	}
	writeJSON(w, http.StatusCreated, e.teamJSON(e.createTeamLocked(req.Name, req.Description)))
}

func (e *Emulator) teamLocked(w http.ResponseWriter, name string) *team {
	t := e.teams[strings.ToLower(name)]
	if t == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "group not found"})
	}
	return t
}

func (e *Emulator) getTeam(w http.ResponseWriter, _ *http.Request, _ TokenSpec, vars []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.teamLocked(w, vars[1]); t != nil {
		writeJSON(w, http.StatusOK, e.teamJSON(t))
	}
}

func (e *Emulator) updateTeam(w http.ResponseWriter, r *http.Request, _ TokenSpec, vars []string) {
	var req struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if r.Method == http.MethodPut && req.Name == nil {
		fieldError(w, http.StatusBadRequest, "name", "This field is required.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.teamLocked(w, vars[1])
	if t == nil {
		return
	}
	if req.Name != nil && !strings.EqualFold(*req.Name, t.Name) {
		if !validTeamName(*req.Name) || e.teams[strings.ToLower(*req.Name)] != nil {
			fieldError(w, http.StatusBadRequest, "name", "Enter a valid, unused team name.")
			return
		}
		delete(e.teams, strings.ToLower(t.Name))
		t.Name = *req.Name
		e.teams[strings.ToLower(t.Name)] = t
	}
	if req.Description != nil {
		t.Description = *req.Description
	}
	writeJSON(w, http.StatusOK, e.teamJSON(t))
}

func (e *Emulator) deleteTeam(w http.ResponseWriter, _ *http.Request, _ TokenSpec, vars []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.teamLocked(w, vars[1]); t != nil {
		delete(e.teams, strings.ToLower(t.Name))
		w.WriteHeader(http.StatusNoContent)
	}
}

func (e *Emulator) listTeamMembers(w http.ResponseWriter, r *http.Request, _ TokenSpec, vars []string) {
	search := r.URL.Query().Get("search")
	e.mu.Lock()
	t := e.teamLocked(w, vars[1])
	if t == nil {
		e.mu.Unlock()
		return
	}
	var items []map[string]any
	for _, name := range e.teamMembersLocked(t) {
		a := e.accounts[strings.ToLower(name)]
		if a == nil {
			continue
		}
		if search != "" && !containsFold(a.Username, search) && !containsFold(a.Email, search) && !containsFold(a.FullName, search) {
			continue
		}
		items = append(items, map[string]any{"id": a.ID, "username": a.Username, "email": a.Email, "full_name": a.FullName,
			"company": "", "location": "", "profile_url": "", "gravatar_url": "", "gravatar_email": "",
			"date_joined": stamp(a.Joined), "type": "User"})
	}
	e.mu.Unlock()
	paginate(w, r, items)
}

func (e *Emulator) addTeamMember(w http.ResponseWriter, r *http.Request, _ TokenSpec, vars []string) {
	var req struct{ Member string }
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Member == "" {
		fieldError(w, http.StatusBadRequest, "member", "This field is required.")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.teamLocked(w, vars[1])
	if t == nil {
		return
	}
	m := e.findMemberLocked(req.Member)
	if m == nil {
		// An invitee who has not accepted cannot join a team yet.
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "user is not a member of the organization"})
		return
	}
	t.Members[strings.ToLower(m.Username)] = true
	w.WriteHeader(http.StatusOK)
}

func (e *Emulator) removeTeamMember(w http.ResponseWriter, _ *http.Request, _ TokenSpec, vars []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.teamLocked(w, vars[1])
	if t == nil {
		return
	}
	key := strings.ToLower(vars[2])
	if !t.Members[key] {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not found."})
		return
	}
	delete(t.Members, key)
	w.WriteHeader(http.StatusNoContent)
}
