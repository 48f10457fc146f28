package main

import (
	"context"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"
	"k8s.io/client-go/discovery"
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

// memberWrites is how many writes other than creates the API server has served on
// OrgMembers so far (apiserver_request_total: PATCH, UPDATE and APPLY, the status
// subresource included), read from its /metrics. Between two reads of a throughput chunk
// it is the controllers' work that ran beside that chunk.
func (s *stack) memberWrites(ctx context.Context) (float64, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(s.cluster.Config)
	if err != nil {
		return 0, err
	}
	body, err := dc.RESTClient().Get().AbsPath("/metrics").Stream(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(body)
	if err != nil {
		return 0, err
	}
	var n float64
	for _, m := range families["apiserver_request_total"].GetMetric() {
		var resource, verb string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "resource":
				resource = l.GetValue()
			case "verb":
				verb = l.GetValue()
			}
		}
		if resource == "orgmembers" && (verb == "PATCH" || verb == "UPDATE" || verb == "APPLY") {
			n += m.GetCounter().GetValue()
		}
	}
	return n, nil
}
