package controllers

import (
	"context"
	"sync"
	"time"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// DefaultMaxConcurrentReconciles is the number of workers of each controller when the
// manager is given none (--max-concurrent-reconciles).
const DefaultMaxConcurrentReconciles = 16

// slotWait is how long a member whose config holds its share of the workers waits in the
// queue before it tries again.
const slotWait = 2 * time.Second

// ConfigSlots shares a controller's workers out between ScimConfigs (tenants), so that
// one tenant whose backend is slow (every call takes seconds) cannot occupy every worker
// and delay another tenant's provisioning and deprovisioning. A config may always take a
// worker when it holds none; it takes another only while that leaves free one worker for
// each config holding workers, plus one (the spare). A member refused a slot is requeued
// (never waits in a worker).
//
// One or two slow configs therefore always leave a worker for the others, however their
// reconciles came. With k slow configs, a slow config's share shrinks as its reconciles end
// (a released slot is taken again only under the rule) until they hold at most
// workers-k-1 between them; more configs than that take turns in the queue's order.
type ConfigSlots struct {
	mu      sync.Mutex
	workers int
	total   int
	held    map[string]int
	// extra marks the configs holding the spare worker for a revocation.
	extra map[string]bool
	// freed is closed (and replaced) whenever a slot is given back.
	freed chan struct{}
	// pause bounds PauseRefused (refusedPause).
	pause time.Duration
	// waiting, when set (tests only), is called by PauseRefused once it holds the
	// channel a release closes, just before it waits: a test then knows a reconcile is
	// paused without sleeping.
	waiting func()
}

// NewConfigSlots shares workers (at least 1) between configs.
func NewConfigSlots(workers int) *ConfigSlots {
	return &ConfigSlots{workers: max(1, workers), held: map[string]int{}, extra: map[string]bool{}, freed: make(chan struct{}),
		pause: refusedPause}
}

// Acquire takes a worker slot for cfg. It returns false when cfg already holds its share;
// otherwise release gives the slot back. A nil ConfigSlots always grants.
//
// A revocation (a member losing access) of a config that holds its share may still take
// the spare worker, one at a time per config: the spare is kept for other tenants'
// deprovisioning, and a tenant's own deprovisioning must not wait behind its own backlog
// either (a full sync's thousands of new members). Another tenant's revocation then waits
// for at most one of this tenant's reconciles.
func (s *ConfigSlots) Acquire(cfg *scimv1.ScimConfig, revocation bool) (release func(), ok bool) {
	if s == nil {
		return func() {}, true
	}
	key := cfg.Namespace + "/" + cfg.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	extra := false
	// every config holding workers leaves one free for the next config that comes, and
	// one more is the spare: two slow configs leave a worker for a third at once
	if s.held[key] > 0 && s.total+1 > s.workers-len(s.held)-1 {
		if !revocation || s.extra[key] || s.total >= s.workers {
			return nil, false
		}
		extra = true
		s.extra[key] = true
	}
	s.held[key]++
	s.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if extra {
				delete(s.extra, key)
			}
			if s.held[key]--; s.held[key] <= 0 {
				delete(s.held, key)
			}
			close(s.freed)
			s.freed = make(chan struct{})
		})
	}, true
}

// refusedPause is the longest a worker refused a slot waits for one to be given back
// before it requeues its member (PauseRefused).
const refusedPause = 100 * time.Millisecond

// PauseRefused waits until a slot is given back, for at most refusedPause, and tells
// whether one was. A worker refused a slot calls it before requeueing its member: when one
// config's thousands of members wait (a full sync), the worker kept free for other configs
// takes them from the queue one after another, and without the pause it would cycle
// through the whole backlog every slotWait: at 100,000 members, thousands of refused
// reconciles a second (a quarter of the manager's CPU, profiled) for nothing. With the
// pause it takes at most one more member per slot given back or per refusedPause, and
// another config's member waits at most that long. When a slot was given back meanwhile,
// the worker asks for it again (AcquireAfterPause).
func (s *ConfigSlots) PauseRefused(ctx context.Context) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	freed, waiting := s.freed, s.waiting
	s.mu.Unlock()
	if waiting != nil {
		waiting()
	}
	t := time.NewTimer(s.pause)
	defer t.Stop()
	select {
	case <-freed:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// AcquireAfterPause is Acquire for a reconcile; when refused, it pauses (PauseRefused) and,
// when a slot was given back meanwhile, asks once more. Without the second ask, a member
// refused while its config held its share waited slotWait in the queue even when a slot
// came back a moment later, and the slot went to a member queued after it. In make bench
// (one config, 16 workers), chunks of 50 inactive users created at concurrency 32 were
// answered within half a second, and their last members were Deactivated about 2 s after
// that, with 0.4 of 2 cores busy. The rule that decides is Acquire's either way: a slot
// given back is taken again only within the config's share.
func (s *ConfigSlots) AcquireAfterPause(ctx context.Context, cfg *scimv1.ScimConfig, revocation bool) (release func(), ok bool) {
	if release, ok = s.Acquire(cfg, revocation); ok || !s.PauseRefused(ctx) {
		return release, ok
	}
	return s.Acquire(cfg, revocation)
}
