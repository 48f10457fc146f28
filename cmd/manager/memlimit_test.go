package main

import (
	"math"
	"os"
	"runtime/debug"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr"
)

// The manager gives the Go runtime 90% of its container's memory limit as a soft limit,
// and leaves an operator's own GOMEMLIMIT (or AUTOMEMLIMIT=off) alone.
func TestMemoryLimitFollowsTheContainers(t *testing.T) {
	t.Cleanup(func() { debug.SetMemoryLimit(math.MaxInt64) })
	unset := func(k string) {
		if v, ok := os.LookupEnv(k); ok {
			t.Cleanup(func() { _ = os.Setenv(k, v) })
		}
		_ = os.Unsetenv(k)
	}
	unset("GOMEMLIMIT")
	unset("AUTOMEMLIMIT")

	const container = 1000 << 20
	if got := setMemoryLimit(logr.Discard(), memlimit.Limit(container)); got != 900<<20 {
		t.Errorf("limit %d, want %d (90%% of the container's)", got, 900<<20)
	}
	if got := debug.SetMemoryLimit(-1); got != 900<<20 {
		t.Errorf("the runtime's limit is %d, want %d", got, 900<<20)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "300MiB")
	setMemoryLimit(logr.Discard(), memlimit.Limit(container))
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, the manager changed the runtime's limit to %d", got)
	}
}
