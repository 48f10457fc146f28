// Package manager builds the scim-operator manager: the controllers (leader-elected) and
// the SCIM HTTP server (on every replica), wired to the real backend registry. The
// manager binary (cmd/manager) and the tests that run the manager in-process build it
// with the same New, so the tests run what ships.
package manager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/authz"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/backend/registry"
	"github.com/scim-operator/scim-operator/internal/cachepolicy"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/recorder"
	"github.com/scim-operator/scim-operator/internal/scimserver"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// LeaderElectionID is the name of the leader election lease.
const LeaderElectionID = "scim-operator.scim.operator.dev"

// The leader election's timings (controller-runtime's defaults, named here so that the
// failover bound can be stated: docs/faults.md). The leader renews the Lease every
// LeaderRetryPeriod and gives up leading when it could not for LeaderRenewDeadline. A
// replica that is not the leader reads the Lease every LeaderRetryPeriod (client-go adds
// up to 20% jitter) and takes it once it has seen the same renewal for LeaderLeaseDuration.
// A leader killed without releasing the Lease is therefore replaced between
// LeaderLeaseDuration and LeaderLeaseDuration + 2 x 1.2 x LeaderRetryPeriod after its
// last renewal (one period to see that renewal, one to look again after it expired), plus
// the API server's answer times: never sooner, which is what keeps two leaders apart.
const (
	LeaderLeaseDuration = 15 * time.Second
	LeaderRenewDeadline = 10 * time.Second
	LeaderRetryPeriod   = 2 * time.Second
)

// Options are what differs between one manager and another: addresses, leader election,
// certificates and limits. The zero value of a field means its documented default.
type Options struct {
	// MetricsAddr is the metrics endpoint's address; "0" disables it.
	MetricsAddr string
	// SecureMetrics serves metrics over HTTPS behind Kubernetes authentication and
	// authorization.
	SecureMetrics bool
	// MetricsCertDir holds tls.crt/tls.key for the metrics endpoint (self-signed when empty).
	MetricsCertDir string
	// EnableHTTP2 allows HTTP/2 on the metrics server (off: HTTP/2 Rapid Reset CVEs).
	EnableHTTP2 bool
	// ProbeAddr is the address of /healthz and /readyz; "0" disables them.
	ProbeAddr string
	// LeaderElection elects one replica to run the controllers (every replica serves SCIM).
	LeaderElection bool
	// LeaderElectionNamespace is the lease's namespace (the pod's when empty).
	LeaderElectionNamespace string
	// ScimAddr is the SCIM 2.0 endpoint's address (":8090" when empty).
	ScimAddr string
	// ScimCertDir holds tls.crt and tls.key (a kubernetes.io/tls Secret mounted there):
	// SCIM is served over HTTPS with them, reloaded when the files change. Required unless
	// ScimInsecureHTTP; New fails when they cannot be read.
	ScimCertDir string
	// ScimInsecureHTTP serves SCIM over plain HTTP, the only way to get it (behind a proxy
	// that terminates TLS, or on loopback). It excludes ScimCertDir.
	ScimInsecureHTTP bool
	// ScimTrustedProxies are the CIDRs (or addresses) of reverse proxies whose
	// X-Forwarded-For, -Proto and -Host headers are believed (scimserver.Options.TrustedProxies).
	// Empty: those headers are ignored.
	ScimTrustedProxies []string
	// ScimMaxBodyBytes is the largest SCIM request body accepted (1 MiB when zero).
	ScimMaxBodyBytes int64
	// DefaultServiceAccount is the ServiceAccount, in each ScimConfig's namespace, that the
	// kubernetes backend impersonates to write bindings when the config names none
	// (lockdown; docs/rbac.md). Empty: such configs write with the manager's own rights.
	DefaultServiceAccount string
	// StatusInterval is how often a ScimConfig re-checks its backend and recounts its
	// members (controllers.DefaultStatusInterval when zero).
	StatusInterval time.Duration
	// Backends gives each ScimConfig its membership backend: nil means NewBackends, every
	// backend this binary knows (what cmd/manager uses). A suite that stands in for a
	// backend passes its own Provider and keeps everything else as shipped.
	Backends backend.Provider
	// MaxConcurrentReconciles is the number of workers of each controller
	// (controllers.DefaultMaxConcurrentReconciles when zero). The OrgMember and OrgGroup
	// controllers share theirs out between ScimConfigs, so that a slow backend cannot hold
	// them all.
	MaxConcurrentReconciles int
	// AuthorizationWebhookAddr is the address of the authorization webhook (HTTPS, path
	// /authorize) that answers the API server for the Webhook grant layout, on every
	// replica; empty: not served (docs/authorization-webhook.md).
	AuthorizationWebhookAddr string
	// AuthorizationWebhookCertDir holds the webhook's tls.crt and tls.key; empty: the SCIM
	// server's (ScimCertDir).
	AuthorizationWebhookCertDir string
	// PprofAddr serves net/http/pprof's profiles (/debug/pprof/) on this address, for
	// profiling the manager (make bench -pprof); empty, the default, serves nothing. The
	// profiles are unauthenticated: bind it to loopback.
	PprofAddr string
	// SkipControllerNameValidation lets one process build more than one manager (a test
	// that restarts the manager in-process); controller names are otherwise unique per
	// process.
	SkipControllerNameValidation bool
}

// Scheme is the manager's scheme: client-go's kinds and this project's API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(scimv1.AddToScheme(s))
	return s
}

// Manager is a controller-runtime manager with the SCIM server New added to it (tests
// build extra handlers over its client and cache, or serve its Handler in-process).
type Manager struct {
	ctrl.Manager
	SCIM   *scimserver.Server
	events *recorder.Broadcaster
}

// Start runs the manager until ctx ends, and its events until every controller has
// stopped: what a controller records while it stops is still written (controller-runtime
// stops runnables that need no leader election before the controllers).
func (m *Manager) Start(ctx context.Context) error {
	evCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); _ = m.events.Start(evCtx) }()
	err := m.Manager.Start(ctx)
	stop()
	<-done
	return err
}

// New builds the manager on restConfig: its cache and client, the field indexes, the SCIM
// server and its readiness check, the ScimConfig, OrgMember and OrgGroup controllers with
// every backend this binary knows (NewBackends), and the health and readiness checks.
// Start it with Start(ctx).
func New(restConfig *rest.Config, o Options) (*Manager, error) {
	if sa := o.DefaultServiceAccount; sa != "" {
		if errs := validation.IsDNS1123Subdomain(sa); len(errs) > 0 {
			return nil, fmt.Errorf("--default-service-account %q is not a ServiceAccount name: %s", sa, strings.Join(errs, "; "))
		}
	}
	switch {
	case o.ScimCertDir == "" && !o.ScimInsecureHTTP:
		return nil, errors.New("SCIM is served over HTTPS: give a directory with tls.crt and tls.key (--scim-cert-dir), " +
			"or ask for plain HTTP explicitly (--scim-insecure-http) when a proxy in front terminates TLS")
	case o.ScimCertDir != "" && o.ScimInsecureHTTP:
		return nil, errors.New("--scim-cert-dir and --scim-insecure-http exclude each other: choose HTTPS or plain HTTP")
	case o.ScimCertDir != "":
		if err := scimserver.CheckCertDir(o.ScimCertDir); err != nil {
			return nil, err
		}
	}
	if o.AuthorizationWebhookAddr != "" {
		if _, err := authzCertDir(o); err != nil {
			return nil, err
		}
	}
	var tlsOpts []func(*tls.Config)
	if !o.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   o.MetricsAddr,
		SecureServing: o.SecureMetrics,
		CertDir:       o.MetricsCertDir,
		TLSOpts:       tlsOpts,
	}
	if o.SecureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	if o.MaxConcurrentReconciles < 0 {
		return nil, fmt.Errorf("--max-concurrent-reconciles %d: give a positive number of workers", o.MaxConcurrentReconciles)
	}
	if o.MaxConcurrentReconciles == 0 {
		o.MaxConcurrentReconciles = controllers.DefaultMaxConcurrentReconciles
	}
	ctrlCfg := config.Controller{MaxConcurrentReconciles: o.MaxConcurrentReconciles}
	if o.SkipControllerNameValidation {
		skip := true
		ctrlCfg.SkipNameValidation = &skip
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        Scheme(),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        o.ProbeAddr,
		PprofBindAddress:              o.PprofAddr,
		LeaderElection:                o.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 ptr.To(LeaderLeaseDuration),
		RenewDeadline:                 ptr.To(LeaderRenewDeadline),
		RetryPeriod:                   ptr.To(LeaderRetryPeriod),
		Controller:                    ctrlCfg,
		Cache:                         cachepolicy.Cache(),
		// the cache that carries the compact indexes (index.Setup, SetupGrants, SetupIndex)
		NewCache: index.NewCache,
		Client:   cachepolicy.Client(),
	})
	if err != nil {
		return nil, err
	}
	if err := index.Setup(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	// the kubernetes backends read their grants through this cache (WithGrantIndex below)
	if err := k8sbackend.SetupIndex(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	events := recorder.New(recorder.Client{Client: mgr.GetClient()}, mgr.GetScheme())
	srv, err := setup(mgr, o, events)
	if err != nil {
		return nil, err
	}
	if err := setupAuthz(mgr, o); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("cache not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return &Manager{Manager: mgr, SCIM: srv, events: events}, nil
}

// authzCertDir is the authorization webhook's certificate directory, checked: its own, else
// the SCIM server's.
func authzCertDir(o Options) (string, error) {
	dir := o.AuthorizationWebhookCertDir
	if dir == "" {
		dir = o.ScimCertDir
	}
	if dir == "" {
		return "", errors.New("the authorization webhook is served over HTTPS: give --authorization-webhook-cert-dir " +
			"(or --scim-cert-dir, whose certificate it then uses)")
	}
	if err := scimserver.CheckCertDir(dir); err != nil {
		return "", fmt.Errorf("the authorization webhook's certificate: %w", err)
	}
	return dir, nil
}

// setupAuthz adds the authorization webhook when o asks for it: the ledger index, the
// informers it reads (started with the cache, so that the first review does not wait for
// them) and its server.
func setupAuthz(mgr ctrl.Manager, o Options) error {
	if o.AuthorizationWebhookAddr == "" {
		return nil
	}
	certDir, err := authzCertDir(o)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := index.SetupGrants(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	for _, obj := range []client.Object{&rbacv1.ClusterRole{}, &rbacv1.Role{}, &scimv1.ScimConfig{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return err
		}
	}
	srv, err := authz.NewServer(&authz.Authorizer{Reader: mgr.GetCache()}, authz.ServerOptions{
		Addr:    o.AuthorizationWebhookAddr,
		CertDir: certDir,
		Cache:   mgr.GetCache(),
		Log:     ctrl.Log.WithName("authz"),
	})
	if err != nil {
		return err
	}
	if err := mgr.Add(srv); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("authorization-webhook", srv.ReadyCheck)
}

// setup wires the SCIM server and the controllers into the manager.
func setup(mgr ctrl.Manager, o Options, events *recorder.Broadcaster) (*scimserver.Server, error) {
	srv, err := scimserver.New(scimserver.Options{
		Addr:           o.ScimAddr,
		CertDir:        o.ScimCertDir,
		InsecureHTTP:   o.ScimInsecureHTTP,
		TrustedProxies: o.ScimTrustedProxies,
		Client:         mgr.GetClient(),
		APIReader:      mgr.GetAPIReader(),
		Cache:          mgr.GetCache(),
		MaxBodyBytes:   o.ScimMaxBodyBytes,
		Log:            ctrl.Log.WithName("scim"),
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(srv); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("scim", srv.ReadyCheck); err != nil {
		return nil, err
	}
	// membership changes whose writer stopped half-way are finished by the leader
	finisher := &scimstore.Finisher{Client: mgr.GetClient(),
		Store: &scimstore.Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: ctrl.Log.WithName("membership"),
			Indexes: index.Of(mgr.GetCache())}}
	if err := finisher.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	backends := o.Backends
	if backends == nil {
		backends = NewBackends(mgr, o)
	}
	return srv, controllers.SetupWithManager(mgr, controllers.Options{
		Backends:                backends,
		StatusInterval:          o.StatusInterval,
		MaxConcurrentReconciles: o.MaxConcurrentReconciles,
		Events:                  events,
	})
}

// NewBackends is the backend Provider of the manager: every backend this binary knows.
func NewBackends(mgr ctrl.Manager, o Options) *registry.Registry {
	return registry.New(mgr.GetClient(), mgr.GetAPIReader(), registry.Options{
		DockerHub:             registry.DockerHub(ctrl.Log.WithName("dockerhub")),
		RestConfig:            mgr.GetConfig(),
		DefaultServiceAccount: o.DefaultServiceAccount,
		KubernetesOptions: []k8sbackend.Option{k8sbackend.WithGrantIndex(),
			k8sbackend.WithAuthorizationWebhook(o.AuthorizationWebhookAddr != "")},
	})
}
