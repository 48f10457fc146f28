// Command conformance runs the Microsoft SCIM reference Postman collection with newman
// against the real SCIM server: it starts a local control plane (envtest, from
// KUBEBUILDER_ASSETS), the manager's cache with the field indexes, one ScimConfig with a
// known token, the SCIM server on 127.0.0.1, and then newman. Failing assertions are
// compared with expected-failures.txt (deliberate deviations, each explained in
// docs/scim-conformance.md): the run fails on any unexpected failure, and says which
// expected failures now pass.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// folders run, in order (the collection's "Get Token" request and the unnamed trailing
// requests are not part of the conformance run).
var folders = []string{
	"Endpoint tests", "User tests", "Group tests", "ComplexAttribute tests",
	"User tests with garbage", "Group tests with garbage", "Teardown garbage",
}

func main() {
	newman := flag.String("newman", "newman", "newman executable")
	collection := flag.String("collection", "../shared/conformance/microsoft/PostmanCollection.json", "Postman collection")
	expected := flag.String("expected", "hack/conformance/expected-failures.txt", "expected failures, one \"request: assertion\" a line")
	report := flag.String("report", "", "where to write newman's JSON report (default: a temporary file)")
	flag.Parse()
	if err := run(*newman, *collection, *expected, *report); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
}

func run(newman, collection, expectedPath, reportPath string) error {
	ctrl.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = scimv1.AddToScheme(scheme)
	env := testenv.New()
	cfg, err := testenv.Start(env)
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	defer func() { _ = env.Stop() }()
	// the manager as cmd/manager builds it (manager.New), controllers included; its SCIM
	// server is served in-process by httptest for newman
	mgr, err := manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0", ScimAddr: "127.0.0.1:0", ScimInsecureHTTP: true})
	if err != nil {
		return err
	}
	srv := mgr.SCIM
	go func() { _ = mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return fmt.Errorf("cache did not sync")
	}
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	const ns, name, tok = "conformance", "microsoft", "conformance-token-0123456789"
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.TokenSecretName(name)}, Data: map[string][]byte{naming.TokenKey: []byte(tok)}},
		&scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: scimv1.ScimConfigSpec{
			Organization: "conformance", Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes}}},
	} {
		if err := direct.Create(ctx, o); err != nil {
			return err
		}
	}
	hs := httptest.NewServer(srv.Handler()) // listens on 127.0.0.1
	defer hs.Close()
	host, port, _ := strings.Cut(strings.TrimPrefix(hs.URL, "http://"), ":")

	dir, err := os.MkdirTemp("", "scim-conformance-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	envFile := filepath.Join(dir, "environment.json")
	vals := []map[string]any{
		{"key": "Protocol", "value": "http", "enabled": true},
		{"key": "Server", "value": host, "enabled": true},
		{"key": "Port", "value": ":" + port, "enabled": true},
		{"key": "Api", "value": strings.TrimPrefix(naming.BasePath(ns, name), "/"), "enabled": true},
		{"key": "token", "value": tok, "enabled": true},
	}
	b, _ := json.Marshal(map[string]any{"name": "scim-operator", "values": vals})
	if err := os.WriteFile(envFile, b, 0o600); err != nil {
		return err
	}
	if reportPath == "" {
		reportPath = filepath.Join(dir, "report.json")
	}
	args := []string{"run", collection, "-e", envFile, "--reporters", "cli,json", "--reporter-json-export", reportPath, "--color", "off"}
	for _, f := range folders {
		args = append(args, "--folder", f)
	}
	cmd := exec.CommandContext(ctx, newman, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	_ = cmd.Run() // newman exits 1 on any failing assertion; the report decides
	failures, err := readFailures(reportPath)
	if err != nil {
		return err
	}
	expected, err := readExpected(expectedPath)
	if err != nil {
		return err
	}
	var unexpected, fixed []string
	for f := range failures {
		if !expected[f] {
			unexpected = append(unexpected, f)
		}
	}
	for f := range expected {
		if !failures[f] {
			fixed = append(fixed, f)
		}
	}
	sort.Strings(unexpected)
	sort.Strings(fixed)
	fmt.Printf("\nconformance: %d failing assertions, %d expected (docs/scim-conformance.md)\n", len(failures), len(expected))
	for _, f := range fixed {
		fmt.Printf("  now passing (remove from %s): %s\n", expectedPath, f)
	}
	for _, f := range unexpected {
		fmt.Printf("  UNEXPECTED: %s\n", f)
	}
	if len(unexpected) > 0 {
		return fmt.Errorf("%d unexpected failing assertion(s)", len(unexpected))
	}
	return nil
}

type newmanReport struct {
	Run struct {
		Failures []struct {
			Error struct {
				Test    string `json:"test"`
				Message string `json:"message"`
			} `json:"error"`
			Source struct {
				Name string `json:"name"`
			} `json:"source"`
			Parent struct {
				Name string `json:"name"`
			} `json:"parent"`
		} `json:"failures"`
	} `json:"run"`
}

func readFailures(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("newman report: %w", err)
	}
	var r newmanReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("newman report: %w", err)
	}
	out := map[string]bool{}
	for _, f := range r.Run.Failures {
		test := f.Error.Test
		if test == "" {
			test = f.Error.Message
		}
		out[f.Parent.Name+" / "+f.Source.Name+": "+test] = true
	}
	return out, nil
}

func readExpected(path string) (map[string]bool, error) {
	out := map[string]bool{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out[line] = true
		}
	}
	return out, s.Err()
}
