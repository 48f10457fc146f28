package controllers

import (
	"k8s.io/client-go/util/workqueue"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestJitterStaysWithinTenPercent(t *testing.T) {
	d := 10 * time.Minute
	lo, hi := d, time.Duration(0)
	for range 2000 {
		j := jitter(d)
		if j < 9*time.Minute || j > 11*time.Minute {
			t.Fatalf("jitter(%s) = %s, outside ±10%%", d, j)
		}
		lo, hi = min(lo, j), max(hi, j)
	}
	if hi-lo < time.Minute {
		t.Fatalf("jitter spreads only %s over 2000 draws", hi-lo)
	}
	if jitter(0) != 0 {
		t.Fatal("jitter(0) must be 0")
	}
}

func TestTeamName(t *testing.T) {
	for in, want := range map[string]string{
		"acme:devs":     "devs",
		"other:ops":     "ops",
		"plain":         "plain",
		" acme : qa ":   "qa",
		"acme:":         "acme:",
		"a:b:c":         "b:c",
		"no-colon-team": "no-colon-team",
	} {
		if got := TeamName(in); got != want {
			t.Errorf("TeamName(%q) = %q, want %q", in, got, want)
		}
	}
}

// A reconcile that keeps failing (a flaky backend) is retried at least every
// MaxRetryBackoff, however many times it failed: client-go's default would wait 1,000 s.
func TestRetryBackoffIsBounded(t *testing.T) {
	for _, l := range []workqueue.TypedRateLimiter[reconcile.Request]{retryLimiter(), passLimiter()} {
		retryBackoffIsBounded(t, l)
	}
}

func retryBackoffIsBounded(t *testing.T, l workqueue.TypedRateLimiter[reconcile.Request]) {
	t.Helper()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "m"}}
	var last time.Duration
	for range 40 {
		last = l.When(req)
		if last > MaxRetryBackoff {
			t.Fatalf("a retry waits %s, more than MaxRetryBackoff (%s)", last, MaxRetryBackoff)
		}
	}
	if last < MaxRetryBackoff/2 {
		t.Fatalf("after 40 failures the retry waits only %s: the backoff does not grow", last)
	}
	l.Forget(req)
	if d := l.When(req); d > time.Second {
		t.Fatalf("after a success the next failure waits %s", d)
	}
}
