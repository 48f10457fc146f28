package devenv

import (
	"context"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
)

// LocalOptions.FeatureGates reaches kube-apiserver: its own metric of its features says
// DetectCacheInconsistency (beta, on by default) is off.
func TestStartLocalPassesFeatureGates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver and etcd")
	}
	c, err := StartLocalWith(t.TempDir(), LocalOptions{FeatureGates: "DetectCacheInconsistency=false"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const gate = `kubernetes_feature_enabled{name="DetectCacheInconsistency"`
	for line := range strings.Lines(string(raw)) {
		if strings.HasPrefix(line, gate) {
			if !strings.HasSuffix(strings.TrimSpace(line), "} 0") {
				t.Errorf("the gate is not off: %s", line)
			}
			return
		}
	}
	t.Errorf("kube-apiserver's /metrics has no %s...}", gate)
}
