// Command helmgen writes the parts of the Helm chart (config/helm/scim-operator) that are
// derived from config/, so that the chart cannot drift from what `make build-installer`
// ships. `make helm` runs it and `make verify` fails when its output is not committed:
//
//   - crds/: the CRDs, byte for byte config/crd/bases (Helm installs them before the
//     templates and, like every crds/ directory, never upgrades them);
//   - templates/rbac.yaml: the ServiceAccount, Roles, ClusterRoles and bindings of
//     `kustomize build config/default`, with the kustomize name prefix and namespace
//     replaced by the release's, and the manager's impersonate rule naming the
//     ServiceAccounts of the lockdown values;
//   - files/: the monitoring component's PrometheusRule and Grafana dashboard, byte for
//     byte, which templates/monitoring.yaml reads.
//
// The hand-written templates (Deployment, Services, cert-manager, monitoring) are checked
// against the kustomize install by test/helm.
//
//	go run ./hack/helmgen [-root .] [-chart config/helm/scim-operator]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/scim-operator/scim-operator/internal/install"
)

// Generated files that the generator owns in the chart: every file in these directories
// (crds/ and files/) and templates/rbac.yaml.
const (
	crdsDir  = "crds"
	filesDir = "files"
	rbacFile = "templates/rbac.yaml"
)

// copied are files copied byte for byte into files/ (chart path: repository path).
var copied = map[string]string{
	filesDir + "/prometheusrule.yaml":    "config/components/monitoring/prometheusrule.yaml",
	filesDir + "/grafana-dashboard.json": "config/components/monitoring/grafana-dashboard.json",
}

func main() {
	root := flag.String("root", ".", "the repository")
	chart := flag.String("chart", "config/helm/scim-operator", "the chart directory, relative to -root")
	flag.Parse()
	if err := run(*root, filepath.Join(*root, *chart)); err != nil {
		fmt.Fprintln(os.Stderr, "helmgen:", err)
		os.Exit(1)
	}
}

// run writes the generated files into chartDir and removes files of the generated
// directories that are no longer generated (a CRD that was removed).
func run(root, chartDir string) error {
	files, err := Generate(root)
	if err != nil {
		return err
	}
	for _, dir := range []string{crdsDir, filesDir} {
		old, _ := filepath.Glob(filepath.Join(chartDir, dir, "*"))
		for _, p := range old {
			rel, _ := filepath.Rel(chartDir, p)
			if _, keep := files[filepath.ToSlash(rel)]; !keep {
				if err := os.Remove(p); err != nil {
					return err
				}
			}
		}
	}
	for rel, b := range files {
		p := filepath.Join(chartDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Generate returns the generated files of the chart, by their path in the chart.
func Generate(root string) (map[string][]byte, error) {
	files := map[string][]byte{}
	crds, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CRDs in config/crd/bases")
	}
	for _, p := range crds {
		if files[crdsDir+"/"+filepath.Base(p)], err = os.ReadFile(p); err != nil {
			return nil, err
		}
	}
	for dst, src := range copied {
		if files[dst], err = os.ReadFile(filepath.Join(root, src)); err != nil {
			return nil, err
		}
	}
	k, err := readKustomization(root)
	if err != nil {
		return nil, err
	}
	objs, err := install.Build(root)
	if err != nil {
		return nil, err
	}
	if files[rbacFile], err = RBAC(objs, k); err != nil {
		return nil, err
	}
	return files, nil
}

// Kustomization is what the generator needs of config/default/kustomization.yaml.
type Kustomization struct {
	Namespace  string `json:"namespace"`
	NamePrefix string `json:"namePrefix"`
}

func readKustomization(root string) (Kustomization, error) {
	var k Kustomization
	b, err := os.ReadFile(filepath.Join(root, "config", "default", "kustomization.yaml"))
	if err != nil {
		return k, err
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		return k, err
	}
	if k.Namespace == "" || k.NamePrefix == "" {
		return k, fmt.Errorf("config/default/kustomization.yaml: helmgen expects a namespace and a namePrefix")
	}
	return k, nil
}

// Placeholders that are safe YAML scalars, replaced by template text after marshalling.
const (
	phFullname     = "HELMGEN_FULLNAME"
	phNamespace    = "HELMGEN_NAMESPACE"
	phLabels       = "HELMGEN_LABELS"
	phImpersonable = "HELMGEN_IMPERSONABLE"
)

var rbacKinds = []string{"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}

// RBAC returns templates/rbac.yaml: the RBAC objects of the kustomize install objs,
// templated for the release.
func RBAC(objs []*unstructured.Unstructured, k Kustomization) ([]byte, error) {
	defaultSA, err := defaultServiceAccount(objs)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString(`# Code generated by hack/helmgen from ` + "`kustomize build config/default`" + ` (make helm). DO NOT EDIT.
# The RBAC of the install (config/rbac, config/rbac/role.yaml from the code's markers):
# the names and the namespace are the release's, and the manager's impersonate rule names
# lockdown.defaultServiceAccount and lockdown.impersonableServiceAccounts (docs/rbac.md).
`)
	impersonateRules := 0
	n := 0
	for _, o := range objs {
		if !slices.Contains(rbacKinds, o.GetKind()) {
			continue
		}
		t, found, err := templated(o, k, defaultSA)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		impersonateRules += found
		if n > 0 {
			out.WriteString("---\n")
		}
		out.Write(t)
		n++
	}
	if impersonateRules != 1 {
		return nil, fmt.Errorf("the install has %d impersonate rules on ServiceAccount %q (--default-service-account), want 1: "+
			"teach hack/helmgen the new rule", impersonateRules, defaultSA)
	}
	return out.Bytes(), nil
}

// defaultServiceAccount is the install's --default-service-account.
func defaultServiceAccount(objs []*unstructured.Unstructured) (string, error) {
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			args, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "--default-service-account="); ok && v != "" {
					return v, nil
				}
			}
		}
	}
	return "", fmt.Errorf("the install's Deployment has no --default-service-account")
}

// templated returns the object as template text, and how many impersonate rules it
// replaced.
func templated(o *unstructured.Unstructured, k Kustomization, defaultSA string) ([]byte, int, error) {
	obj := o.DeepCopy().Object
	meta, _ := obj["metadata"].(map[string]any)
	for key := range meta {
		if key != "name" && key != "namespace" && key != "labels" {
			return nil, 0, fmt.Errorf("helmgen does not carry metadata.%s", key)
		}
	}
	name, err := release(o.GetName(), k)
	if err != nil {
		return nil, 0, err
	}
	meta["name"] = name
	switch ns := o.GetNamespace(); ns {
	case "":
	case k.Namespace:
		meta["namespace"] = phNamespace
	default:
		return nil, 0, fmt.Errorf("namespace %q is not the install's %q", ns, k.Namespace)
	}
	meta["labels"] = phLabels

	if ref, ok := obj["roleRef"].(map[string]any); ok {
		if ref["name"], err = release(ref["name"].(string), k); err != nil {
			return nil, 0, fmt.Errorf("roleRef: %w", err)
		}
	}
	subjects, _ := obj["subjects"].([]any)
	for _, s := range subjects {
		s := s.(map[string]any)
		if s["kind"] != "ServiceAccount" || s["namespace"] != k.Namespace {
			return nil, 0, fmt.Errorf("subject %v is not a ServiceAccount of the install", s)
		}
		if s["name"], err = release(s["name"].(string), k); err != nil {
			return nil, 0, fmt.Errorf("subject: %w", err)
		}
		s["namespace"] = phNamespace
	}

	found := 0
	rules, _ := obj["rules"].([]any)
	for _, r := range rules {
		r := r.(map[string]any)
		verbs, _ := r["verbs"].([]any)
		if !slices.Contains(verbs, any("impersonate")) {
			continue
		}
		names, _ := r["resourceNames"].([]any)
		if !slices.Equal(verbs, []any{"impersonate"}) || !slices.Equal(r["resources"].([]any), []any{"serviceaccounts"}) ||
			!slices.Equal(names, []any{defaultSA}) {
			return nil, 0, fmt.Errorf("an impersonate rule helmgen does not know: %v (it templates only impersonate on "+
				"serviceaccounts named %q, the --default-service-account)", r, defaultSA)
		}
		r["resourceNames"] = phImpersonable
		found++
	}

	if err := noInstallNames(obj, k); err != nil {
		return nil, 0, err
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, 0, err
	}
	s := string(b)
	if found > 0 {
		s, err = impersonateRule(s)
		if err != nil {
			return nil, 0, err
		}
	}
	s = strings.ReplaceAll(s, "labels: "+phLabels, "labels:\n    {{- include \"scim-operator.labels\" . | nindent 4 }}")
	s = strings.ReplaceAll(s, phFullname, `{{ include "scim-operator.fullname" . }}`)
	s = strings.ReplaceAll(s, phNamespace, "{{ .Release.Namespace }}")
	if strings.Contains(s, "HELMGEN_") {
		return nil, 0, fmt.Errorf("a placeholder was left in %s", s)
	}
	return []byte(s), found, nil
}

// impersonateRule wraps the rule whose resourceNames is the placeholder in a condition:
// with no name to impersonate the rule is left out (a rule without resourceNames would
// allow every ServiceAccount).
func impersonateRule(s string) (string, error) {
	lines := strings.Split(s, "\n")
	at := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, phImpersonable) })
	// The rule is the item of the top-level rules: list that holds the placeholder: it
	// starts at the "- " line at or above it and ends before the next line that is not
	// indented.
	start := at
	for start > 0 && !strings.HasPrefix(lines[start], "- ") {
		start--
	}
	key := start
	for key > 0 && (strings.HasPrefix(lines[key], "- ") || strings.HasPrefix(lines[key], "  ")) {
		key--
	}
	if !strings.HasPrefix(lines[start], "- ") || lines[key] != "rules:" {
		return "", fmt.Errorf("cannot find the impersonate rule's item in the rules list of\n%s", s)
	}
	end := at + 1
	for end < len(lines) && strings.HasPrefix(lines[end], "  ") {
		end++
	}
	lines[at] = strings.Replace(lines[at], phImpersonable, "{{ toJson . }}", 1)
	out := slices.Concat(lines[:start],
		[]string{`{{- with include "scim-operator.impersonableServiceAccounts" . | fromJsonArray }}`},
		lines[start:end],
		[]string{"{{- end }}"},
		lines[end:])
	return strings.Join(out, "\n"), nil
}

// release maps an install name (namePrefix + suffix) to the release's.
func release(name string, k Kustomization) (string, error) {
	suffix, ok := strings.CutPrefix(name, k.NamePrefix)
	if !ok || suffix == "" {
		return "", fmt.Errorf("name %q lacks the install's prefix %q", name, k.NamePrefix)
	}
	return phFullname + "-" + strings.TrimPrefix(suffix, "-"), nil
}

// noInstallNames fails when a string left in obj still names the install's namespace or
// one of its prefixed objects: a reference helmgen would not template.
func noInstallNames(v any, k Kustomization) error {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for key := range v {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			if err := noInstallNames(v[key], k); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	case []any:
		for _, e := range v {
			if err := noInstallNames(e, k); err != nil {
				return err
			}
		}
	case string:
		if strings.Contains(v, k.Namespace) || strings.HasPrefix(v, k.NamePrefix) {
			return fmt.Errorf("%q names the install (namespace %s, prefix %s) where helmgen does not template it", v, k.Namespace, k.NamePrefix)
		}
	}
	return nil
}
