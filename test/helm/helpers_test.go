// Package helm_test checks the Helm chart config/helm/scim-operator with Helm's own Go
// packages (helm.sh/helm/v3, pinned in go.mod): what `helm install` would render, for the
// default values and each choice the values offer, compared with the kustomize install
// that `make build-installer` ships (internal/install builds it), and applied server-side
// to a local control plane (envtest).
package helm_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/scim-operator/scim-operator/internal/install"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// The release the comparisons with the kustomize install use: with this name and
// namespace every object has the install's name.
const (
	releaseName = "scim-operator"
	namespace   = "scim-operator-system"
)

var chartDir = filepath.Join(testenv.RepoRoot(), "config", "helm", "scim-operator")

var (
	chartOnce sync.Once
	chrt      *chart.Chart
	chartErr  error
)

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	chartOnce.Do(func() { chrt, chartErr = loader.Load(chartDir) })
	if chartErr != nil {
		t.Fatalf("loading %s: %v", chartDir, chartErr)
	}
	return chrt
}

// rendering is what `helm install --dry-run` (client only) renders.
type rendering struct {
	crds []*unstructured.Unstructured // crds/, which Helm applies before the templates
	objs []*unstructured.Unstructured // the templates' objects
	// notes is NOTES.txt as rendered.
	notes string
}

// renderValues renders the chart as `helm install RELEASE config/helm/scim-operator -n NS
// -f values.yaml` would, with valuesYAML as that values file.
func renderValues(t *testing.T, release, ns, valuesYAML string) (*rendering, error) {
	t.Helper()
	c := loadChart(t)
	vals, err := chartutil.ReadValues([]byte(valuesYAML))
	if err != nil {
		t.Fatalf("values %q: %v", valuesYAML, err)
	}
	inst := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	inst.DryRun, inst.ClientOnly = true, true
	inst.ReleaseName, inst.Namespace = release, ns
	if inst.KubeVersion, err = chartutil.ParseKubeVersion("v" + testenv.K8sVersion); err != nil {
		t.Fatal(err)
	}
	rel, err := inst.Run(c, vals)
	if err != nil {
		return nil, err
	}
	r := &rendering{notes: rel.Info.Notes}
	for _, crd := range c.CRDObjects() {
		objs, err := decode(crd.File.Data)
		if err != nil {
			t.Fatalf("%s: %v", crd.Filename, err)
		}
		r.crds = append(r.crds, objs...)
	}
	manifests := releaseutil.SplitManifests(rel.Manifest)
	keys := make([]string, 0, len(manifests))
	for k := range manifests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		objs, err := decode([]byte(manifests[k]))
		if err != nil {
			t.Fatalf("rendered manifest %s: %v\n%s", k, err, manifests[k])
		}
		r.objs = append(r.objs, objs...)
	}
	return r, nil
}

// render is renderValues that fails the test when the chart does not render.
func render(t *testing.T, release, ns, valuesYAML string) *rendering {
	t.Helper()
	r, err := renderValues(t, release, ns, valuesYAML)
	if err != nil {
		t.Fatalf("rendering with values\n%s\n: %v", valuesYAML, err)
	}
	return r
}

// decode parses a YAML stream into objects (numbers as int64, as the API machinery has
// them), skipping empty documents.
func decode(stream []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split("\n"+string(stream), "\n---") {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "{}" || s == "" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("%w in\n%s", err, doc)
		}
		out = append(out, u)
	}
	return out, nil
}

// kustomize builds the install with the named components.
func kustomize(t *testing.T, components ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := install.Build(testenv.RepoRoot(), components...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func id(o *unstructured.Unstructured) string {
	return o.GetKind() + " " + strings.TrimPrefix(o.GetNamespace()+"/", "/") + o.GetName()
}

// find returns the only object of the kind and name.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d objects %s %s among %v, want 1", len(found), kind, name, ids(objs))
	}
	return found[0]
}

func ids(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, id(o))
	}
	slices.Sort(out)
	return out
}

func kinds(objs []*unstructured.Unstructured) map[string]int {
	n := map[string]int{}
	for _, o := range objs {
		n[o.GetKind()]++
	}
	return n
}

// container returns the Deployment's manager container.
func container(t *testing.T, objs []*unstructured.Unstructured, release string) map[string]any {
	t.Helper()
	d := find(t, objs, "Deployment", release+"-controller-manager")
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(cs))
	}
	return cs[0].(map[string]any)
}

func args(t *testing.T, objs []*unstructured.Unstructured, release string) []string {
	t.Helper()
	a, _, err := unstructured.NestedStringSlice(container(t, objs, release), "args")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// flag returns the value of --name in args ("true" for a bare --name), and whether it is there.
func flag(args []string, name string) (string, bool) {
	for _, a := range args {
		if a == "--"+name {
			return "true", true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
