package registry_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/backend/registry"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

var (
	k8s     client.Client
	restCfg *rest.Config
	seq     atomic.Int64
)

func TestMain(m *testing.M) {
	env := testenv.New()
	cfg, err := testenv.Start(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	restCfg = cfg
	k8s, err = client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// fakeHub stands in for the dockerhub package's constructor: it records the tokens it
// was given (the registry's contract is what it passes, not what Docker Hub does).
type fakeHub struct {
	backend.Backend
	token string
}

type hubCalls struct {
	mu     sync.Mutex
	tokens []string
}

func (h *hubCalls) new(_ context.Context, _ *scimv1.ScimConfig, token string) (backend.Backend, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tokens = append(h.tokens, token)
	return &fakeHub{token: token}, nil
}

func (h *hubCalls) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.tokens)
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("reg-%d", seq.Add(1))
	if err := k8s.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func hubConfig(ns string) *scimv1.ScimConfig {
	return &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: ns, UID: types.UID("uid-" + ns), Generation: 1},
		Spec: scimv1.ScimConfigSpec{
			Organization: "acme",
			Backend: scimv1.BackendSpec{
				Type: scimv1.BackendDockerHub,
				DockerHub: &scimv1.DockerHubBackend{
					AccessTokenSecretRef: scimv1.SecretKeyRef{Name: "hub-token", Key: "token"},
				},
			},
		},
	}
}

func wantPermanent(t *testing.T, err error, reason string, texts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want Permanent %s", reason)
	}
	if backend.ClassOf(err) != backend.Permanent || backend.ReasonOf(err) != reason {
		t.Fatalf("error %v: class %v reason %q, want Permanent %q", err, backend.ClassOf(err), backend.ReasonOf(err), reason)
	}
	for _, s := range texts {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not say %q", err.Error(), s)
		}
	}
}

func TestKubernetesBackendIsCachedPerGeneration(t *testing.T) {
	ns := namespace(t)
	r := registry.New(k8s, k8s, registry.Options{})
	cfg := &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster", Namespace: ns, UID: "u1", Generation: 1},
		Spec: scimv1.ScimConfigSpec{Organization: "acme", Backend: scimv1.BackendSpec{
			Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: []string{"view"}},
		}},
	}
	a, err := r.For(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(*k8sbackend.Backend); !ok {
		t.Fatalf("For(kubernetes) = %T, want *kubernetes.Backend", a)
	}
	b, _ := r.For(t.Context(), cfg.DeepCopy())
	if a != b {
		t.Fatal("the same ScimConfig generation got a new backend")
	}
	next := cfg.DeepCopy()
	next.Generation = 2
	c, _ := r.For(t.Context(), next)
	if c == a {
		t.Fatal("a new generation reused the old backend")
	}
	recreated := next.DeepCopy()
	recreated.UID = "u2"
	d, _ := r.For(t.Context(), recreated)
	if d == c {
		t.Fatal("a recreated ScimConfig (new UID) reused the old backend")
	}
}

func TestDockerHubTokenFromSecret(t *testing.T) {
	ctx := t.Context()
	ns := namespace(t)
	hub := &hubCalls{}
	r := registry.New(k8s, k8s, registry.Options{DockerHub: hub.new})
	cfg := hubConfig(ns)

	// No Secret yet.
	_, err := r.For(ctx, cfg)
	wantPermanent(t, err, registry.ReasonCredentialsMissing, `Secret "hub-token"`, fmt.Sprintf("namespace %q", ns), `key "token"`, "does not exist")

	// A Secret without the key: the message names the Secret and the key, never a value.
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "hub-token", Namespace: ns},
		Data:       map[string][]byte{"other": []byte("dckr_oat_NOT_THIS_ONE")},
	}
	if err := k8s.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	_, err = r.For(ctx, cfg)
	wantPermanent(t, err, registry.ReasonCredentialsMissing, `Secret "hub-token"`, `has no key "token"`)
	if strings.Contains(err.Error(), "dckr_oat") {
		t.Fatalf("the error reveals a Secret value: %v", err)
	}

	// The key present: the constructor gets the token; later calls reuse the backend.
	s.Data = map[string][]byte{"token": []byte("dckr_oat_first")}
	if err := k8s.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	a, err := r.For(ctx, cfg)
	if err != nil {
		t.Fatalf("For: %v", err)
	}
	if got := a.(*fakeHub).token; got != "dckr_oat_first" {
		t.Fatalf("constructor got token %q, want dckr_oat_first", got)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := r.For(ctx, cfg); err != nil || b != a {
				t.Errorf("concurrent For = %p, %v; want the cached backend %p", b, err, a)
			}
		}()
	}
	wg.Wait()
	if n := hub.count(); n != 1 {
		t.Fatalf("constructor called %d times for one config and one token, want 1", n)
	}

	// A rotated token builds a new backend with the new token.
	s.Data["token"] = []byte("dckr_oat_second")
	if err := k8s.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	b, err := r.For(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if b == a || b.(*fakeHub).token != "dckr_oat_second" {
		t.Fatalf("after rotation got %+v, want a new backend with dckr_oat_second", b)
	}

	// Forget drops the backend.
	r.Forget(cfg.Namespace, cfg.Name)
	c, _ := r.For(ctx, cfg)
	if c == b {
		t.Fatal("Forget kept the backend")
	}
}

func TestConfigurationProblemsArePermanent(t *testing.T) {
	ctx := t.Context()
	ns := namespace(t)

	_, err := registry.New(k8s, k8s, registry.Options{}).For(ctx, hubConfig(ns))
	wantPermanent(t, err, registry.ReasonBackendUnavailable, "dockerhub backend is not available")

	hub := &hubCalls{}
	noSettings := hubConfig(ns)
	noSettings.Spec.Backend.DockerHub = nil
	_, err = registry.New(k8s, k8s, registry.Options{DockerHub: hub.new}).For(ctx, noSettings)
	wantPermanent(t, err, registry.ReasonInvalidConfig, "spec.backend.dockerhub is required")

	unknown := hubConfig(ns)
	unknown.Spec.Backend.Type = "gitlab"
	_, err = registry.New(k8s, k8s, registry.Options{}).For(ctx, unknown)
	wantPermanent(t, err, registry.ReasonUnknownBackend, `spec.backend.type "gitlab" is not a known backend`)

	// A constructor's unclassified failure is a configuration problem.
	if err := k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "hub-token", Namespace: ns},
		Data:       map[string][]byte{"token": []byte("dckr_oat_x")},
	}); err != nil {
		t.Fatal(err)
	}
	failing := func(context.Context, *scimv1.ScimConfig, string) (backend.Backend, error) {
		return nil, fmt.Errorf("baseURL %q is not usable", "ftp://nope")
	}
	_, err = registry.New(k8s, k8s, registry.Options{DockerHub: failing}).For(ctx, hubConfig(ns))
	wantPermanent(t, err, registry.ReasonInvalidConfig, `baseURL "ftp://nope" is not usable`)
}
