package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// apiMetrics reads the API server's /metrics.
func (s *stack) apiMetrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	body, err := s.apiRaw.Get().AbsPath("/metrics").Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = body.Close() }()
	return parseMetrics(body)
}

// parseMetrics reads a Prometheus text exposition, by metric family.
func parseMetrics(r io.Reader) (map[string]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(r)
}

// createWaits is how long the manager's SCIM user creates have waited so far, after
// writing their members, for each step (scim_user_create_wait_seconds, by step: the claim
// read and the cache), as histogram counts and sums.
func (s *stack) createWaits(ctx context.Context) (map[string]served, error) {
	body, err := s.httpGet(ctx, "http://"+s.metrics+"/metrics")
	if err != nil {
		return nil, err
	}
	families, err := parseMetrics(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	out := map[string]served{}
	for _, m := range families["scim_user_create_wait_seconds"].GetMetric() {
		h := m.GetHistogram()
		out[label(m, "step")] = served{n: float64(h.GetSampleCount()), timed: float64(h.GetSampleCount()), seconds: h.GetSampleSum()}
	}
	return out, nil
}

// label is the value of a metric's label name, or "".
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// served is what the API server served of one kind of request (or, in createWaits, what
// the manager waited for at one step): how many, and the seconds it spent on them as it
// times them (for the API server, apiserver_request_duration_seconds: from the moment
// it received the request, before its filters, to its handler's return, so authentication,
// authorization, flow control, admission and etcd are in it; the client's side, the
// connection and TLS are not).
type served struct {
	n float64
	// timed and seconds are the histogram's count and sum (a request the API server
	// rejects before it reaches its handler, such as a 429 of its flow control, is counted
	// in n only)
	timed, seconds float64
}

// requestKey names a kind of request by verb and resource ("PATCH orgmembers/status").
func requestKey(m *dto.Metric) string {
	k := label(m, "verb") + " " + label(m, "resource")
	if sub := label(m, "subresource"); sub != "" {
		k += "/" + sub
	}
	return k
}

// apiRequests is what the API server has served so far, by verb and resource, read from
// its /metrics: the counts from apiserver_request_total, the time from
// apiserver_request_duration_seconds (which does not time long-running requests: watches).
func (s *stack) apiRequests(ctx context.Context) (map[string]served, error) {
	families, err := s.apiMetrics(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]served{}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		k := requestKey(m)
		r := out[k]
		r.n += m.GetCounter().GetValue()
		out[k] = r
	}
	for _, m := range families["apiserver_request_duration_seconds"].GetMetric() {
		k := requestKey(m)
		r := out[k]
		r.timed += float64(m.GetHistogram().GetSampleCount())
		r.seconds += m.GetHistogram().GetSampleSum()
		out[k] = r
	}
	return out, nil
}

// The API server's checks of its watch cache against etcd. Since Kubernetes 1.34 (the
// DetectCacheInconsistency feature, on by default) it checks each resource it caches every
// 5 to 7.5 minutes by listing it in full from its cache and from etcd (pages of 10,000)
// and decoding every object: a burst of its CPU that grows with the objects stored (the
// members, their grants and their claims; events are not cached, so not checked) and falls
// on whatever the bench is timing then.
const (
	checksMetric  = "apiserver_storage_consistency_checks_total"
	objectsMetric = "apiserver_resource_objects"
)

// checks is what the API server's metrics say of its consistency checks so far.
type checks struct {
	// exposed: the API server shows the checks' counter (it does once a check has run)
	exposed bool
	// listed counts the checks that listed, by "resource.group" ("resource" in the core
	// group): successes and failures (a check that errs, as on a cache not ready, lists
	// nothing)
	listed map[string]float64
	// objects is how many objects each resource held at the API server's last count
	objects map[string]float64
}

// checksFrom reads the checks from the API server's metric families.
func checksFrom(families map[string]*dto.MetricFamily) checks {
	c := checks{listed: map[string]float64{}, objects: map[string]float64{}}
	key := func(m *dto.Metric) string {
		if g := label(m, "group"); g != "" {
			return label(m, "resource") + "." + g
		}
		return label(m, "resource")
	}
	if f, ok := families[checksMetric]; ok {
		c.exposed = true
		for _, m := range f.GetMetric() {
			if label(m, "status") != "error" {
				c.listed[key(m)] += m.GetCounter().GetValue()
			}
		}
	}
	for _, m := range families[objectsMetric].GetMetric() {
		c.objects[key(m)] = m.GetGauge().GetValue()
	}
	return c
}

// consistencyChecks reads the API server's consistency checks so far.
func (s *stack) consistencyChecks(ctx context.Context) (checks, error) {
	families, err := s.apiMetrics(ctx)
	if err != nil {
		return checks{}, err
	}
	return checksFrom(families), nil
}

// mark is a moment of the run: the CPU spent so far and the API server's consistency
// checks so far. Two marks around a latency figure say what ran beside it.
type mark struct {
	at     time.Time
	cpu    cpuTimes
	checks checks
}

// markBefore and markAfter read the API server's metrics outside the window they bound
// (before it opens, after it closes): serving them costs the API server CPU the window
// would count as the rest's.
func (s *stack) markBefore(ctx context.Context) (mark, error) {
	k, err := s.consistencyChecks(ctx)
	if err != nil {
		return mark{}, err
	}
	c, err := s.cpuNow()
	return mark{at: time.Now(), cpu: c, checks: k}, err
}

func (s *stack) markAfter(ctx context.Context) (mark, error) {
	at := time.Now()
	c, err := s.cpuNow()
	if err != nil {
		return mark{}, err
	}
	k, err := s.consistencyChecks(ctx)
	return mark{at: at, cpu: c, checks: k}, err
}

// beside says what ran on the machine between two marks, in cores busy on average: the
// manager (serving the reads, and whatever else it did), the bench (the IdP's side), the
// rest (every other process and the kernel: the API server and etcd above all, which the
// reads reach only when the SCIM token's Secret is read again, every 3 s; and the kernel's
// share of the reads' loopback traffic), and the API server's consistency checks. On 2
// cores a burst of the rest takes CPU from the reads. /proc/stat counts in ticks of 10 ms,
// so over a short window the rest is rough (it can even come out below zero).
func beside(a, b mark) (words string, figures map[string]float64) {
	d := b.cpu.sub(a.cpu)
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	n, objects, kw := checksWords(a.checks, b.checks)
	rest := d.machine - d.manager - d.bench
	rough := ""
	if secs < 1 {
		rough = "; under a second: /proc counts in ticks of 10 ms, so these are rough"
	}
	words = fmt.Sprintf("%.2f of %d cores busy over %s (manager %.2f, IdP client %.2f, the rest %.2f%s); the API server's consistency checks: %s",
		d.machine/secs, runtime.NumCPU(), b.at.Sub(a.at).Round(time.Millisecond), d.manager/secs, d.bench/secs, rest/secs, rough, kw)
	return words, map[string]float64{"busy_cores": d.machine / secs, "manager_cores": d.manager / secs, "bench_cores": d.bench / secs,
		"rest_cores": rest / secs, "checks": n, "checks_objects": objects, "seconds": secs}
}

// memberWrites counts, of requests (apiRequests), the writes other than creates on
// OrgMembers (PATCH, UPDATE and APPLY, the status subresource included). Between two
// reads of a throughput chunk it is the controllers' work that ran beside that chunk.
func memberWrites(requests map[string]served) float64 {
	var n float64
	for k, v := range requests {
		verb, resource, _ := strings.Cut(k, " ")
		if (resource == "orgmembers" || resource == "orgmembers/status") && (verb == "PATCH" || verb == "UPDATE" || verb == "APPLY") {
			n += v.n
		}
	}
	return n
}

// webhookCalls is how many calls the API server has made to the manager's authorization
// webhook so far, and the seconds they took as the API server timed them
// (apiserver_authorization_webhook_duration_seconds, every result).
func (s *stack) webhookCalls(ctx context.Context) (n, seconds float64, err error) {
	families, err := s.apiMetrics(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range families["apiserver_authorization_webhook_duration_seconds"].GetMetric() {
		n += float64(m.GetHistogram().GetSampleCount())
		seconds += m.GetHistogram().GetSampleSum()
	}
	return n, seconds, nil
}
