package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	ctrl "sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
)

// teamsBackend is a backend whose team "devs" exists, empty; lists reports whether it
// lists its teams (backend.TeamLister). Other calls are not made by these tests.
type teamsBackend struct{ backend.Backend }

func (teamsBackend) ObserveTeam(context.Context, string) (*backend.Team, error) {
	return &backend.Team{Name: "devs", Members: []string{}}, nil
}

type listingTeamsBackend struct{ teamsBackend }

func (listingTeamsBackend) ListTeams(context.Context) ([]string, error) { return []string{"devs"}, nil }
func (listingTeamsBackend) ListedTeamName(team string) (string, error)  { return team, nil }

// Review 22 F4: a synced group whose team the config's drift pass judges (a TeamLister,
// with the pass's queue wired) is not requeued every interval; elsewhere it is.
func TestSyncedGroupRequeue(t *testing.T) {
	const interval = 10 * time.Minute
	for _, tc := range []struct {
		name  string
		b     backend.Backend
		drift *DriftQueue
		want  bool // requeued about one interval later
	}{
		{name: "a backend that lists its teams, judged by the pass", b: listingTeamsBackend{}, drift: &DriftQueue{}},
		{name: "a backend that does not list its teams", b: teamsBackend{}, drift: &DriftQueue{}, want: true},
		{name: "no drift pass wired", b: listingTeamsBackend{}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme"},
				Spec: scimv1.ScimConfigSpec{Organization: "acme", ResyncInterval: &metav1.Duration{Duration: interval}}}
			g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g", Finalizers: []string{FinalizerDeprovision}},
				Spec: scimv1.OrgGroupSpec{ConfigName: "acme", DisplayName: "acme:devs"}}
			c := withShippedIndexes(t, fake.NewClientBuilder().WithScheme(unitScheme(t))).
				WithObjects(cfg, g).WithStatusSubresource(&scimv1.OrgGroup{}, &scimv1.ScimConfig{}).Build()
			r := &OrgGroupReconciler{Client: c, Backends: oneBackend{tc.b}, Drift: tc.drift, Clock: clock.RealClock{}}
			res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "g"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.RequeueAfter > 0; got != tc.want || (got && res.RequeueAfter < interval-interval/10-time.Second) {
				t.Fatalf("RequeueAfter %s, want requeued about %s later: %v", res.RequeueAfter, interval, tc.want)
			}
			var got scimv1.OrgGroup
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(g), &got); err != nil {
				t.Fatal(err)
			}
			if !groupSynced(&got) {
				t.Fatalf("the group is not synced: %+v", got.Status.Conditions)
			}
		})
	}
}

// The config's reconcile annotation reconciles every group, unless the config's latest
// drift pass judged its groups: then the pass reaches those that differ. A spec change or
// a backend recovery reconciles every group either way.
func TestConfigChangedForGroups(t *testing.T) {
	d := &DriftQueue{}
	key := types.NamespacedName{Namespace: "ns", Name: "acme"}
	old := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme", Generation: 1}}
	annotated := old.DeepCopy()
	annotated.Annotations = map[string]string{scimv1.AnnotationReconcile: "now"}
	respecced := old.DeepCopy()
	respecced.Generation = 2
	p := configChangedForGroups(d)
	for _, tc := range []struct {
		name   string
		judged bool
		new    *scimv1.ScimConfig
		want   bool
	}{
		{name: "annotation, groups not judged by the pass", new: annotated, want: true},
		{name: "annotation, groups judged by the pass", judged: true, new: annotated},
		{name: "spec change, groups judged by the pass", judged: true, new: respecced, want: true},
	} {
		d.setJudgesGroups(key, tc.judged)
		if got := p.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: tc.new}); got != tc.want {
			t.Errorf("%s: reconcile every group = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// listingBackend is a TeamLister whose listings answer members and teams, or fail.
type listingBackend struct {
	backend.Backend
	members, teams error
}

func (b listingBackend) ListMembers(context.Context) ([]backend.Member, error) { return nil, b.members }
func (b listingBackend) ListTeams(context.Context) ([]string, error) {
	return []string{"devs"}, b.teams
}
func (listingBackend) ListedTeamName(team string) (string, error) { return team, nil }

// Review 22 F1, F2: a synced Docker Hub group no longer requeues itself, so a pass that
// cannot list the organization or its teams hands every group to its own reconcile, and
// does not count the groups as judged (the config's annotation then reaches them).
func TestDriftPassGroupsFallBack(t *testing.T) {
	failed := backend.NewTransient("UnexpectedResponse", errors.New("502"))
	for _, tc := range []struct {
		name           string
		members, teams error
		enqueued       int
		judged         bool
	}{
		{name: "both listings answer, the team as wanted", judged: true},
		{name: "the teams cannot be listed", teams: failed, enqueued: 1},
		{name: "the organization cannot be listed", members: failed, enqueued: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme"},
				Spec: scimv1.ScimConfigSpec{Organization: "acme"}}
			g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g", Generation: 1},
				Spec:   scimv1.OrgGroupSpec{ConfigName: "acme", DisplayName: "acme:devs"},
				Status: scimv1.OrgGroupStatus{Team: "devs"}}
			setCond(&g.Status.Conditions, 1, scimv1.ConditionSynced, metav1.ConditionTrue, ReasonSynced, "synced")
			c := withShippedIndexes(t, fake.NewClientBuilder().WithScheme(unitScheme(t))).
				WithObjects(cfg, g).WithStatusSubresource(&scimv1.OrgGroup{}, &scimv1.ScimConfig{}).Build()
			d := &DriftQueue{}
			d.gq = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[ctrl.Request]())
			defer d.gq.ShutDown()
			r := &DriftReconciler{Client: c, Backends: oneBackend{listingBackend{members: tc.members, teams: tc.teams}},
				Queue: d, Clock: clock.RealClock{}}
			key := types.NamespacedName{Namespace: "ns", Name: "acme"}
			_, _ = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key})
			if n := d.gq.Len(); n != tc.enqueued {
				t.Errorf("%d groups handed to their reconcile, want %d", n, tc.enqueued)
			}
			if got := d.judgesGroups(key); got != tc.judged {
				t.Errorf("groups judged by the pass: %v, want %v", got, tc.judged)
			}
		})
	}
}
