package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
)

// testProvider routes a ScimConfig to an in-memory backend registered for it, else to the
// real provider (the registry of the kubernetes and Docker Hub backends).
type testProvider struct {
	mu    sync.Mutex
	fakes map[string]*memBackend
	real  backend.Provider
}

func (p *testProvider) register(ns, name string, b *memBackend) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fakes == nil {
		p.fakes = map[string]*memBackend{}
	}
	p.fakes[ns+"/"+name] = b
}

func (p *testProvider) For(ctx context.Context, cfg *scimv1.ScimConfig) (backend.Backend, error) {
	p.mu.Lock()
	b, ok := p.fakes[cfg.Namespace+"/"+cfg.Name]
	p.mu.Unlock()
	if ok {
		return b, nil
	}
	if p.real == nil {
		return nil, backend.NewPermanent("BackendUnavailable", errors.New("no real provider wired in this suite"))
	}
	return p.real.For(ctx, cfg)
}

// memBackend is a small in-memory organization for the controllers' pure logic (error
// classification, adoption, ordering); behaviour against real backends is tested with the
// kubernetes backend and the Docker Hub emulator.
type memBackend struct {
	mu      sync.Mutex
	members map[string]*backend.Member // by folded userName
	teams   map[string][]string
	// invite: EnsureMember creates invitees instead of members.
	invite bool
	// faults are returned, one per call, by the operations they name.
	faults map[string][]error
	// sticky faults are returned by every call of their operation until cleared.
	sticky map[string]error
	calls  []string
}

func newMemBackend() *memBackend {
	return &memBackend{members: map[string]*backend.Member{}, teams: map[string][]string{},
		faults: map[string][]error{}, sticky: map[string]error{}}
}

func (b *memBackend) fail(op string, errs ...error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.faults[op] = append(b.faults[op], errs...)
}

func (b *memBackend) failAlways(op string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		delete(b.sticky, op)
		return
	}
	b.sticky[op] = err
}

func (b *memBackend) callsOf(op string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.calls {
		if c == op {
			n++
		}
	}
	return n
}

func (b *memBackend) enter(op string) error {
	b.calls = append(b.calls, op)
	if err := b.sticky[op]; err != nil {
		return err
	}
	if q := b.faults[op]; len(q) > 0 {
		b.faults[op] = q[1:]
		return q[0]
	}
	return nil
}

func (b *memBackend) put(userName, role string, state backend.MemberState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := &backend.Member{UserName: userName, Role: role, State: state}
	if state == backend.StateMember {
		m.BackendID = userName
	} else {
		m.InviteID = "inv-" + userName
	}
	b.members[strings.ToLower(userName)] = m
}

func (b *memBackend) get(userName string) (backend.Member, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.members[strings.ToLower(userName)]
	if !ok {
		return backend.Member{}, false
	}
	return *m, true
}

func (b *memBackend) remove(userName string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.members, strings.ToLower(userName))
}

func (b *memBackend) Check(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.enter("Check")
}

func (b *memBackend) ObserveMember(_ context.Context, userName string) (backend.Member, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("ObserveMember"); err != nil {
		return backend.Member{}, err
	}
	if m, ok := b.members[strings.ToLower(userName)]; ok {
		c := *m
		c.Teams = slices.Clone(m.Teams)
		return c, nil
	}
	return backend.Member{UserName: userName, State: backend.StateAbsent}, nil
}

func (b *memBackend) EnsureMember(_ context.Context, want backend.DesiredMember) (backend.Member, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("EnsureMember"); err != nil {
		return backend.Member{}, err
	}
	k := strings.ToLower(want.UserName)
	m, ok := b.members[k]
	if !ok {
		m = &backend.Member{UserName: want.UserName, Role: want.Role, State: backend.StateMember, BackendID: want.UserName}
		if b.invite {
			m.State, m.BackendID, m.InviteID = backend.StateInvited, "", fmt.Sprintf("inv-%d", len(b.calls))
		}
		b.members[k] = m
	}
	if m.State == backend.StateMember && want.Role != "" {
		m.Role = want.Role
	}
	return *m, nil
}

func (b *memBackend) EnsureMemberAbsent(_ context.Context, userName string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("EnsureMemberAbsent"); err != nil {
		return err
	}
	delete(b.members, strings.ToLower(userName))
	return nil
}

func (b *memBackend) ListMembers(context.Context) ([]backend.Member, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []backend.Member
	for _, m := range b.members {
		out = append(out, *m)
	}
	return out, nil
}

func (b *memBackend) ObserveTeam(_ context.Context, team string) (*backend.Team, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("ObserveTeam"); err != nil {
		return nil, err
	}
	ms, ok := b.teams[team]
	if !ok {
		return nil, nil
	}
	return &backend.Team{Name: team, Members: slices.Clone(ms)}, nil
}

func (b *memBackend) EnsureTeam(_ context.Context, team string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("EnsureTeam"); err != nil {
		return err
	}
	if _, ok := b.teams[team]; !ok {
		b.teams[team] = []string{}
	}
	return nil
}

func (b *memBackend) EnsureTeamAbsent(_ context.Context, team string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("EnsureTeamAbsent"); err != nil {
		return err
	}
	delete(b.teams, team)
	return nil
}

func (b *memBackend) EnsureTeamMember(_ context.Context, team, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("EnsureTeamMember"); err != nil {
		return err
	}
	if !slices.Contains(b.teams[team], id) {
		b.teams[team] = append(b.teams[team], id)
	}
	if m, ok := b.members[strings.ToLower(id)]; ok && !slices.Contains(m.Teams, team) {
		m.Teams = append(m.Teams, team)
	}
	return nil
}

func (b *memBackend) EnsureTeamMemberAbsent(_ context.Context, team, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.enter("EnsureTeamMemberAbsent"); err != nil {
		return err
	}
	b.teams[team] = slices.DeleteFunc(b.teams[team], func(s string) bool { return s == id })
	return nil
}

func (b *memBackend) team(name string) ([]string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ms, ok := b.teams[name]
	return slices.Clone(ms), ok
}
