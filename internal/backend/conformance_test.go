package backend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// memOrg is an in-memory organization with invitations, roles and teams. It exercises the
// parts of the suite that the kubernetes backend skips (invitations, roles, team
// membership), so the suite is known to be consistent before a real backend meets it.
type memOrg struct {
	mu      sync.Mutex
	nextID  int
	invites map[string]Member // folded userName -> invite
	members map[string]Member // folded userName -> member
	teams   map[string][]string
}

func newMemOrg() *memOrg {
	return &memOrg{invites: map[string]Member{}, members: map[string]Member{}, teams: map[string][]string{}}
}

func fold(s string) string { return strings.ToLower(s) }

func (o *memOrg) Check(ctx context.Context) error { return ctx.Err() }

func (o *memOrg) ObserveMember(ctx context.Context, userName string) (Member, error) {
	if err := ctx.Err(); err != nil {
		return Member{}, NewTransient("Cancelled", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.observe(userName), nil
}

func (o *memOrg) observe(userName string) Member {
	if m, ok := o.members[fold(userName)]; ok {
		m.Teams = nil
		for t, ids := range o.teams {
			if slices.Contains(ids, m.BackendID) {
				m.Teams = append(m.Teams, t)
			}
		}
		return m
	}
	if m, ok := o.invites[fold(userName)]; ok {
		return m
	}
	return Member{UserName: userName, State: StateAbsent}
}

func (o *memOrg) EnsureMember(ctx context.Context, want DesiredMember) (Member, error) {
	if err := ctx.Err(); err != nil {
		return Member{}, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	role := want.Role
	if role == "" {
		role = "member"
	}
	k := fold(want.UserName)
	if m, ok := o.members[k]; ok {
		m.Role = role
		o.members[k] = m
		return o.observe(want.UserName), nil
	}
	if m, ok := o.invites[k]; ok {
		m.Role = role
		o.invites[k] = m
		return m, nil
	}
	o.nextID++
	m := Member{UserName: want.UserName, Email: want.UserName, Role: role, State: StateInvited, InviteID: fmt.Sprint(o.nextID)}
	o.invites[k] = m
	return m, nil
}

func (o *memOrg) accept(userName string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := fold(userName)
	m := o.invites[k]
	delete(o.invites, k)
	m.State, m.InviteID, m.BackendID = StateMember, "", "id-"+k
	o.members[k] = m
}

func (o *memOrg) EnsureMemberAbsent(ctx context.Context, userName string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	k := fold(userName)
	if m, ok := o.members[k]; ok {
		for t, ids := range o.teams {
			o.teams[t] = slices.DeleteFunc(ids, func(s string) bool { return s == m.BackendID })
		}
	}
	delete(o.members, k)
	delete(o.invites, k)
	return nil
}

func (o *memOrg) ListMembers(ctx context.Context) ([]Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Member
	for _, m := range o.members {
		out = append(out, m)
	}
	for _, m := range o.invites {
		out = append(out, m)
	}
	return out, nil
}

func (o *memOrg) ObserveTeam(ctx context.Context, team string) (*Team, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	ids, ok := o.teams[team]
	if !ok {
		return nil, nil
	}
	return &Team{Name: team, Members: slices.Clone(ids)}, nil
}

func (o *memOrg) EnsureTeam(ctx context.Context, team string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.teams[team]; !ok {
		o.teams[team] = nil
	}
	return nil
}

func (o *memOrg) EnsureTeamAbsent(ctx context.Context, team string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.teams, team)
	return nil
}

func (o *memOrg) EnsureTeamMember(ctx context.Context, team, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !slices.Contains(o.teams[team], id) {
		o.teams[team] = append(o.teams[team], id)
	}
	return nil
}

func (o *memOrg) EnsureTeamMemberAbsent(ctx context.Context, team, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if ids, ok := o.teams[team]; ok {
		o.teams[team] = slices.DeleteFunc(ids, func(s string) bool { return s == id })
	}
	return nil
}

func TestConformanceInMemory(t *testing.T) {
	RunConformance(t, Harness{
		New:          func(*testing.T) Backend { return newMemOrg() },
		AcceptInvite: func(_ *testing.T, b Backend, u string) { b.(*memOrg).accept(u) },
		HasAccess: func(_ *testing.T, b Backend, u string) bool {
			o := b.(*memOrg)
			o.mu.Lock()
			defer o.mu.Unlock()
			_, ok := o.members[fold(u)]
			return ok
		},
		SupportsTeamMembership: true,
		SupportsRoles:          true,
	})
}

func TestClassification(t *testing.T) {
	if c := ClassOf(fmt.Errorf("wrapped: %w", NewPermanent("NotAllowedToBind", fmt.Errorf("no")))); c != Permanent {
		t.Fatalf("ClassOf(wrapped permanent) = %v, want Permanent", c)
	}
	if c := ClassOf(context.Canceled); c != Transient {
		t.Fatalf("ClassOf(unclassified) = %v, want Transient", c)
	}
	err := NewPermanent("CredentialsMissing", fmt.Errorf("secret ns/s has no key token"))
	if got, want := err.Error(), "CredentialsMissing (Permanent): secret ns/s has no key token"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if r := ReasonOf(err); r != "CredentialsMissing" {
		t.Fatalf("ReasonOf = %q", r)
	}
}
