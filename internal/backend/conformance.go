package backend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Harness connects the conformance suite to one backend implementation.
//
// The suite lives in this package (not in a _test file) so that every backend's tests
// can call RunConformance with a harness against its real or emulated service.
type Harness struct {
	// New returns a backend for a fresh, empty organization. It is called once for every
	// subtest; cleanup belongs in t.Cleanup.
	New func(t *testing.T) Backend

	// AcceptInvite makes a pending invitation of userName accepted, the way the person
	// would (the Docker Hub emulator's state). Nil when the backend has no invitations:
	// EnsureMember then makes a member at once.
	AcceptInvite func(t *testing.T, b Backend, userName string)

	// HasAccess asks an outside authority whether userName has the organization's access
	// right now (for kubernetes a SubjectAccessReview; for Docker Hub the emulator's
	// state). Nil skips the outside checks.
	HasAccess func(t *testing.T, b Backend, userName string) bool

	// TeamHasAccess asks an outside authority whether members of team get the
	// organization's access through the team (for kubernetes a SubjectAccessReview with
	// groups=[team]). Nil skips those checks.
	TeamHasAccess func(t *testing.T, b Backend, team string) bool

	// SupportsTeamMembership is true when EnsureTeamMember changes the backend (ObserveTeam
	// lists the member). False for backends whose teams are populated elsewhere (the
	// kubernetes backend: group membership comes from the authenticator).
	SupportsTeamMembership bool

	// SupportsRoles is true when members have roles that EnsureMember can change in place.
	SupportsRoles bool

	// Roles are two distinct roles the backend knows, used by the role-change case;
	// default {"member", "editor"}.
	Roles []string

	// Domain is the email domain of the people the suite provisions; default "x.io".
	Domain string
}

func (h Harness) domain() string {
	if h.Domain != "" {
		return h.Domain
	}
	return "x.io"
}

func (h Harness) roles() []string {
	if len(h.Roles) >= 2 {
		return h.Roles
	}
	return []string{"member", "editor"}
}

func (h Harness) user(local string) string { return local + "@" + h.domain() }

// member ensures userName is a full member: EnsureMember, then accepting the invitation
// when the backend invites. It returns the observed member.
func (h Harness) member(t *testing.T, b Backend, want DesiredMember) Member {
	t.Helper()
	ctx := t.Context()
	m, err := b.EnsureMember(ctx, want)
	if err != nil {
		t.Fatalf("EnsureMember(%q): %v", want.UserName, err)
	}
	if h.AcceptInvite == nil {
		if m.State != StateMember {
			t.Fatalf("EnsureMember(%q) state = %q, want %q (the backend has no invitations)", want.UserName, m.State, StateMember)
		}
		return m
	}
	if m.State != StateInvited && m.State != StateMember {
		t.Fatalf("EnsureMember(%q) state = %q, want Invited or Member", want.UserName, m.State)
	}
	if m.State == StateInvited {
		h.AcceptInvite(t, b, want.UserName)
	}
	return h.observe(t, b, want.UserName, StateMember)
}

func (h Harness) observe(t *testing.T, b Backend, userName string, want MemberState) Member {
	t.Helper()
	m, err := b.ObserveMember(t.Context(), userName)
	if err != nil {
		t.Fatalf("ObserveMember(%q): %v", userName, err)
	}
	if m.State != want {
		t.Fatalf("ObserveMember(%q) state = %q, want %q", userName, m.State, want)
	}
	return m
}

func (h Harness) access(t *testing.T, b Backend, userName string, want bool) {
	t.Helper()
	if h.HasAccess == nil {
		return
	}
	if got := h.HasAccess(t, b, userName); got != want {
		t.Fatalf("HasAccess(%q) = %v, want %v", userName, got, want)
	}
}

func (h Harness) teamAccess(t *testing.T, b Backend, team string, want bool) {
	t.Helper()
	if h.TeamHasAccess == nil {
		return
	}
	if got := h.TeamHasAccess(t, b, team); got != want {
		t.Fatalf("TeamHasAccess(%q) = %v, want %v", team, got, want)
	}
}

// countListed counts the entries of ListMembers that are userName (case-insensitively,
// by UserName or Email).
func countListed(t *testing.T, b Backend, userName string) (int, Member) {
	t.Helper()
	list, err := b.ListMembers(t.Context())
	if err != nil {
		t.Fatalf("ListMembers: %v", err)
	}
	n, found := 0, Member{}
	for _, m := range list {
		if strings.EqualFold(m.UserName, userName) || (m.Email != "" && strings.EqualFold(m.Email, userName)) {
			n++
			found = m
		}
	}
	return n, found
}

func teamMembers(t *testing.T, b Backend, team string) []string {
	t.Helper()
	got, err := b.ObserveTeam(t.Context(), team)
	if err != nil {
		t.Fatalf("ObserveTeam(%q): %v", team, err)
	}
	if got == nil {
		t.Fatalf("ObserveTeam(%q) = nil, want the team", team)
	}
	return got.Members
}

func countFold(list []string, s string) int {
	n := 0
	for _, v := range list {
		if strings.EqualFold(v, s) {
			n++
		}
	}
	return n
}

// RunConformance runs the behaviour every Backend must have, as subtests of t. Each
// subtest gets a fresh organization from h.New.
func RunConformance(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("conformance: Harness.New is required")
	}

	t.Run("Check succeeds", func(t *testing.T) {
		b := h.New(t)
		if err := b.Check(t.Context()); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})

	t.Run("observing an unknown person is Absent without error", func(t *testing.T) {
		b := h.New(t)
		u := h.user("nobody")
		m := h.observe(t, b, u, StateAbsent)
		if m.BackendID != "" || m.InviteID != "" {
			t.Fatalf("ObserveMember(%q) of an absent person = %+v, want no BackendID and no InviteID", u, m)
		}
		h.access(t, b, u, false)
	})

	t.Run("EnsureMember is idempotent", func(t *testing.T) {
		b := h.New(t)
		u := h.user("alice")
		first, err := b.EnsureMember(t.Context(), DesiredMember{UserName: u})
		if err != nil {
			t.Fatalf("EnsureMember(%q) first call: %v", u, err)
		}
		second, err := b.EnsureMember(t.Context(), DesiredMember{UserName: u})
		if err != nil {
			t.Fatalf("EnsureMember(%q) second call: %v", u, err)
		}
		if first.State != second.State {
			t.Fatalf("EnsureMember(%q) states differ between calls: %q then %q", u, first.State, second.State)
		}
		if first.InviteID != second.InviteID {
			t.Fatalf("EnsureMember(%q) invited twice: invite %q then %q", u, first.InviteID, second.InviteID)
		}
		if n, _ := countListed(t, b, u); n != 1 {
			t.Fatalf("ListMembers holds %d entries for %q after two EnsureMember calls, want 1", n, u)
		}
		if h.AcceptInvite != nil {
			if first.State != StateInvited {
				t.Fatalf("EnsureMember(%q) state = %q, want %q before the invitation is accepted", u, first.State, StateInvited)
			}
			h.observe(t, b, u, StateInvited)
			h.access(t, b, u, false)
			h.AcceptInvite(t, b, u)
			if _, err := b.EnsureMember(t.Context(), DesiredMember{UserName: u}); err != nil {
				t.Fatalf("EnsureMember(%q) after acceptance: %v", u, err)
			}
			if n, _ := countListed(t, b, u); n != 1 {
				t.Fatalf("ListMembers holds %d entries for %q after acceptance and another EnsureMember, want 1", n, u)
			}
		}
		m := h.observe(t, b, u, StateMember)
		if m.BackendID == "" {
			t.Fatalf("ObserveMember(%q) of a member has no BackendID", u)
		}
		h.access(t, b, u, true)
	})

	t.Run("identity is case-insensitive", func(t *testing.T) {
		b := h.New(t)
		mixed := "Alice@" + strings.ToUpper(h.domain())
		lower := strings.ToLower(mixed)
		h.member(t, b, DesiredMember{UserName: mixed})
		h.observe(t, b, lower, StateMember)
		if _, err := b.EnsureMember(t.Context(), DesiredMember{UserName: lower}); err != nil {
			t.Fatalf("EnsureMember(%q) after %q: %v", lower, mixed, err)
		}
		if n, _ := countListed(t, b, lower); n != 1 {
			t.Fatalf("ListMembers holds %d entries for %q after ensuring %q and %q, want 1", n, lower, mixed, lower)
		}
		h.access(t, b, lower, true)
		if err := b.EnsureMemberAbsent(t.Context(), lower); err != nil {
			t.Fatalf("EnsureMemberAbsent(%q): %v", lower, err)
		}
		h.observe(t, b, mixed, StateAbsent)
		h.access(t, b, lower, false)
	})

	t.Run("EnsureMemberAbsent of an absent person succeeds", func(t *testing.T) {
		b := h.New(t)
		u := h.user("ghost")
		for i := range 2 {
			if err := b.EnsureMemberAbsent(t.Context(), u); err != nil {
				t.Fatalf("EnsureMemberAbsent(%q) call %d: %v", u, i+1, err)
			}
		}
		h.observe(t, b, u, StateAbsent)
	})

	t.Run("EnsureMemberAbsent cancels a pending invitation", func(t *testing.T) {
		if h.AcceptInvite == nil {
			t.Skip("the backend has no invitations")
		}
		b := h.New(t)
		u := h.user("invitee")
		if _, err := b.EnsureMember(t.Context(), DesiredMember{UserName: u}); err != nil {
			t.Fatalf("EnsureMember(%q): %v", u, err)
		}
		h.observe(t, b, u, StateInvited)
		if err := b.EnsureMemberAbsent(t.Context(), u); err != nil {
			t.Fatalf("EnsureMemberAbsent(%q) of an invitee: %v", u, err)
		}
		h.observe(t, b, u, StateAbsent)
		if n, _ := countListed(t, b, u); n != 0 {
			t.Fatalf("ListMembers holds %d entries for %q after its invitation was cancelled, want 0", n, u)
		}
	})

	t.Run("ensure, remove, ensure again reactivates", func(t *testing.T) {
		b := h.New(t)
		u := h.user("bob")
		h.access(t, b, u, false)
		h.member(t, b, DesiredMember{UserName: u})
		h.access(t, b, u, true)
		for i := range 2 {
			if err := b.EnsureMemberAbsent(t.Context(), u); err != nil {
				t.Fatalf("EnsureMemberAbsent(%q) call %d: %v", u, i+1, err)
			}
		}
		h.observe(t, b, u, StateAbsent)
		h.access(t, b, u, false)
		h.member(t, b, DesiredMember{UserName: u})
		h.access(t, b, u, true)
		if n, _ := countListed(t, b, u); n != 1 {
			t.Fatalf("ListMembers holds %d entries for %q after reactivation, want 1", n, u)
		}
	})

	t.Run("role changes in place", func(t *testing.T) {
		if !h.SupportsRoles {
			t.Skip("the backend has no roles")
		}
		b := h.New(t)
		u := h.user("carol")
		roles := h.roles()
		m := h.member(t, b, DesiredMember{UserName: u, Role: roles[0]})
		if m.Role != roles[0] {
			t.Fatalf("ObserveMember(%q) role = %q, want %q", u, m.Role, roles[0])
		}
		id := m.BackendID
		if _, err := b.EnsureMember(t.Context(), DesiredMember{UserName: u, Role: roles[1]}); err != nil {
			t.Fatalf("EnsureMember(%q, role %q): %v", u, roles[1], err)
		}
		m = h.observe(t, b, u, StateMember)
		if m.Role != roles[1] {
			t.Fatalf("ObserveMember(%q) role = %q after the change, want %q", u, m.Role, roles[1])
		}
		if m.BackendID != id {
			t.Fatalf("ObserveMember(%q) BackendID changed with the role: %q then %q", u, id, m.BackendID)
		}
		if n, _ := countListed(t, b, u); n != 1 {
			t.Fatalf("ListMembers holds %d entries for %q after a role change, want 1", n, u)
		}
		h.access(t, b, u, true)
	})

	t.Run("ListMembers reflects ensures and removals", func(t *testing.T) {
		b := h.New(t)
		a, c := h.user("ann"), h.user("cid")
		h.member(t, b, DesiredMember{UserName: a})
		h.member(t, b, DesiredMember{UserName: c})
		for _, u := range []string{a, c} {
			n, m := countListed(t, b, u)
			if n != 1 {
				t.Fatalf("ListMembers holds %d entries for %q, want 1", n, u)
			}
			if m.State != StateMember {
				t.Fatalf("ListMembers entry for %q has state %q, want %q", u, m.State, StateMember)
			}
		}
		if err := b.EnsureMemberAbsent(t.Context(), a); err != nil {
			t.Fatalf("EnsureMemberAbsent(%q): %v", a, err)
		}
		if n, _ := countListed(t, b, a); n != 0 {
			t.Fatalf("ListMembers holds %d entries for removed %q, want 0", n, a)
		}
		if n, _ := countListed(t, b, c); n != 1 {
			t.Fatalf("ListMembers holds %d entries for %q after removing %q, want 1", n, c, a)
		}
	})

	t.Run("ListMembers lists an organization larger than a page once, with invitations and owners", func(t *testing.T) {
		// The drift pass observes the whole organization through ListMembers alone: every
		// person exactly once across pages (105 > the 100 a page the backends ask for),
		// pending invitations as Invited, and on a backend that labels its grants the owner
		// of each grant, so that the pass attributes every grant to the object that wants it.
		b := h.New(t)
		const n = 105
		_, ledger := b.(OwnerLedger)
		for i := range n {
			u := h.user(fmt.Sprintf("p%03d", i))
			if _, err := b.EnsureMember(t.Context(), DesiredMember{UserName: u,
				Owner: Owner{Kind: "OrgMember", UID: fmt.Sprintf("uid-%03d", i)}}); err != nil {
				t.Fatalf("EnsureMember(%q): %v", u, err)
			}
			if h.AcceptInvite != nil && i%2 == 0 {
				h.AcceptInvite(t, b, u)
			}
		}
		list, err := b.ListMembers(t.Context())
		if err != nil {
			t.Fatalf("ListMembers: %v", err)
		}
		for i := range n {
			u := h.user(fmt.Sprintf("p%03d", i))
			var found []Member
			for _, m := range list {
				if strings.EqualFold(m.UserName, u) || (m.Email != "" && strings.EqualFold(m.Email, u)) {
					found = append(found, m)
				}
			}
			if len(found) != 1 {
				t.Fatalf("ListMembers holds %d entries for %q among %d, want 1", len(found), u, len(list))
			}
			want := StateMember
			if h.AcceptInvite != nil && i%2 == 1 {
				want = StateInvited
			}
			if found[0].State != want {
				t.Fatalf("ListMembers entry for %q has state %q, want %q", u, found[0].State, want)
			}
			if uid := fmt.Sprintf("uid-%03d", i); ledger && !slices.Contains(found[0].Owners, uid) {
				t.Fatalf("ListMembers entry for %q has owners %v, want %q among them", u, found[0].Owners, uid)
			}
		}
	})

	t.Run("teams: ensure and remove are idempotent", func(t *testing.T) {
		b := h.New(t)
		const team = "developers"
		got, err := b.ObserveTeam(t.Context(), team)
		if err != nil {
			t.Fatalf("ObserveTeam(%q) of a missing team: %v", team, err)
		}
		if got != nil {
			t.Fatalf("ObserveTeam(%q) of a missing team = %+v, want nil", team, got)
		}
		h.teamAccess(t, b, team, false)
		for i := range 2 {
			if err := b.EnsureTeam(t.Context(), team); err != nil {
				t.Fatalf("EnsureTeam(%q) call %d: %v", team, i+1, err)
			}
		}
		got, err = b.ObserveTeam(t.Context(), team)
		if err != nil {
			t.Fatalf("ObserveTeam(%q): %v", team, err)
		}
		if got == nil || got.Name != team {
			t.Fatalf("ObserveTeam(%q) after EnsureTeam = %+v, want the team named %q", team, got, team)
		}
		h.teamAccess(t, b, team, true)
		for i := range 2 {
			if err := b.EnsureTeamAbsent(t.Context(), team); err != nil {
				t.Fatalf("EnsureTeamAbsent(%q) call %d: %v", team, i+1, err)
			}
		}
		got, err = b.ObserveTeam(t.Context(), team)
		if err != nil {
			t.Fatalf("ObserveTeam(%q) after removal: %v", team, err)
		}
		if got != nil {
			t.Fatalf("ObserveTeam(%q) after EnsureTeamAbsent = %+v, want nil", team, got)
		}
		h.teamAccess(t, b, team, false)
	})

	t.Run("teams: membership is idempotent", func(t *testing.T) {
		b := h.New(t)
		const team = "operators"
		u := h.user("dana")
		m := h.member(t, b, DesiredMember{UserName: u})
		if err := b.EnsureTeam(t.Context(), team); err != nil {
			t.Fatalf("EnsureTeam(%q): %v", team, err)
		}
		for i := range 2 {
			if err := b.EnsureTeamMember(t.Context(), team, m.BackendID); err != nil {
				t.Fatalf("EnsureTeamMember(%q, %q) call %d: %v", team, m.BackendID, i+1, err)
			}
		}
		if h.SupportsTeamMembership {
			if n := countFold(teamMembers(t, b, team), m.BackendID); n != 1 {
				t.Fatalf("team %q lists %q %d times after two EnsureTeamMember calls, want once", team, m.BackendID, n)
			}
			if om := h.observe(t, b, u, StateMember); !slices.ContainsFunc(om.Teams, func(s string) bool { return strings.EqualFold(s, team) }) {
				t.Fatalf("ObserveMember(%q).Teams = %v, want it to include %q", u, om.Teams, team)
			}
		}
		for i := range 2 {
			if err := b.EnsureTeamMemberAbsent(t.Context(), team, m.BackendID); err != nil {
				t.Fatalf("EnsureTeamMemberAbsent(%q, %q) call %d: %v", team, m.BackendID, i+1, err)
			}
		}
		if h.SupportsTeamMembership {
			if n := countFold(teamMembers(t, b, team), m.BackendID); n != 0 {
				t.Fatalf("team %q lists %q %d times after EnsureTeamMemberAbsent, want 0", team, m.BackendID, n)
			}
		}
		// The person is still a member of the organization.
		h.observe(t, b, u, StateMember)
		h.access(t, b, u, true)

		// Removing a member from the organization takes them out of its teams.
		if err := b.EnsureTeamMember(t.Context(), team, m.BackendID); err != nil {
			t.Fatalf("EnsureTeamMember(%q, %q) again: %v", team, m.BackendID, err)
		}
		if err := b.EnsureMemberAbsent(t.Context(), u); err != nil {
			t.Fatalf("EnsureMemberAbsent(%q) of a team member: %v", u, err)
		}
		if h.SupportsTeamMembership {
			if n := countFold(teamMembers(t, b, team), m.BackendID); n != 0 {
				t.Fatalf("team %q still lists %q after EnsureMemberAbsent, want 0", team, m.BackendID)
			}
		}
		if err := b.EnsureTeamMemberAbsent(t.Context(), team, m.BackendID); err != nil {
			t.Fatalf("EnsureTeamMemberAbsent(%q, %q) of a removed member: %v", team, m.BackendID, err)
		}
	})

	t.Run("TeamLister: the listings show every team, and its members through their entries, as ObserveTeam does", func(t *testing.T) {
		// A drift pass judges every group from ListTeams and the Teams of each ListMembers
		// entry (plan.NewTeams), so both must agree with ObserveTeam: more teams than a
		// page (105 > the 100 a page the backends ask for), listed once each.
		b := h.New(t)
		tl, ok := b.(TeamLister)
		if !ok {
			t.Skip("the backend does not list its teams")
		}
		if !h.SupportsTeamMembership {
			t.Fatal("a TeamLister's teams must be lists of people (SupportsTeamMembership)")
		}
		const n = 105
		for i := range n {
			if err := b.EnsureTeam(t.Context(), fmt.Sprintf("team-%03d", i)); err != nil {
				t.Fatalf("EnsureTeam: %v", err)
			}
		}
		u := h.user("erin")
		m := h.member(t, b, DesiredMember{UserName: u})
		if err := b.EnsureTeamMember(t.Context(), "team-007", m.BackendID); err != nil {
			t.Fatalf("EnsureTeamMember: %v", err)
		}
		if err := b.EnsureTeamAbsent(t.Context(), "team-104"); err != nil {
			t.Fatalf("EnsureTeamAbsent: %v", err)
		}
		names, err := tl.ListTeams(t.Context())
		if err != nil {
			t.Fatalf("ListTeams: %v", err)
		}
		for i := range n {
			want := 1
			if i == 104 {
				want = 0
			}
			if got := countFold(names, fmt.Sprintf("team-%03d", i)); got != want {
				t.Fatalf("ListTeams lists team-%03d %d times among %d, want %d", i, got, len(names), want)
			}
		}
		list, err := b.ListMembers(t.Context())
		if err != nil {
			t.Fatalf("ListMembers: %v", err)
		}
		var teams []string
		for _, e := range list {
			if strings.EqualFold(e.BackendID, m.BackendID) {
				teams = append(teams, e.Teams...)
			}
		}
		if len(teams) != 1 || !strings.EqualFold(teams[0], "team-007") {
			t.Fatalf("ListMembers gives %q the teams %v, want [team-007]", u, teams)
		}
		if n := countFold(teamMembers(t, b, "team-007"), m.BackendID); n != 1 {
			t.Fatalf("ObserveTeam(team-007) lists %q %d times, want once, as the listings do", m.BackendID, n)
		}
		for _, form := range []string{"team-007", "TEAM-007", " team-007 "} {
			got, err := tl.ListedTeamName(form)
			if err != nil || !strings.EqualFold(got, "team-007") {
				t.Fatalf("ListedTeamName(%q) = %q, %v; want the listed name team-007", form, got, err)
			}
			// the controllers compare and record the answer, then give it back: it must name
			// the same team again
			if again, err := tl.ListedTeamName(got); err != nil || again != got {
				t.Fatalf("ListedTeamName(%q) = %q, %v; want %q again", got, again, err, got)
			}
		}
	})

	t.Run("a cancelled context returns an error that is not Permanent", func(t *testing.T) {
		b := h.New(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		u := h.user("erin")
		calls := []struct {
			name string
			call func() error
		}{
			{"Check", func() error { return b.Check(ctx) }},
			{"ObserveMember", func() error { _, err := b.ObserveMember(ctx, u); return err }},
			{"EnsureMember", func() error { _, err := b.EnsureMember(ctx, DesiredMember{UserName: u}); return err }},
			{"EnsureMemberAbsent", func() error { return b.EnsureMemberAbsent(ctx, u) }},
			{"ListMembers", func() error { _, err := b.ListMembers(ctx); return err }},
			{"ObserveTeam", func() error { _, err := b.ObserveTeam(ctx, "t"); return err }},
			{"EnsureTeam", func() error { return b.EnsureTeam(ctx, "t") }},
			{"EnsureTeamAbsent", func() error { return b.EnsureTeamAbsent(ctx, "t") }},
		}
		for _, c := range calls {
			err := c.call()
			if err == nil {
				t.Fatalf("%s with a cancelled context returned no error", c.name)
			}
			if ClassOf(err) == Permanent {
				t.Fatalf("%s with a cancelled context returned a Permanent error (%v); a cancelled call must be retryable", c.name, err)
			}
		}
		// Nothing happened.
		h.observe(t, b, u, StateAbsent)
	})
}
