package controllers

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/metrics"
)

// DefaultStatusInterval is how often a ScimConfig re-checks its backend and recounts its
// members when ScimConfigReconciler.StatusInterval is zero.
const DefaultStatusInterval = time.Minute

// backendCheckTimeout bounds one connectivity check.
const backendCheckTimeout = 30 * time.Second

// reconcileBackend checks the config's backend (BackendReady), counts its members by phase
// (status.members and the members gauge) and sets lastFullSyncTime to the oldest of its
// members' last syncs, that is when every member was last compared with the backend.
// A disabled config is not checked: BackendReady keeps its last value.
func (r *ScimConfigReconciler) reconcileBackend(ctx context.Context, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	if err := r.countMembers(ctx, cfg); err != nil {
		return ctrl.Result{}, err
	}
	interval := r.StatusInterval
	if interval <= 0 {
		interval = DefaultStatusInterval
	}
	res := ctrl.Result{RequeueAfter: jitter(interval)}
	if !cfg.IsEnabled() || r.Backends == nil {
		// Disabled: the backend is not contacted and BackendReady keeps its last value.
		return res, nil
	}
	b, err := r.Backends.For(ctx, cfg)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, backendCheckTimeout)
		err = b.Check(cctx)
		cancel()
	}
	if err != nil {
		r.setCondition(cfg, scimv1.ConditionBackendReady, metav1.ConditionFalse, backend.ReasonOf(err),
			truncate(fmt.Sprintf("%s backend for organization %s: %v", cfg.Spec.Backend.Type, cfg.Spec.Organization, err), 32768))
		switch backend.ClassOf(err) {
		case backend.RateLimited:
			if wait, _ := backend.RetryAfterOf(err); wait > 0 {
				res.RequeueAfter = jitter(wait)
			}
			return res, nil
		case backend.Permanent:
			// A configuration problem: the watched Secrets and the spec bring us back.
			return res, nil
		default:
			return ctrl.Result{}, err
		}
	}
	r.setCondition(cfg, scimv1.ConditionBackendReady, metav1.ConditionTrue, "Connected",
		fmt.Sprintf("%s backend for organization %s answered", cfg.Spec.Backend.Type, cfg.Spec.Organization))
	return res, nil
}

// countMembers fills status.members from the cache, through the index.Config index.
func (r *ScimConfigReconciler) countMembers(ctx context.Context, cfg *scimv1.ScimConfig) error {
	var list scimv1.OrgMemberList
	if err := r.List(ctx, &list, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name}); err != nil {
		return err
	}
	var c scimv1.MemberCounts
	byPhase := map[scimv1.MemberPhase]float64{}
	var oldest *metav1.Time
	complete := len(list.Items) > 0
	for i := range list.Items {
		m := &list.Items[i]
		c.Total++
		phase := m.Status.Phase
		if phase == "" {
			phase = scimv1.PhasePending
		}
		byPhase[phase]++
		switch phase {
		case scimv1.PhaseActive:
			c.Active++
		case scimv1.PhaseInvited:
			c.Invited++
		case scimv1.PhasePending:
			c.Pending++
		case scimv1.PhaseDeactivated:
			c.Deactivated++
		case scimv1.PhaseFailed:
			c.Failed++
		}
		switch t := m.Status.LastSyncTime; {
		case m.Status.Origin == scimv1.OriginPreexisting:
			// left alone by SCIM: not compared with the backend after the first look
		case t == nil:
			complete = false
		case oldest == nil || t.Before(oldest):
			oldest = t
		}
	}
	cfg.Status.Members = &c
	if complete && oldest != nil {
		cfg.Status.LastFullSyncTime = oldest.DeepCopy()
	}
	for _, p := range []scimv1.MemberPhase{scimv1.PhasePending, scimv1.PhaseInvited, scimv1.PhaseActive,
		scimv1.PhaseDeactivated, scimv1.PhaseRemoved, scimv1.PhaseFailed} {
		metrics.MembersByPhase.WithLabelValues(cfg.Namespace, cfg.Name, string(p)).Set(byPhase[p])
	}
	return nil
}
