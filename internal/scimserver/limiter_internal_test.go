package scimserver

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// These run without a control plane: go test ./internal/scimserver -run 'Limiter|Client|Trusted'

func TestFailureLimiterBudgetAndRetryAfter(t *testing.T) {
	f := newFailureLimiter()
	t0 := time.Unix(1_000_000, 0)
	for i := range failureBurst {
		if v := f.failure("k", t0); !v.allowed {
			t.Fatalf("failure %d refused within the burst", i+1)
		}
	}
	v := f.failure("k", t0)
	if v.allowed || !v.report || v.full {
		t.Fatalf("11th failure: %+v, want refused and reported", v)
	}
	if v.retryAfter <= 0 || v.retryAfter > failureInterval {
		t.Fatalf("retryAfter %v, want in (0, %v]", v.retryAfter, failureInterval)
	}
	if v := f.failure("k", t0.Add(time.Second)); v.allowed || v.report {
		t.Fatalf("12th failure within the episode: %+v, want refused, not reported again", v)
	}
	if v := f.failure("other", t0); !v.allowed {
		t.Fatalf("another key is refused: %+v", v)
	}
	if v := f.failure("k", t0.Add(failureInterval)); !v.allowed {
		t.Fatalf("after %v the key may fail once more: %+v", failureInterval, v)
	}
	if v := f.failure("k", t0.Add(failureInterval)); v.allowed || !v.report {
		t.Fatalf("a new episode is reported again: %+v", v)
	}
}

func TestFailureLimiterEvictsIdleEntries(t *testing.T) {
	f := newFailureLimiter()
	t0 := time.Unix(1_000_000, 0)
	f.lastSweep = t0
	for i := range 500 {
		f.failure(fmt.Sprint("once-", i), t0)
	}
	for range failureBurst + 1 {
		f.failure("busy", t0.Add(sweepEvery-time.Second))
	}
	if n := f.len(); n != 501 {
		t.Fatalf("len %d, want 501", n)
	}
	// a minute later: the one-off keys refilled long ago, "busy" has not
	f.failure("trigger", t0.Add(sweepEvery))
	if n := f.len(); n != 2 {
		t.Fatalf("after the sweep len %d, want 2 (busy, trigger)", n)
	}
	if v := f.failure("busy", t0.Add(sweepEvery)); v.allowed {
		t.Fatalf("sweeping forgot a live budget: %+v", v)
	}
}

func TestFailureLimiterMemoryIsBounded(t *testing.T) {
	f := newFailureLimiter()
	f.maxKeys = 100
	t0 := time.Unix(1_000_000, 0)
	f.lastSweep = t0
	for i := range f.maxKeys {
		if v := f.failure(fmt.Sprint("k", i), t0); !v.allowed {
			t.Fatalf("key %d refused before the map is full", i)
		}
	}
	v := f.failure("new", t0.Add(time.Second))
	if v.allowed || !v.full || !v.report || v.retryAfter <= 0 {
		t.Fatalf("new key on a full map of live entries: %+v, want refused (full, reported)", v)
	}
	if v := f.failure("new2", t0.Add(time.Second)); v.allowed || v.report {
		t.Fatalf("full map reported twice: %+v", v)
	}
	if n := f.len(); n != f.maxKeys {
		t.Fatalf("len %d, want %d", n, f.maxKeys)
	}
	// once the entries have refilled, a new key evicts them instead of being refused
	later := t0.Add(failureBurst*failureInterval + 2*time.Second)
	if v := f.failure("new", later); !v.allowed {
		t.Fatalf("new key after the entries went idle: %+v", v)
	}
	if n := f.len(); n != 1 {
		t.Fatalf("len %d after eviction, want 1", n)
	}
}

func TestFailureKeyBoundsLength(t *testing.T) {
	long := strings.Repeat("x", 300)
	if failureKey("1.2.3.4", "ns", long) != failureKey("1.2.3.4", long, "n") {
		t.Fatal("names that cannot be Kubernetes names should share one key per client")
	}
	if failureKey("1.2.3.4", "ns", "a") == failureKey("1.2.3.4", "ns", "b") {
		t.Fatal("two paths share a key")
	}
	if failureKey("1.2.3.4", "ns", "a") == failureKey("1.2.3.5", "ns", "a") {
		t.Fatal("two clients share a key")
	}
}

func TestTrustedProxiesParse(t *testing.T) {
	p, err := parseTrustedProxies([]string{"10.0.0.0/8", " 192.168.1.7 ", "", "fd00::/8", "::ffff:172.16.0.1", "10.1.2.3/16"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.7/32", "fd00::/8", "172.16.0.1/32", "10.1.0.0/16"}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", p, want)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "10.0.0"} {
		if _, err := parseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c := fake.NewClientBuilder().Build()
	if _, err := New(Options{Client: c, APIReader: c, TrustedProxies: []string{"nope"}}); err == nil ||
		!strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("New with a bad trusted proxy: %v", err)
	}
}

func TestClientResolver(t *testing.T) {
	trusted, err := parseTrustedProxies([]string{"10.0.0.0/8", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	none := clientResolver{}
	some := clientResolver{trusted: trusted}
	for _, c := range []struct {
		name   string
		r      clientResolver
		remote string
		xff    []string
		want   string
	}{
		{"no trusted proxies: header ignored", none, "10.0.0.1:1", []string{"203.0.113.1"}, "10.0.0.1"},
		{"untrusted peer: header ignored", some, "192.0.2.1:1", []string{"203.0.113.1"}, "192.0.2.1"},
		{"trusted peer, no header", some, "10.0.0.1:1", nil, "10.0.0.1"},
		{"trusted peer", some, "10.0.0.1:1", []string{"203.0.113.1"}, "203.0.113.1"},
		{"prepended entries ignored", some, "10.0.0.1:1", []string{"198.51.100.1, 203.0.113.1"}, "203.0.113.1"},
		{"trusted hops skipped", some, "10.0.0.1:1", []string{"203.0.113.1, 10.2.2.2 , 10.3.3.3"}, "203.0.113.1"},
		{"several header lines", some, "10.0.0.1:1", []string{"198.51.100.1", "203.0.113.1, 10.2.2.2"}, "203.0.113.1"},
		{"entry with port", some, "10.0.0.1:1", []string{"203.0.113.1:4711"}, "203.0.113.1"},
		{"IPv6 entry with port", some, "10.0.0.1:1", []string{"[2001:db8::1]:4711"}, "2001:db8::1"},
		{"IPv6 trusted peer", some, "[fd00::5]:1", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped peer", some, "[::ffff:10.0.0.1]:1", []string{"203.0.113.1"}, "203.0.113.1"},
		{"garbage stops at the last vouched address", some, "10.0.0.1:1", []string{"203.0.113.1, unknown, 10.2.2.2"}, "10.2.2.2"},
		{"all hops trusted: the leftmost", some, "10.0.0.1:1", []string{"10.9.9.9, 10.2.2.2"}, "10.9.9.9"},
		{"unparsable peer", some, "@", nil, "@"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := c.r.client(r); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestFailureLimiterConcurrent(t *testing.T) {
	f := newFailureLimiter()
	f.maxKeys = 50
	done := make(chan int)
	for g := range 8 {
		go func() {
			allowed := 0
			for i := range 2000 {
				if f.failure(fmt.Sprint("k", (g*2000+i)%64), time.Now()).allowed {
					allowed++
				}
			}
			done <- allowed
		}()
	}
	total := 0
	for range 8 {
		total += <-done
	}
	if n := f.len(); n > f.maxKeys {
		t.Fatalf("len %d exceeds maxKeys %d", n, f.maxKeys)
	}
	// 50 keys of 10 failures each, plus a little refill while the test runs
	if total < 50*failureBurst || total > 64*failureBurst+64 {
		t.Fatalf("%d failures allowed, want about %d", total, 50*failureBurst)
	}
}
