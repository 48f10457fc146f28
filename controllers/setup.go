package controllers

import (
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/scim-operator/scim-operator/internal/backend"
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
	// zero): the OrgMember controller shares them out between ScimConfigs (ConfigSlots).
	MaxConcurrentReconciles int
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
	if err := (&ScimConfigReconciler{
		Rechecks:       rechecks,
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Scheme:         mgr.GetScheme(),
		Recorder:       mgr.GetEventRecorder("scimconfig-controller"),
		Backends:       o.Backends,
		StatusInterval: o.StatusInterval,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&OrgMemberReconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Recorder: mgr.GetEventRecorder("orgmember-controller"),
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
		Recorder: mgr.GetEventRecorder("orggroup-controller"),
		Backends: o.Backends,
		Rechecks: rechecks,
	}).SetupWithManager(mgr)
}
