package dockerhub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scim-operator/scim-operator/internal/backend"
)

// hubMember is one entry of GET /v2/orgs/{org}/members.
type hubMember struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Email    string   `json:"email"`
	FullName string   `json:"full_name"`
	Role     string   `json:"role"`
	Groups   []string `json:"groups"`
}

// hubInvite is one pending invitation.
type hubInvite struct {
	ID      string `json:"id"`
	Invitee string `json:"invitee"`
	Team    string `json:"team"`
	Role    string `json:"role"`
}

type page struct {
	Count   int               `json:"count"`
	Next    *string           `json:"next"`
	Results []json.RawMessage `json:"results"`
}

func validRole(r string) bool { return r == "member" || r == "editor" || r == "owner" }

func isEmail(s string) bool {
	at := strings.LastIndex(s, "@")
	return at > 0 && at < len(s)-1
}

// listAll follows a paginated list from first, through the absolute next links exactly
// as the service gives them (a next link to another host is refused: the bearer token
// goes only to the configured base URL).
//
// retry asks a page that failed again (getPage) instead of giving up the listing: the
// drift pass's whole-organization listing only, whose pages are worth keeping; the
// other listings (a search, a team) are a page or two, and their callers retry.
func (b *Backend) listAll(ctx context.Context, first string, retry bool, each func(json.RawMessage) error) error {
	seen := map[string]bool{}
	for target, n := first, 0; target != ""; n++ {
		if n >= maxPages || seen[target] {
			return backend.NewTransient("UnexpectedResponse", fmt.Errorf("GET %s: pagination does not end", pathOf(first)))
		}
		seen[target] = true
		var p page
		if err := b.getPage(ctx, target, retry, &p); err != nil {
			return err
		}
		for _, r := range p.Results {
			if err := each(r); err != nil {
				return err
			}
		}
		target = ""
		if p.Next != nil && *p.Next != "" {
			u, err := url.Parse(*p.Next)
			if err != nil || !u.IsAbs() || !strings.EqualFold(u.Scheme, b.base.Scheme) || !strings.EqualFold(u.Host, b.base.Host) {
				return backend.NewPermanent("UnexpectedResponse", fmt.Errorf("GET %s: refusing to follow a next link outside %s", pathOf(first), b.base.Host))
			}
			target = *p.Next
		}
	}
	return nil
}

// pageRetries bounds how often one page of a listing is asked again after a transient
// failure or a rate limit, when the caller may wait (backend.MayWait: the drift pass, and
// kubectl scim plan). Without it one failed page threw away every page before it: the
// next attempt started again from page 1, so at 10,000 members (101 pages at 162 calls a
// minute) a 429 or a 5xx late in a pass cost most of an interval's budget again, and a
// backend failing one call in a hundred never finished a pass at all.
//
// Pages are numbered, so a person who leaves or joins while a page waits shifts the
// entries after it: the listing may skip or repeat one. A listing is a hint (the drift
// pass enqueues, and each member then observes itself), so that costs work, not a wrong
// action.
const pageRetries = 4

// maxPageWait is the longest a listing waits to ask a page again: a longer rate-limit
// hint, or a wait past the context's deadline, returns the error, and the drift pass
// requeues itself after the hint instead of holding a worker through it.
const maxPageWait = 30 * time.Second

// getPage gets one page. With retry, under a context that may wait, a Transient failure
// is asked again after 1, 2, 4 and 8 s and a RateLimited one after its hint (or, without
// one, as a Transient), so the pages already read are kept; a controller worker's context
// (NoWait) gets the error at once. The wait is on the wall clock (Options.Now does not
// drive it).
func (b *Backend) getPage(ctx context.Context, target string, retry bool, p *page) error {
	for attempt := 0; ; attempt++ {
		err := b.do(ctx, http.MethodGet, target, nil, p)
		if err == nil || !retry || attempt == pageRetries || !backend.MayWait(ctx) {
			return err
		}
		wait := time.Second << attempt
		switch backend.ClassOf(err) {
		case backend.RateLimited:
			if hint, _ := backend.RetryAfterOf(err); hint > 0 {
				wait = max(hint, time.Second)
			}
		case backend.Transient:
		default:
			return err
		}
		if dl, ok := ctx.Deadline(); wait > maxPageWait || (ok && time.Until(dl) <= wait) {
			return err
		}
		b.opts.Log.V(1).Info("asking for a page again", "path", pathOf(target), "after", wait, "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		*p = page{}
	}
}

func (b *Backend) membersURL(search string) string {
	q := url.Values{}
	if search != "" {
		q.Set("search", search)
	}
	q.Set("page_size", strconv.Itoa(b.opts.PageSize))
	return b.api("orgs", b.opts.Org, "members") + "?" + q.Encode()
}

// findMembers searches members for each id and keeps exact (case-insensitive) matches
// by username or email.
func (b *Backend) findMembers(ctx context.Context, ids []string) ([]hubMember, error) {
	var out []hubMember
	seen := map[string]bool{}
	for _, id := range ids {
		err := b.listAll(ctx, b.membersURL(id), false, func(raw json.RawMessage) error {
			var m hubMember
			if err := json.Unmarshal(raw, &m); err != nil {
				return backend.NewTransient("UnexpectedResponse", fmt.Errorf("a members entry is not JSON: %w", err))
			}
			if strings.EqualFold(m.Role, "invitee") || seen[strings.ToLower(m.Username)] {
				return nil
			}
			if strings.EqualFold(m.Username, id) || (m.Email != "" && strings.EqualFold(m.Email, id)) {
				seen[strings.ToLower(m.Username)] = true
				out = append(out, m)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (b *Backend) listInvites(ctx context.Context) ([]hubInvite, error) {
	var resp struct {
		Data []hubInvite `json:"data"`
	}
	if err := b.do(ctx, http.MethodGet, b.api("orgs", b.opts.Org, "invites"), nil, &resp); err != nil {
		return nil, err
	}
	return resp.Data, nil
}

func (b *Backend) findInvites(ctx context.Context, ids []string) ([]hubInvite, error) {
	all, err := b.listInvites(ctx)
	if err != nil {
		return nil, err
	}
	var out []hubInvite
	for _, inv := range all {
		for _, id := range ids {
			if strings.EqualFold(inv.Invitee, id) {
				out = append(out, inv)
				break
			}
		}
	}
	return out, nil
}

func ids(values ...string) []string {
	var out []string
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || strings.EqualFold(o, v)
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

func (b *Backend) memberOf(userName string, m hubMember) backend.Member {
	teams := append([]string(nil), m.Groups...)
	return backend.Member{UserName: userName, Email: m.Email, BackendID: m.Username, Role: strings.ToLower(m.Role),
		Teams: teams, State: backend.StateMember}
}

func (b *Backend) inviteeOf(userName string, inv hubInvite) backend.Member {
	m := backend.Member{UserName: userName, Role: strings.ToLower(inv.Role), State: backend.StateInvited, InviteID: inv.ID}
	if m.Role == "" {
		m.Role = b.opts.DefaultRole
	}
	if isEmail(inv.Invitee) {
		m.Email = inv.Invitee
	}
	return m
}

// observe looks the person up among members first, then pending invites, under userName
// and more, and under also (backend.EmailInviter's, DesiredMember.Also: a Docker ID the
// member accepted under) when no member is found under those: the answer is the same as
// searching them all (a member found under the userName or the email comes first
// anyway), and a member whose Docker account email did not change costs no search more.
// Each identity of also that is searched, and is not the userName or the email again
// (ids folds them), costs one members search (GET /v2/orgs/{org}/members?search=). A
// member is observed on its SCIM changes, when the drift pass finds it differing, and
// on a change of its config (which reconciles every member): one search more per such
// observation of a member not found under its userName or email.
//
// The pending invitations are listed (GET /v2/orgs/{org}/invites, one call, unpaged: it
// grows with the organization; review 20 F6) only when no member is found, or when
// withInvites asks for them (a removal cancels every invitation of the person, a member's
// too). A member found answers the observation without them, so observing an existing
// member costs its searches only.
func (b *Backend) observe(ctx context.Context, userName string, more, also []string, withInvites bool) (backend.Member, []hubMember, []hubInvite, error) {
	who := ids(append([]string{userName}, more...)...)
	members, err := b.findMembers(ctx, who)
	if err != nil {
		return backend.Member{}, nil, nil, err
	}
	if extra := ids(append(slices.Clone(who), also...)...)[len(who):]; len(members) == 0 && len(extra) > 0 {
		if members, err = b.findMembers(ctx, extra); err != nil {
			return backend.Member{}, nil, nil, err
		}
		who = append(who, extra...)
	}
	var invites []hubInvite
	if len(members) == 0 || withInvites {
		if invites, err = b.findInvites(ctx, who); err != nil {
			return backend.Member{}, nil, nil, err
		}
	}
	switch {
	case len(members) > 0:
		return b.memberOf(userName, members[0]), members, invites, nil
	case len(invites) > 0:
		return b.inviteeOf(userName, invites[0]), members, invites, nil
	default:
		return backend.Member{UserName: userName, State: backend.StateAbsent}, nil, nil, nil
	}
}

// Check exchanges the access token and makes one cheap organization call.
func (b *Backend) Check(ctx context.Context) (err error) {
	start := time.Now()
	defer func() { b.record("Check", start, err) }()
	if _, err = b.token(ctx); err != nil {
		return err
	}
	var p page
	err = b.do(ctx, http.MethodGet, b.api("orgs", b.opts.Org, "members")+"?page_size=1", nil, &p)
	if statusOf(err) == http.StatusNotFound {
		return backend.NewPermanent("OrganizationNotFound", fmt.Errorf("organization %q: %w", b.opts.Org, err))
	}
	return err
}

// ObserveMember looks the person up by Docker ID or email among members and pending invites.
func (b *Backend) ObserveMember(ctx context.Context, userName string) (m backend.Member, err error) {
	return b.ObserveMemberWithEmail(ctx, userName, "")
}

// ObserveMemberWithEmail looks the person up under the userName and the email, the two
// identities EnsureMember may have invited them under, and under also, the Docker ID
// they accepted under (backend.EmailInviter).
func (b *Backend) ObserveMemberWithEmail(ctx context.Context, userName, email string, also ...string) (m backend.Member, err error) {
	start := time.Now()
	defer func() { b.record("ObserveMember", start, err) }()
	m, _, _, err = b.observe(ctx, userName, []string{email}, also, false)
	return m, err
}

// inviteeFor is who to invite: the userName when it is an email (or there is no
// email), else the email.
func inviteeFor(want backend.DesiredMember) string {
	if isEmail(want.UserName) || strings.TrimSpace(want.Email) == "" {
		return strings.TrimSpace(want.UserName)
	}
	return strings.TrimSpace(want.Email)
}

// EnsureMember invites the person only when they are neither a member nor invited, and
// changes a member's role in place. A pending invite is reported as it is (its role
// cannot change until it is accepted).
func (b *Backend) EnsureMember(ctx context.Context, want backend.DesiredMember) (m backend.Member, err error) {
	start := time.Now()
	defer func() { b.record("EnsureMember", start, err) }()
	role := strings.ToLower(strings.TrimSpace(want.Role))
	if role == "" {
		role = b.opts.DefaultRole
	}
	if !validRole(role) {
		return backend.Member{}, backend.NewPermanent("InvalidRole", fmt.Errorf("role %q is not member, editor or owner", want.Role))
	}
	if strings.TrimSpace(want.UserName) == "" {
		return backend.Member{}, backend.NewPermanent("InvalidUser", errors.New("userName is empty"))
	}
	// want.Also: a member whose account email changed since they accepted is found under
	// their Docker ID, and not invited again (Docker Hub would send the invitation)
	m, _, _, err = b.observe(ctx, want.UserName, []string{want.Email}, want.Also, false)
	if err != nil {
		return m, err
	}
	switch m.State {
	case backend.StateMember:
		if m.Role == role {
			return m, nil
		}
		var updated hubMember
		err = b.do(ctx, http.MethodPut, b.api("orgs", b.opts.Org, "members", m.BackendID), map[string]string{"role": role}, &updated)
		if err != nil {
			return m, b.refusal(err, "changing the role of "+m.BackendID)
		}
		m.Role = role
		return m, nil
	case backend.StateInvited:
		return m, nil
	}
	invitee := inviteeFor(want)
	var resp struct {
		Invitees []struct {
			Invitee string    `json:"invitee"`
			Status  string    `json:"status"`
			Invite  hubInvite `json:"invite"`
		} `json:"invitees"`
	}
	body := map[string]any{"org": b.opts.Org, "role": role, "invitees": []string{invitee}}
	if err = b.do(ctx, http.MethodPost, b.api("invites", "bulk"), body, &resp); err != nil {
		return m, err
	}
	if len(resp.Invitees) != 1 {
		return m, backend.NewTransient("UnexpectedResponse", fmt.Errorf("POST /v2/invites/bulk answered %d invitees for one", len(resp.Invitees)))
	}
	got := resp.Invitees[0]
	switch got.Status {
	case "invited":
		inv := got.Invite
		if inv.Invitee == "" {
			inv.Invitee = invitee
		}
		if inv.Role == "" {
			inv.Role = role
		}
		b.opts.Log.Info("invited to the Docker Hub organization", "org", b.opts.Org, "userName", want.UserName, "role", role)
		return b.inviteeOf(want.UserName, inv), nil
	case "existing_org_member":
		// A member under another identity than the ones searched: look again, and report
		// a member either way (the service says so).
		again, _, _, err := b.observe(ctx, want.UserName, []string{want.Email, invitee}, want.Also, false)
		if err == nil && again.State == backend.StateMember {
			return again, nil
		}
		return backend.Member{UserName: want.UserName, Email: want.Email, Role: role, State: backend.StateMember}, nil
	case "invalid_email_or_docker_id":
		return m, backend.NewPermanent("InvalidUser", fmt.Errorf("Docker Hub refused to invite %q: not a valid email or Docker ID", invitee))
	default:
		return m, backend.NewPermanent("InviteRejected", fmt.Errorf("Docker Hub answered %q to the invitation of %q", truncate(clean(got.Status), 60), invitee))
	}
}

// refusal turns a 400 about owners into a LastOwner error.
func (b *Backend) refusal(err error, what string) error {
	if statusOf(err) == http.StatusBadRequest && strings.Contains(strings.ToLower(messageOf(err)), "owner") {
		return backend.NewPermanent("LastOwner", fmt.Errorf("%s: %w", what, err))
	}
	return err
}

// EnsureMemberAbsent cancels pending invites of the person and removes them from the
// organization (and so from every team). Already gone is success.
func (b *Backend) EnsureMemberAbsent(ctx context.Context, userName string) (err error) {
	return b.EnsureMemberAbsentWithEmail(ctx, userName, "")
}

// EnsureMemberAbsentWithEmail is EnsureMemberAbsent for the person found under the
// userName or the email: an invitation EnsureMember sent to the email of a person whose
// userName is not one is cancelled too (backend.EmailInviter).
func (b *Backend) EnsureMemberAbsentWithEmail(ctx context.Context, userName, email string) (err error) {
	start := time.Now()
	defer func() { b.record("EnsureMemberAbsent", start, err) }()
	_, members, invites, err := b.observe(ctx, userName, []string{email}, nil, true)
	if err != nil {
		return err
	}
	for _, inv := range invites {
		err = b.do(ctx, http.MethodDelete, b.api("invites", inv.ID), nil, nil)
		if err != nil && statusOf(err) != http.StatusNotFound {
			return err
		}
	}
	for _, m := range members {
		err = b.do(ctx, http.MethodDelete, b.api("orgs", b.opts.Org, "members", m.Username), nil, nil)
		if err != nil && statusOf(err) != http.StatusNotFound {
			return b.refusal(err, "removing "+m.Username)
		}
		b.opts.Log.Info("removed from the Docker Hub organization", "org", b.opts.Org, "userName", userName, "dockerID", m.Username)
	}
	return nil
}

// ListMembers lists every member and every pending invite in one paged listing:
// GET /v2/orgs/{org}/members?invites=true&type=all&page_size=100, following the next
// links (the published API pages members and, with invites=true, invitees together;
// GET /v2/orgs/{org}/invites is unpaged and grows with the organization, so the drift
// pass does not use it). The cost is one call per page, whatever the number of members.
// An invitee's entry carries the invitation's id and the invitee (email or Docker ID);
// its role is not listed (a pending invitation's role cannot change anyway).
func (b *Backend) ListMembers(ctx context.Context) (out []backend.Member, err error) {
	start := time.Now()
	defer func() { b.record("ListMembers", start, err) }()
	q := url.Values{}
	q.Set("invites", "true")
	q.Set("type", "all")
	q.Set("page_size", strconv.Itoa(b.opts.PageSize))
	err = b.listAll(ctx, b.api("orgs", b.opts.Org, "members")+"?"+q.Encode(), true, func(raw json.RawMessage) error {
		var m hubMember
		if err := json.Unmarshal(raw, &m); err != nil {
			return backend.NewTransient("UnexpectedResponse", fmt.Errorf("a members entry is not JSON: %w", err))
		}
		if strings.EqualFold(m.Role, "invitee") {
			invitee := m.Email
			if invitee == "" {
				invitee = m.Username
			}
			if invitee == "" {
				return nil
			}
			inv := b.inviteeOf(invitee, hubInvite{ID: m.ID, Invitee: invitee})
			inv.Role = ""
			out = append(out, inv)
			return nil
		}
		name := m.Email
		if name == "" {
			name = m.Username
		}
		out = append(out, b.memberOf(name, m))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListTeams lists the organization's teams, paged as ListMembers is: with the teams each
// member's entry names, the drift pass judges every group without a call of its own.
func (b *Backend) ListTeams(ctx context.Context) (out []string, err error) {
	start := time.Now()
	defer func() { b.record("ListTeams", start, err) }()
	q := url.Values{"page_size": {strconv.Itoa(b.opts.PageSize)}}
	err = b.listAll(ctx, b.api("orgs", b.opts.Org, "groups")+"?"+q.Encode(), true, func(raw json.RawMessage) error {
		var t struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return backend.NewTransient("UnexpectedResponse", fmt.Errorf("a teams entry is not JSON: %w", err))
		}
		if t.Name != "" {
			out = append(out, t.Name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListedTeamName is the team's name as ListTeams and the members listing give it.
func (b *Backend) ListedTeamName(team string) (string, error) { return b.teamName(team) }

// teamName accepts "org:team" (the SCIM displayName form) as well as "team".
func (b *Backend) teamName(team string) (string, error) {
	// "org:team" names org's team. Docker Hub's team names hold no colon, so every such
	// prefix is stripped, and spaces around each part: the name is then the same team when
	// it is given back (the controllers record and compare this name, then act on it).
	given := team
	team = strings.TrimSpace(team)
	for {
		org, t, ok := strings.Cut(team, ":")
		if !ok {
			break
		}
		if org = strings.TrimSpace(org); !strings.EqualFold(org, b.opts.Org) {
			return "", backend.NewPermanent("InvalidTeam", fmt.Errorf("team %q belongs to organization %q, not %q", given, org, b.opts.Org))
		}
		team = strings.TrimSpace(t)
	}
	if team == "" {
		return "", backend.NewPermanent("InvalidTeam", errors.New("team name is empty"))
	}
	return team, nil
}

// ObserveTeam returns the team with its members' Docker IDs, or nil when it does not exist.
func (b *Backend) ObserveTeam(ctx context.Context, team string) (t *backend.Team, err error) {
	start := time.Now()
	defer func() { b.record("ObserveTeam", start, err) }()
	name, err := b.teamName(team)
	if err != nil {
		return nil, err
	}
	var g struct {
		Name string `json:"name"`
	}
	err = b.do(ctx, http.MethodGet, b.api("orgs", b.opts.Org, "groups", name), nil, &g)
	if statusOf(err) == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t = &backend.Team{Name: g.Name, Members: []string{}}
	if t.Name == "" {
		t.Name = name
	}
	q := url.Values{"page_size": {strconv.Itoa(b.opts.PageSize)}}
	err = b.listAll(ctx, b.api("orgs", b.opts.Org, "groups", name, "members")+"?"+q.Encode(), false, func(raw json.RawMessage) error {
		var m hubMember
		if err := json.Unmarshal(raw, &m); err != nil {
			return backend.NewTransient("UnexpectedResponse", fmt.Errorf("a team member entry is not JSON: %w", err))
		}
		t.Members = append(t.Members, m.Username)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// EnsureTeam creates the team when it is missing.
func (b *Backend) EnsureTeam(ctx context.Context, team string) (err error) {
	start := time.Now()
	defer func() { b.record("EnsureTeam", start, err) }()
	name, err := b.teamName(team)
	if err != nil {
		return err
	}
	err = b.do(ctx, http.MethodGet, b.api("orgs", b.opts.Org, "groups", name), nil, nil)
	if statusOf(err) != http.StatusNotFound {
		return err
	}
	body := map[string]string{"name": name, "description": "Managed by scim-operator"}
	err = b.do(ctx, http.MethodPost, b.api("orgs", b.opts.Org, "groups"), body, nil)
	if s := statusOf(err); (s == http.StatusBadRequest || s == http.StatusConflict) && strings.Contains(strings.ToLower(messageOf(err)), "exist") {
		return nil // created meanwhile by another worker
	}
	if statusOf(err) == http.StatusBadRequest {
		return backend.NewPermanent("InvalidTeam", fmt.Errorf("creating team %q: %w", name, err))
	}
	return err
}

// EnsureTeamAbsent deletes the team when it exists.
func (b *Backend) EnsureTeamAbsent(ctx context.Context, team string) (err error) {
	start := time.Now()
	defer func() { b.record("EnsureTeamAbsent", start, err) }()
	name, err := b.teamName(team)
	if err != nil {
		return err
	}
	err = b.do(ctx, http.MethodDelete, b.api("orgs", b.opts.Org, "groups", name), nil, nil)
	if statusOf(err) == http.StatusNotFound {
		return nil
	}
	return err
}

// EnsureTeamMember adds a member (by Docker ID) to a team, when not in it yet.
func (b *Backend) EnsureTeamMember(ctx context.Context, team, backendID string) (err error) {
	start := time.Now()
	defer func() { b.record("EnsureTeamMember", start, err) }()
	name, err := b.teamName(team)
	if err != nil {
		return err
	}
	if strings.TrimSpace(backendID) == "" {
		return backend.NewPermanent("NotOrgMember", errors.New("no Docker ID yet (the invitation is not accepted)"))
	}
	q := url.Values{"search": {backendID}, "page_size": {strconv.Itoa(b.opts.PageSize)}}
	found := false
	err = b.listAll(ctx, b.api("orgs", b.opts.Org, "groups", name, "members")+"?"+q.Encode(), false, func(raw json.RawMessage) error {
		var m hubMember
		if json.Unmarshal(raw, &m) == nil && strings.EqualFold(m.Username, backendID) {
			found = true
		}
		return nil
	})
	if statusOf(err) == http.StatusNotFound {
		return backend.NewPermanent("TeamNotFound", fmt.Errorf("team %q: %w", name, err))
	}
	if err != nil || found {
		return err
	}
	err = b.do(ctx, http.MethodPost, b.api("orgs", b.opts.Org, "groups", name, "members"), map[string]string{"member": backendID}, nil)
	switch s := statusOf(err); {
	case err == nil:
		return nil
	case (s == http.StatusBadRequest || s == http.StatusConflict) && strings.Contains(strings.ToLower(messageOf(err)), "already"):
		return nil
	case s == http.StatusNotFound || s == http.StatusBadRequest:
		return backend.NewPermanent("NotOrgMember", fmt.Errorf("adding %s to team %q: %w", backendID, name, err))
	default:
		return err
	}
}

// EnsureTeamMemberAbsent removes a member (by Docker ID) from a team.
func (b *Backend) EnsureTeamMemberAbsent(ctx context.Context, team, backendID string) (err error) {
	start := time.Now()
	defer func() { b.record("EnsureTeamMemberAbsent", start, err) }()
	name, err := b.teamName(team)
	if err != nil {
		return err
	}
	if strings.TrimSpace(backendID) == "" {
		return nil
	}
	err = b.do(ctx, http.MethodDelete, b.api("orgs", b.opts.Org, "groups", name, "members", backendID), nil, nil)
	if statusOf(err) == http.StatusNotFound {
		return nil
	}
	return err
}
