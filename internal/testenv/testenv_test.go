package testenv

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// TestStartStopsWhatAFailedStartLeftRunning: a CRD the API server refuses makes envtest's
// Start fail after kube-apiserver and etcd are up; Start must stop them.
func TestStartStopsWhatAFailedStartLeftRunning(t *testing.T) {
	dir := t.TempDir()
	// valid YAML, refused by the API server: a CEL rule with a field path it cannot resolve
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-validations:
        - rule: "true"
          fieldPath: .metadata.name
`
	if err := os.WriteFile(filepath.Join(dir, "widget.yaml"), []byte(crd), 0o600); err != nil {
		t.Fatal(err)
	}
	env := New()
	env.CRDDirectoryPaths = []string{dir}

	_, err := Start(env)
	if err == nil {
		_ = env.Stop()
		t.Fatal("the control plane started with a CRD the API server refuses")
	}
	if !strings.Contains(err.Error(), "widgets.example.com") {
		t.Errorf("the error does not name the refused CRD: %v", err)
	}
	apiserver := env.ControlPlane.APIServer
	if apiserver == nil || apiserver.SecureServing.ListenAddr.Port == "" {
		t.Fatalf("the API server never started, so this test proves nothing: %v", err)
	}
	addr := net.JoinHostPort(apiserver.SecureServing.ListenAddr.Address, apiserver.SecureServing.ListenAddr.Port)
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("kube-apiserver still listens on %s after the failed Start", addr)
	}
}

// TestAuthorizationConfigSample: config/samples/authorization-config.yaml, what the docs
// tell a cluster admin to use, is the configuration the tests run the API server with
// (only its kubeconfig path differs), and every field of it is one the API server knows.
func TestAuthorizationConfigSample(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(RepoRoot(), "config", "samples", "authorization-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var sample apiserverv1.AuthorizationConfiguration
	if err := sigsyaml.UnmarshalStrict(raw, &sample); err != nil {
		t.Fatalf("the sample is not an AuthorizationConfiguration: %v", err)
	}
	path := "/etc/kubernetes/scim-operator/authorization-webhook.kubeconfig"
	if diff := cmp.Diff(AuthorizationConfig(path, true), &sample); diff != "" {
		t.Errorf("the sample differs from what the tests run (-tests +sample):\n%s", diff)
	}
}
