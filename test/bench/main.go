// Command bench is `make bench`: the product's benchmark. It starts kube-apiserver and
// etcd on loopback and the real manager binary (as `make run` does), acts as an identity
// provider over HTTPS, and prints one table of figures measured in the same run, each a
// percentile or a ratio, beside the target issue 10 sets for it. The table is also written
// as JSON and the latency curves as a small SVG chart (-out). Figures come from here, never
// from timed assertions in tests.
//
//	go run ./test/bench                                   # defaults: about 7 minutes on 2 cores
//	go run ./test/bench -sizes 1000,10000,100000 -sync 10000 -hub-sizes 1000,10000   # the sizes
//
// What it measures, in order (README "Reading make bench"):
//  1. SCIM create throughput at each -concurrency against client-go creates of the same
//     OrgMember objects on the same API server, interleaved in chunks so both see the same
//     background: the ratio is the SCIM server's overhead over the write it needs anyway
//     (-claim-read: also against client-go creates each followed by its claim's read).
//  2. For each organization size in -sizes (members created with client-go, then the
//     controllers given -settle to grant them): `userName eq` lookup and GET by id, p50 and
//     p99; the manager's resident memory per member; SubjectAccessReview latency for a
//     user who has nothing to do with SCIM (what every request in the cluster pays for
//     our bindings); at the largest size, page k of 100 near the start and near the end.
//  3. Deprovisioning while idle: PATCH active=false until a SubjectAccessReview denies.
//  4. An Okta-style full sync of -sync users (lookup, then create) until all are Active,
//     against the time the API server alone takes for the same writes (each user's member,
//     grant, status and event); deprovisioning measured again during it.
//  5. Docker Hub (-hub-sizes): an organization adopted, its steady drift passes (calls per
//     resync interval), then a drift repair. The first size's adoption and steady state
//     run beside steps 2 to 4 (hub.go, hubBeside; -hub-apart: after them); every repair
//     runs alone, last.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/KimMachineGun/automemlimit/memlimit"
	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

type options struct {
	sizes       []int
	concurrency []int
	creates     int
	chunk       int
	lookups     int
	syncUsers   int
	syncConc    int
	deprov      int
	settle      time.Duration
	out         string
	seed        uint64
	hubSizes    []int
	hubRate     int
	hubResync   time.Duration
	hubDrift    int
	hubGroups   int
	// hubApart runs the first Docker Hub size after the kubernetes steps, not beside them
	hubApart bool
	// claimRead adds the throughput step's third side: client-go creates each followed by
	// its claim's live read
	claimRead bool
	layout    scimv1.GrantLayout
	pprof     bool
	// readProfile is how long each size's CPU profile of the reads lasts (-pprof only)
	readProfile time.Duration
	workers     int
	// gates is kube-apiserver's --feature-gates for the local control plane ("": defaults)
	gates string
	// repeat is how many times the noisy figures are measured in one run (-repeat)
	repeat int
	// chunkPerConn is the fewest creates a throughput chunk has per concurrent connection
	chunkPerConn int
}

func main() {
	var o options
	sizes := flag.String("sizes", "1000,10000", "organization sizes (members) to measure lookups, memory and the cluster's cost at, ascending")
	conc := flag.String("concurrency", "1,8,32", "concurrent IdP connections for the create throughput comparison")
	flag.IntVar(&o.creates, "creates", 400, "creates per concurrency level and round (-repeat), each way (SCIM and client-go)")
	flag.IntVar(&o.chunk, "chunk", 50, "creates per timed chunk of the throughput comparison (at least -chunk-per-connection times the concurrency); the sides alternate by chunk")
	flag.IntVar(&o.chunkPerConn, "chunk-per-connection", 16, "the fewest creates per timed throughput chunk for each concurrent connection, "+
		"and -creates is raised to two such chunks: a chunk shorter than that ends with much of its members' controller work still to come, "+
		"untimed, on the faster side most")
	flag.IntVar(&o.lookups, "lookups", 2000, "requests per latency figure (a quarter of them for each page figure)")
	flag.IntVar(&o.syncUsers, "sync", 2000, "users in the Okta-style full sync")
	flag.IntVar(&o.syncConc, "sync-concurrency", 8, "concurrent IdP connections during the full sync")
	flag.IntVar(&o.deprov, "deprovision", 20, "members deactivated for each deprovisioning figure")
	flag.DurationVar(&o.settle, "settle", 0, "longest wait for the controllers to grant a size step, the full sync or a Docker Hub "+
		"organization (0: 20 minutes, or longer for a larger organization: a second per 40 members of the largest size, sync or Docker Hub size)")
	flag.StringVar(&o.out, "out", filepath.Join(testenv.RepoRoot(), ".dev", "bench"), "directory for bench.json, bench.svg, the manager's log and the control plane's kubeconfig")
	flag.Uint64Var(&o.seed, "seed", 1, "seed for the lookups' random choice of members")
	hubSizes := flag.String("hub-sizes", "100", "Docker Hub organization sizes for the drift figures (\"\" to skip them)")
	flag.IntVar(&o.hubRate, "hub-rate", 180, "the Docker Hub emulator's requests a minute (Docker Hub's limit), and its ScimConfig's requestsPerMinute (at most 6000)")
	flag.DurationVar(&o.hubResync, "hub-resync", time.Minute, "the Docker Hub ScimConfig's spec.resyncInterval")
	flag.IntVar(&o.hubDrift, "hub-drift", 10, "members removed by hand in Docker Hub for the drift-repair figure")
	flag.IntVar(&o.hubGroups, "hub-groups", 10, "OrgGroups of the Docker Hub organization, each syncing a team its members share out (0 for none)")
	flag.BoolVar(&o.hubApart, "hub-apart", false, "measure the first Docker Hub size's adoption and steady state after the kubernetes steps, "+
		"alone, instead of beside them (their figures are call counts and waits on the resync interval; beside, the run takes about 2 minutes less; "+
		"the drift repair always runs alone, at the end)")
	flag.BoolVar(&o.claimRead, "claim-read", false, "also time client-go creates each followed by the live read of its userName's claim, "+
		"as a SCIM create makes it: the ceiling of a create that keeps userNames unique under renames, against which SCIM's own cost is measured "+
		"(the throughput step and its members' deletion take about half as long again: 2 to 3 minutes more at the defaults)")
	layout := flag.String("layout", string(scimv1.GrantLayoutWebhook), "the sample config's spec.backend.kubernetes.grantLayout: Webhook (the API server asks the manager's authorization webhook after RBAC; the layout for large organizations) or Bindings (one RBAC binding per member and role)")
	flag.BoolVar(&o.pprof, "pprof", false, "print the loopback address of the manager's net/http/pprof profiles at the start, "+
		"e.g. go tool pprof http://ADDR/debug/pprof/profile?seconds=20 during a step; and write cpu-reads-<size>.pb.gz, the manager's CPU "+
		"profile over a pass of the timed reads after each size's figures, apiserver-cpu-lookups-<size>.pb.gz and apiserver-cpu-byid-<size>.pb.gz, "+
		"the API server's over the timed reads themselves, and cpu-sync.pb.gz and apiserver-cpu-sync.pb.gz, its and the API server's CPU "+
		"profiles over the full sync's first seconds")
	flag.DurationVar(&o.readProfile, "read-profile", 10*time.Second, "length of each cpu-reads-<size>.pb.gz profile (with -pprof)")
	flag.IntVar(&o.workers, "workers", 0, "the manager's --max-concurrent-reconciles (0: its default)")
	flag.StringVar(&o.gates, "apiserver-feature-gates", "", "the local kube-apiserver's --feature-gates (\"\": its defaults, as a cluster runs it); "+
		"DetectCacheInconsistency=false keeps its periodic consistency checks (a burst of its CPU that grows with the objects stored) out of every figure")
	flag.IntVar(&o.repeat, "repeat", 1, "how many times the figures that vary from run to run are measured: the create throughput "+
		"comparison runs this many rounds (its ratio is over all of them; each round's is printed), and the lookup and "+
		"SubjectAccessReview latencies this many samples (the row shows the one whose p50 is the median, and every sample's p50)")
	flag.Parse()
	switch o.layout = scimv1.GrantLayout(*layout); o.layout {
	case scimv1.GrantLayoutWebhook, scimv1.GrantLayoutBindings:
	default:
		fail(fmt.Errorf("-layout %q: Webhook or Bindings", *layout))
	}
	var err error
	if o.sizes, err = ints(*sizes); err != nil {
		fail(fmt.Errorf("-sizes: %w", err))
	}
	if *hubSizes != "" {
		if o.hubSizes, err = ints(*hubSizes); err != nil {
			fail(fmt.Errorf("-hub-sizes: %w", err))
		}
	}
	if o.hubApart && len(o.hubSizes) == 0 {
		fail(fmt.Errorf("-hub-apart with no -hub-sizes: there is no Docker Hub step to run apart"))
	}
	if o.hubGroups < 0 {
		fail(fmt.Errorf("-hub-groups %d: 0 or more", o.hubGroups))
	}
	if o.concurrency, err = ints(*conc); err != nil {
		fail(fmt.Errorf("-concurrency: %w", err))
	}
	if o.repeat < 1 {
		fail(fmt.Errorf("-repeat %d: 1 or more", o.repeat))
	}
	if o.syncUsers < 1 || o.syncConc < 1 {
		fail(fmt.Errorf("-sync %d, -sync-concurrency %d: 1 or more", o.syncUsers, o.syncConc))
	}
	if o.settle == 0 {
		o.settle = defaultSettle(append(slices.Clone(o.sizes), o.hubSizes...), o.syncUsers)
	}
	if o.chunkPerConn < 0 {
		fail(fmt.Errorf("-chunk-per-connection %d: 0 or more", o.chunkPerConn))
	}
	if o.workers < 0 {
		fail(fmt.Errorf("-workers %d: 0 (the manager's default) or more", o.workers))
	}
	if o.readProfile < time.Second {
		fail(fmt.Errorf("-read-profile %s: at least 1s", o.readProfile))
	}
	ctrl.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, o)
	if rep != nil && len(rep.Rows) > 0 {
		fmt.Println()
		rep.writeTable(os.Stdout)
		if werr := rep.writeJSON(filepath.Join(o.out, "bench.json")); werr != nil {
			fmt.Fprintln(os.Stderr, "bench:", werr)
		}
		if werr := rep.writeSVG(filepath.Join(o.out, "bench.svg")); werr != nil {
			fmt.Fprintln(os.Stderr, "bench:", werr)
		}
		fmt.Printf("written: %s, %s\n", filepath.Join(o.out, "bench.json"), filepath.Join(o.out, "bench.svg"))
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("%s: ascending, please", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// started is when the bench started: each line it says carries the time since.
var started = time.Now()

func say(format string, a ...any) {
	fmt.Printf("==> [%s] "+format+"\n", append([]any{time.Since(started).Round(time.Second)}, a...)...)
}

// defaultSettle is -settle's default: 20 minutes, or a second per 40 members of the
// largest organization (sizes: -sizes and -hub-sizes) or sync when that is longer. The controllers granted 100,000
// members at 51 to 63 a second on 2 cores, in 17 to 23 minutes after the last write: a
// fixed 20 minutes measured such a step before it was all Active.
func defaultSettle(sizes []int, syncUsers int) time.Duration {
	n := syncUsers
	for _, s := range sizes {
		n = max(n, s)
	}
	return max(20*time.Minute, time.Duration(n/40)*time.Second)
}

func run(ctx context.Context, o options) (*report, error) {
	o.repeat = max(1, o.repeat)
	if err := os.MkdirAll(o.out, 0o700); err != nil {
		return nil, err
	}
	rep := &report{Meta: map[string]string{
		"go": runtime.Version(), "cpus": fmt.Sprint(runtime.NumCPU()), "kube-apiserver": testenv.K8sVersion,
		"commit": gitDescribe(), "date": time.Now().UTC().Format(time.RFC3339), "grantLayout": string(o.layout),
		"workers": workersWords(o.workers), "memoryLimit": memoryLimitWords(), "apiserverFeatureGates": gatesWords(o.gates),
	}, Flags: map[string]string{}}
	flag.VisitAll(func(f *flag.Flag) { rep.Flags[f.Name] = f.Value.String() })

	s, err := startStack(ctx, o.out, o.layout, o.pprof, o.workers, o.gates, say)
	if err != nil {
		return rep, err
	}
	defer s.stop()
	rep.Meta["manager"] = fmt.Sprintf("pid %d, log %s", s.mgr.PID(), filepath.Join(o.out, "manager.log"))
	b := &bench{s: s, o: o, rep: rep, rng: rand.New(rand.NewPCG(o.seed, 0))}
	defer b.stopHub()

	type step struct {
		name string
		f    func(context.Context) error
	}
	steps := []step{
		{"baseline: the manager and the authorizer with no members", b.baseline},
		{"create throughput: SCIM against client-go", b.throughput},
	}
	if len(o.hubSizes) > 0 && !o.hubApart {
		steps = append(steps, step{fmt.Sprintf("Docker Hub at %d members: its adoption and steady state, beside the steps that follow", o.hubSizes[0]), b.hubBeside})
	}
	steps = append(steps, []step{
		{"deleting the throughput step's members", b.clearThroughput},
		{"organization sizes", b.sizes},
		{"deprovisioning while idle", b.deprovisionIdle},
		{"full sync", b.fullSync},
		{"Docker Hub drift repair", b.dockerHub},
	}...)
	for _, st := range steps {
		say("%s", st.name)
		if err := st.f(ctx); err != nil {
			return rep, fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return rep, nil
}

func gitDescribe() string {
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = testenv.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

type bench struct {
	s   *stack
	o   options
	rep *report
	rng *rand.Rand

	// the empty readings: the first (no member has ever existed: the per-member figures
	// and their verdict count from it, the "at 0") and the last (rss0, heap0:
	// after the throughput step, with a Docker Hub organization beside)
	rssFirst, heapFirst int64
	rss0, heap0         int64

	hub    *hubRun // the Docker Hub step's organization, once started
	made   int     // members the throughput step made
	sar0   sample
	org    int // org members created so far: orgUser(0..org-1), all active
	deprov int // org members deactivated so far, from the start of the range
}

const outsider = "bench-outsider@unrelated.example"

// sars are the outsider's SubjectAccessReviews timed: the median of -repeat samples, each
// sample's p50, and the mean time of a review over all of them beside the mean time the
// API server spent calling the manager's authorization webhook (0 in the Bindings layout).
type sars struct {
	sample
	p50s              []time.Duration
	meanMS, webhookMS float64
}

// words is "; p50 of 3 runs: ...; the webhook's part: 0.40 ms of 2.30 ms a review".
func (r sars) words() string {
	w := runsWords(r.p50s)
	if r.webhookMS > 0 {
		w += fmt.Sprintf("; the webhook's part: %.2f ms of %.2f ms a review (means, as the API server times its calls)", r.webhookMS, r.meanMS)
	}
	return w
}

func (b *bench) sar(ctx context.Context) (sars, error) {
	var r sars
	n0, s0, err := b.s.webhookCalls(ctx)
	if err != nil {
		return r, err
	}
	var total time.Duration
	r.sample, r.p50s, err = medianRun(b.o.repeat, func() (sample, error) {
		s, err := timed(b.o.lookups, func(int) error {
			ok, err := b.s.canGet(ctx, outsider)
			if err == nil && ok {
				err = fmt.Errorf("%s may get pods: the benchmark's outsider must have no access", outsider)
			}
			return err
		})
		for _, d := range s {
			total += d
		}
		return s, err
	})
	if err != nil {
		return r, err
	}
	n1, s1, err := b.s.webhookCalls(ctx)
	if err != nil {
		return r, err
	}
	reviews := float64(b.o.lookups * b.o.repeat)
	r.meanMS = ms(total) / reviews
	if n1 > n0 {
		// the API server also asks the webhook for the bench's own and the manager's
		// requests meanwhile; their time is counted per review of the outsider
		r.webhookMS = (s1 - s0) * 1000 / reviews
	}
	return r, nil
}

// emptyMemory reads the manager's memory with no organization (b.heap0, b.rss0; the first
// reading is also kept as b.heapFirst, b.rssFirst, which the per-member figures and their
// verdicts count from) and adds its row: as at each size, the manager collects its
// garbage first, then its resident memory is read.
func (b *bench) emptyMemory(ctx context.Context, measure, note string) error {
	time.Sleep(2 * time.Second)
	var err error
	if b.heap0, err = b.s.liveHeap(ctx); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	if b.rss0, err = b.s.rss(); err != nil {
		return err
	}
	if b.rssFirst == 0 {
		b.rssFirst, b.heapFirst = b.rss0, b.heap0
	}
	b.rep.add(row{Measure: measure, Result: fmt.Sprintf("%s (live heap %s%s)", bytesIEC(float64(b.rss0)), bytesIEC(float64(b.heap0)), note),
		Figures: map[string]float64{"rss_bytes": float64(b.rss0), "heap_bytes": float64(b.heap0)}})
	return nil
}

func (b *bench) baseline(ctx context.Context) error {
	if err := b.emptyMemory(ctx, "manager resident memory, empty", ""); err != nil {
		return err
	}
	r, err := b.sar(ctx)
	if err != nil {
		return err
	}
	b.sar0 = r.sample
	b.rep.add(row{Measure: "SubjectAccessReview, unrelated user, no members", Result: p50p99(b.sar0) + r.words(),
		Figures: map[string]float64{"p50_ms": ms(b.sar0.q(0.5)), "p99_ms": ms(b.sar0.q(0.99)), "mean_ms": r.meanMS, "webhook_ms": r.webhookMS}})
	b.rep.curve("SubjectAccessReview p50", 0, ms(b.sar0.q(0.5))) // no members: a reference line in the chart
	return nil
}

// throughput compares SCIM creates with client-go creates of the same objects, at each
// concurrency, in alternating chunks. The users are created inactive: the figure is the
// write path, not the grants. Each chunk starts once the controllers are done with every
// member created before it (all Deactivated), so each side is timed beside the
// controllers' work on its own members only: without that wait, a client-go chunk, the
// faster, left most of its members' reconciles (a finalizer, status writes) to run on the
// API server during the SCIM chunk that followed, and the SCIM side paid for both.
// The controllers' member writes that reached the API server inside each side's chunks
// are counted and printed, so a reader can see whether both sides ran beside the same
// load. With -repeat the comparison runs that many rounds at each concurrency: the
// figure is over all of them, and each round's ratio is printed.
func (b *bench) throughput(ctx context.Context) error {
	made := 0
	quiet := func() error {
		if _, ok := b.s.settleQuiet(ctx, b.o.settle, made); !ok {
			return fmt.Errorf("the controllers did not finish %d inactive members within %s", made, b.o.settle)
		}
		return nil
	}
	// one side's chunk, timed, with the CPU the machine, the manager and the bench spent
	// meanwhile, and the requests the API server served meanwhile (by verb and resource)
	type side struct {
		// took is each chunk's window to its last create's answer (the figure); done to the
		// later of that and the controllers' last member of the chunk (Deactivated)
		took, done time.Duration
		// latency is every create's own time, summed: took*c/creates would overstate the
		// mean where a chunk's last creates run with fewer than c workers busy
		latency  time.Duration
		cpu      cpuTimes
		requests map[string]served
		// waits is what the manager's creates waited for after their writes, by step
		// (createWaits): the SCIM side's only
		waits map[string]served
	}
	var latencyMu sync.Mutex
	timedCreate := func(sd *side, create func() error) error {
		t0 := time.Now()
		err := create()
		latencyMu.Lock()
		sd.latency += time.Since(t0)
		latencyMu.Unlock()
		return err
	}
	deactivated, stop, err := b.s.clockPhase(ctx, scimv1.PhaseDeactivated)
	if err != nil {
		return err
	}
	defer stop()
	// window times one chunk: creates makes the members of userNames
	window := func(sd *side, userNames []string, creates func() error) error {
		r0, err := b.s.apiRequests(ctx)
		if err != nil {
			return err
		}
		w0, err := b.s.createWaits(ctx)
		if err != nil {
			return err
		}
		c0, err := b.s.cpuNow()
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := creates(); err != nil {
			return err
		}
		answered := time.Now()
		sd.took += answered.Sub(t0)
		c1, err := b.s.cpuNow()
		if err != nil {
			return err
		}
		sd.cpu = sd.cpu.add(c1.sub(c0))
		w1, err := b.s.createWaits(ctx)
		if err != nil {
			return err
		}
		sd.waits = addServed(sd.waits, w0, w1)
		r1, err := b.s.apiRequests(ctx)
		if err != nil {
			return err
		}
		sd.requests = addServed(sd.requests, r0, r1)
		names := make([]string, len(userNames))
		for i, u := range userNames {
			names[i] = naming.MemberName(b.s.config, u)
		}
		last, err := deactivated.await(ctx, names, b.o.settle)
		if err != nil {
			return fmt.Errorf("the controllers after a chunk of creates: %w", err)
		}
		if last.Before(answered) {
			last = answered
		}
		sd.done += last.Sub(t0)
		return nil
	}
	for _, c := range b.o.concurrency {
		// A chunk ends when its creates are answered, with the controllers' work on its last
		// members, and the API server's garbage from it, still to come: that is left out of
		// the window, more of it on the faster side, whose controllers fall further behind
		// its creates, and more of it at a higher concurrency. The chunks grow with the
		// concurrency, so that what is left out is a smaller share. In chunks of 50 (bdef12,
		// 2 cores), the client-go side's member status writes inside its chunks were 0.91 a
		// create at concurrency 8 and 0.46 at 32 (SCIM's 1.00 and 0.77), it spent 8.7 ms of
		// the machine per create at 8 where chunks of 2,000 spent 14.5 ms (prof2), and the
		// ratio read 0.41 at 8 where chunks of 2,000 gave 0.75. Not all of it: at 32 the
		// client-go creates outrun the manager's workers, a backlog that grows through a chunk
		// of any length (bdef14, chunks of 512: 0.54 of its status writes inside, SCIM's 0.82).
		chunk := max(1, b.o.chunk, b.o.chunkPerConn*c)
		perRound := max(b.o.creates, 2*chunk)
		// readSide is the third side: client-go creates, each followed by the live read of
		// its userName's claim that a SCIM create makes after its write (internal/scimstore:
		// the write-then-read rule that keeps a userName unique under a concurrent rename).
		// It is what any create keeping that rule costs the API server at least, so SCIM
		// against it is the SCIM server's own cost, measured, beside the ceiling.
		var scimSide, rawSide, readSide side
		// each pair's own ratio (its client-go chunk's time over its SCIM chunk's), printed
		// beside the ratio of all creates: a median far from it says a few chunks on one
		// side, not the whole run, made the figure (a noisy machine, or SCIM stalls, which
		// the ratio of all creates, the verdict, counts as they are); readPairs the same
		// against the third side's chunk
		var pairs, readPairs, rounds []float64
		for round := range b.o.repeat {
			raw1, scim1 := rawSide.took, scimSide.took
			for from := 0; from < perRound; from += chunk {
				n := min(chunk, perRound-from)
				if err := quiet(); err != nil {
					return err
				}
				raw0, scim0, read0 := rawSide.took, scimSide.took, readSide.took
				userNames := func(side string) []string {
					out := make([]string, n)
					for i := range out {
						out[i] = fmt.Sprintf("%s-c%d-r%d-%05d@example.com", side, c, round, from+i)
					}
					return out
				}
				raws, reads, scims := userNames("raw"), userNames("read"), userNames("scim")
				if err := window(&rawSide, raws, func() error {
					return parallel(n, c, func(i int) error {
						m := rawMember(b.s.ns, b.s.config, raws[i], false)
						return timedCreate(&rawSide, func() error { return b.s.cluster.Client.Create(ctx, m) })
					})
				}); err != nil {
					return err
				}
				made += n
				if b.o.claimRead {
					if err := quiet(); err != nil {
						return err
					}
					if err := window(&readSide, reads, func() error {
						return parallel(n, c, func(i int) error {
							m := rawMember(b.s.ns, b.s.config, reads[i], false)
							return timedCreate(&readSide, func() error {
								if err := b.s.cluster.Client.Create(ctx, m); err != nil {
									return err
								}
								return b.s.claimAbsent(ctx, reads[i])
							})
						})
					}); err != nil {
						return err
					}
					made += n
				}
				if err := quiet(); err != nil {
					return err
				}
				if err := window(&scimSide, scims, func() error {
					return parallel(n, c, func(i int) error {
						return timedCreate(&scimSide, func() error {
							code, body, err := b.s.scim(ctx, "POST", "/Users", userBody(scims[i], false))
							if err == nil && code != 201 {
								err = fmt.Errorf("POST /Users: %d %s", code, body)
							}
							return err
						})
					})
				}); err != nil {
					return err
				}
				made += n
				if took := scimSide.took - scim0; took > 0 {
					pairs = append(pairs, (rawSide.took-raw0).Seconds()/took.Seconds())
					if b.o.claimRead {
						readPairs = append(readPairs, (readSide.took-read0).Seconds()/took.Seconds())
					}
				}
			}
			if took := scimSide.took - scim1; took > 0 {
				rounds = append(rounds, (rawSide.took-raw1).Seconds()/took.Seconds())
			}
		}
		creates := float64(perRound * b.o.repeat)
		scimRate := creates / scimSide.took.Seconds()
		rawRate := creates / rawSide.took.Seconds()
		ratio := scimRate / rawRate
		// The same creates timed until the controllers were done with each chunk's members:
		// the rate the whole write path sustains, creates and controllers together, where
		// the faster side's untimed backlog is timed too (see chunk above). Beside the
		// figure, not the verdict: a fixed tail (the last member's reconcile and its watch
		// event) lengthens both windows alike, which favours the slower side.
		scimDone, rawDone := creates/scimSide.done.Seconds(), creates/rawSide.done.Seconds()
		mid, lo, hi := median(pairs)
		_, rlo, rhi := median(rounds)
		b.rep.add(row{Measure: fmt.Sprintf("create throughput, concurrency %d: SCIM / client-go", c),
			Result: fmt.Sprintf("%.2f (%.0f/s vs %.0f/s; %d chunk pairs of %d creates: median %.2f, %.2f to %.2f%s; "+
				"each chunk timed until the controllers were done with its members: %.2f, %.0f/s vs %.0f/s)",
				ratio, scimRate, rawRate, len(pairs), chunk, mid, lo, hi, roundsWords(rounds), scimDone/rawDone, scimDone, rawDone),
			Target: ">= 0.85", Verdict: verdict(ratio >= 0.85),
			Figures: map[string]float64{"ratio": ratio, "scim_per_s": scimRate, "raw_per_s": rawRate,
				"done_ratio": scimDone / rawDone, "scim_done_per_s": scimDone, "raw_done_per_s": rawDone,
				"pairs": float64(len(pairs)), "chunk": float64(chunk), "creates": creates, "pair_median": mid, "pair_min": lo, "pair_max": hi,
				"rounds": float64(len(rounds)), "round_min": rlo, "round_max": rhi}})
		// Against the third side (readSide, -claim-read): the ceiling assumes a SCIM
		// create needs only its write; one that keeps a userName unique under renames needs
		// the write and then the claim's live read, so this is the ceiling the SCIM server's
		// own cost (its HTTPS hop, JSON, authentication, the wait for its cache) is measured
		// against.
		if b.o.claimRead {
			readRate := creates / readSide.took.Seconds()
			readGets := readSide.requests["GET orgnameclaims"].n / creates
			rmid, rlo, rhi := median(readPairs)
			b.rep.add(row{Measure: fmt.Sprintf("create and claim read, concurrency %d: SCIM / client-go", c),
				Result: fmt.Sprintf("%.2f (%.0f/s vs %.0f/s; the third side's chunks beside the same pairs: median %.2f, %.2f to %.2f; "+
					"client-go alone %.0f/s, so the read costs it %.2f of its rate; %.2f claim reads a create)",
					scimRate/readRate, scimRate, readRate, rmid, rlo, rhi, rawRate, readRate/rawRate, readGets),
				Target: "-", Verdict: "-",
				Figures: map[string]float64{"ratio": scimRate / readRate, "scim_per_s": scimRate, "read_per_s": readRate,
					"read_over_raw": readRate / rawRate, "read_claim_gets_per_create": readGets,
					"pair_median": rmid, "pair_min": rlo, "pair_max": rhi}})
		}
		// What a create costs the machine: where all cores are busy, the SCIM side's extra
		// hop (the IdP's HTTPS client, the manager's server, its claim read) comes out of
		// the same cores the API server needs.
		per := func(t cpuTimes) cpuTimes {
			n := creates / 1000 // in ms per create
			return cpuTimes{t.machine / n, t.manager / n, t.bench / n}
		}
		sc, rw := per(scimSide.cpu), per(rawSide.cpu)
		busy := scimSide.cpu.machine / scimSide.took.Seconds()
		b.rep.add(row{Measure: fmt.Sprintf("CPU per create, concurrency %d: SCIM / client-go", c),
			Result: fmt.Sprintf("%.2f (%.1f ms vs %.1f ms of the machine; SCIM: manager %.1f ms, IdP client %.1f ms, the rest %.1f ms; %.1f of %d cores busy)",
				sc.machine/rw.machine, sc.machine, rw.machine, sc.manager, sc.bench, sc.machine-sc.manager-sc.bench, busy, runtime.NumCPU()),
			Target: "-", Verdict: "-",
			Figures: map[string]float64{"ratio": sc.machine / rw.machine, "scim_ms": sc.machine, "raw_ms": rw.machine,
				"scim_manager_ms": sc.manager, "scim_bench_ms": sc.bench, "raw_manager_ms": rw.manager, "raw_bench_ms": rw.bench, "scim_busy_cores": busy}})
		// Whether both sides ran beside the same controller load: each new member gets
		// the same writes whoever created it (both carry the finalizer; rawMember); what
		// differs is how many of them reached the API server inside the timed chunks.
		perCreate := func(w float64) float64 { return w / creates }
		scimWrites, rawWrites := memberWrites(scimSide.requests), memberWrites(rawSide.requests)
		b.rep.add(row{Measure: fmt.Sprintf("controllers' member writes inside the chunks, concurrency %d: SCIM / client-go", c),
			Result: fmt.Sprintf("%.2f vs %.2f per create", perCreate(scimWrites), perCreate(rawWrites)), Target: "-", Verdict: "-",
			Figures: map[string]float64{"scim_per_create": perCreate(scimWrites), "raw_per_create": perCreate(rawWrites)}})
		// What the API server served meanwhile, by kind: where its part of the CPU per
		// create ("the rest") goes on each side.
		b.rep.add(row{Measure: fmt.Sprintf("API server requests inside the chunks, concurrency %d: SCIM / client-go", c),
			Result: fmt.Sprintf("%.2f vs %.2f per create (SCIM: %s; client-go: %s)", perCreate(total(scimSide.requests)),
				perCreate(total(rawSide.requests)), requestWords(scimSide.requests, creates), requestWords(rawSide.requests, creates)),
			Target: "-", Verdict: "-",
			Figures: map[string]float64{"scim_per_create": perCreate(total(scimSide.requests)), "raw_per_create": perCreate(total(rawSide.requests))}})
		// Where a create's time goes, as the IdP waits for it: the API server's own time for
		// each request the create makes, and the rest (the client's side of each request;
		// for SCIM also the IdP's HTTPS hop and the manager's handling). A SCIM create makes
		// its member's POST, then reads its name's claim live (the write-then-read rule of
		// internal/scimstore) while it waits for its cache to show the member; it answers
		// when both are done. The manager times both (scim_user_create_wait_seconds), from
		// the member's write: the row gives their means. Without the read a create would
		// wait for its cache alone, so at least the read's mean less the cache's shorter
		// (each create waits max(read, cache), and max(r, c) - c >= r - c): at concurrency 1,
		// where the throughput ratio is one of latencies, the row gives the ratio that
		// saving would at least reach.
		wall := func(sd side) float64 { return 1000 * sd.latency.Seconds() / creates }
		msOf := func(sd side, k string) float64 { return 1000 * sd.requests[k].mean() }
		sWall, rWall := wall(scimSide), wall(rawSide)
		sPost, sClaim, rPost := msOf(scimSide, "POST orgmembers"), msOf(scimSide, "GET orgnameclaims"), msOf(rawSide, "POST orgmembers")
		waitRead, waitCache := 1000*scimSide.waits[metrics.CreateClaimRead].mean(), 1000*scimSide.waits[metrics.CreateCache].mean()
		without := ""
		figs := map[string]float64{"scim_ms": sWall, "raw_ms": rWall, "scim_post_ms": sPost, "scim_claim_ms": sClaim, "raw_post_ms": rPost,
			"wait_claim_read_ms": waitRead, "wait_cache_ms": waitCache,
			"waits_per_create": scimSide.waits[metrics.CreateClaimRead].n / creates,
			"raw_waits":        rawSide.waits[metrics.CreateClaimRead].n + rawSide.waits[metrics.CreateCache].n}
		if saved := max(0, waitRead-waitCache); c == 1 && sWall > saved {
			figs["ratio_without_read_at_least"] = rWall / (sWall - saved)
			without = fmt.Sprintf("; without the claim read a create would wait at least %.1f ms less: a ratio of at least %.2f",
				saved, figs["ratio_without_read_at_least"])
		}
		b.rep.add(row{Measure: fmt.Sprintf("a create's time as the IdP waits, concurrency %d: SCIM / client-go", c),
			Result: fmt.Sprintf("%.1f ms vs %.1f ms, %.1f ms more (SCIM: the API server's POST orgmembers %.1f ms, GET orgnameclaims %.1f ms, "+
				"the rest %.1f ms; after its write the manager waited %.1f ms for the claim read and, beside it, %.1f ms for its cache; "+
				"client-go: POST orgmembers %.1f ms, the rest %.1f ms; means, the API server's as it times them%s)",
				sWall, rWall, sWall-rWall, sPost, sClaim, sWall-sPost-sClaim, waitRead, waitCache, rPost, rWall-rPost, without),
			Target: "-", Verdict: "-", Figures: figs})
	}
	b.made = made
	return nil
}

// clearThroughput deletes the throughput step's members. The organization sizes start
// from an empty organization: a size step's lookups, memory and pages are measured at the
// size their rows name, not beside these users.
func (b *bench) clearThroughput(ctx context.Context) error {
	say("  %d members, each released by the controllers (its finalizer)", b.made)
	if err := b.s.clear(ctx, b.o.settle); err != nil {
		return fmt.Errorf("the throughput step's %d members: %w", b.made, err)
	}
	// The per-member memory rows also count from here, beside their verdicts (which count
	// from the first empty reading): without the heap's and the process's high-water marks
	// of the throughput step (maps do not shrink, freed pages go back to the system
	// slowly), and without the Docker Hub organization measured beside the steps from here
	// (hubBeside): its people are adopted before the reading, so they are in it.
	note := ""
	if h := b.hub; h != nil && h.adopted != nil {
		select {
		case <-h.adopted:
		case <-ctx.Done():
			return ctx.Err()
		}
		note = fmt.Sprintf("; the Docker Hub organization's %d members and %d groups included, measured beside the steps from here", h.have, len(h.groups))
		if !h.adoptedAll {
			note += " (not all of them Active yet: see its adoption row)"
		}
	}
	return b.emptyMemory(ctx, "manager resident memory, empty again after the throughput step", note)
}

// sizes grows the organization to each size and measures there.
func (b *bench) sizes(ctx context.Context) error {
	var firstLookup, firstByID time.Duration
	largest := b.o.sizes[len(b.o.sizes)-1]
	for _, size := range b.o.sizes {
		say("  growing the organization to %d active members", size)
		t0 := time.Now()
		if err := b.s.grow(ctx, b.org, size); err != nil {
			return err
		}
		added := size - b.org
		b.org = size
		wrote := time.Since(t0)
		took, ok := b.s.settle(ctx, b.o.settle, size, say)
		res := fmt.Sprintf("%d written in %s; all Active %s later (%.0f members/s)", added, wrote.Round(time.Millisecond),
			took.Round(time.Second), float64(added)/(wrote+took).Seconds())
		if !ok {
			res = fmt.Sprintf("%d written in %s; NOT all Active after -settle %s", added, wrote.Round(time.Millisecond), b.o.settle)
		}
		b.rep.add(row{Measure: "controllers granting a size step", Size: size, Result: res,
			Figures: map[string]float64{"write_s": wrote.Seconds(), "settle_s": took.Seconds(), "grants": float64(b.s.grants(ctx))}})

		var lookup, byID sample
		if err := b.besideRow(ctx, "beside the userName eq lookups", "lookups", size, func() error {
			var lookups []time.Duration
			var err error
			lookup, lookups, err = medianRun(b.o.repeat, func() (sample, error) {
				return timed(b.o.lookups, func(int) error {
					u := orgUser(b.rng.IntN(size))
					code, body, err := b.s.scim(ctx, "GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", u)), nil)
					if err == nil && (code != 200 || !strings.Contains(string(body), `"totalResults":1`)) {
						err = fmt.Errorf("lookup %s: %d %s", u, code, body)
					}
					return err
				})
			})
			if err != nil {
				return err
			}
			p99ok := lookup.q(0.99) < 5*time.Millisecond
			b.rep.add(row{Measure: "userName eq lookup", Size: size, Result: p50p99(lookup) + runsWords(lookups), Target: "p99 < 5 ms", Verdict: verdict(p99ok),
				Figures: map[string]float64{"p50_ms": ms(lookup.q(0.5)), "p99_ms": ms(lookup.q(0.99))}})
			return nil
		}); err != nil {
			return err
		}
		if firstLookup == 0 {
			firstLookup = lookup.q(0.5)
		}
		b.rep.curve("lookup p50", size, ms(lookup.q(0.5)))
		b.rep.curve("lookup p99", size, ms(lookup.q(0.99)))

		if err := b.besideRow(ctx, "beside the GETs by id", "byid", size, func() error {
			var byIDs []time.Duration
			var err error
			byID, byIDs, err = medianRun(b.o.repeat, func() (sample, error) {
				return timed(b.o.lookups, func(int) error {
					id := naming.MemberName(b.s.config, orgUser(b.rng.IntN(size)))
					code, body, err := b.s.scim(ctx, "GET", "/Users/"+id, nil)
					if err == nil && code != 200 {
						err = fmt.Errorf("GET /Users/%s: %d %s", id, code, body)
					}
					return err
				})
			})
			if err != nil {
				return err
			}
			b.rep.add(row{Measure: "GET /Users/{id}", Size: size, Result: p50p99(byID) + runsWords(byIDs),
				Figures: map[string]float64{"p50_ms": ms(byID.q(0.5)), "p99_ms": ms(byID.q(0.99))}})
			return nil
		}); err != nil {
			return err
		}
		if firstByID == 0 {
			firstByID = byID.q(0.5)
		}
		b.rep.curve("GET by id p50", size, ms(byID.q(0.5)))

		heap, err := b.s.liveHeap(ctx) // collects first: the resident figure then holds no garbage either
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		rss, err := b.s.rss()
		if err != nil {
			return err
		}
		// what the heap holds, for go tool pprof -sample_index=inuse_space (after the
		// resident figure: writing the profile costs the manager memory of its own)
		if err := b.s.heapProfile(ctx, filepath.Join(b.o.out, fmt.Sprintf("heap-%d.pb.gz", size))); err != nil {
			return err
		}
		// per member the manager holds: the organization (the throughput step's users are
		// gone by now), counted from the first empty reading, at 0 members; beside it, from
		// the reading after the throughput step, which holds that step's high-water marks
		// (maps that do not shrink, pages not yet given back, which the organization then
		// reuses) and a Docker Hub organization beside (clearThroughput): a lower figure,
		// not the verdict's
		members := max(1, b.countMembers(ctx))
		per, perAfter := float64(rss-b.rssFirst)/float64(members), float64(rss-b.rss0)/float64(members)
		memRow := row{Measure: "manager resident memory per member", Size: size,
			Result: fmt.Sprintf("%s (%s from the reading after the throughput step; %s resident, %d members)",
				bytesIEC(per), bytesIEC(perAfter), bytesIEC(float64(rss)), members),
			Figures: map[string]float64{"bytes_per_member": per, "bytes_per_member_after_throughput": perAfter, "rss_bytes": float64(rss), "members": float64(members)}}
		if size == largest {
			memRow.Target, memRow.Verdict = "< 2 KiB at the largest size", verdict(per < 2048)
		}
		b.rep.add(memRow)
		perLive, perLiveAfter := float64(heap-b.heapFirst)/float64(members), float64(heap-b.heap0)/float64(members)
		b.rep.add(row{Measure: "manager live heap per member (after a collection)", Size: size,
			Result: fmt.Sprintf("%s (%s from the reading after the throughput step; %s live)",
				bytesIEC(perLive), bytesIEC(perLiveAfter), bytesIEC(float64(heap))),
			Figures: map[string]float64{"bytes_per_member": perLive, "bytes_per_member_after_throughput": perLiveAfter,
				"heap_bytes": float64(heap), "members": float64(members)}})

		sar, err := b.sar(ctx)
		if err != nil {
			return err
		}
		ratio := float64(sar.q(0.5)) / float64(b.sar0.q(0.5))
		sarRow := row{Measure: "SubjectAccessReview, unrelated user: p50 / p50 with no members", Size: size,
			Result: fmt.Sprintf("%.2f (%s; %d %s%s)", ratio, p50p99(sar.sample), b.s.grants(ctx), grantWords(b.o.layout),
				sar.words()),
			Figures: map[string]float64{"ratio": ratio, "p50_ms": ms(sar.q(0.5)), "p99_ms": ms(sar.q(0.99)),
				"mean_ms": sar.meanMS, "webhook_ms": sar.webhookMS}}
		if size == largest {
			sarRow.Target, sarRow.Verdict = "<= 1.5", verdict(ratio <= 1.5)
		}
		b.rep.add(sarRow)
		b.rep.curve("SubjectAccessReview p50", size, ms(sar.q(0.5)))
		if size != largest { // the largest's after its page rows, which it would precede
			b.profileReads(ctx, size)
		}
	}
	// a flat curve says the reads are index-backed: the userName lookup, and the GET by id
	for _, read := range []struct {
		measure, curve string
		first          time.Duration
	}{{"lookup", "lookup p50", firstLookup}, {"GET /Users/{id}", "GET by id p50", firstByID}} {
		last := b.rep.Curves[read.curve]
		b.rep.add(flatnessRow(read.measure, b.o.sizes, ms(read.first), last[len(last)-1].MS))
	}

	// page k of 100, in the stable order index paging gives, near the start and the end
	total := b.countMembers(ctx)
	for _, at := range []struct {
		name  string
		start int
	}{{"near the start", 1}, {"near the end", max(1, total-150)}} {
		page, err := timed(b.o.lookups/4+1, func(int) error {
			code, body, err := b.s.scim(ctx, "GET", fmt.Sprintf("/Users?startIndex=%d&count=100", at.start), nil)
			if err == nil && code != 200 {
				err = fmt.Errorf("page at %d: %d %s", at.start, code, body)
			}
			return err
		})
		if err != nil {
			return err
		}
		b.rep.add(row{Measure: "GET /Users page of 100, " + at.name, Size: total, Result: p50p99(page),
			Target: "p99 < 20 ms", Verdict: verdict(page.q(0.99) < 20*time.Millisecond),
			Figures: map[string]float64{"p50_ms": ms(page.q(0.5)), "p99_ms": ms(page.q(0.99)), "start_index": float64(at.start)}})
	}
	if err := b.cursorWalk(ctx, total); err != nil {
		return err
	}
	b.profileReads(ctx, largest)
	return nil
}

// besideRow runs measure (which times reads and adds their row) between two marks, then
// adds the row that says what else ran meanwhile (beside): the reads are the manager's
// alone, so on 2 cores a busy rest (the API server's consistency checks, the controllers'
// work finishing) is CPU they did not get.
//
// With -pprof, the API server's CPU profile over measure is written as
// apiserver-cpu-<profile>-<size>.pb.gz: what the rest ran beside the reads.
func (b *bench) besideRow(ctx context.Context, name, profile string, size int, measure func() error) error {
	m0, err := b.s.markBefore(ctx)
	if err != nil {
		return err
	}
	var prof *apiProfiles
	if b.o.pprof {
		prof = b.s.startAPIProfiles(ctx)
	}
	var m1 mark
	err = measure()
	if err == nil {
		m1, err = b.s.markAfter(ctx)
	}
	if prof != nil {
		// after the mark: the profile running then lasts up to a second more. One that
		// fails is reported, and the run goes on (as profileReads')
		if perr := prof.write(filepath.Join(b.o.out, fmt.Sprintf("apiserver-cpu-%s-%d.pb.gz", profile, size))); perr != nil && err == nil {
			say("  the API server's profile beside the %s at %d: %v", profile, size, perr)
		}
	}
	if err != nil {
		return err
	}
	words, figs := beside(m0, m1)
	b.rep.add(row{Measure: name, Size: size, Result: words, Figures: figs})
	return nil
}

// cursorWalk walks every member once with cursor pagination (RFC 9865), 100 a page, as
// an IdP's full read would: each page's latency, and the whole walk's time. It fails
// when the walk does not return every member exactly once (nothing is written meanwhile).
func (b *bench) cursorWalk(ctx context.Context, total int) error {
	var pages sample
	seen := make(map[string]bool, total)
	t0 := time.Now()
	for cursor := ""; ; {
		if len(pages) > total/100+2 {
			return fmt.Errorf("cursor walk: still a next cursor after %d pages of %d members", len(pages), total)
		}
		p0 := time.Now()
		code, body, err := b.s.scim(ctx, "GET", "/Users?count=100&cursor="+url.QueryEscape(cursor), nil)
		pages = append(pages, time.Since(p0))
		if err == nil && code != 200 {
			err = fmt.Errorf("cursor page %d: %d %s", len(pages), code, body)
		}
		if err != nil {
			return err
		}
		var page struct {
			NextCursor string
			Resources  []struct{ ID string }
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("cursor page %d: %w", len(pages), err)
		}
		for _, r := range page.Resources {
			if seen[r.ID] {
				return fmt.Errorf("cursor walk: %s returned twice", r.ID)
			}
			seen[r.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	walk := time.Since(t0)
	if len(seen) != total {
		return fmt.Errorf("cursor walk: %d members returned, %d exist", len(seen), total)
	}
	b.rep.add(row{Measure: "GET /Users cursor walk over every member, pages of 100", Size: total,
		Result: fmt.Sprintf("%d pages in %s; page %s", len(pages), walk.Round(time.Millisecond), p50p99(pages)),
		Target: "p99 < 20 ms", Verdict: verdict(pages.q(0.99) < 20*time.Millisecond),
		Figures: map[string]float64{"pages": float64(len(pages)), "walk_s": walk.Seconds(), "p50_ms": ms(pages.q(0.5)), "p99_ms": ms(pages.q(0.99))}})
	return nil
}

// profileReads writes cpu-reads-<size>.pb.gz (with -pprof): the manager's CPU profile over
// -read-profile of the reads the latency rows time (a `userName eq` lookup, a GET by id and
// a page of 100 at a random start, in turn, one at a time). It runs after the size's
// figures, so that profiling does not perturb them, and draws its users from a generator of
// its own, so that -seed still fixes the timed rows' choices. `go tool pprof -top
// cpu-reads-<size>.pb.gz` shows where a read's time goes at that size. A profile that fails
// (another one running: net/http/pprof takes one at a time) is reported and the run goes on.
func (b *bench) profileReads(ctx context.Context, size int) {
	if !b.o.pprof {
		return
	}
	rng := rand.New(rand.NewPCG(b.o.seed, uint64(size)))
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	reads := make(chan error, 1)
	go func() {
		for i := 0; rctx.Err() == nil; i++ {
			u := orgUser(rng.IntN(size))
			path, want := "/Users?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", u)), `"totalResults":1`
			switch i % 3 {
			case 1:
				path, want = "/Users/"+naming.MemberName(b.s.config, u), ""
			case 2:
				path, want = fmt.Sprintf("/Users?startIndex=%d&count=100", 1+rng.IntN(size)), ""
			}
			code, body, err := b.s.scim(rctx, "GET", path, nil)
			if rctx.Err() != nil {
				break
			}
			if err != nil || code != 200 || !strings.Contains(string(body), want) {
				reads <- fmt.Errorf("GET %s: %d %s %v", path, code, body, err)
				return
			}
		}
		reads <- nil
	}()
	path := filepath.Join(b.o.out, fmt.Sprintf("cpu-reads-%d.pb.gz", size))
	err := b.s.cpuProfile(rctx, b.o.readProfile, path)
	stop()
	if rerr := <-reads; rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil && ctx.Err() == nil {
		say("  no CPU profile of the reads at %d members: %v", size, err)
		_ = os.Remove(path)
	}
}

// countMembers is the config's member count as the watch sees it.
func (b *bench) countMembers(ctx context.Context) int {
	_, n, _ := b.s.phases(ctx)
	return n
}

// deprovision deactivates n members of the organization through SCIM, one every gap, and
// returns for each the time from the PATCH until the API server's authorizer denies them.
func (b *bench) deprovision(ctx context.Context, n int, gap time.Duration) (sample, error) {
	var (
		mu   sync.Mutex
		out  sample
		wg   sync.WaitGroup
		errs = make(chan error, n)
	)
	for range n {
		u := orgUser(b.deprov)
		b.deprov++
		if ok, err := b.s.canGet(ctx, u); err != nil || !ok {
			return nil, fmt.Errorf("%s should have access before its deprovisioning (err %v)", u, err)
		}
		id := naming.MemberName(b.s.config, u)
		t0 := time.Now()
		code, body, err := b.s.scim(ctx, "PATCH", "/Users/"+id, map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
			"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}},
		})
		if err == nil && code != 200 {
			err = fmt.Errorf("PATCH active=false %s: %d %s", u, code, body)
		}
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			for time.Since(t0) < 5*time.Minute {
				ok, err := b.s.canGet(ctx, u)
				if err != nil {
					errs <- err
					return
				}
				if !ok {
					mu.Lock()
					out = append(out, time.Since(t0))
					mu.Unlock()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			errs <- fmt.Errorf("%s still has access 5 minutes after active=false", u)
		})
		time.Sleep(gap)
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

func (b *bench) deprovisionIdle(ctx context.Context) error {
	d, err := b.deprovision(ctx, b.o.deprov, 200*time.Millisecond)
	if err != nil {
		return err
	}
	b.rep.add(row{Measure: "deprovision (active=false until access denied), idle", Size: b.org, Result: p50p99(d),
		Target: "p99 < 1 s", Verdict: verdict(d.q(0.99) < time.Second),
		Figures: map[string]float64{"p50_ms": ms(d.q(0.5)), "p99_ms": ms(d.q(0.99))}})
	return nil
}

// fullSync is what Okta does on a first import: for each user, look them up by userName,
// then create them. The target's baseline is the API server making the same writes by
// itself (each user's member, grant, status and event: baseline.go), measured first. The
// sync's time runs from its first request until every synced user is Active, while
// deprovisions of organization members run beside it.
func (b *bench) fullSync(ctx context.Context) error {
	n, c := b.o.syncUsers, b.o.syncConc
	k0, err := b.s.consistencyChecks(ctx)
	if err != nil {
		return err
	}
	b0 := time.Now()
	base, err := b.baselines(ctx, n, c)
	if err != nil {
		return err
	}
	baseTook := time.Since(b0)
	apiAlone := base.same

	var deprov sample
	var derr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		// deactivations spread over the time the API server alone took for the sync's
		// writes, which the sync can hardly beat: most if not all of them inside it, the
		// first a gap after the sync's start (not before its first request)
		gap := apiAlone / time.Duration(b.o.deprov+1)
		select {
		case <-time.After(gap):
		case <-ctx.Done():
			derr = ctx.Err()
			return
		}
		deprov, derr = b.deprovision(ctx, b.o.deprov, gap)
	}()
	r0, err := b.s.apiRequests(ctx)
	if err != nil {
		return err
	}
	c0, err := b.s.cpuNow()
	if err != nil {
		return err
	}
	// with -pprof, the manager's and the API server's CPU profiles over the sync's first
	// seconds (the SCIM creates and the controllers granting beside them); they run inside
	// the timed sync, so a -pprof run's sync rows carry their cost (README)
	profiled := make(chan error, 2)
	if b.o.pprof {
		d := min(apiAlone, 30*time.Second)
		go func() {
			if err := b.s.cpuProfile(ctx, d, filepath.Join(b.o.out, "cpu-sync.pb.gz")); err != nil {
				profiled <- fmt.Errorf("the manager's CPU profile: %w", err)
				return
			}
			profiled <- nil
		}()
		go func() { profiled <- b.s.apiCPUProfile(ctx, d, filepath.Join(b.o.out, "apiserver-cpu-sync.pb.gz")) }()
	} else {
		profiled <- nil
		profiled <- nil
	}
	k1, err := b.s.consistencyChecks(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := parallel(n, c, func(i int) error {
		u := fmt.Sprintf("sync%06d@example.com", i)
		code, body, err := b.s.scim(ctx, "GET", "/Users?filter="+url.QueryEscape(fmt.Sprintf("userName eq %q", u)), nil)
		if err == nil && (code != 200 || !strings.Contains(string(body), `"totalResults":0`)) {
			err = fmt.Errorf("lookup %s: %d %s", u, code, body)
		}
		if err != nil {
			return err
		}
		code, body, err = b.s.scim(ctx, "POST", "/Users", userBody(u, true))
		if err == nil && code != 201 {
			err = fmt.Errorf("POST %s: %d %s", u, code, body)
		}
		return err
	}); err != nil {
		return err
	}
	answered := time.Since(t0)
	// every synced user Active, counted among the synced users only: the deprovisions
	// beside the sync may still be running, and an organization member they have not
	// deactivated yet must not stand in for a synced user not Active yet
	_, ok := b.s.waitPhaseOf(ctx, b.s.config, scimv1.PhaseActive, n, b.o.settle, isSynced, say)
	all := time.Since(t0)
	k2, kerr := b.s.consistencyChecks(ctx)
	c1, err := b.s.cpuNow()
	if err != nil {
		return err
	}
	r1, err := b.s.apiRequests(ctx)
	if err != nil {
		return err
	}
	if kerr != nil {
		return kerr
	}
	for range 2 {
		if perr := <-profiled; perr != nil {
			say("  a CPU profile of the full sync is missing: %v", perr)
		}
	}
	<-done
	if derr != nil {
		return derr
	}
	ratio := all.Seconds() / apiAlone.Seconds()
	alone := "API server alone " + base.words()
	res := fmt.Sprintf("%.2f (all Active after %s; last 201 after %s; %s)", ratio,
		all.Round(time.Millisecond), answered.Round(time.Millisecond), alone)
	v := syncVerdict(ok, ratio)
	if !ok {
		res = fmt.Sprintf("NOT all Active after %s (last 201 after %s; %s)", all.Round(time.Second), answered.Round(time.Millisecond), alone)
	} else if v == unsettled {
		res += "; the sync beat the baseline, so the baseline did not reach the API server's limit"
	}
	b.rep.add(row{Measure: fmt.Sprintf("full sync (lookup, create; concurrency %d) until all Active / API server alone making the same writes", c),
		Size: n, Result: res, Target: "<= 2", Verdict: v,
		Figures: map[string]float64{"ratio": ratio, "all_active_s": all.Seconds(), "answered_s": answered.Seconds(),
			"same_writes_s": apiAlone.Seconds(), "same_writes_at_c_s": base.at[c].took.Seconds(),
			"same_writes_concurrency": float64(base.fastest), "same_writes_busy_cores": base.at[base.fastest].busy(),
			"same_writes_bench_cores": base.at[base.fastest].benchBusy(), "baseline_chunks": float64(base.chunks)}})
	membersRatio := all.Seconds() / base.members.Seconds()
	b.rep.add(row{Measure: "full sync until all Active / API server alone creating the members only", Size: n,
		Result: fmt.Sprintf("%.2f (API server alone %s for the member creates at concurrency %d; the same writes alone took %.2f times as long)",
			membersRatio, base.members.Round(time.Millisecond), c, apiAlone.Seconds()/base.members.Seconds()),
		Figures: map[string]float64{"ratio": membersRatio, "members_alone_s": base.members.Seconds()}})
	// What the sync cost the API server and the machine, per synced user, from its first
	// lookup until all were Active (the deprovisions beside it included): where the time
	// beyond the writes of the baseline goes.
	requests := addServed(nil, r0, r1)
	cpu := c1.sub(c0)
	users := float64(n)
	unfinished := ""
	if !ok {
		unfinished = fmt.Sprintf("NOT all Active after %s: ", all.Round(time.Second))
	}
	b.rep.add(row{Measure: "API server requests during the full sync, per synced user", Size: n,
		Result:  fmt.Sprintf("%s%.2f (%s)", unfinished, total(requests)/users, requestWords(requests, users)),
		Figures: map[string]float64{"per_user": total(requests) / users}})
	b.rep.add(row{Measure: "CPU during the full sync, per synced user", Size: n,
		Result: fmt.Sprintf("%s%.1f ms of the machine (manager %.1f ms, IdP client %.1f ms, the rest %.1f ms; %.1f of %d cores busy)",
			unfinished, 1000*cpu.machine/users, 1000*cpu.manager/users, 1000*cpu.bench/users, 1000*(cpu.machine-cpu.manager-cpu.bench)/users,
			cpu.machine/all.Seconds(), runtime.NumCPU()),
		Figures: map[string]float64{"machine_ms": 1000 * cpu.machine / users, "manager_ms": 1000 * cpu.manager / users,
			"bench_ms": 1000 * cpu.bench / users, "busy_cores": cpu.machine / all.Seconds()}})
	// The API server's own checks of its watch cache (consistencyChecks): each a burst of
	// its CPU that grows with the objects stored, inside the sync or its baselines.
	syncChecks, syncObjects, syncWords := checksWords(k1, k2)
	baseChecks, baseObjects, baseWords := checksWords(k0, k1)
	b.rep.add(row{Measure: "the API server's watch-cache consistency checks (each lists a resource from etcd in full) during the full sync and its baselines", Size: n,
		Result: fmt.Sprintf("during the sync (%s): %s; during the baselines' step (about %s, every side): %s",
			all.Round(time.Second), syncWords, baseTook.Round(time.Second), baseWords),
		Figures: map[string]float64{"sync": syncChecks, "sync_objects": syncObjects, "baselines": baseChecks, "baselines_objects": baseObjects,
			"sync_s": all.Seconds(), "baselines_s": baseTook.Seconds()}})
	b.rep.add(row{Measure: "deprovision during the full sync", Size: b.org, Result: p50p99(deprov),
		Target: "p99 < 5 s", Verdict: verdict(deprov.q(0.99) < 5*time.Second),
		Figures: map[string]float64{"p50_ms": ms(deprov.q(0.5)), "p99_ms": ms(deprov.q(0.99))}})
	return nil
}

// grantWords names what the kubernetes backend writes per member and role in layout.
func grantWords(layout scimv1.GrantLayout) string {
	if layout == scimv1.GrantLayoutWebhook {
		return "OrgGrants"
	}
	return "bindings"
}

// memoryLimitWords is the memory limit of the cgroup the bench (and so the manager) runs
// in: the manager gives the Go runtime 90% of it as GOMEMLIMIT, which changes the
// resident memory rows near that limit.
func memoryLimitWords() string {
	limit, err := memlimit.FromCgroup()
	switch {
	case errors.Is(err, memlimit.ErrNoLimit):
		return "none"
	case err != nil:
		return "unknown (" + err.Error() + ")"
	}
	return bytesIEC(float64(limit))
}

func gatesWords(gates string) string {
	if gates == "" {
		return "defaults"
	}
	return gates
}

func workersWords(n int) string {
	if n == 0 {
		return fmt.Sprintf("%d (the manager's default)", controllers.DefaultMaxConcurrentReconciles)
	}
	return strconv.Itoa(n)
}

// flatnessRow is the ratio of a read's p50 at the largest of sizes to its p50 at the
// first: with one size there is no ratio (it would be 1.00 by construction, and met).
func flatnessRow(measure string, sizes []int, firstMS, lastMS float64) row {
	largest := sizes[len(sizes)-1]
	if len(sizes) < 2 {
		return row{Measure: measure + " p50 at the largest size / p50 at the smallest", Size: largest,
			Result: "not measured: -sizes gives one size"}
	}
	ratio := lastMS / firstMS
	return row{Measure: fmt.Sprintf("%s p50 at %d / p50 at %d", measure, largest, sizes[0]), Size: largest,
		Result: fmt.Sprintf("%.2f", ratio), Target: "<= 1.2", Verdict: verdict(ratio <= 1.2),
		Figures: map[string]float64{"ratio": ratio}}
}
