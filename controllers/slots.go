package controllers

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// DefaultMaxConcurrentReconciles is the number of workers of each controller when the
// manager is given none (--max-concurrent-reconciles).
const DefaultMaxConcurrentReconciles = 16

// slotWait is how long a member or group whose config holds its share of the workers
// waits in the queue before it tries again, when no slot came back while its worker paused
// (AcquireAfterPause).
const slotWait = 2 * time.Second

// ConfigSlots shares a controller's workers out between ScimConfigs (tenants), so that
// one tenant whose backend is slow (every call takes seconds) cannot occupy every worker
// and delay another tenant's provisioning and deprovisioning. A config may always take a
// worker when it holds none; it takes another only while that leaves free one worker for
// each config holding workers, plus one (the spare). A reconcile refused a slot pauses its
// worker for at most refusedPause, holding no slot, and is requeued unless a slot was
// given back meanwhile that the rule now grants it (AcquireAfterPause). The OrgMember and
// OrgGroup controllers each have one (admit).
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
	// pauseFor bounds a refused reconcile's pause (refusedPause).
	pauseFor time.Duration
	// waiting, when set (tests only), is called by a refused reconcile once it holds the
	// channel a release closes, just before it pauses: a test then knows a reconcile is
	// paused without sleeping.
	waiting func()
}

// NewConfigSlots shares workers (at least 1) between configs.
func NewConfigSlots(workers int) *ConfigSlots {
	return &ConfigSlots{workers: max(1, workers), held: map[string]int{}, extra: map[string]bool{}, freed: make(chan struct{}),
		pauseFor: refusedPause}
}

// Acquire takes a worker slot for cfg. It returns false when cfg already holds its share;
// otherwise release gives the slot back. A nil ConfigSlots always grants.
//
// A revocation (a member losing access, a group's deletion taking its team's grant away)
// of a config that holds its share may still take
// the spare worker, one at a time per config: the spare is kept for other tenants'
// deprovisioning, and a tenant's own deprovisioning must not wait behind its own backlog
// either (a full sync's thousands of new members). Another tenant's revocation then waits
// for at most one of this tenant's reconciles.
func (s *ConfigSlots) Acquire(cfg *scimv1.ScimConfig, revocation bool) (release func(), ok bool) {
	release, _, ok = s.acquire(cfg, revocation)
	return release, ok
}

// acquire is Acquire; when it refuses, it also answers the channel the next release closes,
// read under the same lock as the refusal, so that a release right after it is not missed.
func (s *ConfigSlots) acquire(cfg *scimv1.ScimConfig, revocation bool) (release func(), freed <-chan struct{}, ok bool) {
	if s == nil {
		return func() {}, nil, true
	}
	key := cfg.Namespace + "/" + cfg.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	extra := false
	// every config holding workers leaves one free for the next config that comes, and
	// one more is the spare: two slow configs leave a worker for a third at once
	if s.held[key] > 0 && s.total+1 > s.workers-len(s.held)-1 {
		if !revocation || s.extra[key] || s.total >= s.workers {
			return nil, s.freed, false
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
	}, nil, true
}

// refusedPause is the longest a worker refused a slot waits for one to be given back
// before it requeues its member (AcquireAfterPause).
const refusedPause = 100 * time.Millisecond

// AcquireAfterPause is Acquire for a reconcile. When refused, it pauses until a slot is
// given back, for at most refusedPause, and then asks once more; it answers whether it
// paused (the caller's view of its member is that much older).
//
// The pause: when one config's thousands of members wait (a full sync), the worker kept
// free for other configs takes them from the queue one after another, and without the
// pause it would cycle through the whole backlog every slotWait: at 100,000 members,
// thousands of refused reconciles a second (a quarter of the manager's CPU, profiled) for
// nothing. With the pause it takes at most one more member per slot the rule frees or per
// refusedPause, and another config's member waits at most that long.
//
// The second ask: without it, a member refused while its config held its share waited
// slotWait in the queue even when a slot came back a moment later, and the slot went to a
// member queued after it. Before it, in make bench (one config, 16 workers; bdef13),
// chunks of 50 inactive users created at concurrency 32 were answered within half a
// second, and their last members were Deactivated about 2 s later, with 0.4 of 2 cores
// busy. The rule that decides is Acquire's either way: a slot given back is taken again
// only within the config's share.
func (s *ConfigSlots) AcquireAfterPause(ctx context.Context, cfg *scimv1.ScimConfig, revocation bool) (release func(), paused, ok bool) {
	release, freed, ok := s.acquire(cfg, revocation)
	if ok {
		return release, false, true
	}
	if !s.pause(ctx, freed) || ctx.Err() != nil {
		return nil, true, false
	}
	release, ok = s.Acquire(cfg, revocation)
	return release, true, ok
}

// pause waits until freed is closed (a slot given back), for at most refusedPause, and
// tells whether it was.
func (s *ConfigSlots) pause(ctx context.Context, freed <-chan struct{}) bool {
	s.mu.Lock()
	waiting, d := s.waiting, s.pauseFor
	s.mu.Unlock()
	if waiting != nil {
		waiting()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-freed:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// refusedPriority is the queue priority a reconcile refused a slot comes back at. At its
// own, a tenant's refused revocations would go ahead of another tenant's: the tenant holds
// its share and the spare, the one worker left takes each of its refusals as it becomes
// ready again (a pause each), and the other tenant's deactivation waits behind all of
// them. So a refused revocation goes behind every fresh revocation and ahead of other
// work, and anything else refused at the lowest priority the queue gives
// (handler.LowPriority, a resync's or an informer's initial list's): never ahead of what
// it was queued behind (after a restart, another tenant's initial list would otherwise
// wait for this tenant's refusals to drain).
func refusedPriority(revocation bool) int {
	if revocation {
		return LaterRevocationPriority
	}
	return handler.LowPriority
}

// admit takes a worker slot of cfg for a reconcile, as AcquireAfterPause does, and says
// what the reconcile does next. stop: it ends now, with res and err (refused: requeued
// after slotWait; or granted after a pause, and read, which reads the object again as it
// is now, found nothing left to do, or failed). Otherwise it goes on, and calls release
// when done.
func (s *ConfigSlots) admit(ctx context.Context, cfg *scimv1.ScimConfig, revocation bool, read func() (done bool, err error)) (
	release func(), stop bool, res ctrl.Result, err error) {
	release, paused, ok := s.AcquireAfterPause(ctx, cfg, revocation)
	if !ok {
		return nil, true, ctrl.Result{RequeueAfter: jitter(slotWait), Priority: ptr.To(refusedPriority(revocation))}, nil
	}
	if paused {
		if done, err := read(); done || err != nil {
			release()
			return nil, true, ctrl.Result{}, err
		}
	}
	return release, false, ctrl.Result{}, nil
}
