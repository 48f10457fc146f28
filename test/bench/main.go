// Command bench is `make bench`: it measures the SCIM hot paths against a real
// kube-apiserver and etcd (envtest) and prints one table. Figures come from here, never
// from timed assertions in tests.
//
//	go run ./test/bench [-members 2000] [-creates 300]
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

type row struct {
	name, n, perOp, allocs, bytes, note string
}

func main() {
	members := flag.Int("members", 2000, "OrgMembers in the cache for the read benchmarks")
	creates := flag.Int("creates", 300, "sequential SCIM creates for the write benchmark")
	flag.Parse()
	testing.Init()
	ctrl.SetLogger(logr.Discard())
	rows, err := run(*members, *creates)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "benchmark\tn\tper op\tallocs/op\tB/op\tnote\n")
	fmt.Fprintf(w, "---------\t-\t------\t---------\t----\t----\n")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.n, r.perOp, r.allocs, r.bytes, r.note)
	}
	_ = w.Flush()
	fmt.Printf("\n%s, %d CPUs, %s; control plane: envtest kube-apiserver %s\n",
		runtime.Version(), runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339), testenv.K8sVersion)
}

func fromResult(name string, r testing.BenchmarkResult, note string) row {
	return row{name: name, n: fmt.Sprint(r.N), perOp: time.Duration(r.NsPerOp()).String(),
		allocs: fmt.Sprint(r.AllocsPerOp()), bytes: fmt.Sprint(r.AllocedBytesPerOp()), note: note}
}

func run(nMembers, nCreates int) ([]row, error) {
	var rows []row
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Pure protocol work: no API server involved.
	rt := scim.UserType
	user := scim.Canonicalize(rt, map[string]any{
		"userName": "jane@example.com", "active": true,
		"emails": []any{map[string]any{"type": "work", "value": "jane@example.com", "primary": true}},
		"name":   map[string]any{"givenName": "Jane", "familyName": "Doe"},
	})
	const expr = `userName eq "jane@example.com" and (emails[type eq "work"].value co "example" or not (active eq false))`
	rows = append(rows, fromResult("filter parse+match", testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := scim.ParseFilter(rt, expr)
			if err != nil || !f.Match(user) {
				b.Fatal("filter did not match", err)
			}
		}
	}), "compound filter with a value path"))

	env := testenv.New()
	cfg, err := testenv.Start(env)
	if err != nil {
		return nil, fmt.Errorf("start envtest (run hack/controlplane.sh): %w", err)
	}
	defer func() { _ = env.Stop() }()
	direct, err := client.New(cfg, client.Options{Scheme: devenv.Scheme})
	if err != nil {
		return nil, err
	}
	// the manager as cmd/manager builds it (manager.New: cache transforms, controllers),
	// its SCIM server served in-process by httptest
	mgr, err := manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0", ScimAddr: "127.0.0.1:0", ScimInsecureHTTP: true})
	if err != nil {
		return nil, err
	}
	srv := mgr.SCIM
	go func() { _ = mgr.Start(ctx) }()

	const ns, cfgName, tok = "default", "bench", "bench-token-0123456789"
	if err := direct.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-token"},
		Data: map[string][]byte{"token": []byte(tok)}}); err != nil {
		return nil, err
	}
	if err := direct.Create(ctx, &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cfgName},
		Spec: scimv1.ScimConfigSpec{Organization: "bench", Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes},
			TokenSecretRef: &scimv1.SecretKeyRef{Name: "bench-token", Key: "token"}}}); err != nil {
		return nil, err
	}
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("cache did not sync")
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	base := hs.URL + naming.BasePath(ns, cfgName)
	do := func(method, path, body string) (int, error) {
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	// Writes: every 201 waits for the API server; sequential, as one IdP sends them.
	lat := make([]time.Duration, 0, nCreates)
	start := time.Now()
	for i := range nCreates {
		t0 := time.Now()
		code, err := do("POST", "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"w%05d@example.com","active":true}`, i))
		if err != nil || code != 201 {
			return nil, fmt.Errorf("create %d: %d %v", i, code, err)
		}
		lat = append(lat, time.Since(t0))
	}
	total := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	rows = append(rows, row{name: "SCIM POST /Users (sequential)", n: fmt.Sprint(nCreates),
		perOp: (total / time.Duration(nCreates)).String(), allocs: "-", bytes: "-",
		note: fmt.Sprintf("p50 %s, p99 %s, %.0f creates/s", lat[len(lat)/2], lat[len(lat)*99/100], float64(nCreates)/total.Seconds())})

	// Memory per cached member: heap growth while the cache takes in nMembers more.
	heapBefore := heap()
	if err := createMembers(ctx, direct, ns, cfgName, nMembers); err != nil {
		return nil, err
	}
	if err := waitCached(ctx, mgr.GetClient(), ns, nCreates+nMembers); err != nil {
		return nil, err
	}
	perMember := (int64(heap()) - int64(heapBefore)) / int64(nMembers)
	rows = append(rows, row{name: "cache memory per OrgMember", n: fmt.Sprint(nMembers), perOp: "-", allocs: "-",
		bytes: fmt.Sprint(perMember), note: "live heap growth / members (managedFields stripped)"})

	total2 := nCreates + nMembers
	lookup := `/Users?filter=` + url.QueryEscape(`userName eq "M01234@EXAMPLE.COM"`)
	rows = append(rows, fromResult("SCIM GET filter userName eq", testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if code, err := do("GET", lookup, ""); err != nil || code != 200 {
				b.Fatal(code, err)
			}
		}
	}), fmt.Sprintf("%d members cached; indexed lookup, over loopback HTTP", total2)))
	rows = append(rows, fromResult("SCIM GET /Users page of 100", testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if code, err := do("GET", "/Users?startIndex=1001&count=100", ""); err != nil || code != 200 {
				b.Fatal(code, err)
			}
		}
	}), fmt.Sprintf("%d members cached", total2)))
	rows = append(rows, fromResult("SCIM GET /Users/{id}", testing.Benchmark(func(b *testing.B) {
		id := naming.MemberName(cfgName, "m00042@example.com")
		b.ReportAllocs()
		for b.Loop() {
			if code, err := do("GET", "/Users/"+id, ""); err != nil || code != 200 {
				b.Fatal(code, err)
			}
		}
	}), "by id from the cache"))
	return rows, nil
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// createMembers creates OrgMembers straight through the API server (8 writers), shaped
// like what the SCIM server writes.
func createMembers(ctx context.Context, c client.Client, ns, cfgName string, n int) error {
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				un := fmt.Sprintf("m%05d@example.com", i)
				m := &scimv1.OrgMember{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName(cfgName, un),
						Labels: map[string]string{scimv1.LabelConfig: cfgName}},
					Spec: scimv1.OrgMemberSpec{ConfigName: cfgName, UserName: un, Active: true,
						ExternalID: fmt.Sprintf("ext-%d", i), DisplayName: "Member " + fmt.Sprint(i),
						Name:   &scimv1.Name{GivenName: "Member", FamilyName: fmt.Sprint(i)},
						Emails: []scimv1.MultiValue{{Value: un, Type: "work", Primary: true}}},
				}
				if err := c.Create(ctx, m); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func waitCached(ctx context.Context, c client.Client, ns string, want int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var l scimv1.OrgMemberList
		if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return err
		}
		if len(l.Items) >= want {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cache did not reach %d members", want)
}
