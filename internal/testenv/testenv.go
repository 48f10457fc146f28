// Package testenv starts envtest (a real kube-apiserver and etcd) the same way in every
// suite: control-plane binaries from KUBEBUILDER_ASSETS, or from the cache that
// hack/controlplane.sh fills, and the CRDs from config/crd/bases.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// K8sVersion is the Kubernetes version the project pins its control plane to.
const K8sVersion = "1.37.2"

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// AssetsDir returns where kube-apiserver, etcd and kubectl are: KUBEBUILDER_ASSETS, else
// the envtest store directory that hack/controlplane.sh fills.
func AssetsDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "kubebuilder-envtest", "k8s", K8sVersion+"-"+runtime.GOOS+"-"+runtime.GOARCH)
}

// New returns an envtest environment with the project's CRDs installed.
func New() *envtest.Environment {
	return &envtest.Environment{
		BinaryAssetsDirectory: AssetsDir(),
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
}

// Start starts env, and stops what it had started when it fails part way: envtest's Start
// returns an error with kube-apiserver and etcd still running when, for example, the API
// server refuses a CRD, and every such failed run would leave both behind.
func Start(env *envtest.Environment) (*rest.Config, error) {
	cfg, err := env.Start()
	if err != nil {
		if stopErr := env.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the partly started control plane: %w", stopErr))
		}
		return nil, err
	}
	return cfg, nil
}
