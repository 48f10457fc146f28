// Package crd_test proves the schema validation of the v1alpha1 CRDs against a real
// kube-apiserver: each rule is exercised and its error text asserted.
package crd_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

var (
	k8s     client.Client
	restCfg *rest.Config
	ctx     = context.Background()
)

// TestMain exits with the tests' own code: a failed test, or a control plane that cannot
// start, is a plain test failure (not a panic with a goroutine dump).
func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) (code int) {
	env := testenv.New()
	cfg, err := testenv.Start(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start envtest (run hack/controlplane.sh first):", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
			code = 1
		}
	}()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := scimv1.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	restCfg = cfg
	return m.Run()
}

func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "crd-"}}
	if err := k8s.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// create sends a raw object so that tests can send what typed Go structs cannot (a
// missing required field, an unknown enum value).
func create(t *testing.T, ns string, obj map[string]any) error {
	t.Helper()
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("scim.operator.dev/v1alpha1")
	u.SetNamespace(ns)
	return k8s.Create(ctx, u)
}

func member(name string, spec map[string]any) map[string]any {
	return map[string]any{"kind": "OrgMember", "metadata": map[string]any{"name": name}, "spec": spec}
}

func config(name string, spec map[string]any) map[string]any {
	return map[string]any{"kind": "ScimConfig", "metadata": map[string]any{"name": name}, "spec": spec}
}

func wantRefused(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the API server accepted an invalid object; want an error with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\n does not contain %q", err.Error(), p)
		}
	}
}

// wantExactly asserts the whole reason the API server gives, after `<kind> "<name>" is
// invalid: `: the rule's own message and nothing else (no second, confusing error).
func wantExactly(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the API server accepted an invalid object; want %q", want)
	}
	_, got, ok := strings.Cut(err.Error(), " is invalid: ")
	if !ok || got != want {
		t.Errorf("error %q\n want ... is invalid: %q", err.Error(), want)
	}
}

func TestOrgMemberValidation(t *testing.T) {
	ns := namespace(t)
	long := strings.Repeat("a", 300)
	cases := []struct {
		name string
		spec map[string]any
		want []string
	}{
		{"no userName", map[string]any{"configName": "acme"},
			[]string{"spec.userName: Required value"}},
		{"no configName", map[string]any{"userName": "a@acme.io"},
			[]string{"spec.configName: Required value"}},
		{"over-long userName", map[string]any{"configName": "acme", "userName": long + "@acme.io"},
			[]string{"spec.userName: Too long: may not be more than 256 bytes"}},
		{"userName with outer white space", map[string]any{"configName": "acme", "userName": " a@acme.io"},
			[]string{"spec.userName: Invalid value", "userName must not start or end with white space"}},
		{"two primary emails", map[string]any{"configName": "acme", "userName": "a@acme.io", "emails": []any{
			map[string]any{"value": "a@acme.io", "primary": true},
			map[string]any{"value": "b@acme.io", "primary": true}}},
			[]string{"spec.emails: Invalid value", "at most one email may be primary"}},
		{"unknown docker role", map[string]any{"configName": "acme", "userName": "a@acme.io",
			"docker": map[string]any{"role": "admin"}},
			[]string{`spec.docker.role: Unsupported value: "admin": supported values: "member", "editor", "owner"`}},
		{"too many emails", map[string]any{"configName": "acme", "userName": "a@acme.io", "emails": manyEmails(21)},
			[]string{"spec.emails: Too many: 21: must have at most 20 items"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantRefused(t, create(t, ns, member("m"+string(rune('a'+i)), c.spec)), c.want...)
		})
	}

	t.Run("defaults active and keeps configName immutable", func(t *testing.T) {
		if err := create(t, ns, member("ok", map[string]any{"configName": "acme", "userName": "a@acme.io",
			"emails": []any{map[string]any{"value": "a@acme.io", "primary": true}, map[string]any{"value": "b@acme.io"}}})); err != nil {
			t.Fatal(err)
		}
		var m scimv1.OrgMember
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ok"}, &m); err != nil {
			t.Fatal(err)
		}
		if !m.Spec.Active {
			t.Error("active should default to true")
		}
		m.Spec.ConfigName = "other"
		wantRefused(t, k8s.Update(ctx, &m), "configName is immutable")
	})

	t.Run("selectable by userName", func(t *testing.T) {
		var list scimv1.OrgMemberList
		if err := k8s.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{"spec.userName": "a@acme.io"}); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 {
			t.Fatalf("field selector spec.userName found %d members, want 1", len(list.Items))
		}
	})
}

func manyEmails(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"value": strings.Repeat("x", i+1) + "@acme.io"}
	}
	return out
}

func TestScimConfigValidation(t *testing.T) {
	ns := namespace(t)
	kube := map[string]any{"type": "kubernetes"}
	cases := []struct {
		name string
		spec map[string]any
		want []string
	}{
		{"unknown backend type", map[string]any{"organization": "acme", "backend": map[string]any{"type": "gitlab"}},
			[]string{`spec.backend.type: Unsupported value: "gitlab": supported values: "kubernetes", "dockerhub"`}},
		{"no organization", map[string]any{"backend": kube},
			[]string{"spec.organization: Required value"}},
		{"over-long organization", map[string]any{"organization": strings.Repeat("o", 256), "backend": kube},
			[]string{"spec.organization: Too long: may not be more than 255 bytes"}},
		{"dockerhub without its settings", map[string]any{"organization": "acme", "backend": map[string]any{"type": "dockerhub"}},
			[]string{"backend.dockerhub is required when backend.type is dockerhub"}},
		{"dockerhub settings on the kubernetes backend", map[string]any{"organization": "acme", "backend": map[string]any{
			"type": "kubernetes", "dockerhub": map[string]any{"accessTokenSecretRef": map[string]any{"name": "s", "key": "k"}}}},
			[]string{"backend.dockerhub is only allowed when backend.type is dockerhub"}},
		{"bad verified domain", map[string]any{"organization": "acme", "backend": kube, "verifiedDomains": []any{"Not A Domain"}},
			[]string{"spec.verifiedDomains[0]: Invalid value"}},
		{"unknown deactivation policy", map[string]any{"organization": "acme", "backend": kube,
			"policies": map[string]any{"deactivation": "Delete"}},
			[]string{`spec.policies.deactivation: Unsupported value: "Delete": supported values: "Remove", "Keep"`}},
		{"unknown grant layout", map[string]any{"organization": "acme", "backend": map[string]any{
			"type": "kubernetes", "kubernetes": map[string]any{"grantLayout": "Annotations"}}},
			[]string{`spec.backend.kubernetes.grantLayout: Unsupported value: "Annotations": supported values: "Bindings", "Webhook"`}},
		{"token reference without key", map[string]any{"organization": "acme", "backend": kube,
			"tokenSecretRef": map[string]any{"name": "t"}},
			[]string{"spec.tokenSecretRef.key: Required value"}},
		{"role binding in a bad namespace", map[string]any{"organization": "acme", "backend": map[string]any{
			"type": "kubernetes", "kubernetes": map[string]any{"roles": []any{map[string]any{"namespace": "Bad_NS", "name": "view"}}}}},
			[]string{"spec.backend.kubernetes.roles[0].namespace: Invalid value"}},
		{"a ServiceAccount name that is no name", map[string]any{"organization": "acme", "backend": map[string]any{
			"type": "kubernetes", "kubernetes": map[string]any{"serviceAccountName": "system:serviceaccount:kube-system:x", "clusterRoles": []any{"view"}}}},
			[]string{"spec.backend.kubernetes.serviceAccountName: Invalid value"}},
		{"an empty ServiceAccount name", map[string]any{"organization": "acme", "backend": map[string]any{
			"type": "kubernetes", "kubernetes": map[string]any{"serviceAccountName": "", "clusterRoles": []any{"view"}}}},
			[]string{"spec.backend.kubernetes.serviceAccountName: Invalid value"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantRefused(t, create(t, ns, config("c"+string(rune('a'+i)), c.spec)), c.want...)
		})
	}

	durationPattern := `'^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$'`
	exact := []struct {
		name, objName string
		spec          map[string]any
		want          string
	}{
		{"kubernetes settings on the dockerhub backend", "", map[string]any{"organization": "acme", "backend": map[string]any{
			"type":       "dockerhub",
			"dockerhub":  map[string]any{"accessTokenSecretRef": map[string]any{"name": "s", "key": "k"}},
			"kubernetes": map[string]any{"clusterRoles": []any{"view"}}}},
			"spec: Invalid value: backend.kubernetes is only allowed when backend.type is kubernetes"},
		{"a resync that would storm the backend", "", map[string]any{"organization": "acme", "backend": kube, "resyncInterval": "1s"},
			`spec.resyncInterval: Invalid value: "1s": resyncInterval must be between 1m and 24h`},
		{"a resync just under a minute", "", map[string]any{"organization": "acme", "backend": kube, "resyncInterval": "59.999s"},
			`spec.resyncInterval: Invalid value: "59.999s": resyncInterval must be between 1m and 24h`},
		{"a resync of more than a day", "", map[string]any{"organization": "acme", "backend": kube, "resyncInterval": "24h0m1s"},
			`spec.resyncInterval: Invalid value: "24h0m1s": resyncInterval must be between 1m and 24h`},
		{"a resync that is not a duration", "", map[string]any{"organization": "acme", "backend": kube, "resyncInterval": "1d"},
			`spec.resyncInterval: Invalid value: "1d": spec.resyncInterval in body should match ` + durationPattern},
		{"a negative token grace period", "", map[string]any{"organization": "acme", "backend": kube, "tokenGracePeriod": "-1s"},
			`spec.tokenGracePeriod: Invalid value: "-1s": spec.tokenGracePeriod in body should match ` + durationPattern},
		{"a token grace period over 30 days", "", map[string]any{"organization": "acme", "backend": kube, "tokenGracePeriod": "721h"},
			`spec.tokenGracePeriod: Invalid value: "721h": tokenGracePeriod must be between 0s and 720h (30 days)`},
		{"the Webhook grant layout with the Orphan deletion policy", "", map[string]any{"organization": "acme", "backend": map[string]any{
			"type": "kubernetes", "kubernetes": map[string]any{"grantLayout": "Webhook", "clusterRoles": []any{"view"}}},
			"policies": map[string]any{"deletion": "Orphan"}},
			"spec: Invalid value: policies.deletion Orphan is not allowed with backend.kubernetes.grantLayout Webhook: the authorization " +
				"webhook honours a grant only while its ScimConfig exists, so access could not outlive the ScimConfig's deletion as " +
				"Orphan promises; use grantLayout Bindings to keep access after deletion"},
		{"a name longer than a label value", strings.Repeat("n", 64), map[string]any{"organization": "acme", "backend": kube},
			"<nil>: Invalid value: metadata.name must be at most 63 characters: a ScimConfig's name is used as a label value"},
	}
	for i, c := range exact {
		t.Run(c.name, func(t *testing.T) {
			name := c.objName
			if name == "" {
				name = "x" + string(rune('a'+i))
			}
			wantExactly(t, create(t, ns, config(name, c.spec)), c.want)
		})
	}

	t.Run("accepts the bounds", func(t *testing.T) {
		for name, spec := range map[string]map[string]any{
			strings.Repeat("n", 63): {"organization": "acme", "backend": kube},
			"shortest-resync":       {"organization": "acme", "backend": kube, "resyncInterval": "1m", "tokenGracePeriod": "720h"},
			"longest-resync":        {"organization": "acme", "backend": kube, "resyncInterval": "24h", "tokenGracePeriod": "0s"},
			"go-duration-forms":     {"organization": "acme", "backend": kube, "resyncInterval": "1h30m0.5s", "tokenGracePeriod": "1.5h"},
			"webhook-layout": {"organization": "acme", "backend": map[string]any{"type": "kubernetes",
				"kubernetes": map[string]any{"grantLayout": "Webhook", "clusterRoles": []any{"view"}}},
				"policies": map[string]any{"deletion": "Remove", "deactivation": "Keep"}},
			"bindings-layout-orphan": {"organization": "acme", "backend": map[string]any{"type": "kubernetes",
				"kubernetes": map[string]any{"grantLayout": "Bindings", "clusterRoles": []any{"view"}}},
				"policies": map[string]any{"deletion": "Orphan"}},
			"dockerhub": {"organization": "acme", "backend": map[string]any{"type": "dockerhub",
				"dockerhub": map[string]any{"accessTokenSecretRef": map[string]any{"name": "s", "key": "k"}}}},
		} {
			if err := create(t, ns, config(name, spec)); err != nil {
				t.Errorf("%s refused: %v", name, err)
			}
		}
	})

	t.Run("defaults", func(t *testing.T) {
		if err := create(t, ns, config("ok", map[string]any{"organization": "acme", "backend": map[string]any{}})); err != nil {
			t.Fatal(err)
		}
		var c scimv1.ScimConfig
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ok"}, &c); err != nil {
			t.Fatal(err)
		}
		if !c.IsEnabled() || c.Spec.Enabled == nil {
			t.Error("enabled should default to true")
		}
		if c.Spec.Backend.Type != scimv1.BackendKubernetes {
			t.Errorf("backend.type defaulted to %q, want kubernetes", c.Spec.Backend.Type)
		}
		p := c.Spec.Policies
		if p.Deactivation != scimv1.DeactivationRemove || p.Deletion != scimv1.DeletionRemove || p.Adoption != scimv1.AdoptionIgnore {
			t.Errorf("policies defaulted to %+v", p)
		}
		if c.Spec.ResyncInterval == nil || c.Spec.ResyncInterval.Duration.String() != "10m0s" {
			t.Errorf("resyncInterval defaulted to %v", c.Spec.ResyncInterval)
		}
		if err := create(t, ns, config("ok-kube", map[string]any{"organization": "acme", "backend": map[string]any{
			"kubernetes": map[string]any{"clusterRoles": []any{"view"}}}})); err != nil {
			t.Fatal(err)
		}
		var kc scimv1.ScimConfig
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ok-kube"}, &kc); err != nil {
			t.Fatal(err)
		}
		if l := kc.Spec.Backend.Kubernetes.GrantLayout; l != scimv1.GrantLayoutBindings {
			t.Errorf("grantLayout defaulted to %q, want Bindings", l)
		}
		if c.Spec.TokenGracePeriod == nil || c.Spec.TokenGracePeriod.Duration != 0 {
			t.Errorf("tokenGracePeriod defaulted to %v", c.Spec.TokenGracePeriod)
		}
	})
}

func TestOrgGroupValidation(t *testing.T) {
	ns := namespace(t)
	wantRefused(t, create(t, ns, map[string]any{"kind": "OrgGroup", "metadata": map[string]any{"name": "g"},
		"spec": map[string]any{"configName": "acme"}}), "spec.displayName: Required value")
	wantRefused(t, create(t, ns, map[string]any{"kind": "OrgGroup", "metadata": map[string]any{"name": "g2"},
		"spec": map[string]any{"configName": "acme", "displayName": strings.Repeat("d", 257)}}),
		"spec.displayName: Too long: may not be more than 256 bytes")
}

// OrgGrant refuses what the authorization webhook must never honour or cannot read: a
// system: subject (whatever its case or outer white space), a Role without a namespace,
// unknown kinds, empty names.
func TestOrgGrantValidation(t *testing.T) {
	ns := namespace(t)
	grant := func(name string, spec map[string]any) map[string]any {
		return map[string]any{"kind": "OrgGrant", "metadata": map[string]any{"name": name}, "spec": spec}
	}
	subject := func(kind, name string) map[string]any { return map[string]any{"kind": kind, "name": name} }
	role := func(kind, name string) map[string]any { return map[string]any{"kind": kind, "name": name} }
	cases := []struct {
		name string
		spec map[string]any
		want []string
	}{
		{"system: user", map[string]any{"subject": subject("User", "system:admin"), "role": role("ClusterRole", "view")},
			[]string{"spec.subject.name: Invalid value", "system: users and groups are reserved by Kubernetes"}},
		{"system: group, other case and white space", map[string]any{"subject": subject("Group", " System:Masters"), "role": role("ClusterRole", "view")},
			[]string{"system: users and groups are reserved by Kubernetes"}},
		{"Role without namespace", map[string]any{"subject": subject("User", "a@x.io"), "role": role("Role", "deployer")},
			[]string{"a Role is granted in a namespace: set spec.namespace"}},
		{"unknown subject kind", map[string]any{"subject": subject("ServiceAccount", "a"), "role": role("ClusterRole", "view")},
			[]string{`spec.subject.kind: Unsupported value: "ServiceAccount"`}},
		{"unknown role kind", map[string]any{"subject": subject("User", "a@x.io"), "role": role("Binding", "view")},
			[]string{`spec.role.kind: Unsupported value: "Binding"`}},
		{"empty subject name", map[string]any{"subject": subject("User", ""), "role": role("ClusterRole", "view")},
			[]string{"spec.subject.name"}},
		{"no role", map[string]any{"subject": subject("User", "a@x.io")},
			[]string{"spec.role: Required value"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantRefused(t, create(t, ns, grant("g"+string(rune('a'+i)), c.spec)), c.want...)
		})
	}
	for name, spec := range map[string]map[string]any{
		"cluster-wide": {"subject": subject("User", "a@x.io"), "role": role("ClusterRole", "view")},
		"namespaced":   {"subject": subject("Group", "eng"), "role": role("Role", "deployer"), "namespace": "apps"},
	} {
		if err := create(t, ns, grant(name, spec)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
