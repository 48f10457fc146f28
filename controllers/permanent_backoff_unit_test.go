package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
)

// Issue 10: a member Docker Hub keeps refusing must not cost its calls on every resync
// interval forever. The first retry comes one interval after the failure; after that the
// wait is as long as the member has been failing with that same error (so the waits
// double), at most a day; a different failure, or a changed spec, starts over.
func TestPermanentFailureBacksOff(t *testing.T) {
	const interval = 10 * time.Minute
	const capWait = 24 * time.Hour // the cap the fix documents (permanentRetryCap)
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	refused := backend.NewPermanent("InvalidUser", errors.New(`Docker Hub refused to invite "nosuch": not a valid email or Docker ID`))
	other := backend.NewPermanent("InviteRejected", errors.New(`Docker Hub answered "blocked" to the invitation of "nosuch"`))
	lastOwner := backend.NewPermanent("LastOwner", errors.New("cannot remove the last owner of the organization"))
	cfg := &scimv1.ScimConfig{Spec: scimv1.ScimConfigSpec{ResyncInterval: &metav1.Duration{Duration: interval}}}

	for _, tc := range []struct {
		name string
		// failingFor > 0: the member met first (at now - failingFor) the failure first
		first       error
		failingFor  time.Duration
		respec      bool          // its spec changed since
		inactive    bool          // deactivated: it is to lose access
		between     error         // met half-way through the failure (a 429)
		betweenAgo  time.Duration // when between was met, if not half-way
		respecFirst bool          // the spec changed before between
		now         error
		want        time.Duration // before jitter (±10%)
	}{
		{name: "just failed", now: refused, want: interval},
		{name: "the first retry, one interval later", first: refused, failingFor: interval, now: refused, want: interval},
		{name: "failing for 3 intervals", first: refused, failingFor: 3 * interval, now: refused, want: 3 * interval},
		{name: "failing for 5 days", first: refused, failingFor: 5 * 24 * time.Hour, now: refused, want: capWait},
		{name: "failing for 3 intervals, rate limited in between", first: refused, failingFor: 3 * interval,
			between: backend.NewRateLimited(time.Minute, errors.New("429")), now: refused, want: 3 * interval},
		{name: "a different failure", first: other, failingFor: 5 * 24 * time.Hour, now: refused, want: interval},
		{name: "the same failure of a changed spec", first: refused, failingFor: 5 * 24 * time.Hour, respec: true, now: refused, want: interval},
		// review 21 F3: the 429 re-states Synced False for the new generation, which must
		// not carry the old failure's start over to the new spec
		{name: "the same failure of a changed spec, rate limited after the change", first: refused, failingFor: 5 * 24 * time.Hour,
			respecFirst: true, between: backend.NewRateLimited(time.Minute, errors.New("429")), betweenAgo: time.Minute,
			now: refused, want: interval},
		// review 21: a member to lose access whose removal keeps failing (the
		// organization's last owner) must lose it within an interval of a repair
		{name: "deactivated, its removal failing for 5 days", first: lastOwner, failingFor: 5 * 24 * time.Hour, inactive: true,
			now: lastOwner, want: interval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(now.Add(-tc.failingFor))
			r := &OrgMemberReconciler{Clock: clk}
			m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "m", Generation: 1}}
			m.Status.Phase = scimv1.PhaseActive
			m.Spec.Active = !tc.inactive
			setCond(&m.Status.Conditions, 1, scimv1.ConditionSynced, metav1.ConditionTrue, ReasonSynced, "the backend matches the spec")
			if tc.first != nil {
				if _, err := r.backendError(context.Background(), m, cfg, "add the member", tc.first); err != nil {
					t.Fatal(err)
				}
				// as the API server stores it: to the second
				c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced)
				c.LastTransitionTime = metav1.NewTime(c.LastTransitionTime.Rfc3339Copy().Time)
			}
			if tc.respecFirst {
				m.Generation++
			}
			if tc.between != nil {
				ago := tc.failingFor / 2
				if tc.betweenAgo > 0 {
					ago = tc.betweenAgo
				}
				clk.SetTime(now.Add(-ago))
				if _, err := r.backendError(context.Background(), m, cfg, "observe the member", tc.between); err != nil {
					t.Fatal(err)
				}
			}
			if tc.respec {
				m.Generation++
			}
			clk.SetTime(now)
			res, err := r.backendError(context.Background(), m, cfg, "add the member", tc.now)
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := tc.want-tc.want/10-time.Second, tc.want+tc.want/10+time.Second
			if res.RequeueAfter < lo || res.RequeueAfter > hi {
				t.Errorf("retried after %s, want %s ±10%%", res.RequeueAfter, tc.want)
			}
			if m.Status.Phase != scimv1.PhaseFailed {
				t.Errorf("phase %s, want Failed", m.Status.Phase)
			}
		})
	}
}

// A group's Permanent error is retried every interval, not backed off: its adds come
// before its removals, and a removal must not wait for a day (review 21).
func TestPermanentGroupFailureRetriesEveryInterval(t *testing.T) {
	const interval = 10 * time.Minute
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	taken := backend.NewPermanent("InvalidTeam", errors.New("team name is taken by an owner team"))
	cfg := &scimv1.ScimConfig{Spec: scimv1.ScimConfigSpec{ResyncInterval: &metav1.Duration{Duration: interval}}}
	clk := clocktesting.NewFakePassiveClock(now.Add(-3 * 24 * time.Hour))
	r := &OrgGroupReconciler{Clock: clk}
	g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g", Generation: 1}}
	if _, err := r.backendError(context.Background(), g, cfg, "create team ops", taken); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(now)
	res, _ := r.backendError(context.Background(), g, cfg, "create team ops", taken)
	if res.RequeueAfter > interval+interval/10+time.Second {
		t.Fatalf("a group failing for 3 days retries after %s, want about one interval (%s)", res.RequeueAfter, interval)
	}
}
