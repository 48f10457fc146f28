package controllers

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// addsQueue records how groups are enqueued: at once, or after a delay.
type addsQueue struct {
	groupQueue
	now   []string
	after map[string]time.Duration
}

func (q *addsQueue) Add(r reconcile.Request)                       { q.now = append(q.now, r.Name) }
func (q *addsQueue) AddAfter(r reconcile.Request, d time.Duration) { q.after[r.Name] = d }

// A group's members' arrivals and status changes are gathered (an adoption changes
// thousands a minute, and each group reconcile reads its members and its team's); a member
// leaving the group, deactivated or being deleted reaches it at once.
func TestMemberChangesReachTheirGroupsGatheredUnlessAccessGoes(t *testing.T) {
	member := func(mut func(*scimv1.OrgMember)) *scimv1.OrgMember {
		m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m",
			Labels: map[string]string{scimv1.LabelGroupPrefix + "ops": ""}}}
		m.Spec.Active = true
		m.Status.Phase = scimv1.PhasePending
		if mut != nil {
			mut(m)
		}
		return m
	}
	now := metav1.Now()
	for _, c := range []struct {
		name    string
		new     *scimv1.OrgMember
		delayed bool
	}{
		{"made Active", member(func(m *scimv1.OrgMember) { m.Status.Phase = scimv1.PhaseActive; m.Status.BackendID = "m1" }), true},
		{"its origin recorded", member(func(m *scimv1.OrgMember) { m.Status.Origin = scimv1.OriginAdopted }), true},
		{"left the group", member(func(m *scimv1.OrgMember) { m.Labels = map[string]string{} }), false},
		{"deactivated", member(func(m *scimv1.OrgMember) { m.Spec.Active = false }), false},
		// (the start of a deletion alone enqueues no group: the member's own reconcile takes
		// it out of the organization, and its status changes and Delete then come at once)
		{"its status changing while it is deleted", member(func(m *scimv1.OrgMember) { m.DeletionTimestamp = &now; m.Status.Phase = scimv1.PhaseActive }), false},
	} {
		q := &addsQueue{after: map[string]time.Duration{}}
		memberGroupsHandler{}.Update(context.Background(), event.UpdateEvent{ObjectOld: member(nil), ObjectNew: c.new}, q)
		switch {
		case c.delayed && (len(q.now) != 0 || q.after["ops"] != memberGroupsDelay):
			t.Errorf("%s: enqueued at once %v, after %v; want only after memberGroupsDelay", c.name, q.now, q.after)
		case !c.delayed && (len(q.now) == 0 || len(q.after) != 0):
			t.Errorf("%s: enqueued at once %v, after %v; want at once", c.name, q.now, q.after)
		}
	}
	q := &addsQueue{after: map[string]time.Duration{}}
	memberGroupsHandler{}.Create(context.Background(), event.CreateEvent{Object: member(nil)}, q)
	if q.after["ops"] != memberGroupsDelay || len(q.now) != 0 {
		t.Errorf("a new member: at once %v, after %v; want after memberGroupsDelay", q.now, q.after)
	}
	q = &addsQueue{after: map[string]time.Duration{}}
	memberGroupsHandler{}.Delete(context.Background(), event.DeleteEvent{Object: member(nil)}, q)
	if len(q.now) != 1 || len(q.after) != 0 {
		t.Errorf("a deleted member: at once %v, after %v; want at once", q.now, q.after)
	}
}
