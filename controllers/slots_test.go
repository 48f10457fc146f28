package controllers

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// A config whose reconciles are slow takes every worker but two (one for the next config
// to come, one spare); another config always gets one; a released slot is taken again.
func TestConfigSlotsKeepAWorkerForOtherConfigs(t *testing.T) {
	slow := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}}
	fast := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "k8s"}}
	s := NewConfigSlots(4)
	var held []func()
	for {
		release, ok := s.Acquire(slow, false)
		if !ok {
			break
		}
		held = append(held, release)
		if len(held) > 4 {
			t.Fatal("one config took more slots than there are workers")
		}
	}
	if len(held) != 2 {
		t.Fatalf("the slow config holds %d of 4 workers, want 2 (one left for the next config, one spare)", len(held))
	}
	release, ok := s.Acquire(fast, false)
	if !ok {
		t.Fatal("another config found no worker while the slow one held its share")
	}
	release()
	release() // a second release changes nothing
	held[0]()
	if _, ok := s.Acquire(slow, false); !ok {
		t.Fatal("a released slot is not taken again")
	}
	if _, ok := NewConfigSlots(1).Acquire(slow, false); !ok {
		t.Fatal("with one worker a config's first reconcile must still run")
	}
	var none *ConfigSlots
	if _, ok := none.Acquire(slow, false); !ok {
		t.Fatal("no slots: always granted")
	}
}

// A config holding its share may still take the spare worker for one revocation at a
// time; then nothing more, and the spare is back once that revocation is done.
func TestConfigSlotsLetOneRevocationThrough(t *testing.T) {
	a := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}}
	b := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "k8s"}}
	s := NewConfigSlots(4)
	for range 2 {
		if _, ok := s.Acquire(a, false); !ok {
			t.Fatal("the config's share was refused")
		}
	}
	if _, ok := s.Acquire(a, false); ok {
		t.Fatal("a third ordinary reconcile took a worker kept for others")
	}
	revoke, ok := s.Acquire(a, true)
	if !ok {
		t.Fatal("a revocation of a config holding its share found no worker: it waits behind the config's own backlog")
	}
	if _, ok := s.Acquire(a, true); ok {
		t.Fatal("a second revocation took another worker")
	}
	revoke()
	if _, ok := s.Acquire(b, false); !ok {
		t.Fatal("the spare worker did not come back for another config")
	}
}

// A reconcile refused a slot pauses until a slot is given back (here the pause is an
// hour, so only the release can end it) and then asks again: one release, two paused,
// one granted. A context cancelled during the pause ends it with no second ask, and a
// pause that ends with nothing given back refuses.
func TestAcquireAfterPause(t *testing.T) {
	a := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}}
	s := NewConfigSlots(4)
	s.pauseFor = time.Hour
	held := fillShare(s, a)
	paused := make(chan struct{})
	s.waiting = func() { paused <- struct{}{} }
	type outcome struct{ paused, ok bool }
	done := make(chan outcome, 2)
	for range 2 {
		go func() {
			_, p, ok := s.AcquireAfterPause(context.Background(), a, false)
			done <- outcome{p, ok}
		}()
		<-paused
	}
	// the config is below its share by one: one of the two takes it (the test's own
	// timeout is the failure if the release ends no pause)
	held[0]()
	got := []outcome{<-done, <-done}
	if got[0] == got[1] || !got[0].paused || !got[1].paused {
		t.Fatalf("two paused reconciles and one slot given back: %+v, want one granted and one refused, both paused", got)
	}

	// a release and a cancelled context both ready: no second ask
	ctx, cancel := context.WithCancel(context.Background())
	s.waiting = func() {
		held[1]()
		cancel()
	}
	if _, p, ok := s.AcquireAfterPause(ctx, a, false); ok || !p {
		t.Fatalf("a pause whose context was cancelled answered (paused %v, ok %v), want refused", p, ok)
	}
	// nothing given back within the pause: refused
	s.waiting = nil
	s.pauseFor = 10 * time.Millisecond
	fillShare(s, a)
	if _, p, ok := s.AcquireAfterPause(context.Background(), a, false); ok || !p {
		t.Fatalf("a pause that saw no slot given back answered (paused %v, ok %v), want refused", p, ok)
	}
	// granted at once: no pause
	b := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "k8s"}}
	if _, p, ok := s.AcquireAfterPause(context.Background(), b, false); !ok || p {
		t.Fatalf("another config's first reconcile answered (paused %v, ok %v), want granted at once", p, ok)
	}
	var none *ConfigSlots
	if _, p, ok := none.AcquireAfterPause(context.Background(), a, false); !ok || p {
		t.Fatal("no slots: always granted at once")
	}
}

// A reconcile refused a slot (its config holds its share) pauses in its worker until a
// slot is given back: without the pause the worker kept free for other configs cycles
// through a full sync's whole backlog (AcquireAfterPause). A slot given back during the pause is
// its to take (AcquireAfterPause): without that, its member waited slotWait in the queue
// while the slot went to a member queued after it. The pause here is an hour, so only the
// release can end it. A pause that ends with no slot given back requeues the member
// untouched. The OrgGroup controller shares its workers alike (review 79 F4: it did not,
// and one tenant's groups stalled on a slow Docker Hub could hold every worker while
// another tenant's group deletion, which revokes its team's grant, waited).
func TestRefusedReconcilePausesUntilASlotIsGivenBack(t *testing.T) {
	// disabled: a reconcile given a slot works on its object without a backend
	disabled := false
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}, Spec: scimv1.ScimConfigSpec{Enabled: &disabled}}
	for _, kind := range []struct {
		name string
		obj  client.Object
		// reconciler reconciles obj's kind with c and slots
		reconciler func(c client.Client, slots *ConfigSlots) reconcile.Reconciler
		// change changes obj's spec
		change func(client.Object)
	}{
		{name: "OrgMember",
			obj: &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "alice"},
				Spec: scimv1.OrgMemberSpec{ConfigName: "hub", UserName: "alice@example.com", Active: true}},
			reconciler: func(c client.Client, slots *ConfigSlots) reconcile.Reconciler {
				return &OrgMemberReconciler{Client: c, Scheme: c.Scheme(), Slots: slots}
			},
			change: func(o client.Object) { o.(*scimv1.OrgMember).Spec.DisplayName = "Alice" }},
		{name: "OrgGroup",
			obj: &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "devs"},
				Spec: scimv1.OrgGroupSpec{ConfigName: "hub", DisplayName: "devs"}},
			reconciler: func(c client.Client, slots *ConfigSlots) reconcile.Reconciler {
				return &OrgGroupReconciler{Client: c, Scheme: c.Scheme(), Slots: slots, Clock: clock.RealClock{}}
			},
			change: func(o client.Object) { o.(*scimv1.OrgGroup).Spec.DisplayName = "developers" }},
	} {
		t.Run(kind.name, func(t *testing.T) {
			c := withShippedIndexes(t, fake.NewClientBuilder().WithScheme(unitScheme(t))).
				WithObjects(cfg.DeepCopy(), kind.obj.DeepCopyObject().(client.Object)).
				WithStatusSubresource(&scimv1.OrgGroup{}, &scimv1.OrgMember{}, &scimv1.ScimConfig{}).Build()
			current := func() client.Object {
				got := kind.obj.DeepCopyObject().(client.Object)
				if err := c.Get(context.Background(), client.ObjectKeyFromObject(kind.obj), got); err != nil {
					t.Fatal(err)
				}
				return got
			}
			worked := func() bool { return controllerutil.ContainsFinalizer(current(), FinalizerDeprovision) }

			slots := NewConfigSlots(4)
			slots.pauseFor = time.Hour
			held := fillShare(slots, cfg)
			paused := make(chan struct{}) // unbuffered: the reconcile pauses once the test has seen it
			slots.waiting = func() { paused <- struct{}{} }

			r := kind.reconciler(c, slots)
			type outcome struct {
				res ctrl.Result
				err error
			}
			reconcile := func() chan outcome {
				done := make(chan outcome, 1)
				go func() {
					res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(kind.obj)})
					done <- outcome{res, err}
				}()
				return done
			}

			// no slot given back: the pause (shortened) ends and the object is requeued untouched
			slots.pauseFor = 10 * time.Millisecond
			slots.waiting = nil
			out := <-reconcile()
			if out.err != nil || out.res.RequeueAfter <= 0 {
				t.Fatalf("a refused reconcile returned (%+v, %v), want its %s requeued for later", out.res, out.err, kind.name)
			}
			if worked() {
				t.Fatalf("a reconcile refused a slot went on to work on its %s", kind.name)
			}

			// a slot given back during the pause: the paused reconcile takes it and works
			slots.pauseFor = time.Hour
			slots.waiting = func() { paused <- struct{}{} }
			done := reconcile()
			select {
			case <-paused:
			case out := <-done:
				t.Fatalf("a reconcile refused a slot returned (%+v, %v) without pausing for a slot to be given back", out.res, out.err)
			}
			// the object changes while the reconcile pauses: it works on the object as it is
			// then (its finalizer's patch is conditional on the version it read)
			changed := current()
			kind.change(changed)
			if err := c.Update(context.Background(), changed); err != nil {
				t.Fatal(err)
			}
			releasing := make(chan struct{})
			go func() {
				close(releasing)
				held[0]()
			}()
			out = <-done // the test's own timeout is the failure if the release does not end the pause
			select {
			case <-releasing:
			default:
				t.Fatal("the paused reconcile returned before a slot was given back")
			}
			if out.err != nil || !worked() {
				t.Fatalf("the paused reconcile returned (%+v, %v) without working on its %s in the slot given back", out.res, out.err, kind.name)
			}
			// and gave the slot back when done: the config holds its share again, no more
			if _, ok := slots.Acquire(cfg, false); !ok {
				t.Fatal("the reconcile kept the slot it took")
			}
		})
	}
}

// A group's deletion goes ahead of the OrgGroup controller's queue, as a member's
// deprovisioning goes ahead of the OrgMember controller's (review 80 F1): a tenant's
// backlog of groups refused a worker would otherwise come before it, each taking its turn
// to be refused. Only the update that begins the deletion does; and a deletion takes the
// spare worker (revokesTeam) only when the group's team was made.
func TestGroupDeletionGoesAheadOfTheQueue(t *testing.T) {
	ctx := context.Background()
	q := priorityqueue.New[reconcile.Request]("orggroup-test")
	defer q.ShutDown()
	h := revocationFirst(groupRevokes, groupRevoking)
	group := func(name string) *scimv1.OrgGroup {
		return &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, Generation: 1},
			Spec: scimv1.OrgGroupSpec{ConfigName: "hub", DisplayName: name}, Status: scimv1.OrgGroupStatus{Team: name, TeamCreated: true}}
	}
	for _, n := range []string{"g1", "g2", "g3"} {
		h.Create(ctx, event.CreateEvent{Object: group(n)}, q)
	}
	renamed, deleted := group("renamed"), group("deleted")
	renamedNew, deletedNew := renamed.DeepCopy(), deleted.DeepCopy()
	renamedNew.Spec.DisplayName, renamedNew.Generation = "other", 2
	deletedNew.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	h.Update(ctx, event.UpdateEvent{ObjectOld: renamed, ObjectNew: renamedNew}, q)
	h.Update(ctx, event.UpdateEvent{ObjectOld: deleted, ObjectNew: deletedNew}, q)
	item, priority, _ := q.GetWithPriority()
	if item.Name != "deleted" || priority != RevocationPriority {
		t.Fatalf("first out of the queue: %s at priority %d, want the deleted group at %d", item.Name, priority, RevocationPriority)
	}
	q.Done(item)
	for range 4 {
		item, priority, _ := q.GetWithPriority()
		if priority >= RevocationPriority {
			t.Errorf("%s went ahead of the queue (priority %d) without its deletion beginning", item.Name, priority)
		}
		q.Done(item)
	}

	if !revokesTeam(deletedNew) {
		t.Error("a group deleted with its team made does not count as a revocation")
	}
	never := deletedNew.DeepCopy()
	never.Status = scimv1.OrgGroupStatus{}
	if revokesTeam(never) || revokesTeam(renamedNew) {
		t.Error("a group with no team made, or not being deleted, counts as a revocation")
	}
}

// Tenant A's reconciles refused a slot come back to the queue behind what is fresh. At
// their own priority, A's refused revocations would go ahead of another tenant's: A holds
// its share and the spare, the one worker left takes each of A's ready refusals (a pause
// each), and B's deactivation waits behind all of them (review 81 F3: about R/10 s for R
// refused revocations of A). A refused revocation goes behind every fresh revocation and
// ahead of other work; any other refused reconcile behind all fresh work.
func TestARefusedReconcileGoesBehindFreshWork(t *testing.T) {
	ctx := context.Background()
	cfgA := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hub"}}
	slots := NewConfigSlots(4)
	slots.pauseFor = time.Millisecond
	fillShare(slots, cfgA)
	if _, ok := slots.Acquire(cfgA, true); !ok {
		t.Fatal("tenant A could not take the spare for a revocation")
	}
	q := priorityqueue.New[reconcile.Request]("orgmember-test")
	defer q.ShutDown()
	req := func(ns, name string) reconcile.Request {
		return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
	}
	// after a restart, B's member came in the informer's initial list, before A's refusals
	q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, req("b", "listed"))
	for _, a := range []struct {
		name       string
		revocation bool
	}{{"a0", true}, {"a1", false}, {"a2", true}} {
		_, stop, res, err := slots.admit(ctx, cfgA, a.revocation, func() (bool, error) { return false, nil })
		if !stop || err != nil || res.RequeueAfter <= 0 {
			t.Fatalf("%s: admit = (stop %v, %+v, %v), want it refused and requeued", a.name, stop, res, err)
		}
		// as controller-runtime requeues a result: at the result's priority, else at the
		// item's own (once ready again: the requeue's delay is not what is tested)
		p := 0
		if a.revocation {
			p = RevocationPriority
		}
		if res.Priority != nil {
			p = *res.Priority
		}
		q.AddWithOpts(priorityqueue.AddOpts{Priority: &p}, req("a", a.name))
	}
	q.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(RevocationPriority)}, req("b", "deactivated"))
	q.Add(req("b", "new"))
	var order []string
	for range 6 {
		item, _, _ := q.GetWithPriority()
		order = append(order, item.Namespace+"/"+item.Name)
		q.Done(item)
	}
	if want := []string{"b/deactivated", "a/a0", "a/a2", "b/new", "b/listed", "a/a1"}; !slices.Equal(order, want) {
		t.Fatalf("out of the queue: %v, want %v", order, want)
	}
}

// After a restart every object comes in the informers' initial list, at low priority; a
// member that was losing access, or a group whose deletion takes its team's grant away,
// when the manager stopped still goes ahead of the queue (review 81 F3).
func TestPendingRevocationsGoAheadAfterARestart(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []struct {
		name             string
		h                handler.EventHandler
		pending, settled client.Object
	}{
		{"OrgMember", revocationFirst(revokes, memberLosingAccess),
			&scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "leaving"},
				Spec: scimv1.OrgMemberSpec{Active: false}, Status: scimv1.OrgMemberStatus{Phase: scimv1.PhaseActive}},
			&scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "staying"},
				Spec: scimv1.OrgMemberSpec{Active: true}, Status: scimv1.OrgMemberStatus{Phase: scimv1.PhaseActive}}},
		{"OrgGroup", revocationFirst(groupRevokes, groupRevoking),
			&scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "leaving",
				DeletionTimestamp: &metav1.Time{Time: time.Now()}, Finalizers: []string{FinalizerDeprovision}},
				Status: scimv1.OrgGroupStatus{Team: "devs", TeamCreated: true}},
			&scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "staying"},
				Status: scimv1.OrgGroupStatus{Team: "ops", TeamCreated: true}}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			q := priorityqueue.New[reconcile.Request]("restart-test")
			defer q.ShutDown()
			kind.h.Create(ctx, event.CreateEvent{Object: kind.settled, IsInInitialList: true}, q)
			kind.h.Create(ctx, event.CreateEvent{Object: kind.pending, IsInInitialList: true}, q)
			item, priority, _ := q.GetWithPriority()
			if item.Name != "leaving" || priority != RevocationPriority {
				t.Fatalf("first out of the queue after a restart: %s at priority %d, want the pending revocation at %d",
					item.Name, priority, RevocationPriority)
			}
		})
	}
}

// A member that may hold access by its phase is a revocation when it is deactivated or
// deleted: Failed (a refused role change leaves the person in) and Pending too, not one
// that has none, or that was never reconciled (review 82 F1).
func TestLosingAccessCountsEveryPhaseThatMayHoldAccess(t *testing.T) {
	for _, tc := range []struct {
		phase    scimv1.MemberPhase
		active   bool
		deleting bool
		want     bool
	}{
		{scimv1.PhaseActive, false, false, true}, {scimv1.PhaseInvited, true, true, true},
		{scimv1.PhaseFailed, true, true, true}, {scimv1.PhaseFailed, false, false, true},
		{scimv1.PhasePending, false, false, true}, {scimv1.PhaseActive, true, false, false},
		{scimv1.PhaseDeactivated, false, true, false}, {scimv1.PhaseRemoved, true, true, false},
		{"", false, false, false},
	} {
		m := &scimv1.OrgMember{Spec: scimv1.OrgMemberSpec{Active: tc.active}, Status: scimv1.OrgMemberStatus{Phase: tc.phase}}
		if tc.deleting {
			m.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		}
		if got := losingAccess(m); got != tc.want {
			t.Errorf("phase %q, active %v, deleting %v: losingAccess %v, want %v", tc.phase, tc.active, tc.deleting, got, tc.want)
		}
	}
}
