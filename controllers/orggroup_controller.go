package controllers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
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
)

// ReasonTeamConflict: another, older OrgGroup of the config maps to the same team.
const ReasonTeamConflict = "TeamConflict"

// Event reasons of OrgGroups.
const (
	EventTeamCreated       = "TeamCreated"
	EventTeamDeleted       = "TeamDeleted"
	EventTeamMemberAdded   = "TeamMemberAdded"
	EventTeamMemberRemoved = "TeamMemberRemoved"
)

// OrgGroupReconciler makes a backend team match each OrgGroup: the team exists, and its
// members are the group's active OrgMembers (those labeled
// group.scim.operator.dev/<group name>).
//
// Team name: a displayName "org:team" names the team after the first colon, whatever the
// org part says (the ScimConfig's organization is the one used, as with the dockerOrg
// hint); a displayName without a colon is the team name itself.
//
// Only members SCIM manages are ever removed from a team: people in the team who are not
// OrgMembers of the config, or who existed before SCIM with adoption off (Preexisting), are
// left alone, and so are deactivated members whose policy keeps their access.
type OrgGroupReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Backends gives the backend of a group's ScimConfig.
	Backends backend.Provider
	Clock    clock.PassiveClock
	// Rechecks asks the ScimConfig controller to check a config's backend now.
	Rechecks *Rechecks
}

// +kubebuilder:rbac:groups=scim.operator.dev,resources=orggroups,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orggroups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orggroups/finalizers,verbs=update
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile follows the project's one shape.
func (r *OrgGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	defer func() { countReconcile("orggroup", res, retErr) }()
	g := &scimv1.OrgGroup{}
	if err := r.Get(ctx, req.NamespacedName, g); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	cfg, err := liveConfig(ctx, r.Client, g.Namespace, g.Spec.ConfigName)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !g.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, g, cfg)
	}
	if !controllerutil.ContainsFinalizer(g, FinalizerDeprovision) {
		orig := g.DeepCopy()
		controllerutil.AddFinalizer(g, FinalizerDeprovision)
		if err := r.Patch(ctx, g, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
			client.FieldOwner(FieldOwnerController)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	base := g.DeepCopy()
	defer func() {
		r.summarize(g)
		if err := r.Status().Patch(ctx, g, client.MergeFrom(base), client.FieldOwner(FieldOwnerController)); err != nil &&
			!apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, err)
		}
	}()
	if meta.FindStatusCondition(g.Status.Conditions, scimv1.ConditionReady) == nil {
		setCond(&g.Status.Conditions, g.Generation, scimv1.ConditionReady, metav1.ConditionUnknown, ReasonProgressing, "reconciling")
	}
	members, err := r.groupMembers(ctx, g)
	if err != nil {
		return ctrl.Result{}, err
	}
	g.Status.MemberCount = int32(len(members))

	switch {
	case cfg == nil:
		r.synced(g, metav1.ConditionFalse, ReasonConfigNotFound,
			fmt.Sprintf("ScimConfig %q not found in namespace %q; waiting for it", g.Spec.ConfigName, g.Namespace))
		return ctrl.Result{}, nil
	case !cfg.IsEnabled():
		r.synced(g, metav1.ConditionUnknown, ReasonPaused,
			fmt.Sprintf("ScimConfig %q is disabled: the team is left as it is", cfg.Name))
		return ctrl.Result{}, nil
	}
	if backendNotReady(cfg) {
		c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionBackendReady)
		r.synced(g, metav1.ConditionFalse, ReasonBackendNotReady,
			truncate(fmt.Sprintf("waiting for ScimConfig %q's backend: %s", cfg.Name, c.Message), 1024))
		return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
	}
	b, err := r.Backends.For(ctx, cfg)
	if err != nil {
		return r.backendError(ctx, g, cfg, "connect to the backend", err)
	}
	bctx, cancel := context.WithTimeout(ctx, backendCallTimeout)
	defer cancel()
	if team := TeamName(g.Spec.DisplayName); team != g.Status.Team {
		// A renamed group syncs another team. A backend that labels its grants moves the
		// group's own grants to the new name when it ensures them; elsewhere the former
		// team is cleaned up first, so a rename never leaves it behind.
		if _, labelled := b.(backend.OwnerLedger); !labelled && g.Status.Team != "" {
			if err := r.leaveTeam(bctx, g, cfg, b, g.Status.Team); err != nil {
				return r.backendError(ctx, g, cfg, "clean up former team "+g.Status.Team, err)
			}
		}
		g.Status.Team, g.Status.TeamCreated = team, false
	}
	other, err := r.teamOwner(ctx, g)
	if err != nil {
		return ctrl.Result{}, err
	}
	if other != nil {
		// Two displayNames ("a:eng", "b:eng", "eng") can name one team: each group would
		// take the other's members out and deleting either would delete the team. The
		// older group keeps the team; this one never touches it until the other is gone
		// (its deletion re-enqueues this one) or this one is renamed.
		msg := fmt.Sprintf("team %s is already synced by OrgGroup %s (displayName %q), created earlier; "+
			"this group leaves the team alone until that group is deleted or one of them is renamed",
			g.Status.Team, other.Name, other.Spec.DisplayName)
		if c := meta.FindStatusCondition(g.Status.Conditions, scimv1.ConditionSynced); c == nil || c.Message != msg {
			r.event(g, corev1.EventTypeWarning, EventFailed, "Sync", "%s", msg)
		}
		r.synced(g, metav1.ConditionFalse, ReasonTeamConflict, msg)
		return ctrl.Result{}, reconcile.TerminalError(errors.New(msg))
	}
	if res, err := r.sync(bctx, g, cfg, b, members); err != nil || res.RequeueAfter > 0 {
		return res, err
	}
	return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
}

// sync creates the team when missing and makes its members match the group.
func (r *OrgGroupReconciler) sync(ctx context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig,
	b backend.Backend, members []scimv1.OrgMember) (ctrl.Result, error) {
	team := g.Status.Team
	ol, labelled := b.(backend.OwnerLedger)
	var t *backend.Team
	var err error
	if labelled {
		t, err = ol.ObserveTeamOwned(ctx, groupOwner(g), team)
	} else {
		t, err = b.ObserveTeam(ctx, team)
	}
	if err != nil {
		return r.backendError(ctx, g, cfg, "observe team "+team, err)
	}
	if t == nil {
		// Recorded before creating, written by the deferred status patch: the team is
		// ours to delete with the group. (Were that patch lost, the team would be left
		// in place on deletion, never a team SCIM did not create deleted.)
		g.Status.TeamCreated = true
		if labelled {
			err = ol.EnsureTeamOwned(ctx, groupOwner(g), team)
		} else {
			err = b.EnsureTeam(ctx, team)
		}
		if err != nil {
			return r.backendError(ctx, g, cfg, "create team "+team, err)
		}
		r.event(g, corev1.EventTypeNormal, EventTeamCreated, "CreateTeam",
			"created team %s in organization %s", team, cfg.Spec.Organization)
		t = &backend.Team{Name: team}
	}
	in := map[string]bool{}
	for _, id := range t.Members {
		in[strings.ToLower(id)] = true
	}

	// Who should be in the team: the group's active members the backend knows.
	want := map[string]string{} // lower(backendID) -> backendID
	for i := range members {
		m := &members[i]
		if m.Spec.Active && m.Status.Phase == scimv1.PhaseActive && m.Status.BackendID != "" &&
			m.Status.Origin != scimv1.OriginPreexisting {
			want[strings.ToLower(m.Status.BackendID)] = m.Status.BackendID
		}
	}
	var added, removed []string
	for _, id := range sortedValues(want) {
		if in[strings.ToLower(id)] {
			continue
		}
		if err := b.EnsureTeamMember(ctx, team, id); err != nil {
			return r.backendError(ctx, g, cfg, fmt.Sprintf("add %s to team %s", id, team), err)
		}
		added = append(added, id)
	}

	// Who may be taken out: members of the team that SCIM manages and that are not wanted.
	removable, hinted, err := r.managedIDs(ctx, g, cfg, team)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, id := range t.Members {
		low := strings.ToLower(id)
		if _, ok := want[low]; ok || hinted[low] || !removable[low] {
			continue
		}
		if err := b.EnsureTeamMemberAbsent(ctx, team, id); err != nil {
			return r.backendError(ctx, g, cfg, fmt.Sprintf("remove %s from team %s", id, team), err)
		}
		removed = append(removed, id)
	}
	if len(added) > 0 {
		r.event(g, corev1.EventTypeNormal, EventTeamMemberAdded, "AddTeamMembers",
			"added %d member(s) to team %s: %s", len(added), team, listWords(added))
	}
	if len(removed) > 0 {
		r.event(g, corev1.EventTypeNormal, EventTeamMemberRemoved, "RemoveTeamMembers",
			"removed %d member(s) from team %s: %s", len(removed), team, listWords(removed))
	}
	g.Status.LastSyncTime = &metav1.Time{Time: r.Clock.Now()}
	r.synced(g, metav1.ConditionTrue, ReasonSynced,
		fmt.Sprintf("team %s of organization %s has the group's %d active member(s)", team, cfg.Spec.Organization, len(want)))
	return ctrl.Result{}, nil
}

// groupMembers lists the config's OrgMembers labeled as members of the group, from the
// cache through the index.Group index.
func (r *OrgGroupReconciler) groupMembers(ctx context.Context, g *scimv1.OrgGroup) ([]scimv1.OrgMember, error) {
	var list scimv1.OrgMemberList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace), client.MatchingFields{index.Group: g.Name}); err != nil {
		return nil, err
	}
	out := list.Items[:0]
	for _, m := range list.Items {
		if m.Spec.ConfigName == g.Spec.ConfigName && m.DeletionTimestamp.IsZero() {
			out = append(out, m)
		}
	}
	return out, nil
}

// managedIDs are the backend identities of the config's members that SCIM may take out of
// a team: provisioned or adopted, and not deactivated under the Keep policy. hinted are
// those of them, active, whose spec.docker.team names the team: the OrgMember controller
// puts them in it, so the group keeps them there as if they were its own members (else
// the two controllers would add and remove them in turn).
func (r *OrgGroupReconciler) managedIDs(ctx context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig,
	team string) (removable, hinted map[string]bool, err error) {
	var list scimv1.OrgMemberList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace), client.MatchingFields{index.Config: cfg.Name}); err != nil {
		return nil, nil, err
	}
	removable, hinted = map[string]bool{}, map[string]bool{}
	for _, m := range list.Items {
		if m.Status.BackendID == "" || m.Status.Origin == "" || m.Status.Origin == scimv1.OriginPreexisting {
			continue
		}
		if !m.Spec.Active && cfg.Spec.Policies.Deactivation == scimv1.DeactivationKeep {
			continue
		}
		id := strings.ToLower(m.Status.BackendID)
		removable[id] = true
		if m.Spec.Active && m.DeletionTimestamp.IsZero() && strings.EqualFold(TeamName(desiredTeam(&m)), team) {
			hinted[id] = true
		}
	}
	return removable, hinted, nil
}

// teamOwner returns another OrgGroup of the same config whose team is g's team
// (case-insensitively) and that was created before g (creationTimestamp, then name), or
// nil when g owns its team. A group being deleted still counts until it is gone.
func (r *OrgGroupReconciler) teamOwner(ctx context.Context, g *scimv1.OrgGroup) (*scimv1.OrgGroup, error) {
	var list scimv1.OrgGroupList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace), client.MatchingFields{index.Config: g.Spec.ConfigName}); err != nil {
		return nil, err
	}
	team := TeamName(g.Spec.DisplayName)
	var owner *scimv1.OrgGroup
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == g.Name || o.Spec.ConfigName != g.Spec.ConfigName || !strings.EqualFold(TeamName(o.Spec.DisplayName), team) {
			continue
		}
		if olderGroup(o, g) && (owner == nil || olderGroup(o, owner)) {
			owner = o
		}
	}
	return owner, nil
}

// sharesTeam reports whether another live OrgGroup of the config maps to g's team: g's
// deletion then leaves the team to it.
func (r *OrgGroupReconciler) sharesTeam(ctx context.Context, g *scimv1.OrgGroup) (bool, error) {
	return r.sharesTeamName(ctx, g, g.Status.Team)
}

// sharesTeamName reports whether another live OrgGroup of the config maps to team.
func (r *OrgGroupReconciler) sharesTeamName(ctx context.Context, g *scimv1.OrgGroup, team string) (bool, error) {
	var list scimv1.OrgGroupList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace), client.MatchingFields{index.Config: g.Spec.ConfigName}); err != nil {
		return false, err
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name != g.Name && o.Spec.ConfigName == g.Spec.ConfigName && o.DeletionTimestamp.IsZero() &&
			strings.EqualFold(TeamName(o.Spec.DisplayName), team) {
			return true, nil
		}
	}
	return false, nil
}

// olderGroup orders groups by creationTimestamp, then name.
func olderGroup(a, b *scimv1.OrgGroup) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// groupsOfSameTeam maps a deleted OrgGroup to the other groups of its config with the same
// team: one that waited in TeamConflict takes the team over.
func (r *OrgGroupReconciler) groupsOfSameTeam(ctx context.Context, o client.Object) []reconcile.Request {
	g, ok := o.(*scimv1.OrgGroup)
	if !ok {
		return nil
	}
	var list scimv1.OrgGroupList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace), client.MatchingFields{index.Config: g.Spec.ConfigName}); err != nil {
		logf.FromContext(ctx).Error(err, "list groups of config", "config", g.Spec.ConfigName)
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Name != g.Name && strings.EqualFold(TeamName(list.Items[i].Spec.DisplayName), TeamName(g.Spec.DisplayName)) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// groupOwner is the backend owner of a group's grants.
func groupOwner(g *scimv1.OrgGroup) backend.Owner {
	return backend.Owner{Kind: "OrgGroup", UID: string(g.UID)}
}

// leaveTeam takes the group out of a team it no longer maps to (a rename): the team is
// deleted when SCIM created it for this group and no other group maps to it, else the
// members SCIM manages for this group are taken out of it.
func (r *OrgGroupReconciler) leaveTeam(ctx context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig,
	b backend.Backend, team string) error {
	shared, err := r.sharesTeamName(ctx, g, team)
	if err != nil || shared {
		return err
	}
	if g.Status.TeamCreated {
		if err := b.EnsureTeamAbsent(ctx, team); err != nil {
			return err
		}
		r.event(g, corev1.EventTypeNormal, EventTeamDeleted, "DeleteTeam",
			"group renamed: former team %s removed from organization %s", team, cfg.Spec.Organization)
		return nil
	}
	t, err := b.ObserveTeam(ctx, team)
	if err != nil || t == nil {
		return err
	}
	removable, hinted, err := r.managedIDs(ctx, g, cfg, team)
	if err != nil {
		return err
	}
	for _, id := range t.Members {
		low := strings.ToLower(id)
		if hinted[low] || !removable[low] {
			continue
		}
		if err := b.EnsureTeamMemberAbsent(ctx, team, id); err != nil {
			return err
		}
	}
	return nil
}

// reconcileDelete applies the deletion policy to the group's grants, unless the config is
// gone (its own deletion decided) or another group maps to the same team (a group in
// TeamConflict never owned it; an owner hands it over to the group that waited). On a
// backend that labels its grants the group's own grants are removed (Remove) or orphaned
// (Orphan, or a disabled config); elsewhere only a team SCIM created is deleted.
func (r *OrgGroupReconciler) reconcileDelete(ctx context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(g, FinalizerDeprovision) {
		return ctrl.Result{}, nil
	}
	var done func()
	if cfg != nil {
		b, err := r.Backends.For(ctx, cfg)
		if err == nil {
			bctx, cancel := context.WithTimeout(ctx, backendCallTimeout)
			done, err = r.deprovision(bctx, g, cfg, b)
			cancel()
		}
		if err != nil {
			base := g.DeepCopy()
			res, rerr := r.backendError(ctx, g, cfg, "apply the deletion policy to team "+g.Status.Team, err)
			r.summarize(g)
			if perr := r.Status().Patch(ctx, g, client.MergeFrom(base), client.FieldOwner(FieldOwnerController)); perr != nil &&
				!apierrors.IsNotFound(perr) {
				rerr = errors.Join(rerr, perr)
			}
			return res, rerr
		}
	}
	orig := g.DeepCopy()
	controllerutil.RemoveFinalizer(g, FinalizerDeprovision)
	if err := r.Patch(ctx, g, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
		client.FieldOwner(FieldOwnerController)); err != nil {
		// a conflict retries the whole (idempotent) deletion; the event waits for success
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if done != nil {
		done()
	}
	return ctrl.Result{}, nil
}

// deprovision applies the deletion policy of a live config to a deleted group, and
// returns the event to tell once the group is released.
func (r *OrgGroupReconciler) deprovision(ctx context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig,
	b backend.Backend) (func(), error) {
	remove := cfg.IsEnabled() && cfg.Spec.Policies.Deletion != scimv1.DeletionOrphan
	if ol, ok := b.(backend.OwnerLedger); ok {
		if !remove {
			return nil, ol.OrphanOwner(ctx, groupOwner(g), "Orphaned")
		}
		if err := ol.EnsureOwnerAbsent(ctx, groupOwner(g), g.Status.Team); err != nil {
			return nil, err
		}
		return func() {
			r.event(g, corev1.EventTypeNormal, EventTeamDeleted, "DeleteTeam",
				"group deleted: group %s's access removed from organization %s", g.Status.Team, cfg.Spec.Organization)
		}, nil
	}
	// Only a team SCIM created is deleted: a team that existed before SCIM (or that this
	// group took over) is left in place.
	if !remove || g.Status.Team == "" || !g.Status.TeamCreated {
		return nil, nil
	}
	if shared, err := r.sharesTeam(ctx, g); err != nil || shared {
		return nil, err
	}
	if err := b.EnsureTeamAbsent(ctx, g.Status.Team); err != nil {
		return nil, err
	}
	return func() {
		r.event(g, corev1.EventTypeNormal, EventTeamDeleted, "DeleteTeam",
			"group deleted: team %s removed from organization %s", g.Status.Team, cfg.Spec.Organization)
	}, nil
}

func (r *OrgGroupReconciler) backendError(ctx context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig, what string, err error) (ctrl.Result, error) {
	reason := backend.ReasonOf(err)
	msg := truncate(fmt.Sprintf("could not %s: %v", what, err), 1024)
	if backend.ConfigWide(err) {
		if r.Rechecks != nil {
			r.Rechecks.Request(ctx, cfg)
		}
		r.synced(g, metav1.ConditionFalse, ReasonBackendNotReady, truncate(msg+"; waiting for the backend", 1024))
		if backend.ClassOf(err) == backend.Permanent {
			return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
		}
		return ctrl.Result{}, err
	}
	switch backend.ClassOf(err) {
	case backend.Permanent:
		if c := meta.FindStatusCondition(g.Status.Conditions, scimv1.ConditionSynced); c == nil || c.Message != msg {
			// one event per failure, not one per retry of the same failure
			r.event(g, corev1.EventTypeWarning, EventFailed, "Sync", "%s", msg)
		}
		r.synced(g, metav1.ConditionFalse, reason, msg)
		// retried on the resync interval: a backend repaired by hand is noticed
		return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
	case backend.RateLimited:
		wait, _ := backend.RetryAfterOf(err)
		if wait <= 0 {
			wait = defaultRateLimitWait
		}
		r.synced(g, metav1.ConditionFalse, ReasonRateLimited,
			fmt.Sprintf("rate limited while trying to %s; retrying in %s", what, wait.Round(time.Second)))
		return ctrl.Result{RequeueAfter: wait + time.Duration(rand.Int64N(int64(wait/5)+1))}, nil
	default:
		r.synced(g, metav1.ConditionFalse, reason, msg+"; retrying")
		return ctrl.Result{}, err
	}
}

func (r *OrgGroupReconciler) synced(g *scimv1.OrgGroup, s metav1.ConditionStatus, reason, msg string) {
	setCond(&g.Status.Conditions, g.Generation, scimv1.ConditionSynced, s, reason, msg)
}

func (r *OrgGroupReconciler) summarize(g *scimv1.OrgGroup) {
	g.Status.ObservedGeneration = g.Generation
	s := meta.FindStatusCondition(g.Status.Conditions, scimv1.ConditionSynced)
	if s == nil {
		return
	}
	reason := s.Reason
	if s.Status == metav1.ConditionTrue {
		reason = "TeamSynced"
	}
	setCond(&g.Status.Conditions, g.Generation, scimv1.ConditionReady, s.Status, reason, s.Message)
}

func (r *OrgGroupReconciler) event(g *scimv1.OrgGroup, typ, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(g, nil, typ, reason, action, note, args...)
	}
}

// TeamName is the backend team of a SCIM group displayName: the part after the first
// colon of "org:team", else the whole name.
func TeamName(displayName string) string {
	name := strings.TrimSpace(displayName)
	if _, team, ok := strings.Cut(name, ":"); ok && strings.TrimSpace(team) != "" {
		return strings.TrimSpace(team)
	}
	return name
}

// SetupWithManager watches OrgGroups (spec changes, deletion, the reconcile annotation),
// OrgMembers mapped to their groups through their group labels (old and new, so leaving a
// group counts), and ScimConfigs mapped to their groups.
func (r *OrgGroupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&scimv1.OrgGroup{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, reconcileRequested()))).
		Watches(&scimv1.OrgMember{}, memberGroupsHandler{}).
		Watches(&scimv1.OrgGroup{}, handler.EnqueueRequestsFromMapFunc(r.groupsOfSameTeam),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc:  func(event.CreateEvent) bool { return false },
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Watches(&scimv1.ScimConfig{}, handler.EnqueueRequestsFromMapFunc(r.groupsOfConfig),
			builder.WithPredicates(configChanged())).
		Named("orggroup").
		Complete(r)
}

func (r *OrgGroupReconciler) groupsOfConfig(ctx context.Context, o client.Object) []reconcile.Request {
	var list scimv1.OrgGroupList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{index.Config: o.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "list groups of config", "config", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// memberGroupsHandler enqueues the groups an OrgMember is in (before and after an update)
// when its group labels, activity, phase or backend identity change.
type memberGroupsHandler struct{}

type groupQueue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func enqueueGroups(ns string, labels map[string]string, q groupQueue) {
	for _, g := range index.GroupsOf(labels) {
		q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: g}})
	}
}

func (memberGroupsHandler) Create(_ context.Context, e event.TypedCreateEvent[client.Object], q groupQueue) {
	enqueueGroups(e.Object.GetNamespace(), e.Object.GetLabels(), q)
}

func (memberGroupsHandler) Update(_ context.Context, e event.TypedUpdateEvent[client.Object], q groupQueue) {
	o, ok1 := e.ObjectOld.(*scimv1.OrgMember)
	n, ok2 := e.ObjectNew.(*scimv1.OrgMember)
	if !ok1 || !ok2 {
		return
	}
	if equalGroupLabels(o.Labels, n.Labels) && o.Spec.Active == n.Spec.Active && o.Status.Phase == n.Status.Phase &&
		o.Status.BackendID == n.Status.BackendID && o.Status.Origin == n.Status.Origin {
		return
	}
	enqueueGroups(o.Namespace, o.Labels, q)
	enqueueGroups(n.Namespace, n.Labels, q)
}

func (memberGroupsHandler) Delete(_ context.Context, e event.TypedDeleteEvent[client.Object], q groupQueue) {
	enqueueGroups(e.Object.GetNamespace(), e.Object.GetLabels(), q)
}

func (memberGroupsHandler) Generic(_ context.Context, e event.TypedGenericEvent[client.Object], q groupQueue) {
	enqueueGroups(e.Object.GetNamespace(), e.Object.GetLabels(), q)
}

func equalGroupLabels(a, b map[string]string) bool {
	ga, gb := index.GroupsOf(a), index.GroupsOf(b)
	if len(ga) != len(gb) {
		return false
	}
	sort.Strings(ga)
	sort.Strings(gb)
	for i := range ga {
		if ga[i] != gb[i] {
			return false
		}
	}
	return true
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// listWords lists up to ten names.
func listWords(names []string) string {
	if len(names) <= 10 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
}
