package metrics

// Metrics of the membership controllers: reconciles and members by phase.

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Reconcile results counted by Reconciles.
const (
	ReconcileSuccess  = "success"
	ReconcileRequeue  = "requeue"
	ReconcileError    = "error"
	ReconcileTerminal = "terminal"
)

var (
	// Reconciles counts the reconciles of the membership controllers by controller and
	// result (success, requeue, error, terminal).
	Reconciles = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scim_operator_reconciles_total",
		Help: "Reconciles of the scim-operator controllers by controller and result.",
	}, []string{"controller", "result"})

	// MembersByPhase is the number of OrgMembers of each ScimConfig in each phase.
	MembersByPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "scim_operator_members",
		Help: "OrgMembers of a ScimConfig by phase.",
	}, []string{"namespace", "config", "phase"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(Reconciles, MembersByPhase)
}

// ForgetConfig drops the gauges of a ScimConfig that is gone (members by phase and
// everything ObserveConfig exports).
func ForgetConfig(namespace, config string) {
	MembersByPhase.DeletePartialMatch(prometheus.Labels{"namespace": namespace, "config": config})
	forgetConfigStatus(namespace, config)
}
