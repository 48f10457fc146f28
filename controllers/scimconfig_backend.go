package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/plan"
)

// DefaultStatusInterval is how often a ScimConfig re-checks its backend and recounts its
// members when ScimConfigReconciler.StatusInterval is zero.
const DefaultStatusInterval = time.Minute

// DeletionGiveUp is how long a deleted ScimConfig waits for a backend that refuses for
// good (Permanent) before it is released with its grants left in place.
const DeletionGiveUp = 5 * time.Minute

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
	was := condStatus(cfg.Status.Conditions, scimv1.ConditionBackendReady)
	if err != nil && backend.ClassOf(err) != backend.Permanent {
		// A 5xx, a dropped connection, a 429: this one check failed, the organization
		// connection did not. BackendReady keeps its value (its members go on, each retrying
		// its own failed calls); a config never checked yet says Unknown until a check
		// answers. The check is retried after the hint or with the bounded backoff.
		// A backend that keeps failing (no check answered for unavailableAfter, over at
		// least unavailableChecks checks) is shown: BackendReady=False, reason
		// BackendUnavailable, one Warning event per outage. Members do not wait for that
		// reason (plan.BackendNotReady): each keeps retrying its own calls.
		if r.failedCheck(cfg, err) {
			if was != metav1.ConditionFalse || condReason(cfg.Status.Conditions, scimv1.ConditionBackendReady) != plan.ReasonBackendUnavailable {
				tellAfterStatus(ctx, func() {
					r.Recorder.Eventf(cfg, nil, corev1.EventTypeWarning, "BackendUnavailable", "Check",
						"%s backend for organization %s has not answered a check for %s; members keep retrying: %s",
						cfg.Spec.Backend.Type, cfg.Spec.Organization, unavailableAfter, truncate(err.Error(), 512))
				})
			}
			r.setCondition(cfg, scimv1.ConditionBackendReady, metav1.ConditionFalse, "BackendUnavailable",
				truncate(fmt.Sprintf("%s backend for organization %s has not answered a check for %s (members keep retrying on their own): %v",
					cfg.Spec.Backend.Type, cfg.Spec.Organization, unavailableAfter, err), 32768))
		} else if was == "" {
			r.setCondition(cfg, scimv1.ConditionBackendReady, metav1.ConditionUnknown, backend.ReasonOf(err),
				truncate(fmt.Sprintf("%s backend for organization %s did not answer the check yet: %v", cfg.Spec.Backend.Type, cfg.Spec.Organization, err), 32768))
		}
		if wait, ok := backend.RetryAfterOf(err); ok {
			res.RequeueAfter = jitter(max(wait, time.Second))
			return res, nil
		}
		return ctrl.Result{}, err
	}
	r.answeredCheck(cfg)
	if err != nil {
		if was != metav1.ConditionFalse || condReason(cfg.Status.Conditions, scimv1.ConditionBackendReady) == plan.ReasonBackendUnavailable && backend.ReasonOf(err) != plan.ReasonBackendUnavailable {
			// one event per outage, not one per member or per check
			tellAfterStatus(ctx, func() {
				r.Recorder.Eventf(cfg, nil, corev1.EventTypeWarning, "BackendNotReady", "Check",
					"%s backend for organization %s is not ready; members wait for it: %s",
					cfg.Spec.Backend.Type, cfg.Spec.Organization, truncate(err.Error(), 512))
			})
		}
		r.setCondition(cfg, scimv1.ConditionBackendReady, metav1.ConditionFalse, backend.ReasonOf(err),
			truncate(fmt.Sprintf("%s backend for organization %s: %v", cfg.Spec.Backend.Type, cfg.Spec.Organization, err), 32768))
		// A configuration problem: the watched Secrets and the spec bring us back.
		return res, nil
	}
	if was == metav1.ConditionFalse {
		tellAfterStatus(ctx, func() {
			r.Recorder.Eventf(cfg, nil, corev1.EventTypeNormal, "BackendReady", "Check",
				"%s backend for organization %s answers again; waiting members resume", cfg.Spec.Backend.Type, cfg.Spec.Organization)
		})
	}
	r.setCondition(cfg, scimv1.ConditionBackendReady, metav1.ConditionTrue, "Connected",
		fmt.Sprintf("%s backend for organization %s answered", cfg.Spec.Backend.Type, cfg.Spec.Organization))
	return res, nil
}

// A backend is shown unavailable once its checks have failed transiently, with none
// answered in between, for unavailableAfter (the members' longest retry backoff) and at
// least unavailableChecks times.
const (
	unavailableAfter  = MaxRetryBackoff
	unavailableChecks = 5
)

// condReason is the reason of condition t ("" when absent).
func condReason(conds []metav1.Condition, t string) string {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return c.Reason
	}
	return ""
}

// failStreak is a config's run of transiently failed checks.
type failStreak struct {
	since time.Time
	n     int
}

// failedCheck records a transiently failed check of cfg and tells whether the failures
// now make an outage.
func (r *ScimConfigReconciler) failedCheck(cfg *scimv1.ScimConfig, _ error) bool {
	now := r.Clock.Now()
	r.streakMu.Lock()
	defer r.streakMu.Unlock()
	if r.streaks == nil {
		r.streaks = map[types.UID]*failStreak{}
	}
	s := r.streaks[cfg.UID]
	if s == nil {
		s = &failStreak{since: now}
		r.streaks[cfg.UID] = s
	}
	s.n++
	return s.n >= unavailableChecks && now.Sub(s.since) >= unavailableAfter
}

// answeredCheck ends cfg's run of failed checks (any answer, even a refusal, ends it).
func (r *ScimConfigReconciler) answeredCheck(cfg *scimv1.ScimConfig) {
	r.streakMu.Lock()
	defer r.streakMu.Unlock()
	delete(r.streaks, cfg.UID)
}

// countMembers fills status.members from the cache, through the index.Config index.
func (r *ScimConfigReconciler) countMembers(ctx context.Context, cfg *scimv1.ScimConfig) error {
	var list scimv1.OrgMemberList
	// read only: the cache's objects, not a deep copy of the whole config each pass
	if err := r.List(ctx, &list, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return err
	}
	var c scimv1.MemberCounts
	byPhase := map[scimv1.MemberPhase]float64{}
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
	}
	// status.lastFullSyncTime is the drift pass's (DriftReconciler): it compares every
	// member with one listing of the backend.
	cfg.Status.Members = &c
	for _, p := range []scimv1.MemberPhase{scimv1.PhasePending, scimv1.PhaseInvited, scimv1.PhaseActive,
		scimv1.PhaseDeactivated, scimv1.PhaseRemoved, scimv1.PhaseFailed} {
		metrics.MembersByPhase.WithLabelValues(cfg.Namespace, cfg.Name, string(p)).Set(byPhase[p])
	}
	metrics.ObserveConfig(cfg, list.Items, resyncInterval(cfg))
	return nil
}

// reconcileSweep removes the grants whose owner (an OrgMember or OrgGroup, by UID) no
// longer exists, on a backend that labels its grants with their owner: access never
// depends on a member object still carrying its old name, or on a finalizer having run.
// Members being deleted still count as owners: their finalizer applies the policy.
// A disabled config is not swept (disabling SCIM never deprovisions anyone).
func (r *ScimConfigReconciler) reconcileSweep(ctx context.Context, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	if !cfg.IsEnabled() || r.Backends == nil || plan.BackendNotReady(cfg) {
		return ctrl.Result{}, nil
	}
	b, err := r.Backends.For(ctx, cfg)
	if err != nil {
		return ctrl.Result{}, nil // BackendReady says why
	}
	ol, ok := b.(backend.OwnerLedger)
	if !ok {
		return ctrl.Result{}, nil
	}
	live, err := r.owners(ctx, cfg)
	if err != nil {
		return ctrl.Result{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, backendCheckTimeout)
	defer cancel()
	n, err := ol.Sweep(sctx, func(uid string) bool { return live[uid] })
	if n > 0 {
		r.Recorder.Eventf(cfg, nil, corev1.EventTypeNormal, "Swept", "Sweep",
			"removed %d grant(s) whose OrgMember or OrgGroup no longer exists", n)
	}
	if err != nil && backend.ClassOf(err) != backend.Permanent {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// owners are the UIDs of the config's OrgMembers and OrgGroups, from the cache.
func (r *ScimConfigReconciler) owners(ctx context.Context, cfg *scimv1.ScimConfig) (map[string]bool, error) {
	live := map[string]bool{}
	var members scimv1.OrgMemberList
	// read only: the cache's objects, not a deep copy of the whole config each pass
	if err := r.List(ctx, &members, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	for i := range members.Items {
		live[string(members.Items[i].UID)] = true
	}
	var groups scimv1.OrgGroupList
	if err := r.List(ctx, &groups, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name}); err != nil {
		return nil, err
	}
	for i := range groups.Items {
		live[string(groups.Items[i].UID)] = true
	}
	return live, nil
}

// reconcileDelete applies the config's deletion policy (plan.ConfigDeletionOf) to every
// grant of its members and groups, then releases the config. Members and groups deleted
// meanwhile apply the same policy to themselves, and live ones never act on a config that
// is being deleted, so the outcome does not depend on the order objects go in (a namespace
// deletion). On a backend that labels its grants the finalizer is released only after a
// pass that found nothing left to do: a grant written by a reconcile that started before
// the deletion is caught by the next pass.
func (r *ScimConfigReconciler) reconcileDelete(ctx context.Context, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(cfg, FinalizerGrants) {
		return ctrl.Result{}, nil
	}
	outcome := plan.ConfigDeletionOf(cfg.IsEnabled(), cfg.Spec.Policies.Deletion, cfg.Spec.Backend.Type != scimv1.BackendDockerHub)
	pending, err := r.deprovisionAll(ctx, cfg, outcome)
	if err != nil && backend.ClassOf(err) == backend.Permanent && r.Clock.Since(cfg.DeletionTimestamp.Time) > DeletionGiveUp {
		// The backend cannot be reached for good (a namespace deletion took the
		// credentials Secret first, a revoked token): say so, and do not hold the config
		// (and its namespace) in Terminating forever.
		r.Recorder.Eventf(cfg, nil, corev1.EventTypeWarning, "DeletionIncomplete", "Delete",
			"gave up removing access after %s: %s; what SCIM granted is left in organization %s",
			DeletionGiveUp, truncate(err.Error(), 512), cfg.Spec.Organization)
		outcome, pending, err = plan.DeleteNothing, 0, nil
	}
	if err != nil {
		r.Recorder.Eventf(cfg, nil, corev1.EventTypeWarning, "DeletionBlocked", "Delete",
			"could not apply the deletion policy yet (retrying; remove the finalizer %s by hand to abandon): %v",
			FinalizerGrants, truncate(err.Error(), 512))
		switch backend.ClassOf(err) {
		case backend.RateLimited:
			wait, _ := backend.RetryAfterOf(err)
			return ctrl.Result{RequeueAfter: max(wait, time.Second)}, nil
		case backend.Permanent:
			return ctrl.Result{RequeueAfter: DeletionGiveUp / 5}, nil
		}
		return ctrl.Result{}, err
	}
	if pending > 0 {
		return ctrl.Result{RequeueAfter: deletionVerifyDelay}, nil
	}
	orig := cfg.DeepCopy()
	controllerutil.RemoveFinalizer(cfg, FinalizerGrants)
	if err := r.Patch(ctx, cfg, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if outcome == plan.DeleteRemoveAll {
		r.Recorder.Eventf(orig, nil, corev1.EventTypeNormal, "Deprovisioned", "Delete",
			"ScimConfig deleted with deletion policy Remove: its members' and groups' access removed from organization %s", cfg.Spec.Organization)
	} else {
		r.Recorder.Eventf(orig, nil, corev1.EventTypeNormal, "Orphaned", "Delete",
			"ScimConfig deleted (deletion policy Orphan, or disabled): its members' and groups' access left in organization %s", cfg.Spec.Organization)
	}
	return ctrl.Result{}, nil
}

// deletionVerifyDelay is how long a deleted config waits before the pass that must find
// nothing left, long enough for the binding cache to show a write that raced the first.
const deletionVerifyDelay = 2 * time.Second

// deprovisionAll applies the outcome to every grant of the config, and returns how many
// grants it acted on (0: nothing was left).
func (r *ScimConfigReconciler) deprovisionAll(ctx context.Context, cfg *scimv1.ScimConfig, outcome plan.ConfigDeletion) (int, error) {
	if r.Backends == nil || outcome == plan.DeleteNothing {
		return 0, nil
	}
	b, err := r.Backends.For(ctx, cfg)
	if err != nil {
		return 0, err
	}
	dctx, cancel := context.WithTimeout(ctx, backendCallTimeout)
	defer cancel()
	if ol, ok := b.(backend.OwnerLedger); ok {
		if outcome == plan.DeleteRemoveAll {
			return ol.RemoveAllOwned(dctx)
		}
		return ol.OrphanAll(dctx, "ConfigDeleted")
	}
	if outcome != plan.DeleteRemoveAll {
		return 0, nil
	}
	// A backend without labels: each member's recorded identities, in one pass (members
	// deleted meanwhile remove their own).
	var members scimv1.OrgMemberList
	if err := r.List(ctx, &members, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name}); err != nil {
		return 0, err
	}
	for i := range members.Items {
		m := &members.Items[i]
		if m.Status.Origin != scimv1.OriginProvisioned && m.Status.Origin != scimv1.OriginAdopted {
			continue
		}
		if err := removeGrants(dctx, b, m, false); err != nil {
			return 0, err
		}
	}
	var groups scimv1.OrgGroupList
	if err := r.List(ctx, &groups, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name}); err != nil {
		return 0, err
	}
	for i := range groups.Items {
		if g := &groups.Items[i]; g.Status.TeamCreated && g.Status.Team != "" {
			if err := b.EnsureTeamAbsent(dctx, g.Status.Team); err != nil {
				return 0, err
			}
		}
	}
	return 0, nil
}
