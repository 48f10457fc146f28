package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	toolscache "k8s.io/client-go/tools/cache"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// phaseClock notes when the bench's watch of the OrgMembers first showed each member of
// one namespace and config in one phase: when the controllers had finished with it, to
// within the watch's delivery, which both sides of a comparison pay alike. It answers
// without polling (await), so no poll interval is added to a timed window.
type phaseClock struct {
	ns, config string
	phase      scimv1.MemberPhase
	mu         sync.Mutex
	seen       map[string]time.Time
	// changed is closed, and replaced, whenever a member is first seen in the phase
	changed chan struct{}
}

// clockPhase starts a phaseClock on the bench's member watch; stop removes it.
func (s *stack) clockPhase(ctx context.Context, phase scimv1.MemberPhase) (pc *phaseClock, stop func(), err error) {
	inf, err := s.members.GetInformer(ctx, &scimv1.OrgMember{})
	if err != nil {
		return nil, nil, err
	}
	pc = &phaseClock{ns: s.ns, config: s.config, phase: phase, seen: map[string]time.Time{}, changed: make(chan struct{})}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { pc.note(obj) },
		UpdateFunc: func(_, obj any) { pc.note(obj) },
	})
	if err != nil {
		return nil, nil, err
	}
	return pc, func() { _ = inf.RemoveEventHandler(reg) }, nil
}

func (pc *phaseClock) note(obj any) {
	m, ok := obj.(*scimv1.OrgMember)
	if !ok || m.Namespace != pc.ns || m.Labels[scimv1.LabelConfig] != pc.config || m.Status.Phase != pc.phase {
		return
	}
	now := time.Now()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if _, ok := pc.seen[m.Name]; !ok {
		pc.seen[m.Name] = now
		close(pc.changed)
		pc.changed = make(chan struct{})
	}
}

// await waits, at most timeout, until every one of names has been seen in the phase, and
// answers when the last of them was first seen.
func (pc *phaseClock) await(ctx context.Context, names []string, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		pc.mu.Lock()
		var last time.Time
		missing := 0
		for _, n := range names {
			t, ok := pc.seen[n]
			if !ok {
				missing++
			} else if t.After(last) {
				last = t
			}
		}
		changed := pc.changed
		pc.mu.Unlock()
		if missing == 0 {
			return last, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("%d of %d members were not %s within %s", missing, len(names), pc.phase, timeout)
		}
	}
}
