package crd_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// example is one YAML document of a ```yaml block in the docs.
type example struct {
	file string // repository-relative
	line int    // where its block starts
	obj  map[string]any
}

// TestDocsExamplesAreValid sends every ScimConfig, OrgMember and OrgGroup that README.md and
// docs/**/*.md show in a ```yaml block to the API server, as a dry-run create with strict
// field validation: a misspelt or unknown field, a value the schema or a CEL rule refuses,
// or a field that no longer exists fails the test with the file and line of the example.
// Each reference page (docs/reference/<kind>.md) must show at least one example of its kind.
func TestDocsExamplesAreValid(t *testing.T) {
	root := testenv.RepoRoot()
	files := []string{filepath.Join(root, "README.md")}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	var examples []example
	for _, f := range files {
		ex, err := yamlExamples(root, f)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, ex...)
	}

	ns := namespace(t)
	shown := map[string]map[string]bool{} // file -> kinds validated
	for _, ex := range examples {
		apiVersion, _ := ex.obj["apiVersion"].(string)
		if !strings.HasPrefix(apiVersion, scimv1.GroupVersion.Group+"/") {
			continue // another API's object (a Secret, RBAC): not this project's schema
		}
		u := &unstructured.Unstructured{Object: ex.obj}
		name := fmt.Sprintf("%s:%d %s %s", ex.file, ex.line, u.GetKind(), u.GetName())
		t.Run(name, func(t *testing.T) {
			u.SetNamespace(ns) // the examples name their own namespaces, which need not exist here
			if err := k8s.Create(ctx, u, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
				t.Errorf("the API server refuses the example at %s:%d: %v", ex.file, ex.line, err)
			}
		})
		if shown[ex.file] == nil {
			shown[ex.file] = map[string]bool{}
		}
		shown[ex.file][u.GetKind()] = true
	}

	for _, kind := range []string{"ScimConfig", "OrgMember", "OrgGroup"} {
		page := "docs/reference/" + strings.ToLower(kind) + ".md"
		if !shown[page][kind] {
			t.Errorf("%s shows no %s in a ```yaml block: the reference page of a kind needs an example", page, kind)
		}
	}
}

// yamlExamples returns the YAML documents of every ```yaml block of a Markdown file.
func yamlExamples(root, path string) ([]example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rel, _ := filepath.Rel(root, path)
	rel = filepath.ToSlash(rel)

	var out []example
	var doc strings.Builder
	inBlock, start, n := false, 0, 0
	flush := func() error {
		defer doc.Reset()
		if strings.TrimSpace(doc.String()) == "" {
			return nil
		}
		var v any
		if err := yaml.UnmarshalStrict([]byte(doc.String()), &v); err != nil {
			return fmt.Errorf("%s:%d: a yaml block that is not YAML: %w", rel, start, err)
		}
		if obj, ok := v.(map[string]any); ok { // a fragment (a list of rules) is no object
			out = append(out, example{file: rel, line: start, obj: obj})
		}
		return nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case !inBlock && (trimmed == "```yaml" || strings.HasPrefix(trimmed, "```yaml ")):
			inBlock, start = true, n
		case inBlock && trimmed == "```":
			if err := flush(); err != nil {
				return nil, err
			}
			inBlock = false
		case inBlock && trimmed == "---":
			if err := flush(); err != nil {
				return nil, err
			}
		case inBlock:
			doc.WriteString(line + "\n")
		}
	}
	if inBlock {
		return nil, fmt.Errorf("%s:%d: a ```yaml block that does not end", rel, start)
	}
	return out, sc.Err()
}
