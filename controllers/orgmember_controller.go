package controllers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/plan"
)

const (
	// FinalizerDeprovision is scimv1.FinalizerDeprovision.
	FinalizerDeprovision = scimv1.FinalizerDeprovision

	// FieldOwnerController is the field manager of the membership controllers' writes
	// (status and finalizers); the SCIM server owns the spec as "scim-server".
	FieldOwnerController = "scim-controller"

	// DefaultResyncInterval is the drift-repair period when a config does not set one.
	DefaultResyncInterval = 10 * time.Minute

	// backendCallTimeout bounds one reconcile's backend work.
	backendCallTimeout = 2 * time.Minute

	// defaultRateLimitWait is used when a 429 carried no retry hint.
	defaultRateLimitWait = 30 * time.Second
)

// Condition reasons of OrgMembers and OrgGroups.
const (
	ReasonProgressing    = "Progressing"
	ReasonPaused         = "Paused"
	ReasonConfigNotFound = "ConfigNotFound"
	ReasonSynced         = "Synced"
	ReasonPreexisting    = "Preexisting"
	ReasonRateLimited    = "RateLimited"
	// ReasonBackendNotReady: the config's backend is not ready (BackendReady=False); the
	// member waits for it and keeps its phase.
	ReasonBackendNotReady = "BackendNotReady"
)

// Event reasons: one for every change the controllers make in a backend.
const (
	EventInvited     = "Invited"
	EventAdded       = "Added"
	EventRoleChanged = "RoleChanged"
	EventRemoved     = "Removed"
	EventDeactivated = "Deactivated"
	EventReactivated = "Reactivated"
	EventAdopted     = "Adopted"
	EventPreexisting = "Preexisting"
	EventFailed      = "Failed"
	EventTeamJoined  = "TeamJoined"
	EventOrphaned    = "Orphaned"
	EventRenamed     = "Renamed"
)

// OrgMemberReconciler makes a Backend match each OrgMember: provisioning, role and team,
// deactivation, reactivation, deprovisioning on deletion and periodic drift repair.
//
// It writes only the OrgMember's status and finalizers (field owner
// FieldOwnerController); the spec belongs to the SCIM server.
type OrgMemberReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Backends gives the backend of a member's ScimConfig.
	Backends backend.Provider
	Clock    clock.PassiveClock
	// Rechecks asks the ScimConfig controller to check a config's backend now (a member
	// met a problem of the whole connection).
	Rechecks *Rechecks
	// Drift brings the members a drift pass (DriftReconciler) found different from the
	// backend into this controller's queue.
	Drift *DriftQueue
	// Slots share the workers out between ScimConfigs (nil: no limit).
	Slots *ConfigSlots
}

// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers/status,verbs=patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile follows the project's one shape: get, finalizer, deferred status patch that
// summarizes Ready, then observe -> plan (internal/plan) -> execute.
func (r *OrgMemberReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	defer func() { countReconcile("orgmember", res, retErr) }()
	m := &scimv1.OrgMember{}
	var deleting bool
	// read reads the member, and tells whether nothing is left to do (gone, or deleted and
	// released)
	read := func() (bool, error) {
		if err := r.Get(ctx, req.NamespacedName, m); err != nil {
			return true, client.IgnoreNotFound(err)
		}
		deleting = !m.DeletionTimestamp.IsZero()
		return deleting && !controllerutil.ContainsFinalizer(m, FinalizerDeprovision), nil
	}
	if done, err := read(); done || err != nil {
		return ctrl.Result{}, err
	}
	cfg, err := r.config(ctx, m.Namespace, m.Spec.ConfigName)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cfg != nil {
		// One tenant's slow backend must not occupy every worker (ConfigSlots.admit).
		release, stop, res, err := r.Slots.admit(ctx, cfg, losingAccess(m), read)
		if stop {
			return res, err
		}
		defer release()
	}
	if !deleting && !controllerutil.ContainsFinalizer(m, FinalizerDeprovision) {
		orig := m.DeepCopy()
		controllerutil.AddFinalizer(m, FinalizerDeprovision)
		if err := r.Patch(ctx, m, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
			client.FieldOwner(FieldOwnerController)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	st := &memberState{base: m.DeepCopy()}
	defer func() {
		if st.abandon {
			return // an optimistic lock refused this reconcile's view: write nothing of it
		}
		r.summarize(m)
		if err := r.Status().Patch(ctx, m, client.MergeFrom(st.base), client.FieldOwner(FieldOwnerController)); err != nil &&
			!apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
		}
	}()
	if meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionReady) == nil {
		// Ready first, then Synced: the order kubectl describe shows them in.
		setCond(&m.Status.Conditions, m.Generation, scimv1.ConditionReady, metav1.ConditionUnknown, ReasonProgressing, "reconciling")
	}
	if m.Status.Phase == "" {
		m.Status.Phase = scimv1.PhasePending
	}

	in := plan.MemberInput{Config: plan.ConfigStateOf(cfg), Deleting: deleting, Active: m.Spec.Active,
		Origin: m.Status.Origin, Phase: m.Status.Phase, Deprovisioned: m.Status.Deprovisioned}
	var b backend.Backend
	if cfg != nil {
		in.Policies = cfg.Spec.Policies
		in.Policies.Adoption = adoption(cfg)
		in.WantRole = plan.DesiredRole(m, cfg)
		if in.Config == plan.ConfigEnabled || in.Config == plan.ConfigNotReady || deleting {
			if b, err = r.Backends.For(ctx, cfg); err != nil {
				return r.waitForConfig(ctx, m, cfg, err)
			}
			_, in.Labelled = b.(backend.OwnerLedger)
			if deleting && !in.Labelled {
				if in.SharedWith, err = r.sameUserName(ctx, m, in.Policies.Deactivation == scimv1.DeactivationKeep); err != nil {
					return ctrl.Result{}, err
				}
			}
			if _, groupsOnly := b.(backend.NoUserTeams); !groupsOnly {
				// the hint as the backend names the team ("acme:qa" is Docker Hub's qa): the
				// listing's teams and status.hintedTeam are compared with it
				key := plan.TeamKeyOf(b)
				in.Team = key.Name(plan.DesiredTeam(m))
				in.FormerTeam = plan.FormerTeam(m.Status.HintedTeam, in.Team, key)
			}
		}
	}
	// NoWait: a backend whose organization's request budget is spent answers RateLimited
	// with the delay, and the member is requeued for then, rather than holding a worker.
	bctx, cancel := context.WithTimeout(backend.NoWait(ctx), backendCallTimeout)
	defer cancel()
	bctx = backend.WithGuard(bctx, configEnabled(ctx, r.Client, cfg))
	if plan.NeedsObservation(in) {
		how := observeDirectly
		var obs backend.Member
		first := in.Origin == "" && !in.Labelled
		resting := !first && !in.Labelled && atRest(m)
		switch {
		case first:
			// never judged yet: read from a fresh listing of the organization when one
			// shows the person, or wait for one in a burst (DriftQueue.firstObservation)
			obs, how = r.Drift.firstObservation(cfg, m, r.Clock.Now())
		case resting:
			// judged, and nothing changed since: the config's listing, or the next one
			// (DriftQueue.restingObservation), not a lookup per member
			obs, how = r.Drift.restingObservation(cfg, m, r.Clock.Now())
		}
		switch how {
		case waitForListing:
			if resting {
				// the pass enqueues it; its status stays as it is (nothing is pending)
				return ctrl.Result{RequeueAfter: restingWait(cfg)}, nil
			}
			return r.waitForListing(m, cfg)
		case observeDirectly:
			if obs, err = observeMember(bctx, b, m); err != nil {
				if first && backend.ClassOf(err) == backend.RateLimited && r.Drift.waitOnRateLimit(cfg, m, r.Clock.Now()) {
					return r.waitForListing(m, cfg)
				}
				return r.backendError(ctx, m, cfg, "observe the member", err)
			}
			if first {
				r.Drift.observedDirectly(cfg, obs, r.Clock.Now())
			}
		}
		in.Observed = obs
		if ol, ok := b.(backend.OwnerLedger); ok && in.Labelled && in.Origin == "" && !obs.Managed {
			// A grant carrying its UID under another name is SCIM's too: the member lost the
			// write recording its origin (plan.MemberPlan.OriginKeptByGrants) and was renamed
			// since; the drift pass enqueues it (plan.Drifted), and Managed lets the plan
			// take the grant back.
			holds, err := ol.OwnerHolds(bctx, ownerOf(m))
			if err != nil {
				return r.backendError(ctx, m, cfg, "observe the member's grants", err)
			}
			in.Observed.Managed = holds
		}
		if !in.Labelled && obs.State == backend.StateMember && obs.BackendID != "" &&
			(m.Status.Origin == scimv1.OriginProvisioned || m.Status.Origin == scimv1.OriginAdopted) {
			// The Docker ID an invitation was accepted under is an identity of the member
			// from now on, removed with it even when the account's email changes.
			recordIdentities(m, obs.BackendID)
		}
	}
	in.Stale = plan.StaleIdentities(m, in.Observed, in.Labelled)
	in.Renamed = in.Labelled && m.Status.BackendID != "" && !strings.EqualFold(m.Status.BackendID, m.Spec.UserName)

	p := plan.Member(in)
	logf.FromContext(ctx).V(1).Info("plan", "steps", p.Steps, "wait", p.Wait, "story", p.Story, "origin", p.Origin)
	if p.Has(plan.StepEnsure) || p.Has(plan.StepJoinTeam) {
		if err := holdConfig(ctx, r.Client, cfg); err != nil {
			return ctrl.Result{}, err
		}
	}
	if p.Wait != plan.WaitNone {
		if len(p.Steps) > 0 { // removals that cannot wait (a former identity's access)
			if res, err := r.execute(bctx, ctx, m, cfg, b, in, p, st); err != nil {
				return res, err
			}
		}
		return r.wait(m, cfg, p.Wait)
	}
	return r.execute(bctx, ctx, m, cfg, b, in, p, st)
}

// waitForListing leaves a member whose first observation waits for a drift pass's listing
// (the pass enqueues it; the requeue is for a pass that never comes).
func (r *OrgMemberReconciler) waitForListing(m *scimv1.OrgMember, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	m.Status.Message = fmt.Sprintf("waiting for one listing of organization %s: many people already in it appeared at once",
		cfg.Spec.Organization)
	return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
}

// memberState carries the status patch base between the deferred patch and the steps
// that record an intent before acting.
type memberState struct {
	base *scimv1.OrgMember
	// abandon: an optimistic lock refused a write of this reconcile, so its view of the
	// member is stale; the deferred status patch must not write it back.
	abandon bool
}

// recordIntent writes the member's status with an optimistic lock before acting: a
// reconcile working from a stale cached copy (one that does not show the origin or the
// identities recorded a moment ago) fails here with a conflict and retries, and its
// deferred status patch writes nothing.
func (r *OrgMemberReconciler) recordIntent(ctx context.Context, m *scimv1.OrgMember, st *memberState) error {
	if err := r.Status().Patch(ctx, m, client.MergeFromWithOptions(st.base, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(FieldOwnerController)); err != nil {
		st.abandon = true
		return err
	}
	st.base = m.DeepCopy()
	return nil
}

// wait describes a member that cannot be synced now.
func (r *OrgMemberReconciler) wait(m *scimv1.OrgMember, cfg *scimv1.ScimConfig, w plan.Wait) (ctrl.Result, error) {
	switch w {
	case plan.WaitConfigGone:
		r.synced(m, metav1.ConditionFalse, ReasonConfigNotFound,
			fmt.Sprintf("ScimConfig %q not found in namespace %q (or being deleted); waiting for it", m.Spec.ConfigName, m.Namespace))
		return ctrl.Result{}, nil // the ScimConfig watch brings us back
	case plan.WaitDisabled:
		r.synced(m, metav1.ConditionUnknown, ReasonPaused,
			fmt.Sprintf("ScimConfig %q is disabled: nothing is synced and the member is left as it is", cfg.Name))
		return ctrl.Result{}, nil // enabling the config re-enqueues its members
	default:
		c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionBackendReady)
		r.synced(m, metav1.ConditionFalse, ReasonBackendNotReady,
			truncate(fmt.Sprintf("waiting for ScimConfig %q's backend: %s", cfg.Name, c.Message), 1024))
		// BackendReady turning True re-enqueues the config's members.
		return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
	}
}

// waitForConfig handles a backend the registry could not build: a configuration problem
// of the whole config is the config's to report (BackendReady); the member waits, without
// an event per member, and a repaired config resumes it.
func (r *OrgMemberReconciler) waitForConfig(ctx context.Context, m *scimv1.OrgMember, cfg *scimv1.ScimConfig, err error) (ctrl.Result, error) {
	r.synced(m, metav1.ConditionFalse, backend.ReasonOf(err),
		truncate(fmt.Sprintf("waiting for ScimConfig %q's backend: %v", cfg.Name, err), 1024))
	r.recheck(ctx, cfg)
	if backend.ClassOf(err) == backend.Permanent {
		return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
	}
	return ctrl.Result{}, err
}

// recheck asks the ScimConfig controller to check the config's backend now.
func (r *OrgMemberReconciler) recheck(ctx context.Context, cfg *scimv1.ScimConfig) {
	if r.Rechecks != nil {
		r.Rechecks.Request(ctx, cfg)
	}
}

// execute runs a plan's steps in order, then tells its story.
func (r *OrgMemberReconciler) execute(ctx, outer context.Context, m *scimv1.OrgMember, cfg *scimv1.ScimConfig,
	b backend.Backend, in plan.MemberInput, p plan.MemberPlan, st *memberState) (ctrl.Result, error) {
	obs := in.Observed
	var later []func() // events told after the plan's story
	// Also: EnsureMember looks where observeMember did (the accepted Docker ID too), so a
	// member it must only change the role of is not invited again.
	want := backend.DesiredMember{UserName: m.Spec.UserName, Email: plan.PrimaryEmail(m), Role: in.WantRole, Owner: ownerOf(m),
		Also: plan.LookupIdentities(m, in.Labelled)}
	for _, step := range p.Steps {
		switch step {
		case plan.StepRecordOrigin:
			m.Status.Origin = p.Origin
			if p.Origin == scimv1.OriginProvisioned && obs.State != backend.StateMember && obs.State != backend.StateInvited {
				m.Status.Message = "provisioning in organization " + cfg.Spec.Organization
			}
			if !in.Labelled && p.Origin != scimv1.OriginPreexisting {
				recordIdentities(m, plan.CurrentIdentities(m, obs)...)
			}
			if p.OriginKeptByGrants {
				continue // the outcome's status write records it (plan.MemberPlan)
			}
			if err := r.recordIntent(outer, m, st); err != nil {
				return ctrl.Result{}, err
			}
		case plan.StepEnsure:
			if !in.Labelled && addsIdentities(m, plan.CurrentIdentities(m, obs)...) {
				if err := r.recordIntent(outer, m, st); err != nil {
					return ctrl.Result{}, err
				}
			}
			got, err := b.EnsureMember(ctx, want)
			if err != nil {
				if ol, ok := b.(backend.OwnerLedger); ok && in.Renamed && backend.ClassOf(err) == backend.Permanent {
					// The new name is refused: the former name must not keep the access.
					if rerr := ol.EnsureOwnerAbsent(ctx, ownerOf(m), ""); rerr != nil {
						err = errors.Join(err, rerr)
					}
				}
				return r.backendError(outer, m, cfg, ensureWords(in, p), err)
			}
			obs = got
			m.Status.Deprovisioned = false
			if !in.Labelled {
				recordIdentities(m, plan.CurrentIdentities(m, obs)...)
			}
		case plan.StepRemoveStale:
			err := removeRenamed(ctx, b, m, in.Stale)
			r.leftTeams(cfg, b, in.Stale, err)
			if err != nil {
				return r.backendError(outer, m, cfg, "remove the member's former identities", err)
			}
		case plan.StepLeaveTeam:
			if err := r.leaveHintedTeam(ctx, b, cfg, m, obs, in.FormerTeam); err != nil {
				return r.backendError(outer, m, cfg, "leave former team "+in.FormerTeam, err)
			}
			m.Status.HintedTeam = ""
		case plan.StepJoinTeam:
			team := in.Team
			if obs.State != backend.StateMember || obs.BackendID == "" {
				continue
			}
			if plan.InTeam(obs.Teams, team) {
				m.Status.HintedTeam = team
				continue
			}
			err := b.EnsureTeam(ctx, team)
			r.Drift.wroteTeam(cfg, b, team, "", true, err, r.Clock.Now())
			if err != nil {
				return r.backendError(outer, m, cfg, "create team "+team, err)
			}
			err = b.EnsureTeamMember(ctx, team, obs.BackendID)
			r.Drift.wroteTeam(cfg, b, team, obs.BackendID, true, err, r.Clock.Now())
			if err != nil {
				return r.backendError(outer, m, cfg, "add the member to team "+team, err)
			}
			obs.Teams = append(obs.Teams, team)
			m.Status.HintedTeam = team
			later = append(later, func() {
				r.event(m, corev1.EventTypeNormal, EventTeamJoined, "JoinTeam",
					"%s added to team %s of organization %s", m.Spec.UserName, team, cfg.Spec.Organization)
			})
		case plan.StepRemove:
			err := removeGrants(ctx, b, m, in.Labelled)
			r.leftTeams(cfg, b, append([]string{m.Status.BackendID, obs.BackendID}, m.Status.GrantedIdentities...), err)
			if err != nil {
				return r.backendError(outer, m, cfg, removeWords(in), err)
			}
			obs = backend.Member{UserName: m.Spec.UserName, State: backend.StateAbsent}
			m.Status.Deprovisioned = !in.Deleting
		case plan.StepOrphan:
			if ol, ok := b.(backend.OwnerLedger); ok {
				if err := ol.OrphanOwner(ctx, ownerOf(m), "Orphaned"); err != nil {
					return r.backendError(outer, m, cfg, "leave the member's access in place", err)
				}
			}
		case plan.StepRelease:
			return r.release(outer, m, cfg, p, st)
		}
	}
	if p.Wait != plan.WaitNone {
		return ctrl.Result{}, nil
	}
	res, err := r.conclude(m, cfg, in, p, obs)
	for _, tell := range later {
		tell()
	}
	return res, err
}

// conclude records the outcome of a plan that keeps the member: phase, identity, story.
func (r *OrgMemberReconciler) conclude(m *scimv1.OrgMember, cfg *scimv1.ScimConfig, in plan.MemberInput,
	p plan.MemberPlan, obs backend.Member) (ctrl.Result, error) {
	org := cfg.Spec.Organization
	if m.Status.Origin == scimv1.OriginPreexisting {
		if p.Story == plan.StoryPreexisting {
			r.record(m, obs)
			r.event(m, corev1.EventTypeNormal, EventPreexisting, "Observe",
				"%s was already %s of organization %s before SCIM; adoption is off, so SCIM never changes or removes them",
				m.Spec.UserName, stateWords(obs.State), org)
			m.Status.LastSyncTime = &metav1.Time{Time: r.Clock.Now()}
		}
		r.preexisting(m, cfg)
		return ctrl.Result{}, nil
	}
	verb, reason := "added to", EventAdded
	if obs.State == backend.StateInvited {
		verb, reason = "invited to", EventInvited
	}
	role := roleWords(in.WantRole)
	switch p.Story {
	case plan.StoryAdopt:
		r.event(m, corev1.EventTypeNormal, EventAdopted, "Adopt",
			"%s was already %s of organization %s; adopted: SCIM manages them from now on", m.Spec.UserName, stateWords(in.Observed.State), org)
	case plan.StoryProvision:
		r.event(m, corev1.EventTypeNormal, reason, "Provision", "%s %s organization %s%s", m.Spec.UserName, verb, org, role)
	case plan.StoryRepair:
		r.event(m, corev1.EventTypeNormal, reason, "Repair",
			"%s was missing from organization %s (removed outside SCIM, or the invitation expired): %s it again%s",
			m.Spec.UserName, org, verb, role)
	case plan.StoryReactivate:
		r.event(m, corev1.EventTypeNormal, EventReactivated, "Reactivate", "%s reactivated: %s organization %s%s",
			m.Spec.UserName, verb, org, role)
	case plan.StoryRoleChange:
		r.event(m, corev1.EventTypeNormal, EventRoleChanged, "ChangeRole",
			"%s's role in organization %s changed from %s to %s", m.Spec.UserName, org, in.Observed.Role, in.WantRole)
	case plan.StoryRenamed:
		r.event(m, corev1.EventTypeNormal, EventRenamed, "Rename",
			"%s: access in organization %s moved to the member's current identity; former identities removed", m.Spec.UserName, org)
	case plan.StoryDeactivate:
		r.event(m, corev1.EventTypeNormal, EventDeactivated, "Deactivate",
			"%s deactivated: removed from organization %s; the OrgMember is kept so a reactivation re-adds them", m.Spec.UserName, org)
	case plan.StoryKeep:
		r.event(m, corev1.EventTypeNormal, EventDeactivated, "Deactivate",
			"%s deactivated; access to organization %s kept (deactivation policy Keep)", m.Spec.UserName, org)
	}

	if p.Phase == scimv1.PhaseDeactivated {
		m.Status.Phase = scimv1.PhaseDeactivated
		switch {
		case m.Status.Origin == "":
			m.Status.Message = "inactive and never provisioned: nothing to do in organization " + org
		case in.Policies.Deactivation == scimv1.DeactivationKeep && m.Status.Deprovisioned:
			m.Status.Message = "deactivated: not in organization " + org +
				" (removed under the Remove policy; Keep does not give access back); reactivation re-adds them"
		case in.Policies.Deactivation == scimv1.DeactivationKeep:
			r.record(m, obs)
			m.Status.Message = "deactivated; access kept in organization " + org + " (deactivation policy Keep)"
		default:
			m.Status.InviteID = ""
			m.Status.Message = "deactivated: not in organization " + org + "; reactivation re-adds them"
		}
		r.syncedNow(m)
		return ctrl.Result{}, nil // the config's drift pass brings it back if the backend changes
	}

	r.record(m, obs)
	switch obs.State {
	case backend.StateMember:
		m.Status.Phase = scimv1.PhaseActive
		m.Status.Message = fmt.Sprintf("member of organization %s%s%s", org, roleWords(obs.Role), originWords(m.Status.Origin))
	case backend.StateInvited:
		m.Status.Phase = scimv1.PhaseInvited
		m.Status.Message = fmt.Sprintf("invited to organization %s%s; waiting for the person to accept%s",
			org, role, originWords(m.Status.Origin))
	default:
		// The backend answered success but does not show the member yet: look again soon.
		m.Status.Phase = scimv1.PhasePending
		r.synced(m, metav1.ConditionFalse, ReasonProgressing, "the backend does not show the member yet")
		return ctrl.Result{RequeueAfter: jitter(10 * time.Second)}, nil
	}
	r.syncedNow(m)
	return ctrl.Result{}, nil // the config's drift pass brings it back if the backend changes
}

// release records the member's last status and removes its finalizer; the event is told
// once the finalizer is gone (a conflict retries it all).
func (r *OrgMemberReconciler) release(ctx context.Context, m *scimv1.OrgMember, cfg *scimv1.ScimConfig,
	p plan.MemberPlan, st *memberState) (ctrl.Result, error) {
	var done func()
	switch {
	case p.Story == plan.StoryRemove:
		m.Status.Phase = scimv1.PhaseRemoved
		m.Status.InviteID = ""
		m.Status.GrantedIdentities = nil
		m.Status.Message = "removed from organization " + cfg.Spec.Organization
		r.syncedNow(m)
		done = func() {
			r.event(m, corev1.EventTypeNormal, EventRemoved, "Deprovision",
				"%s deleted: removed from organization %s", m.Spec.UserName, cfg.Spec.Organization)
		}
	case cfg == nil:
		// the config's own deletion decided this member's access: nothing to tell here
	case m.Status.Origin != "":
		done = func() {
			r.event(m, corev1.EventTypeNormal, EventOrphaned, "Release",
				"%s deleted; access left in place because %s", m.Spec.UserName, p.Why)
		}
	}
	st.abandon = true
	r.summarize(m)
	if err := r.Status().Patch(ctx, m, client.MergeFrom(st.base), client.FieldOwner(FieldOwnerController)); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := m.DeepCopy()
	controllerutil.RemoveFinalizer(m, FinalizerDeprovision)
	if err := r.Patch(ctx, m, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(FieldOwnerController)); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if done != nil {
		done()
	}
	return ctrl.Result{}, nil
}

func ensureWords(in plan.MemberInput, p plan.MemberPlan) string {
	switch {
	case p.Story == plan.StoryRoleChange:
		return "change the member's role"
	case !in.Active:
		return "keep the deactivated member's access"
	}
	return "add the member"
}

func removeWords(in plan.MemberInput) string {
	if in.Deleting {
		return "remove the deleted member"
	}
	return "remove the deactivated member"
}

// leftTeams records, for the groups' teams views, that the people under ids left the
// organization and with it every team (err set: they may have; DriftQueue.wroteTeam).
func (r *OrgMemberReconciler) leftTeams(cfg *scimv1.ScimConfig, b backend.Backend, ids []string, err error) {
	if err != nil {
		r.Drift.wroteTeam(cfg, b, "*", "", false, err, r.Clock.Now())
		return
	}
	for _, id := range ids {
		if id != "" {
			r.Drift.wroteTeam(cfg, b, "*", id, false, nil, r.Clock.Now())
		}
	}
}

// leaveHintedTeam takes the member out of the team a former hint put it in, unless one of
// its groups maps to that team (the group keeps it there).
func (r *OrgMemberReconciler) leaveHintedTeam(ctx context.Context, b backend.Backend, cfg *scimv1.ScimConfig, m *scimv1.OrgMember,
	obs backend.Member, team string) error {
	id := obs.BackendID
	if id == "" {
		id = m.Status.BackendID
	}
	if id == "" {
		return nil
	}
	for _, name := range index.GroupsOf(m.Labels) {
		g := &scimv1.OrgGroup{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: name}, g); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if g.DeletionTimestamp.IsZero() && plan.TeamKeyOf(b).Same(TeamName(g.Spec.DisplayName), team) {
			return nil
		}
	}
	err := b.EnsureTeamMemberAbsent(ctx, team, id)
	r.Drift.wroteTeam(cfg, b, team, id, false, err, r.Clock.Now())
	return err
}

// ownerOf is the backend owner of a member's grants.
func ownerOf(m *scimv1.OrgMember) backend.Owner {
	return backend.Owner{Kind: "OrgMember", UID: string(m.UID)}
}

// removeGrants takes every grant of the member away: by owner UID where the backend labels
// its grants, else under its current identities and every identity it recorded.
func removeGrants(ctx context.Context, b backend.Backend, m *scimv1.OrgMember, labelled bool) error {
	if ol, ok := b.(backend.OwnerLedger); ok && labelled {
		subject := m.Spec.UserName
		if m.Status.Origin == "" {
			// never judged (deleted before its outcome was written: plan.MemberPlan.
			// OriginKeptByGrants): what carries its UID only, not the unowned grants (orphans)
			// of its userName, which only a member that claimed them removes
			subject = ""
		}
		return ol.EnsureOwnerAbsent(ctx, ownerOf(m), subject)
	}
	if err := removeMember(ctx, b, m); err != nil {
		return err
	}
	current := map[string]bool{naming.FoldUserName(m.Spec.UserName): true, naming.FoldUserName(plan.PrimaryEmail(m)): true}
	var rest []string
	ids := m.Status.GrantedIdentities
	if m.Status.BackendID != "" && m.Status.Origin != scimv1.OriginPreexisting {
		ids = append(slices.Clone(ids), naming.FoldUserName(m.Status.BackendID))
	}
	for _, id := range ids {
		if !current[id] && !slices.Contains(rest, id) {
			rest = append(rest, id)
		}
	}
	if err := removeStale(ctx, b, m, rest); err != nil {
		return err
	}
	m.Status.GrantedIdentities = nil
	return nil
}

// removeStale removes the identities the member granted earlier, dropping each from the
// record once the backend confirms it gone.
func removeStale(ctx context.Context, b backend.Backend, m *scimv1.OrgMember, stale []string) error {
	for _, id := range stale {
		if err := b.EnsureMemberAbsent(ctx, id); err != nil {
			return err
		}
		m.Status.GrantedIdentities = slices.DeleteFunc(m.Status.GrantedIdentities, func(x string) bool { return x == id })
	}
	return nil
}

// removeRenamed removes the former identities of a renamed member (plan.StaleIdentities),
// the Docker ID it was last seen under first: that Docker ID is stale only while a former
// identity is still recorded (a removal refused half-way must leave the rename known, or
// the next reconcile looks the member up under that Docker ID again and takes the former
// name's account for it: plan.LookupIdentities). Once the backend confirms the Docker ID
// gone it is no longer the member's: status.backendID is cleared, so it is not looked
// under again, even if someone adds that account back by hand.
func removeRenamed(ctx context.Context, b backend.Backend, m *scimv1.OrgMember, stale []string) error {
	dockerID := naming.FoldUserName(m.Status.BackendID)
	if dockerID == "" || !slices.Contains(stale, dockerID) {
		return removeStale(ctx, b, m, stale)
	}
	if err := removeStale(ctx, b, m, []string{dockerID}); err != nil {
		return err
	}
	m.Status.BackendID = ""
	return removeStale(ctx, b, m, slices.DeleteFunc(slices.Clone(stale), func(x string) bool { return x == dockerID }))
}

// recordIdentities adds identities to the member's record (folded, without blanks).
func recordIdentities(m *scimv1.OrgMember, ids ...string) {
	for _, id := range ids {
		f := naming.FoldUserName(strings.TrimSpace(id))
		if f != "" && !slices.Contains(m.Status.GrantedIdentities, f) {
			m.Status.GrantedIdentities = append(m.Status.GrantedIdentities, f)
		}
	}
}

// addsIdentities tells whether recordIdentities would add something.
func addsIdentities(m *scimv1.OrgMember, ids ...string) bool {
	for _, id := range ids {
		f := naming.FoldUserName(strings.TrimSpace(id))
		if f != "" && !slices.Contains(m.Status.GrantedIdentities, f) {
			return true
		}
	}
	return false
}

// observeMember looks the person up under their userName and, on a backend that invites
// by email (backend.EmailInviter: Docker Hub invites the email of a person whose userName
// is not one), under their email too. Looking under the userName alone would miss that
// invitation: every resync would take the person for missing ("invited it again") and
// deactivation or deletion would leave the invitation open for them to accept.
//
// There it looks under plan.LookupIdentities, as the drift pass does: also under the
// Docker ID the person accepted under, which is all Docker Hub lists once their account's
// email changed. That Docker ID costs a members search only when the userName and the
// email find no member (dockerhub.Backend.observe).
func observeMember(ctx context.Context, b backend.Backend, m *scimv1.OrgMember) (backend.Member, error) {
	if ei, ok := b.(backend.EmailInviter); ok {
		return ei.ObserveMemberWithEmail(ctx, m.Spec.UserName, plan.PrimaryEmail(m), plan.LookupIdentities(m, false)...)
	}
	return b.ObserveMember(ctx, m.Spec.UserName)
}

// removeMember removes the person from the backend, under their email too where
// observeMember looks there.
func removeMember(ctx context.Context, b backend.Backend, m *scimv1.OrgMember) error {
	if ei, ok := b.(backend.EmailInviter); ok {
		return ei.EnsureMemberAbsentWithEmail(ctx, m.Spec.UserName, plan.PrimaryEmail(m))
	}
	return b.EnsureMemberAbsent(ctx, m.Spec.UserName)
}

// preexisting describes a member that SCIM leaves alone.
func (r *OrgMemberReconciler) preexisting(m *scimv1.OrgMember, cfg *scimv1.ScimConfig) {
	m.Status.Phase = scimv1.PhaseActive
	m.Status.Message = fmt.Sprintf("already in organization %s before SCIM; adoption is off, so SCIM never changes or removes them",
		cfg.Spec.Organization)
	if !m.Spec.Active {
		m.Status.Message = "active=false, but " + m.Status.Message
	}
	r.synced(m, metav1.ConditionTrue, ReasonPreexisting, m.Status.Message)
}

// backendError turns a classified backend failure into conditions, phase and result. A
// problem of the whole connection (backend.ConfigWide) is the config's to report: the
// member keeps its phase, asks the config to check its backend, and waits. Permanent
// member errors are Failed with one event, and retried one resync interval later (a
// backend repaired by hand is noticed), then, for a member that wants access, less and
// less often while the same failure lasts (permanentFailure: a thousand members Docker
// Hub refuses must not spend the organization's request budget every interval; a member
// that is to lose access is retried every interval); RateLimited waits for the hint;
// Transient backs off.
func (r *OrgMemberReconciler) backendError(ctx context.Context, m *scimv1.OrgMember, cfg *scimv1.ScimConfig, what string, err error) (ctrl.Result, error) {
	reason := backend.ReasonOf(err)
	msg := fmt.Sprintf("could not %s: %v", what, err)
	if backend.ConfigWide(err) {
		r.recheck(ctx, cfg)
		r.synced(m, metav1.ConditionFalse, ReasonBackendNotReady, truncate(msg+"; waiting for the backend", 1024))
		if backend.ClassOf(err) == backend.Permanent {
			return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
		}
		return ctrl.Result{}, err
	}
	switch backend.ClassOf(err) {
	case backend.Permanent:
		msg = truncate(msg, 1024)
		// Phase and message keep the failure while a 429, a transient error or a wait for
		// the backend comes between two retries (only Synced tells those): under the
		// organization's rate limit, where the backoff matters most, it still grows.
		again := m.Status.Phase == scimv1.PhaseFailed && m.Status.Message == msg
		if !again {
			// one event per failure, not one per retry of the same failure
			r.event(m, corev1.EventTypeWarning, EventFailed, "Sync", "%s", msg)
		}
		m.Status.Phase = scimv1.PhaseFailed
		m.Status.Message = msg
		wait := permanentFailure(&m.Status.Conditions, m.Generation, reason, msg, again, resyncInterval(cfg), r.Clock.Now())
		if !m.Spec.Active || !m.DeletionTimestamp.IsZero() {
			// A member that is to lose access (deactivated, or deleted) may still hold it
			// while its removal fails (the organization's last owner): its retries never
			// back off, so a repair outside Kubernetes takes its access away within an
			// interval (review 21).
			wait = resyncInterval(cfg)
		}
		return ctrl.Result{RequeueAfter: jitter(wait)}, nil
	case backend.RateLimited:
		wait, _ := backend.RetryAfterOf(err)
		if wait <= 0 {
			wait = defaultRateLimitWait
		}
		r.synced(m, metav1.ConditionFalse, ReasonRateLimited,
			truncate(fmt.Sprintf("rate limited while trying to %s; retrying in %s", what, wait.Round(time.Second)), 1024))
		return ctrl.Result{RequeueAfter: wait + time.Duration(rand.Int64N(int64(wait/5)+1))}, nil
	default:
		r.synced(m, metav1.ConditionFalse, reason, truncate(msg+"; retrying", 1024))
		return ctrl.Result{}, err
	}
}

func (r *OrgMemberReconciler) record(m *scimv1.OrgMember, obs backend.Member) {
	if obs.BackendID != "" {
		m.Status.BackendID = obs.BackendID
	}
	m.Status.InviteID = ""
	if obs.State == backend.StateInvited {
		m.Status.InviteID = obs.InviteID
	}
}

// synced sets the member's Synced condition.
//
// A False Synced restated for a new generation starts at now: the time it keeps is when
// the member began failing, which permanentFailure reads as the start of a failure, and a
// failure of the old spec is not one of the new spec, whatever came in between (a 429 of
// the new spec restates False with the new generation; review 21 F3).
func (r *OrgMemberReconciler) synced(m *scimv1.OrgMember, s metav1.ConditionStatus, reason, msg string) {
	prev := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced)
	respec := prev != nil && prev.Status == metav1.ConditionFalse && prev.ObservedGeneration != m.Generation
	setCond(&m.Status.Conditions, m.Generation, scimv1.ConditionSynced, s, reason, msg)
	if respec && s == metav1.ConditionFalse {
		meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced).LastTransitionTime = metav1.NewTime(r.Clock.Now())
	}
}

func (r *OrgMemberReconciler) syncedNow(m *scimv1.OrgMember) {
	m.Status.LastSyncTime = &metav1.Time{Time: r.Clock.Now()}
	r.synced(m, metav1.ConditionTrue, ReasonSynced, "the backend matches the spec")
}

// summarize sets Ready from Synced and the phase.
func (r *OrgMemberReconciler) summarize(m *scimv1.OrgMember) {
	m.Status.ObservedGeneration = m.Generation
	s := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced)
	if s == nil {
		return
	}
	ready := metav1.Condition{Status: s.Status, Reason: s.Reason, Message: s.Message}
	if s.Status == metav1.ConditionTrue && s.Reason == ReasonSynced {
		ready.Reason, ready.Message = string(m.Status.Phase), m.Status.Message
	}
	setCond(&m.Status.Conditions, m.Generation, scimv1.ConditionReady, ready.Status, ready.Reason, ready.Message)
}

func (r *OrgMemberReconciler) event(m *scimv1.OrgMember, typ, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(m, nil, typ, reason, action, note, args...)
	}
}

func (r *OrgMemberReconciler) config(ctx context.Context, ns, name string) (*scimv1.ScimConfig, error) {
	return liveConfig(ctx, r.Client, ns, name)
}

// configEnabled is the guard of a reconcile's backend calls (backend.WithGuard): each
// call first looks at the config in the cache, and none is sent once it is disabled, so a
// reconcile under way when the config was disabled makes no further call after the
// config controller reported Paused=True (it reads the same cache).
func configEnabled(ctx context.Context, c client.Reader, cfg *scimv1.ScimConfig) func() error {
	return func() error {
		live, err := liveConfig(ctx, c, cfg.Namespace, cfg.Name)
		if err != nil || live == nil || live.UID != cfg.UID || live.IsEnabled() {
			return nil // only a disabled config stops calls; anything else is handled as before
		}
		return fmt.Errorf("ScimConfig %q was disabled: no further backend call (the reconcile stops; the member waits, Paused)", cfg.Name)
	}
}

// liveConfig returns a member's or group's ScimConfig (also while it is being deleted:
// configState tells), or nil when it is gone.
func liveConfig(ctx context.Context, c client.Reader, ns, name string) (*scimv1.ScimConfig, error) {
	cfg := &scimv1.ScimConfig{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return cfg, nil
}

// SetupWithManager watches OrgMembers (spec changes, deletion and the reconcile
// annotation) and ScimConfigs, mapped to their members through the index.Config index, so
// that enabling a config or changing its policies resumes its members.
func (r *OrgMemberReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	b := newController(mgr, "orgmember", retryLimiter()).
		Watches(&scimv1.OrgMember{}, revocationFirst(revokes, memberLosingAccess), builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, reconcileRequested()))).
		Watches(&scimv1.ScimConfig{}, handler.EnqueueRequestsFromMapFunc(r.membersOfConfig),
			builder.WithPredicates(configChangedForMembers()))
	if r.Drift != nil {
		b = b.WatchesRawSource(r.Drift.source())
	}
	return b.Complete(r)
}

// RevocationPriority is the queue priority of a member whose access is being taken away,
// or of a group whose deletion has begun.
const RevocationPriority = 100

// LaterRevocationPriority is the queue priority of a revocation that is not fresh: one
// refused a worker slot (refusedPriority), or a member a drift pass found holding access
// it should not (plan.Drifted's revokes). Behind every fresh revocation, ahead of other
// work.
const LaterRevocationPriority = RevocationPriority - 1

// revocationFirst enqueues objects as the builder's For does, except that an update that
// revokes says takes access away (a member's active true to false, or its deletion begun;
// a group's deletion begun) goes ahead of the queue: during an identity provider's full
// sync thousands of new members wait in it, and a deprovisioning behind them would wait
// for all of them. So does an object that pending says is still to lose access when it
// comes in (after a restart, in the informers' initial list, which is otherwise queued at
// low priority).
func revocationFirst(revokes func(oldObj, newObj client.Object) bool, pending func(client.Object) bool) handler.EventHandler {
	base := handler.WithLowPriorityWhenUnchanged[client.Object, reconcile.Request](&handler.EnqueueRequestForObject{})
	first := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object) bool {
		return addAt(q, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}, RevocationPriority)
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if !pending(e.Object) || !first(q, e.Object) {
				base.Create(ctx, e, q)
			}
		},
		DeleteFunc:  base.Delete,
		GenericFunc: base.Generic,
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if !revokes(e.ObjectOld, e.ObjectNew) || !first(q, e.ObjectNew) {
				base.Update(ctx, e, q)
			}
		},
	}
}

// addAt adds req to q at priority p, and tells whether it could (q is a priority queue, as
// the controllers' are).
func addAt(q workqueue.TypedRateLimitingInterface[reconcile.Request], req reconcile.Request, p int) bool {
	pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request])
	if ok {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(p)}, req)
	}
	return ok
}

// losingAccess tells whether the member is to lose access it may have been given:
// deactivated or being deleted while its phase does not say it has none.
func losingAccess(m *scimv1.OrgMember) bool {
	// Failed and Pending members may hold access too (a refused role change leaves the
	// person in the organization; an invitation may be out): only a member that has none
	// by its phase, or was never reconciled (a user created inactive), is no revocation
	switch m.Status.Phase {
	case "", scimv1.PhaseDeactivated, scimv1.PhaseRemoved:
		return false
	}
	return !m.Spec.Active || !m.DeletionTimestamp.IsZero()
}

// atRest tells whether nothing about the member changed since it was last synced: its
// spec's generation synced (Synced True at it), not being deleted, not losing access.
func atRest(m *scimv1.OrgMember) bool {
	c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == m.Generation &&
		m.Status.ObservedGeneration == m.Generation && m.DeletionTimestamp.IsZero() && !losingAccess(m)
}

// memberLosingAccess is losingAccess for an event's object.
func memberLosingAccess(o client.Object) bool {
	m, ok := o.(*scimv1.OrgMember)
	return ok && losingAccess(m)
}

// revokes tells whether an update of an OrgMember takes its access away.
func revokes(oldObj, newObj client.Object) bool {
	o, ok1 := oldObj.(*scimv1.OrgMember)
	n, ok2 := newObj.(*scimv1.OrgMember)
	if !ok1 || !ok2 {
		return false
	}
	return (o.Spec.Active && !n.Spec.Active) || (o.DeletionTimestamp.IsZero() && !n.DeletionTimestamp.IsZero())
}

func (r *OrgMemberReconciler) membersOfConfig(ctx context.Context, o client.Object) []reconcile.Request {
	var list scimv1.OrgMemberList
	// only the keys are read: the cache's objects, not a deep copy of the whole config
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{index.Config: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "list members of config", "config", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// reconcileRequested fires when the scim.operator.dev/reconcile-requested-at annotation
// changes.
func reconcileRequested() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return false
			}
			return e.ObjectOld.GetAnnotations()[scimv1.AnnotationReconcile] != e.ObjectNew.GetAnnotations()[scimv1.AnnotationReconcile]
		},
	}
}

// configChangedForMembers is configChanged without the config's reconcile annotation:
// that asks for a drift pass (DriftReconciler), which reconciles only the members that
// differ from the backend.
func configChangedForMembers() predicate.Predicate {
	return configChangedUnlessPass(func(types.NamespacedName) bool { return true })
}

// configChangedForGroups is configChanged, without the config's reconcile annotation
// where the config's drift pass judges its groups (DriftQueue.judgesGroups): there the
// annotation's pass reconciles only the groups that differ from their teams, as it does
// members. Elsewhere (kubernetes, or before the config's first pass) the annotation
// reconciles every group at once.
func configChangedForGroups(d *DriftQueue) predicate.Predicate {
	return configChangedUnlessPass(d.judgesGroups)
}

// configChangedUnlessPass is configChanged, without the config's reconcile annotation
// when judged tells that the config's drift pass reaches the objects instead.
func configChangedUnlessPass(judged func(types.NamespacedName) bool) predicate.Predicate {
	return predicate.And(configChanged(), predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*scimv1.ScimConfig)
			n, ok2 := e.ObjectNew.(*scimv1.ScimConfig)
			if !ok1 || !ok2 {
				return false
			}
			return o.Generation != n.Generation ||
				condStatus(o.Status.Conditions, scimv1.ConditionBackendReady) != condStatus(n.Status.Conditions, scimv1.ConditionBackendReady) ||
				!judged(client.ObjectKeyFromObject(n))
		},
	})
}

// configChanged fires for a config's creation and deletion, its spec changes, the
// reconcile annotation, and a change of its BackendReady status (a repaired credential
// resumes members that stalled on it).
func configChanged() predicate.Predicate {
	return predicate.Or(predicate.GenerationChangedPredicate{}, reconcileRequested(), predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*scimv1.ScimConfig)
			n, ok2 := e.ObjectNew.(*scimv1.ScimConfig)
			if !ok1 || !ok2 {
				return false
			}
			// Only a recovery resumes members: they wait without calling the backend while
			// it is not ready, so its failure needs no pass over them.
			return condStatus(o.Status.Conditions, scimv1.ConditionBackendReady) == metav1.ConditionFalse &&
				condStatus(n.Status.Conditions, scimv1.ConditionBackendReady) == metav1.ConditionTrue
		},
	})
}

func condStatus(conds []metav1.Condition, t string) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return c.Status
	}
	return ""
}

func setCond(conds *[]metav1.Condition, gen int64, t string, s metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: truncate(msg, 32768), ObservedGeneration: gen,
	})
}

func adoption(cfg *scimv1.ScimConfig) scimv1.AdoptionPolicy {
	if cfg.Spec.Policies.Adoption == "" {
		return scimv1.AdoptionIgnore
	}
	return cfg.Spec.Policies.Adoption
}

func resyncInterval(cfg *scimv1.ScimConfig) time.Duration {
	if cfg.Spec.ResyncInterval != nil && cfg.Spec.ResyncInterval.Duration > 0 {
		return cfg.Spec.ResyncInterval.Duration
	}
	return DefaultResyncInterval
}

// jitter spreads d by ±10% so that members of one config do not resync in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	spread := int64(d / 5)
	return d - d/10 + time.Duration(rand.Int64N(spread+1))
}

func stateWords(s backend.MemberState) string {
	if s == backend.StateInvited {
		return "an invitee"
	}
	return "a member"
}

func roleWords(role string) string {
	if role == "" {
		return ""
	}
	return " as " + role
}

func originWords(o scimv1.MemberOrigin) string {
	if o == scimv1.OriginAdopted {
		return " (adopted)"
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// countReconcile records one reconcile's outcome.
func countReconcile(controller string, res ctrl.Result, err error) {
	result := metrics.ReconcileSuccess
	switch {
	case err != nil && errors.Is(err, reconcile.TerminalError(nil)):
		result = metrics.ReconcileTerminal
	case err != nil:
		result = metrics.ReconcileError
	case res.RequeueAfter > 0:
		result = metrics.ReconcileRequeue
	}
	metrics.Reconciles.WithLabelValues(controller, result).Inc()
}

// sameUserName names another OrgMember of m's config that wants and owns the access of
// m's person, read in the cache, or "": not being deleted, active (or deactivated while
// the config keeps a deactivated member's access, keep), provisioned or adopted by SCIM
// (not Preexisting, not waiting for its first grant), not deprovisioned, with m's userName
// as the backend compares it (naming.FoldUserName: "ß" and "ss" are one SCIM userName and
// two people), and having recorded every identity m granted (status.grantedIdentities; m's
// userName when m recorded none): what is handed over is then what the other member
// already answers for, and takes away when it is renamed or removed. Anything less is
// removed with m (the other member grants its own again).
func (r *OrgMemberReconciler) sameUserName(ctx context.Context, m *scimv1.OrgMember, keep bool) (string, error) {
	var list scimv1.OrgMemberList
	if err := r.List(ctx, &list, client.InNamespace(m.Namespace),
		client.MatchingFields{index.UserName: index.Key(m.Spec.ConfigName, naming.NameKey(m.Spec.UserName))}); err != nil {
		return "", err
	}
	handedOver := m.Status.GrantedIdentities
	if len(handedOver) == 0 {
		handedOver = []string{naming.FoldUserName(m.Spec.UserName)}
	}
	for _, o := range list.Items {
		owns := o.Status.Origin == scimv1.OriginProvisioned || o.Status.Origin == scimv1.OriginAdopted
		if o.UID != m.UID && o.Spec.ConfigName == m.Spec.ConfigName && o.DeletionTimestamp.IsZero() && (o.Spec.Active || keep) && owns &&
			!o.Status.Deprovisioned && naming.FoldUserName(o.Spec.UserName) == naming.FoldUserName(m.Spec.UserName) &&
			recordsAll(o.Status.GrantedIdentities, handedOver) {
			return o.Name, nil
		}
	}
	return "", nil
}

// recordsAll tells whether every identity of want is in have (both folded).
func recordsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
