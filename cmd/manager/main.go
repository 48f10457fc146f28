// Command manager runs scim-operator: the controllers (leader-elected) and the SCIM HTTP
// server (on every replica). It reads its flags into manager.Options and starts what
// manager.New builds, the same constructor the tests use.
package main

import (
	"flag"
	"os"
	"strings"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/manager"
)

func main() {
	var o manager.Options
	flag.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443",
		"Address of the metrics endpoint (HTTPS with authn/authz unless --metrics-secure=false); 0 disables it.")
	flag.BoolVar(&o.SecureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS behind Kubernetes authentication and authorization.")
	flag.StringVar(&o.MetricsCertDir, "metrics-cert-dir", "",
		"Directory with tls.crt/tls.key for the metrics endpoint (a self-signed pair is generated when empty).")
	flag.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz probes.")
	flag.StringVar(&o.PprofAddr, "pprof-bind-address", "",
		"Address of net/http/pprof's profiles (/debug/pprof/), unauthenticated: loopback only, for profiling. Empty: off.")
	flag.BoolVar(&o.LeaderElection, "leader-elect", false,
		"Elect a leader so that one replica runs the controllers (every replica serves SCIM).")
	flag.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election lease (defaults to the pod's namespace).")
	flag.BoolVar(&o.EnableHTTP2, "enable-http2", false,
		"Allow HTTP/2 on the metrics server (off by default: HTTP/2 Stream Cancellation and Rapid Reset CVEs).")
	flag.StringVar(&o.ScimAddr, "scim-bind-address", ":8090", "Address of the SCIM 2.0 endpoint.")
	flag.StringVar(&o.ScimCertDir, "scim-cert-dir", "",
		"Directory with tls.crt and tls.key (a kubernetes.io/tls Secret mounted there): SCIM is served over HTTPS "+
			"with them, reloaded when they change. Required unless --scim-insecure-http.")
	flag.BoolVar(&o.ScimInsecureHTTP, "scim-insecure-http", false,
		"Serve SCIM over plain HTTP instead of HTTPS: only behind a proxy that terminates TLS, or on loopback.")
	var trusted string
	flag.StringVar(&trusted, "scim-trusted-proxies", "",
		"Comma-separated CIDRs (or addresses) of reverse proxies whose X-Forwarded-For, X-Forwarded-Proto and "+
			"X-Forwarded-Host headers are believed (client address for throttling; scheme and host of meta.location). "+
			"Empty: those headers are ignored.")
	flag.Int64Var(&o.ScimMaxBodyBytes, "scim-max-body-bytes", 1<<20, "Largest SCIM request body accepted (413 above).")
	flag.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", controllers.DefaultMaxConcurrentReconciles,
		"Workers of each controller. The OrgMember and OrgGroup controllers share theirs out between ScimConfigs: a config "+
			"with a slow or rate-limited backend never holds them all.")
	flag.StringVar(&o.DefaultServiceAccount, "default-service-account", "",
		"ServiceAccount, in each ScimConfig's own namespace, that the kubernetes backend impersonates to create and "+
			"patch bindings when spec.backend.kubernetes.serviceAccountName is empty (lockdown). Empty: such configs "+
			"write with the manager's own rights. The install sets scim-provisioner.")
	flag.StringVar(&o.AuthorizationWebhookAddr, "authorization-webhook-bind-address", "",
		"Address of the authorization webhook (HTTPS, path /authorize) that the API server calls for ScimConfigs with "+
			"spec.backend.kubernetes.grantLayout: Webhook; served on every replica. Empty: off. See docs/authorization-webhook.md.")
	flag.StringVar(&o.AuthorizationWebhookCertDir, "authorization-webhook-cert-dir", "",
		"Directory with tls.crt and tls.key of the authorization webhook. Empty: the SCIM server's (--scim-cert-dir).")
	zo := zap.Options{Development: false}
	zo.BindFlags(flag.CommandLine)
	flag.Parse()
	o.ScimTrustedProxies = splitList(trusted)
	if zo.Level != nil {
		zo.Level = cappedLevel{zo.Level}
	}
	ctrl.SetLogger(lazy(zap.New(zap.UseFlagOptions(&zo))))
	log := ctrl.Log.WithName("setup")
	setMemoryLimit(log, memlimit.FromCgroup)

	mgr, err := manager.New(ctrl.GetConfigOrDie(), o)
	if err != nil {
		log.Error(err, "building the manager")
		os.Exit(1)
	}
	log.Info("starting manager", "scimAddress", o.ScimAddr, "scimTLS", !o.ScimInsecureHTTP, "leaderElection", o.LeaderElection)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		ctrl.Log.Error(err, "manager exited")
		os.Exit(1)
	}
}

// maxVerbosity is the most verbose level the manager logs at. From V(8) on, client-go logs
// the bodies of API requests and responses through the caller's contextual logger (the
// reconcilers'), and those bodies include Secrets: the patch that rotates a SCIM token
// holds the new and the previous token. A --zap-log-level of 8 or more logs as 7.
const maxVerbosity = 7

// cappedLevel is a log level that never enables more than maxVerbosity.
type cappedLevel struct{ zapcore.LevelEnabler }

func (c cappedLevel) Enabled(l zapcore.Level) bool {
	return l >= -maxVerbosity && c.LevelEnabler.Enabled(l)
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}
