package controllers

import (
	"errors"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/recorder"
)

// Options wire every reconciler of this package into a manager.
type Options struct {
	// Backends gives each ScimConfig its membership backend.
	Backends backend.Provider
	// StatusInterval is how often a ScimConfig re-checks its backend and recounts its
	// members (DefaultStatusInterval when zero).
	StatusInterval time.Duration
	// MaxConcurrentReconciles is the number of workers of each controller, the same
	// number the manager's controller options give (DefaultMaxConcurrentReconciles when
	// zero): the OrgMember and OrgGroup controllers share theirs out between ScimConfigs
	// (ConfigSlots, one for each).
	MaxConcurrentReconciles int
	// Events writes the controllers' events. It is not the manager's recorder, whose series
	// cache holds every event for minutes (internal/recorder); its owner runs it until the
	// controllers have stopped (manager.Manager.Start).
	Events *recorder.Broadcaster
}

// MaxRetryBackoff bounds how long a reconcile that failed (a transient backend or API
// server error) waits before it is tried again. client-go's default backoff doubles from
// 5 ms up to 1,000 s: a member unlucky through a dozen 5xx in a row would wait a quarter
// of an hour after the backend healed. Failures that concern the whole organization
// (credentials, the organization gone) do not retry here: they pause the config
// (BackendReady=False) until it is repaired.
const MaxRetryBackoff = 30 * time.Second

// retryLimiter is client-go's default controller rate limiter (per item exponential
// backoff, and 10 per second with bursts of 100 over all items) with the per item backoff
// bounded by MaxRetryBackoff.
func retryLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, MaxRetryBackoff),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// passLimiter is the drift controller's rate limiter: the per item backoff bounded by
// MaxRetryBackoff, without retryLimiter's bucket of 10 a second over all items (as
// controller-runtime builds a priority queue's limiter when given none, which the drift
// controller had until c736b1d). With the bucket, the controllers' adoption spec counted
// 49 Docker Hub calls instead of 33: more listing passes while members waited for one.
func passLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](5*time.Millisecond, MaxRetryBackoff)
}

// newController starts the builder of every controller of this package: named, and with
// a bounded retry backoff (limiter: retryLimiter, or the drift controller's passLimiter),
// so that none is left with client-go's 1,000 s backoff (the drift
// controller once was: a listing that failed for a while could put the next pass a
// quarter of an hour away). TestEveryControllerIsBuiltByNewController holds the package
// to it.
func newController(mgr ctrl.Manager, name string, limiter workqueue.TypedRateLimiter[reconcile.Request]) *builder.Builder {
	return ctrl.NewControllerManagedBy(mgr).Named(name).WithOptions(controller.Options{RateLimiter: limiter})
}

// restConfigUser is a backend Provider that needs the manager's own connection to the
// API server: the registry impersonates a ScimConfig's ServiceAccount through it.
type restConfigUser interface {
	UseRestConfig(*rest.Config)
}

// SetupWithManager adds the ScimConfig, OrgMember and OrgGroup reconcilers to mgr, the
// same way for the manager binary and for the test suites. A Provider that needs the
// manager's connection (registry.Registry.UseRestConfig) gets mgr.GetConfig().
func SetupWithManager(mgr ctrl.Manager, o Options) error {
	if u, ok := o.Backends.(restConfigUser); ok {
		u.UseRestConfig(mgr.GetConfig())
	}
	rechecks := NewRechecks()
	workers := o.MaxConcurrentReconciles
	if workers <= 0 {
		workers = DefaultMaxConcurrentReconciles
	}
	drift := &DriftQueue{}
	events := o.Events
	if events == nil {
		return errors.New("controllers.Options.Events is required: the broadcaster the controllers' events go through")
	}
	if err := (&ScimConfigReconciler{
		Rechecks:       rechecks,
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Scheme:         mgr.GetScheme(),
		Recorder:       events.NewRecorder("scimconfig-controller"),
		Backends:       o.Backends,
		StatusInterval: o.StatusInterval,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&OrgMemberReconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Recorder: events.NewRecorder("orgmember-controller"),
		Backends: o.Backends,
		Rechecks: rechecks,
		Drift:    drift,
		Slots:    NewConfigSlots(workers),
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&DriftReconciler{
		Client:   mgr.GetClient(),
		Backends: o.Backends,
		Queue:    drift,
		Rechecks: rechecks,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&OrgGroupReconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Recorder: events.NewRecorder("orggroup-controller"),
		Backends: o.Backends,
		Rechecks: rechecks,
		Drift:    drift,
		Slots:    NewConfigSlots(workers),
	}).SetupWithManager(mgr)
}
