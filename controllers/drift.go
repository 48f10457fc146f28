package controllers

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/plan"
)

// driftListTimeout bounds one listing of a whole organization (a 10,000-member Docker
// Hub organization is 100 pages: under a minute at 180 requests a minute).
const driftListTimeout = 10 * time.Minute

// DriftQueue carries the members a drift pass found different from the backend into the
// OrgMember controller's queue (the pass only enqueues: the member's own reconcile
// observes, plans and acts, so data flows one way).
type DriftQueue struct {
	mu sync.Mutex
	q  workqueue.TypedRateLimitingInterface[reconcile.Request]
}

// source is the OrgMember controller's source of drifted members.
func (d *DriftQueue) source() source.TypedSource[reconcile.Request] {
	return source.TypedFunc[reconcile.Request](func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.q = q
		return nil
	})
}

// Enqueue adds the requests to the member queue without blocking. Before the member
// controller has started there is no queue: its start reconciles every member anyway.
func (d *DriftQueue) Enqueue(reqs []reconcile.Request) {
	if d == nil {
		return
	}
	d.mu.Lock()
	q := d.q
	d.mu.Unlock()
	if q == nil {
		return
	}
	for _, r := range reqs {
		q.Add(r)
	}
}

// DriftReconciler is the periodic drift repair of a ScimConfig: once per resync interval
// it observes the backend's whole organization through one paged ListMembers, compares
// it with the config's OrgMembers (plan.Drifted), and enqueues only the members whose
// backend state differs. A member is otherwise reconciled only when something about it
// changes (its spec, its config, the reconcile annotation): there is no per-member
// periodic poll, so the backend calls of an interval are O(members/page) + O(changes).
type DriftReconciler struct {
	client.Client
	Backends backend.Provider
	Queue    *DriftQueue
	Rechecks *Rechecks
	Clock    clock.PassiveClock
}

// Reconcile runs one drift pass of the config and requeues itself for the next.
func (r *DriftReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	cfg := &scimv1.ScimConfig{}
	if err := r.Get(ctx, req.NamespacedName, cfg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if plan.ConfigStateOf(cfg) != plan.ConfigEnabled {
		return ctrl.Result{}, nil // enabling the config, or its backend's recovery, starts a pass
	}
	interval := resyncInterval(cfg)
	b, err := r.Backends.For(ctx, cfg)
	if err != nil {
		return ctrl.Result{RequeueAfter: jitter(interval)}, nil // the config reports it (BackendReady)
	}
	started := r.Clock.Now()
	lctx, cancel := context.WithTimeout(ctx, driftListTimeout)
	defer cancel()
	list, err := b.ListMembers(lctx)
	if err != nil {
		log.V(1).Info("drift pass: listing the organization failed", "error", err.Error())
		metrics.DriftPasses.WithLabelValues(cfg.Namespace, cfg.Name, "error").Inc()
		switch {
		case backend.ConfigWide(err):
			r.Rechecks.Request(ctx, cfg)
			return ctrl.Result{RequeueAfter: jitter(interval)}, nil
		case backend.ClassOf(err) == backend.RateLimited:
			wait, _ := backend.RetryAfterOf(err)
			return ctrl.Result{RequeueAfter: max(wait, time.Second)}, nil
		case backend.ClassOf(err) == backend.Permanent:
			return ctrl.Result{RequeueAfter: jitter(interval)}, nil
		}
		return ctrl.Result{}, err
	}
	var members scimv1.OrgMemberList
	// read only (plan.Drifted): the cache's objects, not a deep copy of the whole config
	if err := r.List(ctx, &members, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return ctrl.Result{}, err
	}
	_, labelled := b.(backend.OwnerLedger)
	_, groupsOnly := b.(backend.NoUserTeams)
	listing := plan.NewListing(list)
	var reqs []reconcile.Request
	complete := true
	for i := range members.Items {
		m := &members.Items[i]
		if drifted, why := plan.Drifted(m, cfg, listing, labelled, !groupsOnly); drifted {
			log.V(1).Info("drift pass: member differs from the backend", "member", m.Name, "why", why)
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(m)})
			complete = false
			continue
		}
		if m.Status.Origin != scimv1.OriginPreexisting && !syncedTrue(m) {
			complete = false // waiting or failing: its own requeue retries it
		}
	}
	r.Queue.Enqueue(reqs)
	metrics.DriftPasses.WithLabelValues(cfg.Namespace, cfg.Name, "success").Inc()
	metrics.DriftListed.WithLabelValues(cfg.Namespace, cfg.Name).Set(float64(len(list)))
	metrics.DriftDiffering.WithLabelValues(cfg.Namespace, cfg.Name).Set(float64(len(reqs)))
	log.V(1).Info("drift pass", "listed", len(list), "members", len(members.Items), "differing", len(reqs))
	if complete {
		// Every member the config manages matched the backend as listed at started.
		orig := cfg.DeepCopy()
		cfg.Status.LastFullSyncTime = &metav1.Time{Time: started}
		if err := r.Status().Patch(ctx, cfg, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: jitter(interval)}, nil
}

func syncedTrue(m *scimv1.OrgMember) bool {
	c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced)
	return c != nil && c.Status == metav1.ConditionTrue
}

// SetupWithManager runs a pass for every config at start, on its spec changes, the
// reconcile annotation and its backend's recovery, then once per resync interval.
func (r *DriftReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&scimv1.ScimConfig{}, builder.WithPredicates(configChanged())).
		Named("drift").
		Complete(r)
}
