package crd_test

import (
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// wantShortNames are the short names README.md documents for this project's kinds.
var wantShortNames = map[string][]string{
	"scimconfigs": {"scimcfg"},
	"orgmembers":  {"om", "orgm"},
	"orggroups":   {"og", "orgg"},
	// the SCIM server's name claims: bookkeeping, no short name and no category
	"orgnameclaims": {},
	// the Webhook grant layout's ledger
	"orggrants": {"ogt"},
}

// TestShortNamesCollideWithNothing asks the API server's discovery, as kubectl does, who
// claims each short name: this project's kinds must claim only their own, and the built-in
// ones (`kubectl get sc` for StorageClasses) must keep resolving without an ambiguity.
func TestShortNamesCollideWithNothing(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}

	// every name kubectl accepts for a resource (plural, singular, short) -> who claims it
	claims := map[string]map[string]bool{}
	ours := map[string][]string{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue // a subresource
			}
			id := schema.GroupResource{Group: gv.Group, Resource: r.Name}.String()
			for _, n := range append([]string{r.Name, r.SingularName}, r.ShortNames...) {
				if n == "" {
					continue
				}
				if claims[n] == nil {
					claims[n] = map[string]bool{}
				}
				claims[n][id] = true
			}
			if gv.Group == scimv1.GroupVersion.Group {
				ours[r.Name] = append([]string(nil), r.ShortNames...)
			}
		}
	}

	for resource, want := range wantShortNames {
		got := append([]string(nil), ours[resource]...)
		sort.Strings(got)
		w := append([]string(nil), want...)
		sort.Strings(w)
		if strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("%s has short names %q, want %q (update README.md and this test together)", resource, got, w)
		}
		for _, n := range got {
			self := schema.GroupResource{Group: scimv1.GroupVersion.Group, Resource: resource}.String()
			for other := range claims[n] {
				if other != self {
					t.Errorf("short name %q of %s is also claimed by %s", n, resource, other)
				}
			}
		}
	}
	if len(ours) != len(wantShortNames) {
		t.Errorf("discovery lists %d resources in %s, want %d: %v", len(ours), scimv1.GroupVersion.Group, len(wantShortNames), ours)
	}

	// What kubectl does with a short name: expand it, warning when another resource could
	// also match.
	var warnings []string
	mapper := restmapper.NewShortcutExpander(
		restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)), dc,
		func(w string) { warnings = append(warnings, w) })
	resolve := map[string]schema.GroupResource{
		"sc":      {Group: "storage.k8s.io", Resource: "storageclasses"},
		"scimcfg": {Group: scimv1.GroupVersion.Group, Resource: "scimconfigs"},
		"om":      {Group: scimv1.GroupVersion.Group, Resource: "orgmembers"},
		"orgm":    {Group: scimv1.GroupVersion.Group, Resource: "orgmembers"},
		"og":      {Group: scimv1.GroupVersion.Group, Resource: "orggroups"},
		"orgg":    {Group: scimv1.GroupVersion.Group, Resource: "orggroups"},
	}
	for short, want := range resolve {
		gvr, err := mapper.ResourceFor(schema.GroupVersionResource{Resource: short})
		if err != nil {
			t.Errorf("kubectl get %s: %v", short, err)
			continue
		}
		if gvr.GroupResource() != want {
			t.Errorf("kubectl get %s resolves to %s, want %s", short, gvr.GroupResource(), want)
		}
	}
	if len(warnings) > 0 {
		t.Errorf("ambiguous short names: %q", warnings)
	}
}
