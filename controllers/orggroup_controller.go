package controllers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
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
	"github.com/scim-operator/scim-operator/internal/plan"
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
// left alone, and so are deactivated members whose policy keeps their access, and members
// whose own reconcile has not concluded yet (Pending: an adopted person keeps the team they
// had until then).
type OrgGroupReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	// Backends gives the backend of a group's ScimConfig.
	Backends backend.Provider
	Clock    clock.PassiveClock
	// Rechecks asks the ScimConfig controller to check a config's backend now.
	Rechecks *Rechecks
	// Drift, when set, brings the groups a drift pass found different from their teams;
	// on a backend whose pass judges groups (DriftQueue.groupsCovered) a synced group is
	// then not requeued every interval.
	Drift *DriftQueue
	// Slots share the workers out between ScimConfigs (nil: no limit).
	Slots *ConfigSlots

	// refused are the groups whose organization's request budget refused a call, until
	// the budget has room again.
	refused refusals
}

// refusals are groups whose reconcile the organization's request budget refused (the
// backend answered RateLimited without calling), each until when and at which generations
// of the group and its config. Its members' changes enqueue a group, and an adoption
// changes thousands of members a minute; a refused group that reconciled on each of them
// listed its members and was refused again every time (the bench's Docker Hub
// organization of 10,000 in ten groups: half the manager's CPU while it was adopted).
// A change of the group's or its config's spec goes ahead at once, as does a new value of
// the group's reconcile annotation (kubectl scim resync asks for a reconcile now).
type refusals struct {
	mu sync.Mutex
	m  map[types.NamespacedName]refusal
}

type refusal struct {
	until       time.Time
	gen, cfgGen int64
	asked       string // the group's reconcile annotation when it was refused
}

func (rs *refusals) record(key types.NamespacedName, until time.Time, gen, cfgGen int64, asked string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[types.NamespacedName]refusal{}
	}
	rs.m[key] = refusal{until: until, gen: gen, cfgGen: cfgGen, asked: asked}
}

// wait is how long a reconcile of the group at these generations, with this reconcile
// annotation, still waits for the budget (0: go ahead).
func (rs *refusals) wait(key types.NamespacedName, gen, cfgGen int64, asked string, now time.Time) time.Duration {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[key]
	if !ok {
		return 0
	}
	if !now.Before(r.until) || r.gen != gen || r.cfgGen != cfgGen || r.asked != asked {
		delete(rs.m, key)
		return 0
	}
	return r.until.Sub(now)
}

func (rs *refusals) forget(key types.NamespacedName) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.m, key)
}

// +kubebuilder:rbac:groups=scim.operator.dev,resources=orggroups,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orggroups/status,verbs=patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile follows the project's one shape: get, finalizer, deferred status patch that
// summarizes Ready, then observe -> plan (internal/plan) -> execute.
func (r *OrgGroupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	defer func() { countReconcile("orggroup", res, retErr) }()
	g := &scimv1.OrgGroup{}
	var deleting bool
	// read reads the group, and tells whether nothing is left to do (gone, or deleted and
	// released)
	read := func() (bool, error) {
		if err := r.Get(ctx, req.NamespacedName, g); err != nil {
			return true, client.IgnoreNotFound(err)
		}
		deleting = !g.DeletionTimestamp.IsZero()
		return deleting && !controllerutil.ContainsFinalizer(g, FinalizerDeprovision), nil
	}
	if done, err := read(); done || err != nil {
		if done && err == nil {
			r.refused.forget(req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	cfg, err := liveConfig(ctx, r.Client, g.Namespace, g.Spec.ConfigName)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cfg != nil && !deleting {
		if wait := r.refused.wait(req.NamespacedName, g.Generation, cfg.Generation,
			g.Annotations[scimv1.AnnotationReconcile], r.Clock.Now()); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil // the budget would refuse it again (refusals)
		}
	}
	if cfg != nil {
		// As the OrgMember controller's: one tenant's groups stalled on a slow backend
		// must not occupy every worker, and a group's deletion that takes its team's grant
		// away may take the spare.
		release, stop, res, err := r.Slots.admit(ctx, cfg, revokesTeam(g), read)
		if stop {
			return res, err
		}
		defer release()
	}
	if !deleting && !controllerutil.ContainsFinalizer(g, FinalizerDeprovision) {
		orig := g.DeepCopy()
		controllerutil.AddFinalizer(g, FinalizerDeprovision)
		if err := r.Patch(ctx, g, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
			client.FieldOwner(FieldOwnerController)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}

	base := g.DeepCopy()
	skipStatus := false
	defer func() {
		if skipStatus {
			return
		}
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

	in := plan.GroupInput{Config: plan.ConfigStateOf(cfg), Deleting: deleting, Team: TeamName(g.Spec.DisplayName),
		TeamCreated: g.Status.TeamCreated}
	if deleting {
		in.Team = g.Status.Team
	}
	var b backend.Backend
	if cfg != nil {
		in.Policies = cfg.Spec.Policies
		if in.Config == plan.ConfigEnabled || in.Config == plan.ConfigNotReady || deleting {
			if b, err = r.Backends.For(ctx, cfg); err != nil {
				return r.backendError(ctx, g, cfg, "connect to the backend", err)
			}
			_, in.Labelled = b.(backend.OwnerLedger)
			_, in.NoUserTeams = b.(backend.NoUserTeams)
		}
	}
	key := plan.TeamKeyOf(b) // nil without a backend: nothing is done at one then
	if !deleting {
		in.Team = key.Name(in.Team) // as the backend names it: status.team and messages say so
		in.Former = plan.FormerTeam(g.Status.Team, in.Team, key)
	}
	var owner *scimv1.OrgGroup
	if deleting {
		if in.Shared, err = r.sharesTeamName(ctx, g, g.Status.Team, key); err != nil {
			return ctrl.Result{}, err
		}
	} else if in.Config == plan.ConfigEnabled && !in.Labelled {
		// Where grants are labelled by owner each group holds its own grant to the team,
		// so two groups of one team never undo each other; elsewhere the oldest syncs it.
		if owner, err = r.teamOwner(ctx, g, key); err != nil {
			return ctrl.Result{}, err
		}
		in.Conflict = owner != nil
	}
	bctx, cancel := context.WithTimeout(backend.NoWait(ctx), backendCallTimeout) // RateLimited requeues, never sleeps in a worker
	defer cancel()
	bctx = backend.WithGuard(bctx, configEnabled(ctx, r.Client, cfg))
	if plan.NeedsGroupObservation(in) {
		viewed := false
		if !deleting && !in.Labelled {
			// the config's latest teams view with this manager's writes since: a member's
			// change costs its own call, not a listing of the whole team (DriftQueue.teamView)
			in.Observed, viewed = r.Drift.teamView(cfg, b, in.Team, r.Clock.Now())
		}
		if !viewed {
			if in.Observed, err = r.observeTeam(bctx, g, b, in.Team, in.Labelled); err != nil {
				return r.backendError(ctx, g, cfg, "observe team "+in.Team, err)
			}
		}
		// who the team wants and who SCIM may take out of it, each member judged from one
		// read of it (managedIDs)
		var listed []string
		if in.Observed != nil {
			listed = in.Observed.Members
		}
		if in.Want, in.Removable, in.Hinted, err = r.managedIDs(ctx, g, cfg, in.Team, key, members, listed); err != nil {
			return ctrl.Result{}, err
		}
	}

	p := plan.Group(in)
	if p.Has(plan.GroupEnsureTeam) || p.Has(plan.GroupAdd) {
		if err := holdConfig(ctx, r.Client, cfg); err != nil {
			return ctrl.Result{}, err
		}
	}
	if p.Wait != plan.WaitNone {
		return r.wait(g, cfg, p.Wait)
	}
	if deleting {
		res, err := r.executeDeletion(bctx, ctx, g, cfg, b, p)
		skipStatus = err == nil
		return res, err
	}
	return r.execute(bctx, ctx, g, cfg, b, in, p, owner, base, &skipStatus)
}

// wait describes a group that cannot be synced now.
func (r *OrgGroupReconciler) wait(g *scimv1.OrgGroup, cfg *scimv1.ScimConfig, w plan.Wait) (ctrl.Result, error) {
	switch w {
	case plan.WaitConfigGone:
		r.synced(g, metav1.ConditionFalse, ReasonConfigNotFound,
			fmt.Sprintf("ScimConfig %q not found in namespace %q (or being deleted); waiting for it", g.Spec.ConfigName, g.Namespace))
		return ctrl.Result{}, nil
	case plan.WaitDisabled:
		r.synced(g, metav1.ConditionUnknown, ReasonPaused,
			fmt.Sprintf("ScimConfig %q is disabled: the team is left as it is", cfg.Name))
		return ctrl.Result{}, nil
	default:
		c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionBackendReady)
		r.synced(g, metav1.ConditionFalse, ReasonBackendNotReady,
			truncate(fmt.Sprintf("waiting for ScimConfig %q's backend: %s", cfg.Name, c.Message), 1024))
		return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
	}
}

// observeTeam reads the team: on a backend that labels its grants, the group's own grant.
func (r *OrgGroupReconciler) observeTeam(ctx context.Context, g *scimv1.OrgGroup, b backend.Backend, team string,
	labelled bool) (*backend.Team, error) {
	if ol, ok := b.(backend.OwnerLedger); ok && labelled {
		return ol.ObserveTeamOwned(ctx, groupOwner(g), team)
	}
	return b.ObserveTeam(ctx, team)
}

// wrote records a change made to a team (or, err set, tried) for the groups' teams views
// (DriftQueue.wroteTeam).
func (r *OrgGroupReconciler) wrote(cfg *scimv1.ScimConfig, b backend.Backend, team, id string, present bool, err error) {
	r.Drift.wroteTeam(cfg, b, team, id, present, err, r.Clock.Now())
}

// execute runs a live group's plan.
func (r *OrgGroupReconciler) execute(ctx, outer context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig,
	b backend.Backend, in plan.GroupInput, p plan.GroupPlan, owner *scimv1.OrgGroup, base *scimv1.OrgGroup, abandon *bool) (ctrl.Result, error) {
	team, key := in.Team, plan.TeamKeyOf(b)
	for _, step := range p.Steps {
		if step != plan.GroupLeaveFormer {
			continue
		}
		if err := r.leaveTeam(ctx, g, cfg, b, in.Former); err != nil {
			return r.backendError(outer, g, cfg, "clean up former team "+in.Former, err)
		}
	}
	if g.Status.Team != team {
		// a renamed group syncs another team, which SCIM has not created (yet); another
		// name of the same team is the same team (plan.FormerTeam)
		g.Status.TeamCreated = plan.TeamCreatedKept(g.Status.Team, team, g.Status.TeamCreated, key)
		g.Status.Team = team
	}
	if p.Conflict {
		// Two displayNames ("a:eng", "b:eng", "eng") can name one team: each group would
		// take the other's members out and deleting either would delete the team. The
		// older group keeps the team; this one never touches it until the other is gone
		// (its deletion re-enqueues this one) or this one is renamed.
		msg := fmt.Sprintf("team %s is already synced by OrgGroup %s (displayName %q), created earlier; "+
			"this group leaves the team alone until that group is deleted or one of them is renamed",
			team, owner.Name, owner.Spec.DisplayName)
		if c := meta.FindStatusCondition(g.Status.Conditions, scimv1.ConditionSynced); c == nil || c.Message != msg {
			r.event(g, corev1.EventTypeWarning, EventFailed, "Sync", "%s", msg)
		}
		r.synced(g, metav1.ConditionFalse, ReasonTeamConflict, msg)
		return ctrl.Result{}, reconcile.TerminalError(errors.New(msg))
	}
	for _, step := range p.Steps {
		switch step {
		case plan.GroupEnsureTeam:
			// Recorded with an optimistic lock before creating: the team is ours to delete
			// with the group, and a reconcile from a stale copy cannot write it away.
			if !g.Status.TeamCreated || g.Status.Team != base.Status.Team {
				g.Status.TeamCreated = true
				if err := r.Status().Patch(outer, g, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}),
					client.FieldOwner(FieldOwnerController)); err != nil {
					*abandon = true
					return ctrl.Result{}, err
				}
				*base = *g.DeepCopy()
			}
			var err error
			if ol, ok := b.(backend.OwnerLedger); ok && in.Labelled {
				err = ol.EnsureTeamOwned(ctx, groupOwner(g), team)
			} else {
				err = b.EnsureTeam(ctx, team)
				r.wrote(cfg, b, team, "", true, err)
			}
			if err != nil {
				return r.backendError(outer, g, cfg, "create team "+team, err)
			}
			r.event(g, corev1.EventTypeNormal, EventTeamCreated, "CreateTeam",
				"created team %s in organization %s", team, cfg.Spec.Organization)
		case plan.GroupAdd:
			for _, id := range p.Add {
				err := b.EnsureTeamMember(ctx, team, id)
				r.wrote(cfg, b, team, id, true, err)
				if err != nil {
					return r.backendError(outer, g, cfg, fmt.Sprintf("add %s to team %s", id, team), err)
				}
			}
			r.event(g, corev1.EventTypeNormal, EventTeamMemberAdded, "AddTeamMembers",
				"added %d member(s) to team %s: %s", len(p.Add), team, listWords(p.Add))
		case plan.GroupRemove:
			for _, id := range p.Remove {
				err := b.EnsureTeamMemberAbsent(ctx, team, id)
				r.wrote(cfg, b, team, id, false, err)
				if err != nil {
					return r.backendError(outer, g, cfg, fmt.Sprintf("remove %s from team %s", id, team), err)
				}
			}
			r.event(g, corev1.EventTypeNormal, EventTeamMemberRemoved, "RemoveTeamMembers",
				"removed %d member(s) from team %s: %s", len(p.Remove), team, listWords(p.Remove))
		}
	}
	g.Status.LastSyncTime = &metav1.Time{Time: r.Clock.Now()}
	r.synced(g, metav1.ConditionTrue, ReasonSynced,
		fmt.Sprintf("team %s of organization %s has the group's %d active member(s)", team, cfg.Spec.Organization, len(in.Want)))
	if r.Drift.groupsCovered(b) {
		return ctrl.Result{}, nil // the config's drift pass judges the team every interval
	}
	return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
}

// groupMembers lists the config's OrgMembers labeled as members of the group, from the
// cache through the index.Group index, not copied: callers only read them.
func (r *OrgGroupReconciler) groupMembers(ctx context.Context, g *scimv1.OrgGroup) ([]scimv1.OrgMember, error) {
	var list scimv1.OrgMemberList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace), client.MatchingFields{index.Group: g.Name},
		client.UnsafeDisableDeepCopy); err != nil { // read only: counted and their identities read
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

// managedIDs judges the ids a team lists (observed) for group g, whose members mine were
// read before (groupMembers): removable are those SCIM may take out of the team, held by a
// member provisioned or adopted, concluded, and not deactivated under the Keep policy
// (plan.ManagedIDs); hinted are those of them, active, whose spec.docker.team names the
// team: the OrgMember controller puts them in it, so the group keeps them there as if they
// were its own members (else the two controllers would add and remove them in turn). want
// are the ids of the group's members that belong in its team (plan.WantedIDs).
//
// It reads the holders of each listed id (index.BackendID): O(group + team), not every
// member of the config (at 10,000 members that listing was 37% of the manager's CPU while
// an adoption ran). A member found in both reads is judged, wanted and removable, from the
// later one alone: judged from two reads, a member that became Active between them would be
// removable by the second and not wanted by the first, and an adopted person taken out of
// their team. A holder the index has not caught up with yet is not found, so not removable
// by its read; and an id held by a group member that the holders' read did not find (the
// index lagging its change, or its id changed between the reads) is not removable either:
// judged from the earlier read, that member may want it. A missed read keeps people in; the
// next reconcile judges again.
func (r *OrgGroupReconciler) managedIDs(ctx context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig, team string,
	key plan.TeamKey, mine []scimv1.OrgMember, observed []string) (want []string, removable, hinted map[string]bool, err error) {
	holders, err := r.holders(ctx, g.Namespace, cfg.Name, observed)
	if err != nil {
		return nil, nil, nil, err
	}
	removable, hinted = plan.ManagedIDs(holders, cfg, team, key)
	reread := make(map[string]bool, len(holders))
	for i := range holders {
		reread[holders[i].Name] = true
	}
	wanted := make([]scimv1.OrgMember, 0, len(mine))
	for i := range mine {
		if m := &mine[i]; !reread[m.Name] {
			wanted = append(wanted, *m)
			delete(removable, strings.ToLower(m.Status.BackendID))
		}
	}
	for i := range holders {
		if m := &holders[i]; m.DeletionTimestamp.IsZero() && slices.Contains(index.GroupsOf(m.Labels), g.Name) {
			wanted = append(wanted, *m)
		}
	}
	return plan.WantedIDs(wanted), removable, hinted, nil
}

// holders are the config's OrgMembers whose backend id is one of ids (case aside), each
// once, from the cache through index.BackendID, not copied: callers only read them.
func (r *OrgGroupReconciler) holders(ctx context.Context, ns, config string, ids []string) ([]scimv1.OrgMember, error) {
	var out []scimv1.OrgMember
	seen := map[string]bool{}
	for _, id := range ids {
		low := strings.ToLower(id)
		if seen[low] {
			continue
		}
		seen[low] = true
		var list scimv1.OrgMemberList
		if err := r.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{index.BackendID: index.Key(config, low)},
			client.UnsafeDisableDeepCopy); err != nil {
			return nil, err
		}
		out = append(out, list.Items...) // the index's key names the config
	}
	return out, nil
}

// teamOwner returns another OrgGroup of the same config whose team is g's team (key.Same)
// and that was created before g (creationTimestamp, then name), or nil when g owns its
// team. A group being deleted still counts until it is gone.
func (r *OrgGroupReconciler) teamOwner(ctx context.Context, g *scimv1.OrgGroup, key plan.TeamKey) (*scimv1.OrgGroup, error) {
	var list scimv1.OrgGroupList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace), client.MatchingFields{index.Config: g.Spec.ConfigName}); err != nil {
		return nil, err
	}
	return plan.TeamOwner(g, list.Items, key), nil
}

// sharesTeamName reports whether another live OrgGroup of the config maps to team
// (key.Same): g's deletion, or its leaving a former team, then leaves the team to it.
func (r *OrgGroupReconciler) sharesTeamName(ctx context.Context, g *scimv1.OrgGroup, team string, key plan.TeamKey) (bool, error) {
	var list scimv1.OrgGroupList
	if err := r.List(ctx, &list, client.InNamespace(g.Namespace), client.MatchingFields{index.Config: g.Spec.ConfigName}); err != nil {
		return false, err
	}
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name != g.Name && o.Spec.ConfigName == g.Spec.ConfigName && o.DeletionTimestamp.IsZero() &&
			key.Same(TeamName(o.Spec.DisplayName), team) {
			return true, nil
		}
	}
	return false, nil
}

// groupsOfSameTeam maps a deleted OrgGroup to the other groups of its config that may have
// the same team: one that waited in TeamConflict takes the team over. Without the backend
// at hand it compares the names' last colon-separated parts, which every name of one team
// shares at every backend (plan.TeamKey); a group woken needlessly costs a reconcile.
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
		if list.Items[i].Name != g.Name && strings.EqualFold(lastPart(list.Items[i].Spec.DisplayName), lastPart(g.Spec.DisplayName)) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// lastPart is what follows the last colon of a name (all of it without one).
func lastPart(name string) string {
	return strings.TrimSpace(name[strings.LastIndex(name, ":")+1:])
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
	shared, err := r.sharesTeamName(ctx, g, team, plan.TeamKeyOf(b))
	if err != nil || shared {
		return err
	}
	if g.Status.TeamCreated {
		err := b.EnsureTeamAbsent(ctx, team)
		r.wrote(cfg, b, team, "", false, err)
		if err != nil {
			return err
		}
		r.event(g, corev1.EventTypeNormal, EventTeamDeleted, "DeleteTeam",
			"group renamed: former team %s removed from organization %s", team, cfg.Spec.Organization)
		return nil
	}
	return r.removeManaged(ctx, g, cfg, b, team)
}

// removeManaged takes the members SCIM manages out of a team (those a team hint keeps
// there stay).
func (r *OrgGroupReconciler) removeManaged(ctx context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig,
	b backend.Backend, team string) error {
	t, err := b.ObserveTeam(ctx, team)
	if err != nil || t == nil {
		return err
	}
	_, removable, hinted, err := r.managedIDs(ctx, g, cfg, team, plan.TeamKeyOf(b), nil, t.Members)
	if err != nil {
		return err
	}
	for _, id := range t.Members {
		low := strings.ToLower(id)
		if hinted[low] || !removable[low] {
			continue
		}
		err := b.EnsureTeamMemberAbsent(ctx, team, id)
		r.wrote(cfg, b, team, id, false, err)
		if err != nil {
			return err
		}
	}
	return nil
}

// executeDeletion runs a deleted group's plan (the deletion policy, internal/plan), then
// releases the group; the event waits for the release (a conflict retries it all).
func (r *OrgGroupReconciler) executeDeletion(ctx, outer context.Context, g *scimv1.OrgGroup, cfg *scimv1.ScimConfig,
	b backend.Backend, p plan.GroupPlan) (ctrl.Result, error) {
	var done func()
	for _, step := range p.Steps {
		switch step {
		case plan.GroupOrphan:
			if ol, ok := b.(backend.OwnerLedger); ok {
				if err := ol.OrphanOwner(ctx, groupOwner(g), "Orphaned"); err != nil {
					return r.backendError(outer, g, cfg, "leave team "+g.Status.Team+" in place", err)
				}
			}
		case plan.GroupLeaveTeam:
			if err := r.removeManaged(ctx, g, cfg, b, g.Status.Team); err != nil {
				return r.backendError(outer, g, cfg, "take SCIM's members out of team "+g.Status.Team, err)
			}
		case plan.GroupRemoveGrants:
			var err error
			if ol, ok := b.(backend.OwnerLedger); ok {
				err = ol.EnsureOwnerAbsent(ctx, groupOwner(g), g.Status.Team)
			} else {
				err = b.EnsureTeamAbsent(ctx, g.Status.Team)
				r.wrote(cfg, b, g.Status.Team, "", false, err)
			}
			if err != nil {
				return r.backendError(outer, g, cfg, "delete team "+g.Status.Team, err)
			}
			done = func() {
				r.event(g, corev1.EventTypeNormal, EventTeamDeleted, "DeleteTeam",
					"group deleted: team %s removed from organization %s", g.Status.Team, cfg.Spec.Organization)
			}
		case plan.GroupRelease:
			orig := g.DeepCopy()
			controllerutil.RemoveFinalizer(g, FinalizerDeprovision)
			if err := r.Patch(outer, g, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}),
				client.FieldOwner(FieldOwnerController)); err != nil {
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
		}
	}
	if done != nil {
		done()
	}
	return ctrl.Result{}, nil
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
		// retried on the resync interval: a backend repaired by hand is noticed. Not backed
		// off as a member's are (permanentFailure): groups are few, and a failing add comes
		// before the group's removals, which must not wait for a day (review 21).
		return ctrl.Result{RequeueAfter: jitter(resyncInterval(cfg))}, nil
	case backend.RateLimited:
		wait, _ := backend.RetryAfterOf(err)
		if wait <= 0 {
			wait = defaultRateLimitWait
		}
		r.synced(g, metav1.ConditionFalse, ReasonRateLimited,
			fmt.Sprintf("rate limited while trying to %s; retrying in %s", what, wait.Round(time.Second)))
		if cfg != nil {
			r.refused.record(client.ObjectKeyFromObject(g), r.Clock.Now().Add(wait), g.Generation, cfg.Generation,
				g.Annotations[scimv1.AnnotationReconcile])
		}
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
func TeamName(displayName string) string { return plan.TeamName(displayName) }

// SetupWithManager watches OrgGroups (spec changes, deletion, the reconcile annotation),
// OrgMembers mapped to their groups through their group labels (old and new, so leaving a
// group counts), and ScimConfigs mapped to their groups.
func (r *OrgGroupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	b := newController(mgr, "orggroup", retryLimiter()).
		Watches(&scimv1.OrgGroup{}, revocationFirst(groupRevokes, groupRevoking), builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, reconcileRequested()))).
		Watches(&scimv1.OrgMember{}, memberGroupsHandler{}).
		Watches(&scimv1.OrgGroup{}, handler.EnqueueRequestsFromMapFunc(r.groupsOfSameTeam),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc:  func(event.CreateEvent) bool { return false },
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Watches(&scimv1.ScimConfig{}, handler.EnqueueRequestsFromMapFunc(r.groupsOfConfig),
			builder.WithPredicates(configChangedForGroups(r.Drift)))
	if r.Drift != nil {
		b = b.WatchesRawSource(r.Drift.groupSource())
	}
	return b.Complete(r)
}

// revokesTeam tells whether the group's reconcile takes its team's access away: it is being
// deleted, and its team was made (a group deleted before, or while its config was
// disabled, has nothing to take away).
func revokesTeam(g *scimv1.OrgGroup) bool {
	return !g.DeletionTimestamp.IsZero() && (g.Status.TeamCreated || g.Status.Team != "")
}

// groupRevoking is revokesTeam for an event's object.
func groupRevoking(o client.Object) bool {
	g, ok := o.(*scimv1.OrgGroup)
	return ok && revokesTeam(g)
}

// groupRevokes tells whether an update of an OrgGroup begins its deletion: its reconcile
// goes ahead of the queue (revocationFirst), as a member's deprovisioning does, so that it
// does not wait behind a tenant's backlog of groups refused a worker.
func groupRevokes(oldObj, newObj client.Object) bool {
	o, ok1 := oldObj.(*scimv1.OrgGroup)
	n, ok2 := newObj.(*scimv1.OrgGroup)
	return ok1 && ok2 && o.DeletionTimestamp.IsZero() && !n.DeletionTimestamp.IsZero()
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
// when its group labels, activity, phase or backend identity change: at once when it
// leaves a group, is deactivated, is deleted or its status changes while it is being
// deleted (a team's access to take away), and memberGroupsDelay later when it appears or
// only its status changed. (A delayed add counts in workqueue_retries_total.)
type memberGroupsHandler struct{}

// memberGroupsDelay gathers a group's members' arrivals and status changes into one
// reconcile: the queue keeps one delayed add of an item, so a group whose members keep
// changing reconciles about once a delay. While an adoption made 10,000 people Active, its
// ten groups reconciled 25 times a second on their members' status changes, and half the
// manager's CPU went to those reconciles, each of which then read every member of its
// config (a profile of the bench's Docker Hub adoption; managedIDs now reads the group's
// members and the holders of its team's ids, but a reconcile still costs O(group + team)).
const memberGroupsDelay = time.Second

type groupQueue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func enqueueGroups(ns string, labels map[string]string, q groupQueue, after time.Duration) {
	for _, g := range index.GroupsOf(labels) {
		req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: g}}
		if after > 0 {
			q.AddAfter(req, after)
		} else {
			q.Add(req)
		}
	}
}

func (memberGroupsHandler) Create(_ context.Context, e event.TypedCreateEvent[client.Object], q groupQueue) {
	enqueueGroups(e.Object.GetNamespace(), e.Object.GetLabels(), q, memberGroupsDelay)
}

func (memberGroupsHandler) Update(_ context.Context, e event.TypedUpdateEvent[client.Object], q groupQueue) {
	o, ok1 := e.ObjectOld.(*scimv1.OrgMember)
	n, ok2 := e.ObjectNew.(*scimv1.OrgMember)
	if !ok1 || !ok2 {
		return
	}
	sameGroups, sameActive := equalGroupLabels(o.Labels, n.Labels), o.Spec.Active == n.Spec.Active
	if sameGroups && sameActive && o.Status.Phase == n.Status.Phase &&
		o.Status.BackendID == n.Status.BackendID && o.Status.Origin == n.Status.Origin {
		return
	}
	after := time.Duration(0) // a group left or an activity change: a team's access may go
	if sameGroups && sameActive && n.DeletionTimestamp.IsZero() {
		after = memberGroupsDelay
	}
	enqueueGroups(o.Namespace, o.Labels, q, after)
	enqueueGroups(n.Namespace, n.Labels, q, after)
}

func (memberGroupsHandler) Delete(_ context.Context, e event.TypedDeleteEvent[client.Object], q groupQueue) {
	enqueueGroups(e.Object.GetNamespace(), e.Object.GetLabels(), q, 0)
}

func (memberGroupsHandler) Generic(_ context.Context, e event.TypedGenericEvent[client.Object], q groupQueue) {
	enqueueGroups(e.Object.GetNamespace(), e.Object.GetLabels(), q, 0)
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

// listWords lists up to ten names.
func listWords(names []string) string { return plan.ListWords(names) }
