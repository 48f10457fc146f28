package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times (100 on Linux for
// every architecture Go builds for).
const clockTicks = 100

// cpuTimes is CPU time spent so far, in seconds: by the whole machine (every process,
// the control plane included), by the manager, and by the bench itself (the IdP's side).
type cpuTimes struct {
	machine, manager, bench float64
}

func (a cpuTimes) sub(b cpuTimes) cpuTimes {
	return cpuTimes{a.machine - b.machine, a.manager - b.manager, a.bench - b.bench}
}

func (a cpuTimes) add(b cpuTimes) cpuTimes {
	return cpuTimes{a.machine + b.machine, a.manager + b.manager, a.bench + b.bench}
}

// cpuNow reads the CPU times from /proc. On a quiet machine, machine less manager and
// bench is the API server and etcd.
func (s *stack) cpuNow() (cpuTimes, error) {
	var t cpuTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return t, fmt.Errorf("unexpected /proc/stat: %q", line)
	}
	// user nice system idle iowait irq softirq steal: busy is all but idle and iowait
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return t, err
		}
		t.machine += n / clockTicks
	}
	if t.manager, err = processCPU(fmt.Sprintf("/proc/%d/stat", s.mgr.PID())); err != nil {
		return t, err
	}
	t.bench, err = processCPU("/proc/self/stat")
	return t, err
}

// processCPU is utime+stime of /proc/PID/stat, in seconds.
func processCPU(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// the fields after the command name (which may hold spaces) in parentheses
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected %s", path)
	}
	f := strings.Fields(string(b)[i+1:])
	// state is field 3 of the whole line, f[0] here; utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected %s", path)
	}
	u, err := strconv.ParseFloat(f[11], 64)
	if err != nil {
		return 0, err
	}
	st, err := strconv.ParseFloat(f[12], 64)
	if err != nil {
		return 0, err
	}
	return (u + st) / clockTicks, nil
}
