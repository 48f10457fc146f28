package devenv

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/scim-operator/scim-operator/internal/testenv"
)

// clusterScoped are the kinds of the sample that have no namespace.
var clusterScoped = map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true}

func namespacedKind(o runtime.Object) (bool, error) {
	return !clusterScoped[o.GetObjectKind().GroupVersionKind().Kind], nil
}

func byKind(t *testing.T, objs []*unstructured.Unstructured, kind string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == kind {
			if found != nil {
				t.Fatalf("the sample has more than one %s", kind)
			}
			found = u
		}
	}
	if found == nil {
		t.Fatalf("the sample has no %s", kind)
	}
	return found
}

// The sample works out of the box in any namespace: the ScimConfig acts as the
// ServiceAccount the sample ships, and the ClusterRoleBinding that lets that ServiceAccount
// bind the sample role follows it into the namespace (its own binding per namespace).
func TestSampleFollowsItsNamespace(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "scim_v1alpha1_scimconfig.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"default", "team-a"} {
		objs, err := placeInNamespace(raw, ns, namespacedKind)
		if err != nil {
			t.Fatal(err)
		}
		cfg := byKind(t, objs, "ScimConfig")
		sa, _, _ := unstructured.NestedString(cfg.Object, "spec", "backend", "kubernetes", "serviceAccountName")
		account := byKind(t, objs, "ServiceAccount")
		if account.GetName() != sa || account.GetNamespace() != ns || cfg.GetNamespace() != ns {
			t.Fatalf("in %s: the ScimConfig (namespace %q) acts as %q, the sample ships ServiceAccount %s/%s",
				ns, cfg.GetNamespace(), sa, account.GetNamespace(), account.GetName())
		}
		crb := byKind(t, objs, "ClusterRoleBinding")
		subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
		if len(subjects) != 1 {
			t.Fatalf("subjects = %v, want the ServiceAccount", subjects)
		}
		s := subjects[0].(map[string]any)
		if s["kind"] != "ServiceAccount" || s["name"] != sa || s["namespace"] != ns {
			t.Fatalf("in %s: the ClusterRoleBinding names %v, want ServiceAccount %s/%s", ns, s, ns, sa)
		}
		want := "scim-sample-provisioner"
		if ns != "default" {
			want += "-" + ns
		}
		if crb.GetName() != want || crb.GetNamespace() != "" {
			t.Fatalf("in %s: ClusterRoleBinding %q (namespace %q), want %q", ns, crb.GetName(), crb.GetNamespace(), want)
		}
		for _, u := range objs {
			if clusterScoped[u.GetKind()] != (u.GetNamespace() == "") {
				t.Fatalf("in %s: %s %s has namespace %q", ns, u.GetKind(), u.GetName(), u.GetNamespace())
			}
		}
	}
}
