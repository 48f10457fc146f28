package controllers

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
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
//
// It also lends the last listing of each config to the members' first observations:
// people an organization already has cost one call per page of it when their OrgMembers
// appear in a burst (an organization adopted at once), not two calls each.
type DriftQueue struct {
	mu sync.Mutex
	q  workqueue.TypedRateLimitingInterface[reconcile.Request]
	// gq is the OrgGroup controller's queue, for the groups a pass found different from
	// their teams (backend.TeamLister).
	gq workqueue.TypedRateLimitingInterface[reconcile.Request]
	// passes asks the drift controller for a pass of a config now.
	passes chan event.TypedGenericEvent[*scimv1.ScimConfig]
	// by config
	listings map[types.NamespacedName]lastListing
	// recent are the times of the latest first observations made one by one that found
	// the person in the backend already.
	recent map[types.NamespacedName][]time.Time
	// waiting are the members whose first observation waits for a listing, and since when.
	waiting map[types.NamespacedName]map[types.NamespacedName]time.Time
	// resting are the members at rest that wait for a listing (restingObservation), apart
	// from waiting: they are no burst of new people, and must not make the next new
	// member wait too.
	resting map[types.NamespacedName]map[types.NamespacedName]time.Time
	// groupsJudged are the configs whose latest pass judged their groups (groupsCovered):
	// the config's reconcile annotation then asks that pass for them too, instead of a
	// reconcile of every group (configChangedForGroups).
	groupsJudged map[types.NamespacedName]bool
	// teams are each config's latest teams view (driftGroups), and teamWrites the changes
	// this manager made to its teams: a group reads the two together (teamView) instead
	// of listing its whole team on each of its members' changes.
	teams      map[types.NamespacedName]teamsView
	teamWrites map[types.NamespacedName][]teamWrite
	// unsure are the teams (folded; "*" for all) a write to which failed since the latest
	// teams view: it may or may not have been done, so their groups observe them.
	unsure map[types.NamespacedName]map[string]bool
}

// teamsView is a config's teams as a drift pass listed them, and when the pass started.
type teamsView struct {
	uid     types.UID
	started time.Time
	teams   *plan.Teams
}

// teamWrite is a change this manager made to a team, done at at: the team created or
// deleted (id ""), or a person (their backend id) added to it or taken out.
type teamWrite struct {
	at      time.Time
	team    string // folded
	id      string // as the backend was given it
	present bool
}

// maxTeamWrites bounds the writes kept for a config between two passes; beyond it the
// view is dropped and groups observe their teams themselves until the next pass.
const maxTeamWrites = 100000

// lastListing is a config's latest drift listing and when it was started.
type lastListing struct {
	uid     types.UID
	started time.Time
	listing *plan.Listing
}

const (
	// firstObservationBurst first observations made one by one within firstObservationWindow
	// that found the person in the organization already make a burst (an organization
	// adopted at once): the members that appear next wait for one listing of it. New
	// people (an IdP's new hires, a full sync into an empty organization) are absent from
	// any listing, so they are looked up at once; but one who comes during a burst cannot
	// be told from the adopted people before a lookup, and waits for the burst's listing
	// too (one pass), then is looked up and invited.
	firstObservationBurst  = 8
	firstObservationWindow = 10 * time.Second
	// listingWaitMax bounds how long a member waits for a listing (a pass that keeps
	// failing): older members are observed one by one.
	listingWaitMax = driftListTimeout
	// passSpacing is the least time between the starts of two passes of a config: the
	// members of a burst that keeps coming wait for the next one together.
	passSpacing = 2 * time.Second
)

// firstObservation is how a member's first observation is made.
type firstObservation int

const (
	// observeDirectly: look the person up (ObserveMember).
	observeDirectly firstObservation = iota
	// observedInListing: a listing started after the member appeared shows the person.
	observedInListing
	// waitForListing: a burst of new members waits for the pass this asked for.
	waitForListing
)

func (d *DriftQueue) init() {
	if d.passes == nil {
		d.passes = make(chan event.TypedGenericEvent[*scimv1.ScimConfig], 256)
		d.listings = map[types.NamespacedName]lastListing{}
		d.recent = map[types.NamespacedName][]time.Time{}
		d.waiting = map[types.NamespacedName]map[types.NamespacedName]time.Time{}
		d.groupsJudged = map[types.NamespacedName]bool{}
		d.teams = map[types.NamespacedName]teamsView{}
		d.teamWrites = map[types.NamespacedName][]teamWrite{}
		d.unsure = map[types.NamespacedName]map[string]bool{}
		d.resting = map[types.NamespacedName]map[types.NamespacedName]time.Time{}
	}
}

// passSource is the drift controller's source of passes asked for by members.
func (d *DriftQueue) passSource() source.TypedSource[reconcile.Request] {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	return source.Channel(d.passes, handler.TypedEnqueueRequestsFromMapFunc(
		func(_ context.Context, c *scimv1.ScimConfig) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}}}
		}))
}

// remember keeps the listing of a pass started at started, and returns the members that
// waited for a listing started after they did (the pass enqueues them).
func (d *DriftQueue) remember(cfg *scimv1.ScimConfig, started time.Time, l *plan.Listing) []reconcile.Request {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	key := client.ObjectKeyFromObject(cfg)
	d.listings[key] = lastListing{uid: cfg.UID, started: started, listing: l}
	var reqs []reconcile.Request
	for _, waiting := range []map[types.NamespacedName]time.Time{d.waiting[key], d.resting[key]} {
		for m, since := range waiting {
			if since.Before(started) {
				reqs = append(reqs, reconcile.Request{NamespacedName: m})
				delete(waiting, m)
			}
		}
	}
	if len(d.waiting[key]) > 0 || len(d.resting[key]) > 0 {
		d.ask(cfg) // members that came during the pass: the next one is theirs
	}
	return reqs
}

// untilNext is how long a pass of the config waits for passSpacing since the last one.
func (d *DriftQueue) untilNext(key types.NamespacedName, now time.Time) time.Duration {
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if last, ok := d.listings[key]; ok {
		return max(0, passSpacing-now.Sub(last.started))
	}
	return 0
}

// forget drops what is kept for a config (deleted, disabled).
func (d *DriftQueue) forget(key types.NamespacedName) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.listings, key)
	delete(d.recent, key)
	delete(d.waiting, key)
	delete(d.groupsJudged, key)
	delete(d.teams, key)
	delete(d.teamWrites, key)
	delete(d.unsure, key)
	delete(d.resting, key)
}

// rememberTeams keeps the teams a pass started at started listed; the writes done before
// it started are in it.
func (d *DriftQueue) rememberTeams(cfg *scimv1.ScimConfig, started time.Time, teams *plan.Teams) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	key := client.ObjectKeyFromObject(cfg)
	d.teams[key] = teamsView{uid: cfg.UID, started: started, teams: teams}
	d.teamWrites[key] = slices.DeleteFunc(d.teamWrites[key], func(w teamWrite) bool { return w.at.Before(started) })
	delete(d.unsure, key)
}

// wroteTeam records a change this manager made to a team of cfg on backend b: id "" is
// the team itself, present whether it (or the person in it) is there now; team "*" is
// every team (a person who left the organization left its teams). err is the call's: a
// failed call may or may not have been done, and the team's groups observe it until the
// next pass lists the teams. Only where groups read teams views (groupsCovered).
func (d *DriftQueue) wroteTeam(cfg *scimv1.ScimConfig, b backend.Backend, team, id string, present bool, err error, at time.Time) {
	if _, labelled := b.(backend.OwnerLedger); d == nil || cfg == nil || labelled || !d.groupsCovered(b) {
		return
	}
	team = listedTeam(b, team)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	key := client.ObjectKeyFromObject(cfg)
	if err != nil {
		if d.unsure[key] == nil {
			d.unsure[key] = map[string]bool{}
		}
		d.unsure[key][team] = true
		return
	}
	if len(d.teamWrites[key]) >= maxTeamWrites {
		delete(d.teams, key)
		d.teamWrites[key] = nil
	}
	d.teamWrites[key] = append(d.teamWrites[key], teamWrite{at: at, team: team, id: id, present: present})
}

// listedTeam is a team's name folded as the teams listing names it ("acme:qa" and "qa"
// are one team to Docker Hub); "*" stays.
func listedTeam(b backend.Backend, team string) string {
	if tl, ok := b.(backend.TeamLister); ok && team != "*" {
		if listed, err := tl.ListedTeamName(team); err == nil {
			team = listed
		}
	}
	return strings.ToLower(team)
}

// teamView is the team as the config's latest teams view shows it with this manager's
// writes since applied (nil: the organization has no such team), when that view was
// started recently enough (readable); ok is false otherwise, and the group
// observes its team itself. The view misses only what was changed by hand since it was
// listed: that is the next pass's drift, as for every group.
func (d *DriftQueue) teamView(cfg *scimv1.ScimConfig, b backend.Backend, team string, now time.Time) (t *backend.Team, ok bool) {
	if d == nil || cfg == nil {
		return nil, false
	}
	f := listedTeam(b, team)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	key := client.ObjectKeyFromObject(cfg)
	v, ok := d.teams[key]
	if !ok || v.uid != cfg.UID || !readable(cfg, v.started, now) || d.unsure[key][f] || d.unsure[key]["*"] {
		return nil, false
	}
	t = v.teams.Team(team)
	for _, w := range d.teamWrites[key] {
		if (w.team != f && w.team != "*") || w.at.Before(v.started) || (w.team == "*" && (w.id == "" || w.present)) {
			continue
		}
		switch {
		case w.id == "" && !w.present:
			t = nil
		case t == nil && w.present:
			t = &backend.Team{Name: team}
		}
		if t == nil || w.id == "" {
			continue
		}
		t.Members = slices.DeleteFunc(t.Members, func(id string) bool { return strings.EqualFold(id, w.id) })
		if w.present {
			t.Members = append(t.Members, w.id)
		}
	}
	return t, true
}

// judgesGroups tells whether the config's latest pass judged its groups.
func (d *DriftQueue) judgesGroups(key types.NamespacedName) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.groupsJudged[key]
}

// setJudgesGroups records whether the config's pass judges its groups.
func (d *DriftQueue) setJudgesGroups(key types.NamespacedName, judged bool) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	d.groupsJudged[key] = judged
	if !judged {
		// the groups observe their teams themselves until a pass lists the teams again: an
		// older view would hide what that pass was to find (a change by hand)
		delete(d.teams, key)
		d.teamWrites[key] = nil
	}
}

func (d *DriftQueue) ask(cfg *scimv1.ScimConfig) {
	c := &scimv1.ScimConfig{}
	c.Namespace, c.Name = cfg.Namespace, cfg.Name
	select {
	case d.passes <- event.TypedGenericEvent[*scimv1.ScimConfig]{Object: c}:
	default: // a full buffer: passes already asked for
	}
}

// firstObservation decides how the first observation of a member that SCIM has not
// judged yet (no origin) is made, on a backend without owner labels:
//   - a listing started after the member appeared shows the person (a member, or
//     invited): that is the observation, as ObserveMember would have made it then;
//   - absent from it, or no such listing: the person is looked up one by one (an absent
//     person is invited at once, and a paged listing that raced a change must not turn a
//     person the organization had into one SCIM provisioned);
//   - unless many members of the config were just found in the organization one by one
//     (a burst: an organization adopted at once): then the member waits for one listing,
//     asked for now, and the pass enqueues it.
func (d *DriftQueue) firstObservation(cfg *scimv1.ScimConfig, m *scimv1.OrgMember, now time.Time) (backend.Member, firstObservation) {
	if d == nil || cfg == nil {
		return backend.Member{}, observeDirectly
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	key, mkey := client.ObjectKeyFromObject(cfg), client.ObjectKeyFromObject(m)
	// creationTimestamp has whole seconds: the member appeared before created+1s.
	appeared := m.CreationTimestamp.Add(time.Second)
	if last, ok := d.listings[key]; ok && last.uid == cfg.UID && !last.started.Before(appeared) {
		delete(d.waiting[key], mkey)
		if obs := last.listing.Observe(m, false); obs.State != backend.StateAbsent {
			return obs, observedInListing
		}
		return backend.Member{}, observeDirectly
	}
	if _, ok := d.waiting[key][mkey]; ok && now.Sub(appeared) < listingWaitMax {
		d.ask(cfg) // its own retry: the pass asked for may have failed
		return backend.Member{}, waitForListing
	}
	recent := d.recentLocked(key, now)
	if (len(recent) >= firstObservationBurst || len(d.waiting[key]) > 0) && now.Sub(appeared) < listingWaitMax {
		d.waitLocked(cfg, mkey, now)
		return backend.Member{}, waitForListing
	}
	delete(d.waiting[key], mkey)
	return backend.Member{}, observeDirectly
}

// restingObservation decides how a member SCIM has judged, and that is at rest (atRest:
// nothing about it changed since it was last synced), is observed on a backend without
// owner labels. Such a member is reconciled by its config's change, a manager's restart,
// the config's recovery or a drift pass: by the thousand at once, and looking each up
// would cost a call or two per member.
//   - its reconcile annotation (kubectl scim resync) asked for a look after the config's
//     latest listing started, or while there is none fresh: it is looked up;
//   - the config's latest listing, recent enough (readable), shows the person or not:
//     that is the observation (an older view than a lookup, but the one the drift pass
//     judges every member by; a change since is the next pass's). An active member the
//     listing does not show is to be invited back, and EnsureMember looks the person up
//     under every identity before it invites (a paged listing may have raced a change):
//     a lookup before it would only repeat those searches (two per person in the
//     10,000 drift repair, and again on each refusal by the budget). Unless the listing
//     started before the member was last synced (it may not show what that sync did: an
//     invitation, and the plan would tell a repair that never was), or SCIM found the
//     person in the organization before (Preexisting: adoption turned on re-judges it,
//     and an absence would record it as provisioned): then it is looked up;
//   - no such listing: the member waits for the next pass, asked for now, which enqueues
//     it; one that waited listingWaitMax (a pass that keeps failing) is looked up.
func (d *DriftQueue) restingObservation(cfg *scimv1.ScimConfig, m *scimv1.OrgMember, now time.Time) (backend.Member, firstObservation) {
	if d == nil || cfg == nil {
		return backend.Member{}, observeDirectly
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	key, mkey := client.ObjectKeyFromObject(cfg), client.ObjectKeyFromObject(m)
	last, ok := d.listings[key]
	fresh := ok && last.uid == cfg.UID && readable(cfg, last.started, now)
	if reconcileAskedAfter(m, last.started) || (!fresh && reconcileAskedAfter(m, time.Time{})) {
		delete(d.resting[key], mkey)
		return backend.Member{}, observeDirectly // a look asked for after the listing started
	}
	if fresh {
		delete(d.resting[key], mkey)
		obs := last.listing.Observe(m, false)
		if obs.State == backend.StateAbsent && m.Spec.Active && !absenceReadable(m, last.started) {
			return backend.Member{}, observeDirectly
		}
		return obs, observedInListing
	}
	if since, ok := d.resting[key][mkey]; ok {
		if now.Sub(since) < listingWaitMax {
			d.ask(cfg) // its own retry: the pass asked for may have failed
			return backend.Member{}, waitForListing
		}
		delete(d.resting[key], mkey)
		return backend.Member{}, observeDirectly
	}
	d.waitIn(d.resting, cfg, mkey, now)
	return backend.Member{}, waitForListing
}

// absenceReadable tells whether a listing started at started may answer that an active
// member at rest is absent (restingObservation): SCIM provisioned or adopted it, and the
// listing started after its last sync (lastSyncTime has whole seconds).
func absenceReadable(m *scimv1.OrgMember, started time.Time) bool {
	if m.Status.Origin != scimv1.OriginProvisioned && m.Status.Origin != scimv1.OriginAdopted {
		return false
	}
	return m.Status.LastSyncTime != nil && !started.Before(m.Status.LastSyncTime.Add(time.Second))
}

// readable tells whether a listing started at started is recent enough for a member at
// rest or a group to read it at now: started within two resync intervals. A pass starts
// an interval (jittered) after the last one ended and takes a while (31 s for 10,000
// people at Docker Hub's rate); with one interval, the last listing was too old to read
// until the next pass ended, and the groups observed their teams themselves meanwhile.
// What changed by hand since is the next pass's drift either way.
func readable(cfg *scimv1.ScimConfig, started, now time.Time) bool {
	return now.Sub(started) < 2*resyncInterval(cfg)
}

// restingWait is how long a member at rest that waits for a pass is requeued after: the
// pass enqueues it, and one that never comes leaves it to be looked up once it has waited
// listingWaitMax (restingObservation), not a resync interval later.
func restingWait(cfg *scimv1.ScimConfig) time.Duration {
	return min(jitter(resyncInterval(cfg)), listingWaitMax+time.Second)
}

// reconcileAskedAfter tells whether the member's reconcile annotation (kubectl scim resync)
// asks for a look at the backend at or after t (a value that is no time, always): a
// listing started before it does not answer it.
func reconcileAskedAfter(m *scimv1.OrgMember, t time.Time) bool {
	v, ok := m.Annotations[scimv1.AnnotationReconcile]
	if !ok {
		return false
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	return err != nil || !at.Before(t)
}

// waitOnRateLimit tells whether a member whose first observation the organization's
// request budget refused waits for a listing instead (and asks for one): when people were
// just found in the organization one by one (an adoption under way), the members behind
// them would otherwise each wait for their own turn, one budget slot apart.
func (d *DriftQueue) waitOnRateLimit(cfg *scimv1.ScimConfig, m *scimv1.OrgMember, now time.Time) bool {
	if d == nil || cfg == nil || now.Sub(m.CreationTimestamp.Add(time.Second)) >= listingWaitMax {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	key := client.ObjectKeyFromObject(cfg)
	if len(d.recentLocked(key, now)) == 0 && len(d.waiting[key]) == 0 {
		return false // new people: their own turn is the shortest way
	}
	d.waitLocked(cfg, client.ObjectKeyFromObject(m), now)
	return true
}

// waitLocked makes member mkey of cfg wait for a listing, asked for by the first to wait.
func (d *DriftQueue) waitLocked(cfg *scimv1.ScimConfig, mkey types.NamespacedName, now time.Time) {
	d.waitIn(d.waiting, cfg, mkey, now)
}

// waitIn makes member mkey of cfg wait in set (waiting or resting) for a listing, asked for
// by the first of the set to wait.
func (d *DriftQueue) waitIn(set map[types.NamespacedName]map[types.NamespacedName]time.Time, cfg *scimv1.ScimConfig,
	mkey types.NamespacedName, now time.Time) {
	key := client.ObjectKeyFromObject(cfg)
	if set[key] == nil {
		set[key] = map[types.NamespacedName]time.Time{}
	}
	if len(set[key]) == 0 {
		d.ask(cfg)
	}
	set[key][mkey] = now
}

// recentLocked drops the first observations older than the window and returns the others.
func (d *DriftQueue) recentLocked(key types.NamespacedName, now time.Time) []time.Time {
	recent := d.recent[key][:0]
	for _, t := range d.recent[key] {
		if now.Sub(t) < firstObservationWindow {
			recent = append(recent, t)
		}
	}
	d.recent[key] = recent
	return recent
}

// observedDirectly records a first observation made one by one: one that found the person
// in the organization already counts towards a burst.
func (d *DriftQueue) observedDirectly(cfg *scimv1.ScimConfig, obs backend.Member, now time.Time) {
	if d == nil || cfg == nil || obs.State == backend.StateAbsent || obs.State == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	key := client.ObjectKeyFromObject(cfg)
	d.recent[key] = append(d.recentLocked(key, now), now)
}

// source is the OrgMember controller's source of drifted members.
func (d *DriftQueue) source() source.TypedSource[reconcile.Request] { return d.queueSource(&d.q) }

// groupSource is the OrgGroup controller's source of drifted groups.
func (d *DriftQueue) groupSource() source.TypedSource[reconcile.Request] { return d.queueSource(&d.gq) }

// queueSource keeps the queue of the controller that starts it in *into.
func (d *DriftQueue) queueSource(into *workqueue.TypedRateLimitingInterface[reconcile.Request]) source.TypedSource[reconcile.Request] {
	return source.TypedFunc[reconcile.Request](func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		*into = q
		return nil
	})
}

// Enqueue adds the requests to the member queue without blocking. Before the member
// controller has started there is no queue: its start reconciles every member anyway.
func (d *DriftQueue) Enqueue(reqs []reconcile.Request) {
	if d != nil {
		d.addTo(&d.q, reqs, 0)
	}
}

// EnqueueRevocations adds the requests to the member queue ahead of other work, at
// LaterRevocationPriority: access a pass finds that nobody should hold must not wait
// behind another tenant's full sync, and a deactivation from SCIM (RevocationPriority)
// must not wait behind a tenant's pass that found many (a policy changed from Keep to
// Remove makes every deactivated member present one).
func (d *DriftQueue) EnqueueRevocations(reqs []reconcile.Request) {
	if d != nil {
		d.addTo(&d.q, reqs, LaterRevocationPriority)
	}
}

// EnqueueGroups adds the requests to the group queue, as Enqueue does to the member queue.
func (d *DriftQueue) EnqueueGroups(reqs []reconcile.Request) {
	if d != nil {
		d.addTo(&d.gq, reqs, 0)
	}
}

// addTo adds the requests to the queue in *which, at priority (0: the queue's default).
func (d *DriftQueue) addTo(which *workqueue.TypedRateLimitingInterface[reconcile.Request], reqs []reconcile.Request, priority int) {
	d.mu.Lock()
	q := *which
	d.mu.Unlock()
	if q == nil {
		return
	}
	for _, r := range reqs {
		if priority == 0 || !addAt(q, r, priority) {
			q.Add(r)
		}
	}
}

// groupsCovered tells whether the drift pass judges the groups of a config on backend b
// (a TeamLister whose teams are lists of people): their reconciles need no periodic
// requeue of their own then.
func (d *DriftQueue) groupsCovered(b backend.Backend) bool {
	if d == nil {
		return false
	}
	_, lists := b.(backend.TeamLister)
	_, groupsOnly := b.(backend.NoUserTeams)
	return lists && !groupsOnly
}

// DriftReconciler is the periodic drift repair of a ScimConfig: once per resync interval
// it observes the backend's whole organization through one paged ListMembers, compares
// it with the config's OrgMembers (plan.Drifted), and enqueues only the members whose
// backend state differs. A member is otherwise reconciled only when something about it
// changes (its spec, its config, the reconcile annotation): there is no per-member
// periodic poll, so the backend calls of an interval are O(members/page) + O(changes).
//
// On a backend that lists its teams (backend.TeamLister: Docker Hub) the pass also judges
// the config's groups, from one paged ListTeams and the teams each listed member is in
// (plan.GroupDrifted), and enqueues only the groups whose team differs: a group costs no
// call of its own per interval either (review 20 F5).
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
		if apierrors.IsNotFound(err) {
			r.Queue.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if plan.ConfigStateOf(cfg) != plan.ConfigEnabled {
		r.Queue.forget(req.NamespacedName)
		return ctrl.Result{}, nil // enabling the config, or its backend's recovery, starts a pass
	}
	interval := resyncInterval(cfg)
	b, err := r.Backends.For(ctx, cfg)
	if err != nil {
		r.Queue.setJudgesGroups(req.NamespacedName, false)
		return ctrl.Result{RequeueAfter: jitter(interval)}, nil // the config reports it (BackendReady)
	}
	started := r.Clock.Now()
	if wait := r.Queue.untilNext(req.NamespacedName, started); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	lctx, cancel := context.WithTimeout(ctx, driftListTimeout)
	defer cancel()
	list, err := b.ListMembers(lctx)
	if err != nil {
		// The groups a pass judges no longer requeue themselves: while the organization
		// cannot be listed each observes itself, as before, and the annotation reaches
		// them directly (review 22 F2).
		r.Queue.setJudgesGroups(req.NamespacedName, false)
		if r.Queue.groupsCovered(b) {
			all, lerr := r.allGroups(ctx, cfg)
			if lerr != nil {
				return ctrl.Result{}, lerr
			}
			r.Queue.EnqueueGroups(all)
		}
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
	var reqs, revocations, waited []reconcile.Request
	if !labelled { // there members observe one by one (cheap, and Managed needs it)
		waited = r.Queue.remember(cfg, started, listing)
	}
	complete := true
	for i := range members.Items {
		m := &members.Items[i]
		if drifted, why, revokes := plan.Drifted(m, cfg, listing, labelled, !groupsOnly); drifted {
			log.V(1).Info("drift pass: member differs from the backend", "member", m.Name, "why", why)
			req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(m)}
			if revokes {
				revocations = append(revocations, req)
			} else {
				reqs = append(reqs, req)
			}
			complete = false
			continue
		}
		if m.Status.Origin != scimv1.OriginPreexisting && !syncedTrue(m) {
			complete = false // waiting or failing: its own requeue retries it
		}
	}
	r.Queue.EnqueueRevocations(revocations)
	r.Queue.Enqueue(reqs)
	r.Queue.Enqueue(waited)
	judged := false
	if r.Queue.groupsCovered(b) {
		greqs, err := r.driftGroups(lctx, cfg, b.(backend.TeamLister), started, list, members.Items)
		if err != nil {
			// The members' verdicts stand. The groups answered (all of them, when the teams
			// could not be listed) observe themselves, as each did every interval before
			// the pass judged them: a listing that keeps failing costs O(groups) calls,
			// never a group's drift left unrepaired.
			log.Info("drift pass: judging the groups failed; each group observes itself", "error", err.Error())
			if backend.ConfigWide(err) {
				r.Rechecks.Request(ctx, cfg)
			}
		}
		judged = err == nil
		r.Queue.setJudgesGroups(req.NamespacedName, judged) // before the groups it answered read their teams
		r.Queue.EnqueueGroups(greqs)
	}
	r.Queue.setJudgesGroups(req.NamespacedName, judged)
	metrics.DriftPasses.WithLabelValues(cfg.Namespace, cfg.Name, "success").Inc()
	metrics.DriftListed.WithLabelValues(cfg.Namespace, cfg.Name).Set(float64(len(list)))
	metrics.DriftDiffering.WithLabelValues(cfg.Namespace, cfg.Name).Set(float64(len(reqs) + len(revocations)))
	log.V(1).Info("drift pass", "listed", len(list), "members", len(members.Items), "differing", len(reqs)+len(revocations),
		"revoking", len(revocations), "waited", len(waited))
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

// driftGroups judges the config's groups from the listings (plan.GroupDrifted) and
// answers those whose team differs. Each group's input is built as its own reconcile
// builds it (OrgGroupReconciler.Reconcile), from the cache, with the team read from the
// listings instead of ObserveTeam. A group that failed (not Synced) retries on its own
// requeue and is not judged; but who syncs a team is judged for every group, since a
// group's TeamConflict waits without a requeue: a synced group that an older group of its
// team now overrides (a rename) is answered, and so is a group in TeamConflict whose older
// group no longer maps to the team. A config without groups costs no call. When the teams
// cannot be listed, every group is answered with the error.
func (r *DriftReconciler) driftGroups(ctx context.Context, cfg *scimv1.ScimConfig, tl backend.TeamLister,
	started time.Time, list []backend.Member, members []scimv1.OrgMember) ([]reconcile.Request, error) {
	var groups scimv1.OrgGroupList
	if err := r.List(ctx, &groups, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	if len(groups.Items) == 0 {
		return nil, nil
	}
	names, err := tl.ListTeams(ctx)
	if err != nil {
		return requestsOf(groups.Items), err
	}
	teams := plan.NewTeams(names, list)
	r.Queue.rememberTeams(cfg, started, teams) // the groups' own reconciles read it too (teamView)
	key := plan.TeamKeyOf(tl)
	// the backend ids each group wants (plan.WantedIDs of its live members), without
	// copying the members: the pass reads the cache's objects as they are
	wanted := map[string][]string{}
	for i := range members {
		if m := &members[i]; m.DeletionTimestamp.IsZero() && plan.Wanted(m) {
			for _, g := range index.GroupsOf(m.Labels) {
				wanted[g] = append(wanted[g], m.Status.BackendID)
			}
		}
	}
	type managed struct{ removable, hinted map[string]bool }
	byTeam := map[string]managed{} // plan.ManagedIDs once per team, not once per group
	log := logf.FromContext(ctx)
	var reqs []reconcile.Request
	for i := range groups.Items {
		g := &groups.Items[i]
		if !g.DeletionTimestamp.IsZero() {
			continue
		}
		drifted, why := false, ""
		owner := plan.TeamOwner(g, groups.Items, key)
		switch synced := groupSynced(g); {
		case !synced && owner == nil && groupReason(g) == ReasonTeamConflict:
			drifted, why = true, "no older group maps to its team any more"
		case !synced:
		case owner != nil:
			drifted, why = true, "older group "+owner.Name+" now maps to its team"
		default:
			team := plan.TeamName(g.Spec.DisplayName)
			listed, err := tl.ListedTeamName(team)
			if err != nil {
				continue // the group's own reconcile fails on the name
			}
			// the team as the reconcile names it (key.Name: the backend's name)
			in := plan.GroupInput{Config: plan.ConfigEnabled, Policies: cfg.Spec.Policies, Team: listed,
				Former: plan.FormerTeam(g.Status.Team, listed, key), TeamCreated: g.Status.TeamCreated,
				Observed: teams.Team(listed), Want: teams.Members(wanted[g.Name])}
			mt, ok := byTeam[strings.ToLower(listed)]
			if !ok {
				mt.removable, mt.hinted = plan.ManagedIDs(members, cfg, listed, key)
				byTeam[strings.ToLower(listed)] = mt
			}
			in.Removable, in.Hinted = mt.removable, mt.hinted
			drifted, why = plan.GroupDrifted(in)
		}
		if drifted {
			log.V(1).Info("drift pass: group differs from its team", "group", g.Name, "why", why)
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(g)})
		}
	}
	return reqs, nil
}

// allGroups answers every group of the config.
func (r *DriftReconciler) allGroups(ctx context.Context, cfg *scimv1.ScimConfig) ([]reconcile.Request, error) {
	var groups scimv1.OrgGroupList
	if err := r.List(ctx, &groups, client.InNamespace(cfg.Namespace), client.MatchingFields{index.Config: cfg.Name},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	return requestsOf(groups.Items), nil
}

func requestsOf(groups []scimv1.OrgGroup) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(groups))
	for i := range groups {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&groups[i])})
	}
	return out
}

func groupReason(g *scimv1.OrgGroup) string {
	if c := meta.FindStatusCondition(g.Status.Conditions, scimv1.ConditionSynced); c != nil {
		return c.Reason
	}
	return ""
}

func groupSynced(g *scimv1.OrgGroup) bool {
	c := meta.FindStatusCondition(g.Status.Conditions, scimv1.ConditionSynced)
	return c != nil && c.Status == metav1.ConditionTrue
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
	if r.Queue == nil {
		r.Queue = &DriftQueue{}
	}
	return newController(mgr, "drift", passLimiter()).
		For(&scimv1.ScimConfig{}, builder.WithPredicates(configChanged())).
		WatchesRawSource(r.Queue.passSource()).
		Complete(r)
}
