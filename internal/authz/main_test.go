package authz_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/authz"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// fixture is the package's one control plane and manager: an API server that authorizes
// with RBAC, then the manager's webhook (testenv.UseAuthorizationWebhook), and the manager
// as cmd/manager builds it (manager.New) serving the webhook on the port the API server
// was told about.
type fixture struct {
	cfg    *rest.Config
	direct client.Client // uncached, as the envtest admin
	mgr    *manager.Manager
	tls    *devenv.TLS
	url    string // the webhook's URL
}

var (
	fxOnce sync.Once
	fx     *fixture
	fxErr  error
	fxStop []func()
)

func env(t *testing.T) *fixture {
	t.Helper()
	fxOnce.Do(func() { fx, fxErr = start() })
	if fxErr != nil {
		t.Fatalf("starting the control plane and the manager: %v", fxErr)
	}
	return fx
}

func start() (*fixture, error) {
	ctrl.SetLogger(logr.Discard())
	dir, err := os.MkdirTemp("", "authz-test-")
	if err != nil {
		return nil, err
	}
	fxStop = append(fxStop, func() { _ = os.RemoveAll(dir) })
	certs, err := devenv.LocalTLS(dir)
	if err != nil {
		return nil, err
	}
	addr, err := devenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	url := "https://" + addr + authz.Path
	e := testenv.New()
	if err := testenv.UseAuthorizationWebhook(e, testenv.AuthorizationWebhook{URL: url, CAFile: certs.CAFile, Dir: filepath.Join(dir, "apiserver")}); err != nil {
		return nil, err
	}
	cfg, err := testenv.Start(e)
	if err != nil {
		return nil, err
	}
	fxStop = append(fxStop, func() { _ = e.Stop() })
	direct, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return nil, err
	}
	mgr, err := manager.New(cfg, manager.Options{
		MetricsAddr: "0", ProbeAddr: "0", ScimAddr: "127.0.0.1:0", ScimInsecureHTTP: true,
		AuthorizationWebhookAddr: addr, AuthorizationWebhookCertDir: certs.CertDir,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	fxStop = append(fxStop, func() { cancel(); <-done })
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the manager's cache did not sync")
	}
	return &fixture{cfg: cfg, direct: direct, mgr: mgr, tls: certs, url: url}, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(fxStop) - 1; i >= 0; i-- {
		fxStop[i]()
	}
	os.Exit(code)
}
