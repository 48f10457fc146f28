package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

func member(created time.Time, ready *metav1.Condition) scimv1.OrgMember {
	m := scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
	if ready != nil {
		ready.Type = scimv1.ConditionReady
		m.Status.Conditions = []metav1.Condition{*ready}
	}
	return m
}

func gauge(t *testing.T, v *prometheus.GaugeVec, labels ...string) float64 {
	t.Helper()
	return testutil.ToFloat64(v.WithLabelValues(labels...))
}

// series counts the series of v (the test's config is the only one these gauges hold).
func series(v *prometheus.GaugeVec) int { return testutil.CollectAndCount(v) }

func TestObserveConfig(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	disabled := false
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "okta"}}
	cfg.Status.LastFullSyncTime = &metav1.Time{Time: t0}
	members := []scimv1.OrgMember{
		member(t0, &metav1.Condition{Status: metav1.ConditionTrue, Reason: "Active"}),
		member(t0, &metav1.Condition{Status: metav1.ConditionFalse, Reason: "InvalidCredentials",
			LastTransitionTime: metav1.NewTime(t0.Add(time.Minute))}),
		member(t0, &metav1.Condition{Status: metav1.ConditionFalse, Reason: "InvalidCredentials",
			LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}),
		member(t0, &metav1.Condition{Status: metav1.ConditionUnknown, Reason: "Paused",
			LastTransitionTime: metav1.NewTime(t0)}),
		member(t0.Add(-2*time.Hour), nil),
	}
	ObserveConfig(cfg, members, 10*time.Minute)
	t.Cleanup(func() { ForgetConfig("team-a", "okta") })

	for _, c := range []struct {
		v      *prometheus.GaugeVec
		labels []string
		want   float64
	}{
		{ConfigEnabled, []string{"team-a", "okta"}, 1},
		{ResyncInterval, []string{"team-a", "okta"}, 600},
		{LastFullSync, []string{"team-a", "okta"}, float64(t0.Unix())},
		{MembersNotReady, []string{"team-a", "okta", "InvalidCredentials"}, 2},
		{MembersNotReady, []string{"team-a", "okta", "Paused"}, 1},
		{MembersNotReady, []string{"team-a", "okta", ReasonNoCondition}, 1},
		{MembersNotReadySince, []string{"team-a", "okta", "InvalidCredentials"}, float64(t0.Add(-time.Hour).Unix())},
		{MembersNotReadySince, []string{"team-a", "okta", "Paused"}, float64(t0.Unix())},
		{MembersNotReadySince, []string{"team-a", "okta", ReasonNoCondition}, float64(t0.Add(-2 * time.Hour).Unix())},
	} {
		if got := gauge(t, c.v, c.labels...); got != c.want {
			t.Errorf("%v%v = %v, want %v", c.v, c.labels, got, c.want)
		}
	}

	// The members recover, the config is disabled and loses its full-sync time: the reasons
	// that went away are deleted, the others stay.
	cfg.Spec.Enabled = &disabled
	cfg.Status.LastFullSyncTime = nil
	ObserveConfig(cfg, members[3:4], time.Hour)
	if got := gauge(t, ConfigEnabled, "team-a", "okta"); got != 0 {
		t.Errorf("enabled = %v, want 0", got)
	}
	if n := series(MembersNotReady); n != 1 {
		t.Errorf("%d not-ready series after recovery, want 1 (Paused)", n)
	}
	if n := series(LastFullSync); n != 0 {
		t.Errorf("last full sync still exported without status.lastFullSyncTime")
	}

	ForgetConfig("team-a", "okta")
	for _, v := range []*prometheus.GaugeVec{LastFullSync, ResyncInterval, ConfigEnabled, MembersNotReady, MembersNotReadySince} {
		if n := series(v); n != 0 {
			t.Errorf("%d series left after ForgetConfig", n)
		}
	}
}
