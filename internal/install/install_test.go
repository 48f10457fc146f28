package install

import (
	"testing"
)

// TestBuildEnablesComponents: each component adds its objects, and only when named.
func TestBuildEnablesComponents(t *testing.T) {
	kinds := func(components ...string) map[string]int {
		t.Helper()
		objs, err := Build("../..", components...)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, o := range objs {
			n[o.GetKind()]++
		}
		return n
	}
	base := kinds()
	if base["Deployment"] != 1 || base["CustomResourceDefinition"] == 0 || base["Certificate"] != 0 || base["ServiceMonitor"] != 0 {
		t.Fatalf("config/default: %v", base)
	}
	if got := kinds(CertManager); got["Certificate"] != 1 || got["Issuer"] != 1 {
		t.Errorf("with %s: %v", CertManager, got)
	}
	if got := kinds(Monitoring); got["ServiceMonitor"] != 1 || got["PrometheusRule"] != 1 || got["ConfigMap"] != 1 {
		t.Errorf("with %s: %v", Monitoring, got)
	}
	if _, err := Build("../..", "no-such-component"); err == nil {
		t.Error("an unknown component built")
	}
}
