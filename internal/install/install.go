// Package install builds the kustomize install that `make build-installer` ships
// (config/default), in-process with kustomize's own library, optionally with some of the
// optional components of config/components enabled as their comments say (added to
// config/default's `components:`). hack/helmgen derives the Helm chart's generated parts
// from it, and test/helm compares the chart's renders with it.
package install

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Components of config/components.
const (
	CertManager = "cert-manager"
	PlainHTTP   = "plain-http"
	Monitoring  = "monitoring"
)

// Build returns the objects of `kustomize build config/default` in the repository at root,
// with the named components (of config/components) enabled, in kustomize's output order.
func Build(root string, components ...string) ([]*unstructured.Unstructured, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	defaultDir := filepath.Join(root, "config", "default")
	dir := defaultDir
	if len(components) > 0 {
		// An overlay in a temporary directory: config/default's kustomization with its
		// relative paths rewritten, plus the components.
		tmp, err := os.MkdirTemp("", "install-overlay-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := writeOverlay(tmp, defaultDir, components); err != nil {
			return nil, err
		}
		dir = tmp
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build config/default %v: %w", components, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range m.Resources() {
		// through JSON: unstructured's numbers are int64 (kustomize's maps hold int)
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
	return objs, nil
}

func writeOverlay(dir, defaultDir string, components []string) error {
	raw, err := os.ReadFile(filepath.Join(defaultDir, "kustomization.yaml"))
	if err != nil {
		return err
	}
	var k map[string]any
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return err
	}
	// kustomize takes only relative paths to other kustomizations
	rel := func(p string) (string, error) { return filepath.Rel(dir, filepath.Join(defaultDir, p)) }
	for _, key := range []string{"resources", "components"} {
		entries, _ := k[key].([]any)
		for i, e := range entries {
			s, ok := e.(string)
			if !ok {
				return fmt.Errorf("config/default: %s[%d] is not a path", key, i)
			}
			if entries[i], err = rel(s); err != nil {
				return err
			}
		}
		k[key] = entries
	}
	for _, c := range components {
		p, err := rel(filepath.Join("..", "components", c))
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(defaultDir, "..", "components", c, "kustomization.yaml")); err != nil {
			return fmt.Errorf("component %s: %w", c, err)
		}
		if entries, _ := k["components"].([]any); !slices.Contains(entries, any(p)) {
			k["components"] = append(entries, p)
		}
	}
	out, err := yaml.Marshal(k)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "kustomization.yaml"), out, 0o644)
}
