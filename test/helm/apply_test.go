package helm_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/testenv"
)

// fieldOwner is the field manager of the test's server-side applies (helm's own is "helm").
const fieldOwner = "helm-chart-test"

// fullname is the chart's object name prefix for a release (no overrides).
func fullname(release string) string {
	if strings.Contains(release, "scim-operator") {
		return release
	}
	return release + "-scim-operator"
}

// openCRD is a CRD that accepts any object of its kind: enough to apply the chart's
// cert-manager and Prometheus Operator objects, whose real CRDs envtest does not have.
func openCRD(group, kind, plural string) *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind),
			},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: &preserve,
				}},
			}},
		},
	}
}

func apply(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner(fieldOwner), client.ForceOwnership)
}

// established waits until the CRD is Established, or fails.
func established(ctx context.Context, c client.Client, name string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var crd apiextensionsv1.CustomResourceDefinition
		err := c.Get(ctx, client.ObjectKey{Name: name}, &crd)
		if err == nil {
			for _, cond := range crd.Status.Conditions {
				if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CRD %s is not established after 30s (last error: %v, conditions: %v)", name, err, crd.Status.Conditions)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChartAppliesServerSide installs the chart's renders on a local control plane
// (kube-apiserver and etcd, envtest) the way `helm install` does, by server-side apply: the
// CRDs of crds/ first, which must become Established, then the templates' objects, which
// the API server validates (a malformed Deployment, Service or binding fails here). Every
// object must then be readable as applied. Each TLS source, monitoring and the lockdown
// values are installed as releases of their own, and the API server's RBAC authorizer
// answers what the installed manager ServiceAccount may do: impersonate exactly the
// lockdown names, read its CRDs cluster-wide, hold leases only in its namespace.
func TestChartAppliesServerSide(t *testing.T) {
	env := testenv.New()
	env.CRDDirectoryPaths = nil // the chart's crds/ are installed below
	cfg, err := testenv.Start(env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	for _, crd := range []*apiextensionsv1.CustomResourceDefinition{
		openCRD("cert-manager.io", "Certificate", "certificates"),
		openCRD("cert-manager.io", "Issuer", "issuers"),
		openCRD("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
		openCRD("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
	} {
		if err := c.Create(ctx, crd); err != nil {
			t.Fatal(err)
		}
		if err := established(ctx, c, crd.Name); err != nil {
			t.Fatal(err)
		}
	}

	releases := []struct {
		name, ns, values string
		// impersonable are the ServiceAccount names the manager may impersonate
		impersonable []string
	}{
		{releaseName, namespace, "", []string{"scim-provisioner"}},
		{"certm", "certm", "tls: {source: certManager, certManager: {dnsNames: [scim.example.com]}}", []string{"scim-provisioner"}},
		{"plain", "plain", "tls: {source: plainHTTP}\nscim: {trustedProxies: [10.0.0.0/8]}", []string{"scim-provisioner"}},
		{"mon", "mon", "monitoring: {serviceMonitor: {enabled: true}, prometheusRule: {enabled: true}, dashboard: {enabled: true}}", []string{"scim-provisioner"}},
		{"named", "named", "lockdown: {defaultServiceAccount: tenant-writer, impersonableServiceAccounts: [team-a-scim]}", []string{"tenant-writer", "team-a-scim"}},
		{"open", "open", "lockdown: {defaultServiceAccount: ''}", nil},
	}
	crdsApplied := false
	for _, rel := range releases {
		r := render(t, rel.name, rel.ns, rel.values)
		if !crdsApplied {
			if len(r.crds) == 0 {
				t.Fatal("the chart has no CRDs")
			}
			for _, crd := range r.crds {
				if err := apply(ctx, c, crd); err != nil {
					t.Fatalf("applying %s: %v", id(crd), err)
				}
				if err := established(ctx, c, crd.GetName()); err != nil {
					t.Fatal(err)
				}
			}
			crdsApplied = true
		}
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rel.ns}}); err != nil {
			t.Fatal(err)
		}
		for _, o := range r.objs {
			if err := apply(ctx, c, o); err != nil {
				t.Errorf("release %s: applying %s: %v", rel.name, id(o), err)
			}
		}
		// every object is there, as applied, and owned by this apply
		for _, o := range r.objs {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(o.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
				t.Errorf("release %s: %s was not created: %v", rel.name, id(o), err)
				continue
			}
			owned := false
			for _, mf := range got.GetManagedFields() {
				owned = owned || (mf.Manager == fieldOwner && mf.Operation == metav1.ManagedFieldsOperationApply)
			}
			if !owned {
				t.Errorf("release %s: %s is not owned by the apply", rel.name, id(o))
			}
		}
		want := map[string]int{"Deployment": 1, "ServiceAccount": 1, "ClusterRole": 3, "Service": 2, "ClusterRoleBinding": 2, "Role": 1, "RoleBinding": 1}
		for kind, n := range want {
			if got := kinds(r.objs)[kind]; got != n {
				t.Errorf("release %s renders %d %s objects, want %d", rel.name, got, kind, n)
			}
		}
		dep := &unstructured.Unstructured{}
		dep.SetAPIVersion("apps/v1")
		dep.SetKind("Deployment")
		if err := c.Get(ctx, client.ObjectKey{Namespace: rel.ns, Name: fullname(rel.name) + "-controller-manager"}, dep); err != nil {
			t.Errorf("release %s: no Deployment: %v", rel.name, err)
		} else if sa, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName"); sa != fullname(rel.name)+"-controller-manager" {
			t.Errorf("release %s: the Deployment runs as %q", rel.name, sa)
		}
	}

	if err := testenv.RBACSynced(ctx, c); err != nil {
		t.Fatal(err)
	}
	can := func(user string, attrs authorizationv1.ResourceAttributes) bool {
		t.Helper()
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &attrs}}
		if err := c.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	for _, rel := range releases {
		user := "system:serviceaccount:" + rel.ns + ":" + fullname(rel.name) + "-controller-manager"
		for _, name := range []string{"scim-provisioner", "tenant-writer", "team-a-scim", "default", "cluster-admin-sa"} {
			want := false
			for _, n := range rel.impersonable {
				want = want || n == name
			}
			if got := can(user, authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts", Name: name, Namespace: "team-a"}); got != want {
				t.Errorf("release %s: the manager may impersonate ServiceAccount %q: %v, want %v", rel.name, name, got, want)
			}
		}
		if !can(user, authorizationv1.ResourceAttributes{Verb: "list", Group: "scim.operator.dev", Resource: "orgmembers"}) {
			t.Errorf("release %s: the manager may not list OrgMembers cluster-wide", rel.name)
		}
		if !can(user, authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: rel.ns}) {
			t.Errorf("release %s: the manager may not create its leader election lease", rel.name)
		}
		if can(user, authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system"}) {
			t.Errorf("release %s: the manager may create leases outside its namespace", rel.name)
		}
		if can(user, authorizationv1.ResourceAttributes{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}) {
			t.Errorf("release %s: the manager may create ClusterRoleBindings with its own rights", rel.name)
		}
	}
}
