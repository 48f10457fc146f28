package main

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/storage"
	cachermetrics "k8s.io/apiserver/pkg/storage/cacher/metrics"
	etcd3metrics "k8s.io/apiserver/pkg/storage/etcd3/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// medianRun returns the sample whose p50 is the median (the lower middle one for an even
// count), and every sample's p50 in the order measured.
func TestMedianRun(t *testing.T) {
	ms := func(n int) sample { return sample{time.Duration(n) * time.Millisecond} }
	for _, tc := range []struct {
		p50s []int
		want int
	}{{[]int{3, 1, 2}, 2}, {[]int{5}, 5}, {[]int{4, 1, 3, 2}, 2}} {
		i := 0
		got, p50s, err := medianRun(len(tc.p50s), func() (sample, error) { i++; return ms(tc.p50s[i-1]), nil })
		if err != nil || got.q(0.5) != time.Duration(tc.want)*time.Millisecond {
			t.Errorf("medianRun(%v) = p50 %s, %v; want %d ms", tc.p50s, got.q(0.5), err, tc.want)
		}
		var order []int
		for _, d := range p50s {
			order = append(order, int(d/time.Millisecond))
		}
		if !slices.Equal(order, tc.p50s) {
			t.Errorf("medianRun(%v) p50s = %v, want them in the order measured", tc.p50s, order)
		}
	}
}

func TestAddServed(t *testing.T) {
	before := map[string]served{"GET x": {n: 2, timed: 2, seconds: 0.5}}
	after := map[string]served{"GET x": {n: 5, timed: 4, seconds: 1.5}, "POST y": {n: 1, timed: 1, seconds: 0.25}}
	sum := addServed(nil, before, after)
	sum = addServed(sum, after, map[string]served{"GET x": {n: 6, timed: 5, seconds: 2}, "POST y": {n: 1, timed: 1, seconds: 0.25}})
	want := map[string]served{"GET x": {n: 4, timed: 3, seconds: 1.5}, "POST y": {n: 1, timed: 1, seconds: 0.25}}
	if len(sum) != len(want) {
		t.Fatalf("got %v, want %v", sum, want)
	}
	for k, w := range want {
		if g := sum[k]; g != w {
			t.Errorf("%s: got %+v, want %+v", k, g, w)
		}
	}
	if m := sum["GET x"].mean(); m != 0.5 {
		t.Errorf("mean %v, want 0.5 (seconds over the timed count)", m)
	}
}

// TestChecksFromTheAPIServersMetrics reads the checks from metric families the API
// server's own code exposes (its cacher's and its storage's metrics, registered and set
// as kube-apiserver does), so that a metric or label name the bench misspells fails here:
// a name that matches nothing would read "none" from every real API server.
func TestChecksFromTheAPIServersMetrics(t *testing.T) {
	etcd3metrics.Register()
	cachermetrics.Register()
	members := schema.GroupResource{Group: "scim.operator.dev", Resource: "orgmembers"}
	etcd3metrics.UpdateStoreStats(members, storage.Stats{ObjectCount: 1000}, nil)
	etcd3metrics.UpdateStoreStats(schema.GroupResource{Resource: "pods"}, storage.Stats{ObjectCount: 3}, nil)
	families := func() map[string]*dto.MetricFamily {
		fs, err := legacyregistry.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*dto.MetricFamily{}
		for _, f := range fs {
			out[f.GetName()] = f
		}
		return out
	}
	before := checksFrom(families())
	check := cachermetrics.StorageConsistencyCheckTotal
	check.WithLabelValues(members.Group, members.Resource, "success").Inc()
	check.WithLabelValues(members.Group, members.Resource, "failure").Inc()
	check.WithLabelValues("bench.scim.operator.dev", "orgmembers", "success").Inc() // the baseline's twins: not the members
	check.WithLabelValues("", "pods", "success").Inc()
	check.WithLabelValues("", "pods", "error").Inc() // listed nothing
	after := checksFrom(families())
	// (the registry is the process's: with -count 2 the counter is there before, so only
	// the differences are asserted, and "not shown" is read from no families at all)
	none := checksFrom(map[string]*dto.MetricFamily{})
	if none.exposed || !after.exposed {
		t.Errorf("exposed with no families %v, after the checks %v", none.exposed, after.exposed)
	}
	n, objects, w := checksWords(before, after)
	if want := "4, listing about 2003 objects from etcd: orgmembers.bench.scim.operator.dev 1 (0 objects), " +
		"orgmembers.scim.operator.dev 2 (1000 objects), pods 1 (3 objects)"; n != 4 || objects != 2003 || w != want {
		t.Errorf("got %v checks, %v objects, %q; want %q", n, objects, w, want)
	}
	if n, _, w := checksWords(after, after); n != 0 || w != "none" {
		t.Errorf("no checks between two equal readings: got %v %q", n, w)
	}
	if n, _, w := checksWords(none, none); n != 0 || !strings.Contains(w, "no "+checksMetric) {
		t.Errorf("no counter: got %v %q", n, w)
	}
}

// TestSyncVerdict: the full sync meets its target at up to 2 times its baseline, misses it
// above that or when it did not converge, and leaves it unsettled when it beat the
// baseline (which then did not reach the API server's limit).
func TestSyncVerdict(t *testing.T) {
	for _, c := range []struct {
		converged bool
		ratio     float64
		want      string
	}{
		{true, 1.5, "met"}, {true, 2, "met"}, {true, 2.01, "MISSED"},
		{true, 0.9, unsettled}, {false, 0.9, "MISSED"}, {false, 1.5, "MISSED"},
	} {
		if got := syncVerdict(c.converged, c.ratio); got != c.want {
			t.Errorf("syncVerdict(%v, %v) = %q, want %q", c.converged, c.ratio, got, c.want)
		}
	}
}

// TestDefaultSettle: -settle's default leaves a 100,000-member step the time its granting
// took on 2 cores (17 to 23 minutes at 51 to 63 members a second), with room to spare;
// small runs keep 20 minutes.
func TestDefaultSettle(t *testing.T) {
	for _, c := range []struct {
		sizes []int
		sync  int
		want  time.Duration
	}{
		{[]int{1000, 10000}, 2000, 20 * time.Minute},
		{[]int{1000, 10000, 100000}, 10000, 2500 * time.Second},
		{[]int{1000}, 100000, 2500 * time.Second},
	} {
		if got := defaultSettle(c.sizes, c.sync); got != c.want {
			t.Errorf("defaultSettle(%v, %d) = %s, want %s", c.sizes, c.sync, got, c.want)
		}
	}
}

// One size gives no flatness verdict: its ratio would be 1.00 and met by construction.
func TestFlatnessRowNeedsTwoSizes(t *testing.T) {
	one := flatnessRow("lookup", []int{100000}, 0.4, 0.4)
	if one.Verdict != "" || one.Target != "" || one.Figures["ratio"] != 0 {
		t.Errorf("one size: %+v, want no ratio and no verdict", one)
	}
	two := flatnessRow("lookup", []int{1000, 100000}, 0.4, 0.6)
	if two.Measure != "lookup p50 at 100000 / p50 at 1000" || two.Result != "1.50" || two.Verdict != verdict(false) {
		t.Errorf("two sizes: %+v, want 1.50 and missed", two)
	}
}

// callShapes names each kind of Docker Hub call once, most first, without the names in it.
func TestCallShapes(t *testing.T) {
	log := []hubemu.RequestRecord{
		{Method: "GET", Path: "/v2/orgs/acme/members", Query: "invites=true&page=1&page_size=100&type=all"},
		{Method: "GET", Path: "/v2/orgs/acme/members", Query: "invites=true&page=2&page_size=100&type=all"},
		{Method: "GET", Path: "/v2/orgs/acme/members", Query: "search=ann&page_size=100"},
		{Method: "POST", Path: "/v2/orgs/acme/groups/devs/members"},
	}
	want := "GET /v2/orgs/{}/members?invites,type: 2, GET /v2/orgs/{}/members?search: 1, POST /v2/orgs/{}/groups/{}/members: 1"
	if got := callShapes(log); got != want {
		t.Errorf("callShapes = %q\nwant %q", got, want)
	}
}

// beside gives the cores each part kept busy between two marks: the rest is the machine
// less the manager and the bench, and the checks that listed between them are named.
func TestBeside(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	a := mark{at: t0, cpu: cpuTimes{machine: 100, manager: 40, bench: 10},
		checks: checks{exposed: true, listed: map[string]float64{"orgmembers.scim.operator.dev": 1}, objects: map[string]float64{}}}
	b := mark{at: t0.Add(2 * time.Second), cpu: cpuTimes{machine: 103, manager: 41, bench: 10.5},
		checks: checks{exposed: true, listed: map[string]float64{"orgmembers.scim.operator.dev": 2},
			objects: map[string]float64{"orgmembers.scim.operator.dev": 10000}}}
	words, figs := beside(a, b)
	if strings.Contains(words, "rough") {
		t.Errorf("a window of 2 s called rough: %s", words)
	}
	if w, _ := beside(a, mark{at: t0.Add(300 * time.Millisecond), cpu: b.cpu, checks: b.checks}); !strings.Contains(w, "rough") {
		t.Errorf("a window of 300 ms not called rough: %s", w)
	}
	want := map[string]float64{"busy_cores": 1.5, "manager_cores": 0.5, "bench_cores": 0.25, "rest_cores": 0.75, "checks": 1,
		"checks_objects": 10000, "seconds": 2}
	for k, v := range want {
		if math.Abs(figs[k]-v) > 1e-9 {
			t.Errorf("%s = %v, want %v (%v)", k, figs[k], v, figs)
		}
	}
	if !strings.Contains(words, "1.50 of ") || !strings.Contains(words, " over 2s (manager 0.50, IdP client 0.25, the rest 0.75)") ||
		!strings.Contains(words, "orgmembers.scim.operator.dev 1 (10000 objects)") {
		t.Errorf("words: %s", words)
	}
}
