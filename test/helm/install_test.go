package helm_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/scim-operator/scim-operator/internal/install"
)

// Labels that say who installed an object and no more: Helm's standard ones, kustomize's
// app.kubernetes.io/managed-by. The comparisons ignore them (everything else in labels and
// selectors must be equal).
var installerLabels = []string{
	"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version",
}

// normalize removes from a copy of o what legitimately differs between the chart and the
// kustomize install:
//   - the installer labels, in metadata.labels and in the selectors and pod template
//     labels (Helm's selectors add app.kubernetes.io/instance);
//   - the manager's image (the chart's values vs kustomize's controller:latest) and
//     imagePullPolicy, which the chart sets from image.pullPolicy; TestValues checks both;
//   - a Service's type when it is ClusterIP, the API server's default;
//   - a CRD's labels (the chart's crds/ are config/crd/bases byte for byte: Helm does not
//     label them).
func normalize(o *unstructured.Unstructured) map[string]any {
	c := o.DeepCopy().Object
	strip := func(path ...string) {
		m, found, _ := unstructured.NestedStringMap(c, path...)
		if !found {
			return
		}
		for _, l := range installerLabels {
			delete(m, l)
		}
		if len(m) == 0 {
			unstructured.RemoveNestedField(c, path...)
			return
		}
		_ = unstructured.SetNestedStringMap(c, m, path...)
	}
	strip("metadata", "labels")
	switch o.GetKind() {
	case "CustomResourceDefinition":
		unstructured.RemoveNestedField(c, "metadata", "labels")
	case "Deployment":
		strip("spec", "selector", "matchLabels")
		strip("spec", "template", "metadata", "labels")
		cs, _, _ := unstructured.NestedSlice(c, "spec", "template", "spec", "containers")
		for _, ct := range cs {
			ct := ct.(map[string]any)
			ct["image"] = "IMAGE"
			delete(ct, "imagePullPolicy")
		}
		_ = unstructured.SetNestedSlice(c, cs, "spec", "template", "spec", "containers")
	case "Service":
		strip("spec", "selector")
		if t, _, _ := unstructured.NestedString(c, "spec", "type"); t == "ClusterIP" {
			unstructured.RemoveNestedField(c, "spec", "type")
		}
	case "ServiceMonitor":
		strip("spec", "selector", "matchLabels")
	}
	return c
}

// sameInstall fails unless the chart's rendering has exactly the objects of the kustomize
// install (but its Namespace: Helm installs into the release namespace, `helm install
// --create-namespace` creates it) and each is equal to its kustomize twin once
// normalized.
func sameInstall(t *testing.T, r *rendering, kobjs []*unstructured.Unstructured) {
	t.Helper()
	want := map[string]*unstructured.Unstructured{}
	for _, o := range kobjs {
		if o.GetKind() == "Namespace" {
			if o.GetName() != namespace {
				t.Errorf("the kustomize install's namespace is %s, the comparison renders into %s", o.GetName(), namespace)
			}
			continue
		}
		want[id(o)] = o
	}
	got := map[string]*unstructured.Unstructured{}
	for _, o := range slices.Concat(r.crds, r.objs) {
		if _, dup := got[id(o)]; dup {
			t.Errorf("the chart renders %s twice", id(o))
		}
		got[id(o)] = o
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("the kustomize install has %s, the chart does not", k)
			continue
		}
		if d := cmp.Diff(normalize(w), normalize(g)); d != "" {
			t.Errorf("%s differs between the kustomize install and the chart (-kustomize +chart):\n%s", k, d)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("the chart renders %s, which the kustomize install does not have", k)
		}
	}
}

// TestDefaultValuesInstallWhatBuildInstallerShips: the chart with its default values
// installs the objects of `make build-installer` (config/default), equal in everything
// but installer labels and the image: a change to config/ (a new flag, port, probe,
// security setting, RBAC rule, CRD) that the chart lacks fails here.
func TestDefaultValuesInstallWhatBuildInstallerShips(t *testing.T) {
	r := render(t, releaseName, namespace, "")
	sameInstall(t, r, kustomize(t))
	if n := kinds(r.crds)["CustomResourceDefinition"]; n == 0 {
		t.Error("the chart has no CRDs in crds/")
	}
}

// TestTLSSourcesInstallWhatTheComponentsDo: tls.source=certManager installs what the
// cert-manager component adds, and tls.source=plainHTTP what the plain-http component
// does (plus the --scim-trusted-proxies the chart requires with it).
func TestTLSSourcesInstallWhatTheComponentsDo(t *testing.T) {
	t.Run("certManager", func(t *testing.T) {
		r := render(t, releaseName, namespace, "tls: {source: certManager}")
		sameInstall(t, r, kustomize(t, install.CertManager))
	})
	t.Run("plainHTTP", func(t *testing.T) {
		r := render(t, releaseName, namespace, "tls: {source: plainHTTP}\nscim: {trustedProxies: [10.0.0.0/8, 192.0.2.7]}")
		got := args(t, r.objs, releaseName)
		if v, _ := flag(got, "scim-trusted-proxies"); v != "10.0.0.0/8,192.0.2.7" {
			t.Errorf("args %v: want --scim-trusted-proxies=10.0.0.0/8,192.0.2.7", got)
		}
		// without the trusted proxies, the rest must be the component's
		dep := find(t, r.objs, "Deployment", releaseName+"-controller-manager")
		c := container(t, r.objs, releaseName)
		c["args"] = slices.DeleteFunc(slices.Clone(c["args"].([]any)), func(a any) bool {
			return strings.HasPrefix(a.(string), "--scim-trusted-proxies=")
		})
		_ = unstructured.SetNestedSlice(dep.Object, []any{c}, "spec", "template", "spec", "containers")
		sameInstall(t, r, kustomize(t, install.PlainHTTP))
	})
}

// TestMonitoringInstallsWhatTheComponentDoes: the three monitoring toggles on install what
// the monitoring component adds (ServiceMonitor, PrometheusRule with the same alerts,
// dashboard ConfigMap with the same JSON), and each toggle alone only its object.
func TestMonitoringInstallsWhatTheComponentDoes(t *testing.T) {
	all := `monitoring: {serviceMonitor: {enabled: true}, prometheusRule: {enabled: true}, dashboard: {enabled: true}}`
	sameInstall(t, render(t, releaseName, namespace, all), kustomize(t, install.Monitoring))

	base := kinds(render(t, releaseName, namespace, "").objs)
	for key, kind := range map[string]string{"serviceMonitor": "ServiceMonitor", "prometheusRule": "PrometheusRule", "dashboard": "ConfigMap"} {
		got := kinds(render(t, releaseName, namespace, "monitoring: {"+key+": {enabled: true}}").objs)
		for k, n := range got {
			if want := base[k] + map[bool]int{true: 1}[k == kind]; n != want {
				t.Errorf("monitoring.%s.enabled: %d %s objects, want %d", key, n, k, want)
			}
		}
		if got[kind] != 1 {
			t.Errorf("monitoring.%s.enabled renders no %s", key, kind)
		}
	}
}
