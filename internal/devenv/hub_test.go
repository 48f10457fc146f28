package devenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// The bench measures drift repair of people already in Docker Hub: that needs them adopted
// (with the sample's default, Ignore, they are Preexisting and SCIM never invites them
// back when they are removed by hand), so the emulator's ScimConfig carries the adoption
// the options ask for, and the sample's own policy otherwise.
func TestHubSampleCarriesTheAdoptionPolicy(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), HubSample))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		adoption scimv1.AdoptionPolicy
		want     string
		rate     int
	}{{"", "", 0}, {scimv1.AdoptionAdopt, "Adopt", 60}} {
		objs, err := placeInNamespace(raw, "bench", namespacedKind)
		if err != nil {
			t.Fatal(err)
		}
		cfg := byKind(t, objs, "ScimConfig")
		if err := pointAt(cfg, "http://127.0.0.1:1", HubOptions{ResyncInterval: "1m", Adoption: tc.adoption, RateLimit: tc.rate}); err != nil {
			t.Fatal(err)
		}
		// the manager's budget follows the emulator's limit; unlimited leaves the CRD's
		// default
		rpm, found, _ := unstructured.NestedInt64(cfg.Object, "spec", "backend", "dockerhub", "requestsPerMinute")
		if found != (tc.rate > 0) || rpm != int64(tc.rate) {
			t.Errorf("rate %d: the ScimConfig's requestsPerMinute is %d (set: %v)", tc.rate, rpm, found)
		}
		// a rate the CRD refuses is refused here, by name, not by the API server's
		// validation of the applied sample (review 94 F8)
		if err := pointAt(cfg, "http://127.0.0.1:1", HubOptions{ResyncInterval: "1m", RateLimit: 6001}); err == nil ||
			!strings.Contains(err.Error(), "at most 6000") {
			t.Errorf("rate 6001: %v, want refused", err)
		}
		got, _, _ := unstructured.NestedString(cfg.Object, "spec", "policies", "adoption")
		url, _, _ := unstructured.NestedString(cfg.Object, "spec", "backend", "dockerhub", "baseURL")
		if got != tc.want || url != "http://127.0.0.1:1" {
			t.Fatalf("adoption %q: the ScimConfig has adoption %q and baseURL %q", tc.adoption, got, url)
		}
	}
}
