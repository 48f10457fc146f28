package devenv

import (
	"context"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
)

// LocalOptions.FeatureGates reaches kube-apiserver: its own metric of its features
// (kubernetes_feature_enabled) says DetectCacheInconsistency, beta and on by default, is off.
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
	body, err := cs.RESTClient().Get().AbsPath("/metrics").Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range families["kubernetes_feature_enabled"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "name" && l.GetValue() == "DetectCacheInconsistency" {
				if v := m.GetGauge().GetValue(); v != 0 {
					t.Errorf("DetectCacheInconsistency enabled: %v", v)
				}
				return
			}
		}
	}
	t.Error("kube-apiserver's /metrics does not show DetectCacheInconsistency in kubernetes_feature_enabled")
}
