package main

import (
	"github.com/prometheus/procfs"
)

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

// cpuNow reads the CPU times from /proc (prometheus/procfs). On a quiet machine, machine
// less manager and bench is the API server and etcd.
func (s *stack) cpuNow() (cpuTimes, error) {
	var t cpuTimes
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return t, err
	}
	st, err := fs.Stat()
	if err != nil {
		return t, err
	}
	c := st.CPUTotal // busy: all but idle and iowait (guest time is counted in user already)
	t.machine = c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	if t.manager, err = processCPU(fs, s.mgr.PID()); err != nil {
		return t, err
	}
	self, err := fs.Self()
	if err != nil {
		return t, err
	}
	ps, err := self.Stat()
	t.bench = ps.CPUTime()
	return t, err
}

// processCPU is the user and system time of process pid, in seconds.
func processCPU(fs procfs.FS, pid int) (float64, error) {
	p, err := fs.Proc(pid)
	if err != nil {
		return 0, err
	}
	ps, err := p.Stat()
	return ps.CPUTime(), err
}
