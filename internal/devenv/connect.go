package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/scim-operator/scim-operator/internal/testenv"
)

// Connector says how Connect reaches a cluster. The zero value of a field means the real
// thing: Existing, ProvideControlPlane and StartLocal.
type Connector struct {
	// ForceLocal skips the kubeconfig's cluster and always starts a local control plane.
	ForceLocal bool
	// Kubeconfig is the file to try first, or a list of files as KUBECONFIG may name ("" for
	// the default loading rules).
	Kubeconfig string
	// Dir receives the local control plane's kubeconfig, or the merged one of a list.
	Dir string
	// Say reports progress (nil: silent).
	Say func(format string, a ...any)

	Existing            func(kubeconfig string) (*Cluster, error)
	ProvideControlPlane func(ctx context.Context) (string, error)
	StartLocal          func(dir string) (*Cluster, error)
}

// Connect returns the cluster of the kubeconfig when one answers; only when none does (or
// ForceLocal) does it provide kube-apiserver, etcd and kubectl (a build of about 10 minutes
// the first time) and start them on loopback. A newcomer with a cluster never waits for a
// control plane they do not need.
func (c Connector) Connect(ctx context.Context) (*Cluster, error) {
	say := c.Say
	if say == nil {
		say = func(string, ...any) {}
	}
	existing, provide, start := c.Existing, c.ProvideControlPlane, c.StartLocal
	if existing == nil {
		existing = Existing
	}
	if provide == nil {
		provide = func(ctx context.Context) (string, error) { return ProvideControlPlane(ctx, "", os.Stderr) }
	}
	if start == nil {
		start = StartLocal
	}

	if c.ForceLocal {
		say("--local: starting a local control plane even if a cluster is reachable")
	} else {
		cluster, err := existing(c.Kubeconfig)
		if err == nil && len(kubeconfigList(cluster.Kubeconfig)) > 1 {
			// the manager's --kubeconfig (and .dev/env) take one file
			var merged string
			if merged, err = writeMergedKubeconfig(cluster.Kubeconfig, c.Dir); err != nil {
				return nil, fmt.Errorf("merging the kubeconfig files %s: %w", cluster.Kubeconfig, err)
			}
			say("using the cluster of your current kubeconfig (%s, merged into %s)", cluster.Kubeconfig, merged)
			cluster.Kubeconfig = merged
			return cluster, nil
		}
		if err == nil {
			say("using the cluster of your current kubeconfig (%s)", cluster.Kubeconfig)
			return cluster, nil
		}
		say("no cluster reachable (%v): a local control plane it is", err)
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		say("providing kube-apiserver, etcd and kubectl (hack/controlplane.sh: cached after the first build)")
		dir, err := provide(ctx)
		if err != nil {
			return nil, err
		}
		if err := os.Setenv("KUBEBUILDER_ASSETS", dir); err != nil {
			return nil, err
		}
	}
	say("starting kube-apiserver and etcd on loopback")
	return start(c.Dir)
}

// ProvideControlPlane runs hack/controlplane.sh for k8sVersion ("" for K8S_VERSION or the
// project's pinned version): kube-apiserver, etcd and kubectl from the cache, the envtest
// download or a source build. Its progress and errors go to progress; it returns the
// directory for KUBEBUILDER_ASSETS. Cancelling ctx ends the script and its build.
func ProvideControlPlane(ctx context.Context, k8sVersion string, progress io.Writer) (string, error) {
	if k8sVersion == "" {
		k8sVersion = os.Getenv("K8S_VERSION")
	}
	if k8sVersion == "" {
		k8sVersion = testenv.K8sVersion
	}
	script := filepath.Join(testenv.RepoRoot(), "hack", "controlplane.sh")
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Env = append(os.Environ(), "K8S_VERSION="+k8sVersion)
	cmd.Stdout, cmd.Stderr = &out, progress
	// its own process group, so that a cancel ends the compilers it started too
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("hack/controlplane.sh (K8S_VERSION=%s) failed, see its output above: %w", k8sVersion, err)
	}
	dir := strings.TrimSpace(out.String())
	if dir == "" {
		return "", errors.New("hack/controlplane.sh printed no directory")
	}
	return dir, nil
}
