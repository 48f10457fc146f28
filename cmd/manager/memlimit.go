package main

import (
	"log/slog"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr"
)

// memoryLimitRatio is the share of the container's memory limit given to the Go runtime as
// its soft limit (GOMEMLIMIT); the rest is for what the runtime does not count (the
// binary's text, cgo, the kernel's page cache charged to the container).
const memoryLimitRatio = 0.9

// setMemoryLimit sets the Go runtime's soft memory limit to memoryLimitRatio of the
// container's memory limit (the cgroup's, from provider), unless GOMEMLIMIT is set or
// AUTOMEMLIMIT=off. Every replica caches the whole organization, and by default the
// collector lets the heap grow to twice what it holds before collecting: a manager whose
// live heap fits its limit would still be OOM-killed on the way to that goal. With the soft
// limit it collects more often as it nears the limit instead (docs/helm.md, "Sizing the
// manager's memory"). It returns the limit now in force (math.MaxInt64: none).
func setMemoryLimit(log logr.Logger, provider memlimit.Provider) int64 {
	// an error is logged by memlimit, and the runtime keeps the limit it had
	limit, _ := memlimit.Set(memlimit.WithRatio(memoryLimitRatio), memlimit.WithProvider(provider),
		memlimit.WithLogger(slog.New(logr.ToSlogHandler(log))))
	return limit
}
