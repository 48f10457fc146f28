package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// fakes records which of the three steps Connect took.
type fakes struct {
	calls    []string
	existing error // nil: a cluster answers
	provide  error
}

func (f *fakes) connector(forceLocal bool) Connector {
	return Connector{
		ForceLocal: forceLocal,
		Dir:        "/dev-dir",
		Existing: func(string) (*Cluster, error) {
			f.calls = append(f.calls, "existing")
			if f.existing != nil {
				return nil, f.existing
			}
			return &Cluster{Kubeconfig: "/home/me/.kube/config"}, nil
		},
		ProvideControlPlane: func(context.Context) (string, error) {
			f.calls = append(f.calls, "provide")
			return "/assets", f.provide
		},
		StartLocal: func(dir string) (*Cluster, error) {
			f.calls = append(f.calls, "start "+dir+" assets="+os.Getenv("KUBEBUILDER_ASSETS"))
			return &Cluster{Kubeconfig: dir + "/kubeconfig", Local: true}, nil
		},
	}
}

func TestConnect(t *testing.T) {
	unreachable := errors.New("cluster not reachable: connection refused")
	cases := []struct {
		name       string
		forceLocal bool
		assets     string // KUBEBUILDER_ASSETS before
		existing   error
		provide    error
		wantCalls  []string
		wantLocal  bool
		wantErr    string
	}{
		{name: "a reachable cluster is used and no control plane is built",
			wantCalls: []string{"existing"}},
		{name: "no cluster: the control plane is provided, then started", existing: unreachable,
			wantCalls: []string{"existing", "provide", "start /dev-dir assets=/assets"}, wantLocal: true},
		{name: "--local never looks at the kubeconfig", forceLocal: true,
			wantCalls: []string{"provide", "start /dev-dir assets=/assets"}, wantLocal: true},
		{name: "KUBEBUILDER_ASSETS set: nothing to provide", existing: unreachable, assets: "/mine",
			wantCalls: []string{"existing", "start /dev-dir assets=/mine"}, wantLocal: true},
		{name: "a failed build stops before starting anything", existing: unreachable, provide: errors.New("build failed"),
			wantCalls: []string{"existing", "provide"}, wantErr: "build failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("KUBEBUILDER_ASSETS", c.assets)
			f := &fakes{existing: c.existing, provide: c.provide}
			cluster, err := f.connector(c.forceLocal).Connect(context.Background())
			if got, want := strings.Join(f.calls, "; "), strings.Join(c.wantCalls, "; "); got != want {
				t.Errorf("steps: %s\nwant:  %s", got, want)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cluster.Local != c.wantLocal {
				t.Errorf("Local = %v, want %v", cluster.Local, c.wantLocal)
			}
		})
	}
}

// TestConnectKubeconfigList: KUBECONFIG naming several files (as kubectl allows) reaches
// the cluster of their merge, and the manager gets one file that names it.
func TestConnectKubeconfigList(t *testing.T) {
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/version":
			fmt.Fprint(w, `{"major":"1","minor":"37","gitVersion":"v1.37.2"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	dir := t.TempDir()
	// the context and the current context in one file, the cluster and user in another
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	if err := os.WriteFile(a, []byte(`apiVersion: v1
kind: Config
current-context: dev
contexts:
- name: dev
  context: {cluster: dev, user: dev}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte(`apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster: {server: "`+api.URL+`", insecure-skip-tls-verify: true}
users:
- name: dev
  user: {token: dev-token}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "dev")
	cluster, err := Connector{
		Kubeconfig: a + string(os.PathListSeparator) + b,
		Dir:        out,
		ProvideControlPlane: func(context.Context) (string, error) {
			t.Error("the cluster of the merged kubeconfig answers: nothing to provide")
			return "", errors.New("unexpected")
		},
		StartLocal: func(string) (*Cluster, error) {
			t.Error("the cluster of the merged kubeconfig answers: nothing to start")
			return nil, errors.New("unexpected")
		},
	}.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cluster.Local || cluster.Config.Host != api.URL {
		t.Fatalf("Local=%v Host=%q, want the cluster at %s", cluster.Local, cluster.Config.Host, api.URL)
	}
	// one file, which the manager's --kubeconfig (an explicit path) loads
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig)
	if err != nil {
		t.Fatalf("the manager's kubeconfig %q: %v", cluster.Kubeconfig, err)
	}
	if cfg.Host != api.URL || cfg.BearerToken != "dev-token" {
		t.Errorf("the manager's kubeconfig names %q with token %q, want %s with dev-token", cfg.Host, cfg.BearerToken, api.URL)
	}
}

func TestProvideControlPlane(t *testing.T) {
	t.Run("a cached control plane: its directory", func(t *testing.T) {
		store := t.TempDir()
		dest := filepath.Join(store, "k8s", "9.9.9-"+runtime.GOOS+"-"+runtime.GOARCH)
		if err := os.MkdirAll(dest, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
			if err := os.WriteFile(filepath.Join(dest, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv("ENVTEST_DIR", store)
		dir, err := ProvideControlPlane(context.Background(), "9.9.9", &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if dir != dest {
			t.Errorf("dir = %q, want %q", dir, dest)
		}
	})
	t.Run("a failure returns an error and shows the script's own message", func(t *testing.T) {
		t.Setenv("ENVTEST_DIR", filepath.Join(t.TempDir(), "file", "store"))
		if err := os.WriteFile(filepath.Join(filepath.Dir(filepath.Dir(os.Getenv("ENVTEST_DIR"))), "file"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		var progress bytes.Buffer
		dir, err := ProvideControlPlane(context.Background(), "9.9.9", &progress)
		if err == nil {
			t.Fatalf("no error; dir %q", dir)
		}
		if !strings.Contains(err.Error(), "hack/controlplane.sh (K8S_VERSION=9.9.9) failed") {
			t.Errorf("err = %v", err)
		}
		if !strings.Contains(progress.String(), "mkdir") {
			t.Errorf("the script's error did not reach progress: %q", progress.String())
		}
	})
}
