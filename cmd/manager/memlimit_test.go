package main

import (
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr/funcr"
)

// The manager gives the Go runtime 90% of its container's memory limit as a soft limit and
// says so in its log; it leaves the runtime's default where the container has no limit, and
// an operator's own GOMEMLIMIT or AUTOMEMLIMIT=off alone.
func TestMemoryLimitFollowsTheContainers(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, k := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(k, "") // restored after the test
		_ = os.Unsetenv(k)
	}
	const container = 1000 << 20
	var logged []string
	log := funcr.New(func(prefix, args string) { logged = append(logged, args) }, funcr.Options{})

	if got := setMemoryLimit(log, memlimit.Limit(container)); got != 900<<20 {
		t.Errorf("limit %d, want %d (90%% of the container's)", got, 900<<20)
	}
	if got := debug.SetMemoryLimit(-1); got != 900<<20 {
		t.Errorf("the runtime's limit is %d, want %d", got, 900<<20)
	}
	if s := strings.Join(logged, "\n"); !strings.Contains(s, `"GOMEMLIMIT"=943718400`) {
		t.Errorf("the log does not give the new limit:\n%s", s)
	}

	noLimit := func() (uint64, error) { return 0, memlimit.ErrNoLimit }
	if got := setMemoryLimit(log, noLimit); got != math.MaxInt64 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("without a container limit: %d, want none (%d)", got, int64(math.MaxInt64))
	}

	for env, val := range map[string]string{"GOMEMLIMIT": "300MiB", "AUTOMEMLIMIT": "off"} {
		t.Run(env, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			t.Setenv(env, val)
			setMemoryLimit(log, memlimit.Limit(container))
			if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
				t.Errorf("with %s=%s the manager changed the runtime's limit to %d", env, val, got)
			}
		})
	}
}
