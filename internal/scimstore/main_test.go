package scimstore

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

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
