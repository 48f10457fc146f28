package metrics

// Metrics of each ScimConfig's drift repair and of its members that are not Ready,
// exported by the ScimConfig reconciler every time it recounts the config's members
// (ObserveConfig). They are what the alerts of config/components/monitoring need to tell
// "stuck" and "overdue" from "busy": a member's Ready condition says since when it has
// been waiting, status.lastFullSyncTime since when the config has not been fully compared
// with its backend.

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// ReasonNoCondition is the reason label of members that have no Ready condition yet (no
// reconcile has looked at them).
const ReasonNoCondition = "NoCondition"

var (
	// LastFullSync is a ScimConfig's status.lastFullSyncTime as a Unix time: every member it
	// manages had been compared with the backend since then. Absent until the first full pass.
	LastFullSync = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_last_full_sync_timestamp_seconds",
		Help: "Unix time of a ScimConfig's status.lastFullSyncTime: every member it manages had been compared with the backend since then.",
	}, []string{"namespace", "config"})

	// ResyncInterval is a ScimConfig's drift-repair period (spec.resyncInterval or the
	// default), the yardstick of LastFullSync.
	ResyncInterval = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_resync_interval_seconds",
		Help: "A ScimConfig's drift-repair period in seconds (spec.resyncInterval or the default).",
	}, []string{"namespace", "config"})

	// ConfigCreated is a ScimConfig's creation time as a Unix time: the yardstick of
	// ScimDriftPassOverdue until the first full pass (LastFullSync absent).
	ConfigCreated = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_config_created_timestamp_seconds",
		Help: "Unix time a ScimConfig was created: the age a config whose first full pass has not completed is measured from.",
	}, []string{"namespace", "config"})

	// ConfigEnabled is 1 for an enabled ScimConfig and 0 for a disabled one (nothing syncs).
	ConfigEnabled = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_config_enabled",
		Help: "1 when a ScimConfig is enabled (spec.enabled), 0 when it is disabled and nothing syncs.",
	}, []string{"namespace", "config"})

	// MembersNotReady counts the OrgMembers of a ScimConfig whose Ready condition is not
	// True, by the condition's reason.
	MembersNotReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_members_not_ready",
		Help: "OrgMembers of a ScimConfig whose Ready condition is not True, by the condition's reason.",
	}, []string{"namespace", "config", "reason"})

	// MembersNotReadySince is, for each reason of MembersNotReady, the Unix time since which
	// the longest-waiting of those members has not been Ready (its Ready condition's
	// lastTransitionTime; its creation time when it has no Ready condition yet).
	MembersNotReadySince = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_members_not_ready_oldest_timestamp_seconds",
		Help: "Unix time since which the longest-waiting OrgMember of a ScimConfig with this Ready reason has not been Ready.",
	}, []string{"namespace", "config", "reason"})

	// DriftPasses counts a ScimConfig's drift passes (one paged listing of the whole
	// organization per resync interval) by result: success or error.
	DriftPasses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scim_operator_drift_passes_total",
		Help: "Drift passes of a ScimConfig (one listing of the backend's organization) by result.",
	}, []string{"namespace", "config", "result"})

	// DriftListed is how many people the last drift pass listed in the backend.
	DriftListed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_drift_listed",
		Help: "People (members and invitations, or bound users) the last drift pass of a ScimConfig listed in its backend.",
	}, []string{"namespace", "config"})

	// DriftDiffering is how many OrgMembers the last drift pass found different from the
	// backend (and enqueued for repair).
	DriftDiffering = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_drift_differing",
		Help: "OrgMembers of a ScimConfig the last drift pass found different from the backend and enqueued for repair.",
	}, []string{"namespace", "config"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(LastFullSync, ConfigCreated, ResyncInterval, ConfigEnabled, MembersNotReady, MembersNotReadySince,
		DriftPasses, DriftListed, DriftDiffering)
}

// notReadyReasons remembers the reason labels set for each config, so that a reason that
// went away is deleted rather than the whole config reset (a scrape between a reset and
// the new values would see the series vanish, which restarts every alert's "for").
var notReadyReasons = struct {
	sync.Mutex
	m map[string]map[string]bool
}{m: map[string]map[string]bool{}}

// ObserveConfig exports the state of cfg that its reconciler has just recounted: its
// members (all of them, as listed for status.members), status.lastFullSyncTime, its
// enabled flag and resync, its drift-repair period.
func ObserveConfig(cfg *scimv1.ScimConfig, members []scimv1.OrgMember, resync time.Duration) {
	ns, name := cfg.Namespace, cfg.Name
	ConfigEnabled.WithLabelValues(ns, name).Set(boolFloat(cfg.IsEnabled()))
	ResyncInterval.WithLabelValues(ns, name).Set(resync.Seconds())
	ConfigCreated.WithLabelValues(ns, name).Set(unix(cfg.CreationTimestamp.Time))
	if t := cfg.Status.LastFullSyncTime; t != nil {
		LastFullSync.WithLabelValues(ns, name).Set(unix(t.Time))
	} else {
		LastFullSync.DeleteLabelValues(ns, name)
	}

	count := map[string]float64{}
	since := map[string]time.Time{}
	for i := range members {
		m := &members[i]
		reason, t := ReasonNoCondition, m.CreationTimestamp.Time
		if c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionReady); c != nil {
			if c.Status == metav1.ConditionTrue {
				continue
			}
			reason = c.Reason
			if !c.LastTransitionTime.IsZero() {
				t = c.LastTransitionTime.Time
			}
		}
		count[reason]++
		if old, ok := since[reason]; !ok || t.Before(old) {
			since[reason] = t
		}
	}

	notReadyReasons.Lock()
	defer notReadyReasons.Unlock()
	key := ns + "/" + name
	for reason := range notReadyReasons.m[key] {
		if _, ok := count[reason]; !ok {
			MembersNotReady.DeleteLabelValues(ns, name, reason)
			MembersNotReadySince.DeleteLabelValues(ns, name, reason)
		}
	}
	set := make(map[string]bool, len(count))
	for reason, n := range count {
		MembersNotReady.WithLabelValues(ns, name, reason).Set(n)
		MembersNotReadySince.WithLabelValues(ns, name, reason).Set(unix(since[reason]))
		set[reason] = true
	}
	notReadyReasons.m[key] = set
}

// forgetConfigStatus drops the series of ObserveConfig for a ScimConfig that is gone.
func forgetConfigStatus(namespace, config string) {
	l := prometheus.Labels{"namespace": namespace, "config": config}
	for _, v := range []*prometheus.GaugeVec{LastFullSync, ConfigCreated, ResyncInterval, ConfigEnabled, MembersNotReady, MembersNotReadySince,
		DriftListed, DriftDiffering} {
		v.DeletePartialMatch(l)
	}
	DriftPasses.DeletePartialMatch(l)
	notReadyReasons.Lock()
	delete(notReadyReasons.m, namespace+"/"+config)
	notReadyReasons.Unlock()
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// EventsDropped counts the events the manager did not write (internal/recorder): their
// writer's queue was full (the API server fell behind), the API server refused or kept
// failing the write, or the manager was stopping.
var EventsDropped = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "scim_operator_events_dropped_total",
	Help: "Kubernetes events the manager did not write: their writer's queue was full, the API server refused the write or kept failing it, or the manager was stopping.",
})

func init() { ctrlmetrics.Registry.MustRegister(EventsDropped) }
