package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// A group refused by its organization's request budget waits until the delay is over,
// unless its spec, its config's spec or its reconcile annotation changed since.
func TestRefusalsWaitUntilTheDelayOrAChange(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "ops"}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name        string
		gen, cfgGen int64
		asked       string
		at          time.Time
		want        time.Duration
	}{
		{"unchanged, during the delay", 3, 7, "t1", now.Add(10 * time.Second), 20 * time.Second},
		{"the delay is over", 3, 7, "t1", now.Add(30 * time.Second), 0},
		{"the group's spec changed", 4, 7, "t1", now, 0},
		{"the config's spec changed", 3, 8, "t1", now, 0},
		{"a reconcile was asked for", 3, 7, "t2", now, 0},
		{"the reconcile annotation was removed", 3, 7, "", now, 0},
	} {
		var rs refusals
		rs.record(key, now.Add(30*time.Second), 3, 7, "t1")
		if got := rs.wait(key, c.gen, c.cfgGen, c.asked, c.at); got != c.want {
			t.Errorf("%s: wait %s, want %s", c.name, got, c.want)
		}
	}
}
