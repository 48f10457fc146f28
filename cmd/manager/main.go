// Command manager runs scim-operator: the controllers (leader-elected) and the SCIM HTTP
// server (on every replica).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"net/http"
	"os"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/backend/registry"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/scimserver"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(scimv1.AddToScheme(scheme))
}

type options struct {
	metricsAddr, probeAddr     string
	secureMetrics, enableHTTP2 bool
	leaderElect                bool
	leaderElectionNamespace    string
	scimAddr, scimCertDir      string
	scimMaxBody                int64
	metricsCertDir             string
	zap                        zap.Options
}

func main() {
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443",
		"Address of the metrics endpoint (HTTPS with authn/authz unless --metrics-secure=false); 0 disables it.")
	flag.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS behind Kubernetes authentication and authorization.")
	flag.StringVar(&o.metricsCertDir, "metrics-cert-dir", "",
		"Directory with tls.crt/tls.key for the metrics endpoint (a self-signed pair is generated when empty).")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz probes.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false,
		"Elect a leader so that one replica runs the controllers (every replica serves SCIM).")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election lease (defaults to the pod's namespace).")
	flag.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"Allow HTTP/2 on the metrics server (off by default: HTTP/2 Stream Cancellation and Rapid Reset CVEs).")
	flag.StringVar(&o.scimAddr, "scim-bind-address", ":8090", "Address of the SCIM 2.0 endpoint.")
	flag.StringVar(&o.scimCertDir, "scim-cert-dir", "",
		"Directory with tls.crt/tls.key: serve SCIM over HTTPS. Empty serves plain HTTP (terminate TLS in front).")
	flag.Int64Var(&o.scimMaxBody, "scim-max-body-bytes", 1<<20, "Largest SCIM request body accepted (413 above).")
	o.zap = zap.Options{Development: false}
	o.zap.BindFlags(flag.CommandLine)
	flag.Parse()
	if o.zap.Level != nil {
		o.zap.Level = cappedLevel{o.zap.Level}
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
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

func run(ctx context.Context, o options) error {
	log := ctrl.Log.WithName("setup")
	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   o.metricsAddr,
		SecureServing: o.secureMetrics,
		CertDir:       o.metricsCertDir,
		TLSOpts:       tlsOpts,
	}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.probeAddr,
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "scim-operator.scim.operator.dev",
		LeaderElectionNamespace:       o.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		// Members are cached by the thousand: keep only what the server and controllers read.
		// The kubernetes backend's bindings are cached only when they carry its labels.
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         k8sbackend.CacheByObject(),
		},
		// Secrets are read directly (token and credential Secrets only), never cached whole.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	if err != nil {
		return err
	}
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	if err := setup(ctx, mgr, o); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("cache not synced")
		}
		return nil
	}); err != nil {
		return err
	}
	log.Info("starting manager", "scimAddress", o.scimAddr, "leaderElection", o.leaderElect)
	return mgr.Start(ctx)
}

// setup wires the controllers and the SCIM server into the manager.
func setup(_ context.Context, mgr ctrl.Manager, o options) error {
	srv, err := scimserver.New(scimserver.Options{
		Addr:         o.scimAddr,
		CertDir:      o.scimCertDir,
		Client:       mgr.GetClient(),
		APIReader:    mgr.GetAPIReader(),
		Cache:        mgr.GetCache(),
		MaxBodyBytes: o.scimMaxBody,
		Log:          ctrl.Log.WithName("scim"),
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(srv); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("scim", srv.ReadyCheck); err != nil {
		return err
	}
	return controllers.SetupWithManager(mgr, controllers.Options{Backends: NewBackends(mgr)})
}

// NewBackends is the backend Provider of the manager: every backend this binary knows.
func NewBackends(mgr ctrl.Manager) *registry.Registry {
	return registry.New(mgr.GetClient(), mgr.GetAPIReader(), registry.Options{
		DockerHub: registry.DockerHub(ctrl.Log.WithName("dockerhub")),
	})
}
