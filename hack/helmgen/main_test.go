package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/scim-operator/scim-operator/internal/install"
)

const root = "../.."

// TestCommittedChartIsGenerated: the chart's generated files are what helmgen writes
// from the config/ of this tree (make verify checks the same through git diff).
func TestCommittedChartIsGenerated(t *testing.T) {
	files, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range files {
		got, err := os.ReadFile(filepath.Join(root, "config", "helm", "scim-operator", rel))
		if err != nil {
			t.Errorf("%s: %v (run make helm)", rel, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make helm", rel)
		}
	}
	for _, want := range []string{"crds/scim.operator.dev_scimconfigs.yaml", rbacFile, "files/prometheusrule.yaml"} {
		if _, ok := files[want]; !ok {
			t.Errorf("helmgen does not generate %s", want)
		}
	}
}

func build(t *testing.T) ([]*unstructured.Unstructured, Kustomization) {
	t.Helper()
	objs, err := install.Build(root)
	if err != nil {
		t.Fatal(err)
	}
	k, err := readKustomization(root)
	if err != nil {
		t.Fatal(err)
	}
	return objs, k
}

func managerRole(t *testing.T, objs []*unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" && strings.HasSuffix(o.GetName(), "-manager-role") {
			return o
		}
	}
	t.Fatal("no manager ClusterRole in the install")
	return nil
}

// TestRBACTemplatesTheImpersonateRule: the manager's impersonate rule is replaced by the
// lockdown template, and the rest of the RBAC carries the release's names.
func TestRBACTemplatesTheImpersonateRule(t *testing.T) {
	objs, k := build(t)
	out, err := RBAC(objs, k)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		`{{- with include "scim-operator.impersonableServiceAccounts" . | fromJsonArray }}`,
		"  resourceNames: {{ toJson . }}",
		`name: {{ include "scim-operator.fullname" . }}-manager-role`,
		"namespace: {{ .Release.Namespace }}",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("templates/rbac.yaml lacks %q", want)
		}
	}
	for _, bad := range []string{"scim-provisioner", k.Namespace, k.NamePrefix, "HELMGEN_"} {
		if strings.Contains(s, bad) {
			t.Errorf("templates/rbac.yaml still says %q", bad)
		}
	}
}

// TestRBACRefusesWhatItCannotTemplate: helmgen fails, rather than writing a chart that
// grants something else than the install, when the RBAC changes in a way it does not know.
func TestRBACRefusesWhatItCannotTemplate(t *testing.T) {
	rules := func(o *unstructured.Unstructured) []any {
		r, _, _ := unstructured.NestedSlice(o.Object, "rules")
		return r
	}
	cases := map[string]struct {
		change func(t *testing.T, objs []*unstructured.Unstructured)
		want   string
	}{
		"no impersonate rule": {func(t *testing.T, objs []*unstructured.Unstructured) {
			role := managerRole(t, objs)
			var kept []any
			for _, r := range rules(role) {
				if !strings.Contains(strings.Join(toStrings(r.(map[string]any)["verbs"]), ","), "impersonate") {
					kept = append(kept, r)
				}
			}
			_ = unstructured.SetNestedSlice(role.Object, kept, "rules")
		}, "0 impersonate rules"},
		"impersonate on other names": {func(t *testing.T, objs []*unstructured.Unstructured) {
			role := managerRole(t, objs)
			_ = unstructured.SetNestedSlice(role.Object, append(rules(role), map[string]any{
				"apiGroups": []any{""}, "resources": []any{"serviceaccounts"}, "verbs": []any{"impersonate"},
				"resourceNames": []any{"someone-else"},
			}), "rules")
		}, "an impersonate rule helmgen does not know"},
		"impersonate on users": {func(t *testing.T, objs []*unstructured.Unstructured) {
			role := managerRole(t, objs)
			_ = unstructured.SetNestedSlice(role.Object, append(rules(role), map[string]any{
				"apiGroups": []any{""}, "resources": []any{"users"}, "verbs": []any{"impersonate"},
			}), "rules")
		}, "an impersonate rule helmgen does not know"},
		"another default ServiceAccount": {func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, o := range objs {
				if o.GetKind() != "Deployment" {
					continue
				}
				cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				c := cs[0].(map[string]any)
				args := toStrings(c["args"])
				for i, a := range args {
					if strings.HasPrefix(a, "--default-service-account=") {
						c["args"].([]any)[i] = "--default-service-account=tenant-writer"
					}
				}
				_ = unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers")
			}
		}, "an impersonate rule helmgen does not know"},
		"an annotation": {func(t *testing.T, objs []*unstructured.Unstructured) {
			managerRole(t, objs).SetAnnotations(map[string]string{"a": "b"})
		}, "does not carry metadata.annotations"},
		"a subject in another namespace": {func(t *testing.T, objs []*unstructured.Unstructured) {
			for _, o := range objs {
				if o.GetKind() == "ClusterRoleBinding" {
					subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
					subjects[0].(map[string]any)["namespace"] = "elsewhere"
					_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
				}
			}
		}, "is not a ServiceAccount of the install"},
		"a rule naming an install object": {func(t *testing.T, objs []*unstructured.Unstructured) {
			role := managerRole(t, objs)
			_ = unstructured.SetNestedSlice(role.Object, append(rules(role), map[string]any{
				"apiGroups": []any{""}, "resources": []any{"secrets"}, "verbs": []any{"get"},
				"resourceNames": []any{"scim-operator-scim-tls"},
			}), "rules")
		}, "where helmgen does not template it"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs, k := build(t)
			tc.change(t, objs)
			_, err := RBAC(objs, k)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RBAC: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}
