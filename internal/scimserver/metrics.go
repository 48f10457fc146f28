package scimserver

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scim_requests_total",
		Help: "SCIM requests by ScimConfig (namespace/name), method, resource and HTTP status code.",
	}, []string{"config", "method", "resource", "code"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "scim_request_duration_seconds",
		Help:    "SCIM request latency by method and resource.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"method", "resource"})
	// authThrottled has no client or token label: clients are unbounded, tokens secret.
	authThrottled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scim_auth_throttled_total",
		Help: "Failed SCIM authentication attempts answered 429 by the failure limiter, by ScimConfig " +
			"namespace and name (both empty when the path names no existing ScimConfig).",
	}, []string{"namespace", "config"})
	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(requestsTotal, requestDuration, authThrottled)
	})
}
