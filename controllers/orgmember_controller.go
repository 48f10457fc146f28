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
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/metrics"
)

const (
	// FinalizerDeprovision holds an OrgMember (or OrgGroup) until its access has been
	// removed from the backend as the config's deletion policy says.
	FinalizerDeprovision = "scim.operator.dev/deprovision"

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
}

// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers/finalizers,verbs=update
// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile follows the project's one shape: get, deletion branch, finalizer, deferred
// status patch that summarizes Ready, paused, then ordered steps.
func (r *OrgMemberReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	defer func() { countReconcile("orgmember", res, retErr) }()
	m := &scimv1.OrgMember{}
	if err := r.Get(ctx, req.NamespacedName, m); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	cfg, err := r.config(ctx, m.Namespace, m.Spec.ConfigName)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !m.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, m, cfg)
	}
	if !controllerutil.ContainsFinalizer(m, FinalizerDeprovision) {
		orig := m.DeepCopy()
		controllerutil.AddFinalizer(m, FinalizerDeprovision)
		if err := r.Patch(ctx, m, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
			client.FieldOwner(FieldOwnerController)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	st := &memberState{base: m.DeepCopy()}
	defer func() {
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

	switch {
	case cfg == nil:
		r.synced(m, metav1.ConditionFalse, ReasonConfigNotFound,
			fmt.Sprintf("ScimConfig %q not found in namespace %q; waiting for it", m.Spec.ConfigName, m.Namespace))
		return ctrl.Result{}, nil // the ScimConfig watch brings us back
	case !cfg.IsEnabled():
		r.synced(m, metav1.ConditionUnknown, ReasonPaused,
			fmt.Sprintf("ScimConfig %q is disabled: nothing is synced and the member is left as it is", cfg.Name))
		return ctrl.Result{}, nil // enabling the config re-enqueues its members
	case m.Status.Origin == scimv1.OriginPreexisting:
		r.preexisting(m, cfg)
		return ctrl.Result{}, nil
	}

	b, err := r.Backends.For(ctx, cfg)
	if err != nil {
		// A configuration problem of the whole config (a missing credentials Secret, an
		// unknown backend) is the config's to report (BackendReady): the member waits,
		// without an event per member, and a repaired config resumes it.
		r.synced(m, metav1.ConditionFalse, backend.ReasonOf(err),
			truncate(fmt.Sprintf("waiting for ScimConfig %q's backend: %v", cfg.Name, err), 1024))
		if backend.ClassOf(err) == backend.Permanent {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	bctx, cancel := context.WithTimeout(ctx, backendCallTimeout)
	defer cancel()
	res, err = r.sync(bctx, m, cfg, b, st)
	if err != nil || res.RequeueAfter > 0 {
		return res, err
	}
	return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
}

// memberState carries the status patch base between the deferred patch and the steps
// that record an intent before acting.
type memberState struct {
	base *scimv1.OrgMember
}

// claimOrigin records a member's origin before anything else happens, with an
// optimistic lock: a reconcile working from a stale cached copy (one that does not show
// the origin recorded a moment ago) fails here with a conflict and retries, instead of
// judging a member SCIM has just provisioned to be preexisting.
func (r *OrgMemberReconciler) claimOrigin(ctx context.Context, m *scimv1.OrgMember, st *memberState) error {
	if err := r.Status().Patch(ctx, m, client.MergeFromWithOptions(st.base, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(FieldOwnerController)); err != nil {
		return err
	}
	st.base = m.DeepCopy()
	return nil
}

// sync observes the person in the backend and makes the backend match the spec.
func (r *OrgMemberReconciler) sync(ctx context.Context, m *scimv1.OrgMember, cfg *scimv1.ScimConfig,
	b backend.Backend, st *memberState) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	// Observe first, every time: a create whose result was not recorded is found here and
	// is never repeated.
	obs, err := observeMember(ctx, b, m)
	if err != nil {
		return r.backendError(m, "observe the member", err)
	}

	if m.Status.Origin == "" {
		if obs.State != backend.StateAbsent {
			if adoption(cfg) == scimv1.AdoptionAdopt {
				m.Status.Origin = scimv1.OriginAdopted
				if err := r.claimOrigin(ctx, m, st); err != nil {
					return ctrl.Result{}, err
				}
				r.event(m, corev1.EventTypeNormal, EventAdopted, "Adopt",
					"%s was already %s of organization %s; adopted: SCIM manages them from now on",
					m.Spec.UserName, stateWords(obs.State), cfg.Spec.Organization)
			} else {
				m.Status.Origin = scimv1.OriginPreexisting
				if err := r.claimOrigin(ctx, m, st); err != nil {
					return ctrl.Result{}, err
				}
				r.record(m, obs)
				r.event(m, corev1.EventTypeNormal, EventPreexisting, "Observe",
					"%s was already %s of organization %s before SCIM; adoption is off, so SCIM never changes or removes them",
					m.Spec.UserName, stateWords(obs.State), cfg.Spec.Organization)
				r.preexisting(m, cfg)
				m.Status.LastSyncTime = &metav1.Time{Time: r.Clock.Now()}
				return ctrl.Result{}, nil
			}
		} else if m.Spec.Active {
			// Record the intent before creating: a member whose creation we started is
			// ours to remove later, and one we never started is never removed.
			m.Status.Origin = scimv1.OriginProvisioned
			m.Status.Message = "provisioning in organization " + cfg.Spec.Organization
			if err := r.claimOrigin(ctx, m, st); err != nil {
				return ctrl.Result{}, err
			}
		}
	}

	if !m.Spec.Active {
		return r.deactivate(ctx, m, cfg, b, obs)
	}

	want := backend.DesiredMember{UserName: m.Spec.UserName, Email: primaryEmail(m), Role: desiredRole(m, cfg)}
	wasDeactivated := m.Status.Phase == scimv1.PhaseDeactivated
	switch {
	case obs.State == backend.StateAbsent:
		before := m.Status.Phase
		got, err := b.EnsureMember(ctx, want)
		if err != nil {
			return r.backendError(m, "add the member", err)
		}
		obs = got
		if m.Status.Origin == "" { // a reactivated member that was never provisioned
			m.Status.Origin = scimv1.OriginProvisioned
		}
		verb, reason := "added to", EventAdded
		if obs.State == backend.StateInvited {
			verb, reason = "invited to", EventInvited
		}
		switch {
		case wasDeactivated:
			r.event(m, corev1.EventTypeNormal, EventReactivated, "Reactivate",
				"%s reactivated: %s organization %s%s", m.Spec.UserName, verb, cfg.Spec.Organization, roleWords(want.Role))
		case before == scimv1.PhaseActive || before == scimv1.PhaseInvited:
			r.event(m, corev1.EventTypeNormal, reason, "Repair",
				"%s was missing from organization %s (removed outside SCIM, or the invitation expired): %s it again%s",
				m.Spec.UserName, cfg.Spec.Organization, verb, roleWords(want.Role))
		default:
			r.event(m, corev1.EventTypeNormal, reason, "Provision",
				"%s %s organization %s%s", m.Spec.UserName, verb, cfg.Spec.Organization, roleWords(want.Role))
		}
	case obs.State == backend.StateMember && want.Role != "" && obs.Role != "" && !strings.EqualFold(obs.Role, want.Role):
		from := obs.Role
		got, err := b.EnsureMember(ctx, want)
		if err != nil {
			return r.backendError(m, "change the member's role", err)
		}
		obs = got
		r.event(m, corev1.EventTypeNormal, EventRoleChanged, "ChangeRole",
			"%s's role in organization %s changed from %s to %s", m.Spec.UserName, cfg.Spec.Organization, from, want.Role)
	case m.Status.Phase == scimv1.PhasePending && m.Status.Origin == scimv1.OriginProvisioned:
		// Our create went through but its answer was lost (we recorded the intent first):
		// found here instead of creating again.
		reason, verb := EventAdded, "added to"
		if obs.State == backend.StateInvited {
			reason, verb = EventInvited, "invited to"
		}
		r.event(m, corev1.EventTypeNormal, reason, "Provision",
			"%s %s organization %s%s", m.Spec.UserName, verb, cfg.Spec.Organization, roleWords(want.Role))
	case wasDeactivated:
		r.event(m, corev1.EventTypeNormal, EventReactivated, "Reactivate",
			"%s reactivated: still %s of organization %s", m.Spec.UserName, stateWords(obs.State), cfg.Spec.Organization)
	}

	if team := desiredTeam(m); team != "" && obs.State == backend.StateMember && obs.BackendID != "" &&
		!slices.ContainsFunc(obs.Teams, func(t string) bool { return strings.EqualFold(t, team) }) {
		if err := b.EnsureTeam(ctx, team); err != nil {
			return r.backendError(m, "create team "+team, err)
		}
		if err := b.EnsureTeamMember(ctx, team, obs.BackendID); err != nil {
			return r.backendError(m, "add the member to team "+team, err)
		}
		obs.Teams = append(obs.Teams, team)
		r.event(m, corev1.EventTypeNormal, EventTeamJoined, "JoinTeam",
			"%s added to team %s of organization %s", m.Spec.UserName, team, cfg.Spec.Organization)
	}

	r.record(m, obs)
	switch obs.State {
	case backend.StateMember:
		m.Status.Phase = scimv1.PhaseActive
		m.Status.Message = fmt.Sprintf("member of organization %s%s%s", cfg.Spec.Organization, roleWords(obs.Role), originWords(m.Status.Origin))
	case backend.StateInvited:
		m.Status.Phase = scimv1.PhaseInvited
		m.Status.Message = fmt.Sprintf("invited to organization %s%s; waiting for the person to accept%s",
			cfg.Spec.Organization, roleWords(want.Role), originWords(m.Status.Origin))
	default:
		// The backend answered success but does not show the member yet: look again soon.
		m.Status.Phase = scimv1.PhasePending
		r.synced(m, metav1.ConditionFalse, ReasonProgressing, "the backend does not show the member yet")
		log.V(1).Info("member not visible after EnsureMember", "userName", m.Spec.UserName)
		return ctrl.Result{RequeueAfter: jitter(10 * time.Second)}, nil
	}
	r.syncedNow(m)
	return ctrl.Result{}, nil
}

// deactivate applies the deactivation policy to a member with active=false.
func (r *OrgMemberReconciler) deactivate(ctx context.Context, m *scimv1.OrgMember, cfg *scimv1.ScimConfig,
	b backend.Backend, obs backend.Member) (ctrl.Result, error) {
	keep := cfg.Spec.Policies.Deactivation == scimv1.DeactivationKeep
	switch {
	case m.Status.Origin == "":
		// Never provisioned and inactive: nothing to do in the backend.
		m.Status.Message = "inactive and never provisioned: nothing to do in organization " + cfg.Spec.Organization
	case keep:
		r.record(m, obs)
		if m.Status.Phase != scimv1.PhaseDeactivated {
			r.event(m, corev1.EventTypeNormal, EventDeactivated, "Deactivate",
				"%s deactivated; access to organization %s kept (deactivation policy Keep)", m.Spec.UserName, cfg.Spec.Organization)
		}
		m.Status.Message = "deactivated; access kept in organization " + cfg.Spec.Organization + " (deactivation policy Keep)"
	default:
		if obs.State != backend.StateAbsent {
			if err := removeMember(ctx, b, m); err != nil {
				return r.backendError(m, "remove the deactivated member", err)
			}
			r.event(m, corev1.EventTypeNormal, EventDeactivated, "Deactivate",
				"%s deactivated: removed from organization %s; the OrgMember is kept so a reactivation re-adds them",
				m.Spec.UserName, cfg.Spec.Organization)
		}
		m.Status.InviteID = ""
		m.Status.Message = "deactivated: not in organization " + cfg.Spec.Organization + "; reactivation re-adds them"
	}
	m.Status.Phase = scimv1.PhaseDeactivated
	r.syncedNow(m)
	return ctrl.Result{}, nil
}

// reconcileDelete deprovisions a deleted member as the deletion policy says, then
// releases it.
func (r *OrgMemberReconciler) reconcileDelete(ctx context.Context, m *scimv1.OrgMember, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(m, FinalizerDeprovision) {
		return ctrl.Result{}, nil
	}
	base := m.DeepCopy()
	var why string
	var done func() // the event, told once the finalizer is gone (a conflict retries it all)
	switch {
	case cfg == nil:
		why = "its ScimConfig is gone: deleting a config never deprovisions anyone"
	case !cfg.IsEnabled():
		why = "its ScimConfig is disabled: disabling SCIM never deprovisions anyone"
	case m.Status.Origin == "":
		why = "it was never provisioned"
	case m.Status.Origin == scimv1.OriginPreexisting:
		why = "it existed before SCIM and adoption is off"
	case cfg.Spec.Policies.Deletion == scimv1.DeletionOrphan:
		why = "the deletion policy is Orphan"
	}
	if why != "" {
		if m.Status.Origin != "" {
			done = func() {
				r.event(m, corev1.EventTypeNormal, EventOrphaned, "Release",
					"%s deleted; access left in place because %s", m.Spec.UserName, why)
			}
		}
	} else {
		b, err := r.Backends.For(ctx, cfg)
		if err == nil {
			bctx, cancel := context.WithTimeout(ctx, backendCallTimeout)
			err = removeMember(bctx, b, m)
			cancel()
		}
		if err != nil {
			res, rerr := r.backendError(m, "remove the deleted member", err)
			r.summarize(m)
			if perr := r.Status().Patch(ctx, m, client.MergeFrom(base), client.FieldOwner(FieldOwnerController)); perr != nil &&
				!apierrors.IsNotFound(perr) {
				rerr = errors.Join(rerr, perr)
			}
			return res, rerr
		}
		m.Status.Phase = scimv1.PhaseRemoved
		m.Status.InviteID = ""
		m.Status.Message = "removed from organization " + cfg.Spec.Organization
		r.syncedNow(m)
		r.summarize(m)
		if err := r.Status().Patch(ctx, m, client.MergeFrom(base), client.FieldOwner(FieldOwnerController)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		done = func() {
			r.event(m, corev1.EventTypeNormal, EventRemoved, "Deprovision",
				"%s deleted: removed from organization %s", m.Spec.UserName, cfg.Spec.Organization)
		}
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

// observeMember looks the person up under their userName and, on a backend that invites
// by email (backend.EmailInviter: Docker Hub invites the email of a person whose userName
// is not one), under their email too. Looking under the userName alone would miss that
// invitation: every resync would take the person for missing ("invited it again") and
// deactivation or deletion would leave the invitation open for them to accept.
func observeMember(ctx context.Context, b backend.Backend, m *scimv1.OrgMember) (backend.Member, error) {
	if ei, ok := b.(backend.EmailInviter); ok {
		return ei.ObserveMemberWithEmail(ctx, m.Spec.UserName, primaryEmail(m))
	}
	return b.ObserveMember(ctx, m.Spec.UserName)
}

// removeMember removes the person from the backend, under their email too where
// observeMember looks there.
func removeMember(ctx context.Context, b backend.Backend, m *scimv1.OrgMember) error {
	if ei, ok := b.(backend.EmailInviter); ok {
		return ei.EnsureMemberAbsentWithEmail(ctx, m.Spec.UserName, primaryEmail(m))
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

// backendError turns a classified backend failure into conditions, phase and result:
// Permanent stalls (TerminalError, Failed, an event); RateLimited waits for the hint;
// Transient returns the error for exponential backoff.
func (r *OrgMemberReconciler) backendError(m *scimv1.OrgMember, what string, err error) (ctrl.Result, error) {
	reason := backend.ReasonOf(err)
	msg := fmt.Sprintf("could not %s: %v", what, err)
	switch backend.ClassOf(err) {
	case backend.Permanent:
		msg = truncate(msg, 1024)
		if m.Status.Phase != scimv1.PhaseFailed || m.Status.Message != msg {
			// one event per failure, not one per retry of the same failure
			r.event(m, corev1.EventTypeWarning, EventFailed, "Sync", "%s", msg)
		}
		m.Status.Phase = scimv1.PhaseFailed
		m.Status.Message = msg
		r.synced(m, metav1.ConditionFalse, reason, m.Status.Message)
		return ctrl.Result{}, reconcile.TerminalError(err)
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

func (r *OrgMemberReconciler) synced(m *scimv1.OrgMember, s metav1.ConditionStatus, reason, msg string) {
	setCond(&m.Status.Conditions, m.Generation, scimv1.ConditionSynced, s, reason, msg)
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

// liveConfig returns a member's or group's ScimConfig, or nil when it is gone or being
// deleted (then nothing is deprovisioned).
func liveConfig(ctx context.Context, c client.Reader, ns, name string) (*scimv1.ScimConfig, error) {
	cfg := &scimv1.ScimConfig{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if !cfg.DeletionTimestamp.IsZero() {
		return nil, nil
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
	return ctrl.NewControllerManagedBy(mgr).
		For(&scimv1.OrgMember{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, reconcileRequested()))).
		Watches(&scimv1.ScimConfig{}, handler.EnqueueRequestsFromMapFunc(r.membersOfConfig),
			builder.WithPredicates(configChanged())).
		Named("orgmember").
		Complete(r)
}

func (r *OrgMemberReconciler) membersOfConfig(ctx context.Context, o client.Object) []reconcile.Request {
	var list scimv1.OrgMemberList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{index.Config: o.GetName()}); err != nil {
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
			return condStatus(o.Status.Conditions, scimv1.ConditionBackendReady) !=
				condStatus(n.Status.Conditions, scimv1.ConditionBackendReady)
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

// desiredRole is the member's docker role, else the config's default role (Docker Hub),
// else empty (the backend's default).
func desiredRole(m *scimv1.OrgMember, cfg *scimv1.ScimConfig) string {
	if m.Spec.Docker != nil && m.Spec.Docker.Role != "" {
		return strings.ToLower(m.Spec.Docker.Role)
	}
	if dh := cfg.Spec.Backend.DockerHub; dh != nil && dh.DefaultRole != "" {
		return strings.ToLower(dh.DefaultRole)
	}
	return ""
}

func desiredTeam(m *scimv1.OrgMember) string {
	if m.Spec.Docker != nil {
		return strings.TrimSpace(m.Spec.Docker.Team)
	}
	return ""
}

// primaryEmail is the primary email, else the first one, else the userName when it is an
// email.
func primaryEmail(m *scimv1.OrgMember) string {
	for _, e := range m.Spec.Emails {
		if e.Primary {
			return e.Value
		}
	}
	if len(m.Spec.Emails) > 0 {
		return m.Spec.Emails[0].Value
	}
	if strings.Contains(m.Spec.UserName, "@") {
		return m.Spec.UserName
	}
	return ""
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
