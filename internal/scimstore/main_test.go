package scimstore

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/cachepolicy"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// One API server for the package's tests that need one (each test its own namespace and
// its own manager): a control plane start costs seconds, and every one adds to make test.
var (
	apiOnce sync.Once
	apiCfg  *rest.Config
	apiErr  error
	apiStop func() error
)

// apiServer starts the package's API server on first use.
func apiServer(t *testing.T) *rest.Config {
	t.Helper()
	apiOnce.Do(func() {
		env := testenv.New()
		apiCfg, apiErr = testenv.Start(env)
		apiStop = env.Stop
	})
	if apiErr != nil {
		t.Fatalf("envtest: %v", apiErr)
	}
	return apiCfg
}

func TestMain(m *testing.M) {
	code := m.Run()
	if apiStop != nil {
		if err := apiStop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the API server:", err)
		}
	}
	os.Exit(code)
}

// startCache starts, on the package's API server, a manager with the shipped cache
// (managedFields stripped, Secrets uncached, index.NewCache) and the indexes, and with the finisher as
// manager.New sets it up when withFinisher; no controllers (the whole manager imports
// this package). It answers once the cache has synced, with a client that reads the API
// server directly.
func startCache(t *testing.T, withFinisher bool) (context.Context, client.Client, ctrl.Manager) {
	t.Helper()
	ctrl.SetLogger(logr.Discard())
	cfg := apiServer(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := scimv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	// a test with the finisher run again in the same process (go test -count=2) starts its
	// controller a second time under the same name, in a new manager: as manager.New's
	// SkipControllerNameValidation, for tests
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cachepolicy.Cache(), NewCache: index.NewCache, Client: cachepolicy.Client(),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		t.Fatal(err)
	}
	if withFinisher {
		f := &Finisher{Client: mgr.GetClient(), Store: &Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: logr.Discard(),
			Indexes: index.Of(mgr.GetCache())}}
		if err := f.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
	}
	go func() { _ = mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache never synced")
	}
	return ctx, direct, mgr
}
