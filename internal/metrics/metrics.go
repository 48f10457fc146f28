// Package metrics holds the operator's Prometheus metrics, registered on
// controller-runtime's registry so the manager's metrics endpoint serves them.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Result label values of backend calls.
const (
	ResultSuccess     = "success"
	ResultTransient   = "transient"
	ResultRateLimited = "rate_limited"
	ResultPermanent   = "permanent"
)

var (
	// BackendCalls counts membership-backend calls by backend, operation (the Backend
	// method, e.g. "EnsureMember") and result (success, transient, rate_limited, permanent).
	BackendCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scim_backend_calls_total",
		Help: "Membership backend calls by backend, operation and result.",
	}, []string{"backend", "op", "result"})

	// BackendCallDuration is the latency of membership-backend calls.
	BackendCallDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "scim_backend_call_duration_seconds",
		Help:    "Latency of membership backend calls by backend and operation.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"backend", "op"})
)

// Steps of a SCIM user create after its member is written, for CreateWait.
const (
	// CreateClaimRead is the live read of the userName's claim (internal/scimstore's
	// write-then-read rule), until it has a verdict.
	CreateClaimRead = "claim_read"
	// CreateCache is the wait until the manager's cache, the pages' order and the
	// indexes show the member (so the IdP's next read finds it).
	CreateCache = "cache"
)

// CreateWait is how long a SCIM user create, once its member is written, waited for each
// of two steps that run side by side: the claim's live read and the cache. The answer
// waits for both. Only creates answered 201 on the claimless path (a userName created
// under its derived object name, internal/scimstore) whose cache showed the member are
// counted.
var CreateWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "scim_user_create_wait_seconds",
	Help:    "How long a SCIM user create waited, after writing its member, for its name claim's live read and for the manager's cache (side by side).",
	Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
}, []string{"step"})

func init() {
	metrics.Registry.MustRegister(BackendCalls, BackendCallDuration, CreateWait)
}

// ObserveBackendCall records one backend call that started at start.
func ObserveBackendCall(backend, op, result string, start time.Time) {
	BackendCalls.WithLabelValues(backend, op, result).Inc()
	BackendCallDuration.WithLabelValues(backend, op).Observe(time.Since(start).Seconds())
}
