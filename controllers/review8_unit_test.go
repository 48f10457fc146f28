package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientevents "k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
)

// drainEvents empties a fake recorder and returns what it held.
func drainEvents(rec *clientevents.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func countReason(events []string, reason string) int {
	n := 0
	for _, e := range events {
		if strings.Contains(e, " "+reason+" ") {
			n++
		}
	}
	return n
}

// Review of branch race (c35af96): a status write that conflicts now reruns the whole
// pass, and the rerun reads the config whose status still lacks what the lost write
// carried. The backend events are decided from that status ("one event per outage, not
// one per member or per check": was != False), so the rerun emits them a second time.
// Before the optimistic lock the write landed and the next pass saw the new condition.
// The conflict is the common one the branch names: the drift pass's lastFullSyncTime write
// between this pass's read and its status write.
func TestBackendEventsOncePerOutageAcrossAConflictedStatusWrite(t *testing.T) {
	for _, c := range []struct {
		name, reason  string
		before, after error
	}{
		{"outage", "BackendNotReady", nil, backend.NewPermanent("CredentialsRejected", errors.New("401 Unauthorized"))},
		{"recovery", "BackendReady", backend.NewPermanent("CredentialsRejected", errors.New("401 Unauthorized")), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := raceConfig()
			lc := newLaggingCache(t, cfg)
			b := &checkOnly{err: c.before}
			r := raceReconciler(lc, b)
			rec := r.Recorder.(*clientevents.FakeRecorder)
			req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cfg)}
			if _, err := r.Reconcile(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			drainEvents(rec)

			b.err = c.after
			lc.writers = append(lc.writers, lc.driftWrite(t, cfg))
			for range 3 { // the conflicted pass is retried until its status is written
				if _, err := r.Reconcile(context.Background(), req); err == nil {
					break
				}
			}
			events := drainEvents(rec)
			if n := countReason(events, c.reason); n != 1 {
				t.Fatalf("%d %s events for one change of the backend, want 1: %q", n, c.reason, events)
			}
		})
	}
}

// Review of the default of 16 workers (c0efd91): ConfigSlots promises "with fewer slow
// configs than workers, every other config always finds a worker" (slots.go) and
// docs/access-invariant.md only lets tenants take turns "with more slow tenants than
// workers". Two slow tenants are far fewer than 16 workers, yet together they hold every
// worker: the first takes workers-1, the second its first (always granted), and a third
// tenant's deprovisioning waits in the queue for one of their slow reconciles. Acquire
// counts only the slots it granted, so the test counts the controller's real workers:
// a slot is a worker.
func TestTwoSlowConfigsLeaveAWorkerForAThird(t *testing.T) {
	workers := DefaultMaxConcurrentReconciles
	s := NewConfigSlots(workers)
	busy := 0
	for _, name := range []string{"hub-a", "hub-c"} { // two tenants with a slow backlog
		cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: name}}
		for busy < workers {
			if _, ok := s.Acquire(cfg, false); !ok {
				break
			}
			busy++
		}
	}
	if busy >= workers {
		t.Fatalf("two slow configs hold %d of %d workers: a third config's deprovisioning finds none", busy, workers)
	}
}
