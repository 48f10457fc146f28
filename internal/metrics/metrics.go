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

func init() {
	metrics.Registry.MustRegister(BackendCalls, BackendCallDuration)
}

// ObserveBackendCall records one backend call that started at start.
func ObserveBackendCall(backend, op, result string, start time.Time) {
	BackendCalls.WithLabelValues(backend, op, result).Inc()
	BackendCallDuration.WithLabelValues(backend, op).Observe(time.Since(start).Seconds())
}
