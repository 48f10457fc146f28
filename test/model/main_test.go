// Package model checks docs/access-invariant.md with seeded, replayable random operation
// sequences: SCIM requests over real HTTP to the manager that manager.New builds (the one
// cmd/manager runs), policy and enablement changes, drift made by hand in the backend,
// manager restarts and config deletions, against a real kube-apiserver and etcd (envtest,
// authorizing with RBAC, then the manager's authorization webhook)
// with the kubernetes backend and the Docker Hub emulator. After each sequence (and at its
// "check" operations) the config is settled and the backend's identities must equal the
// model's: wanted ∪ orphaned ∪ foreign.
//
// Run (KUBEBUILDER_ASSETS from hack/controlplane.sh, or its cache):
//
//	go test ./test/model/ -run TestModel -v                                   # short budget
//	go test ./test/model/ -run TestModel -v -args -model.sequences=20 -model.ops=40
//	go test ./test/model/ -run TestModel -v -args -model.backend=kubernetes -model.replay=SEED -model.ops=N [-model.keep=0,3,7]
//
// Every flag has an environment variable: MODEL_SEED, MODEL_SEQUENCES, MODEL_OPS,
// MODEL_BACKEND (kubernetes|dockerhub|both), MODEL_REPLAY, MODEL_KEEP, MODEL_SETTLE (the
// longest settle wait), MODEL_SHRINK (time spent shrinking a failure, 0: none).
//
// The model and the readings it takes where the doc is silent are in model_test.go.
package model

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/scim-operator/scim-operator/internal/authz"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// regression is a sequence that once broke the invariant: generate(backend, seed, ops,
// exclude). Regressions always run (unless -model.regressions=false or a replay), whatever
// the other flags say.
type regression struct {
	seed    uint64
	ops     int
	exclude string
	why     string // what it found on the code of its day
	// fp pins the sequence: the fingerprint of the operations generate returns. A change
	// of the generator that would silently turn a regression into another sequence fails
	// TestRegressionsArePinned instead (store the operation list then, or re-find a seed).
	fp string
}

// fingerprint is a short hash of an operation list.
func fingerprint(ops []Op) string {
	h := sha256.New()
	for _, op := range ops {
		fmt.Fprintf(h, "%s\n", op)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// TestRegressionsArePinned: every regression still generates the sequence that found its
// bug.
func TestRegressionsArePinned(t *testing.T) {
	for be, list := range regressions {
		for _, r := range list {
			got := fingerprint(generate(be, r.seed, r.ops, parseExclude(r.exclude)))
			if got != r.fp {
				t.Errorf("%s regression seed=%d (%s): the generator now makes another sequence (fingerprint %s, pinned %q)",
					be, r.seed, r.why, got, r.fp)
			}
		}
	}
}

var regressions = map[string][]regression{
	kube: {
		{100, 25, "", "a dockerTeam hint binds a Group on the kubernetes backend", "6ebbc59d7ee8e90d"},
		{201, 25, "hints", "an enabled config deleted under Remove leaves every grant; a rename leaves the old userName bound", "c63cf55df9bfd775"},
		{203, 25, "hints", "a rename after deactivation and reactivation leaves the old userName bound", "61048cb98ad5b2e3"},
		{501, 30, "hints,delete-config,patch-userName,put-user", "a group rename leaves the old team's Group bound", "65df35c11f68e92f"},
		{324960047, 40, "", "a disabled Webhook config deleted: the model expected its OrgGrants to grant as orphans", "77f6021abc1bac93"},
		{324960053, 40, "", "a binding of a member deactivated under Keep deleted by hand is never repaired", "794e29952a89c2a3"},
	},
	hub: {
		{2, 25, "", "a rename leaves the accepted Docker ID in the organization", "a6ec392343e0cff2"},
		{301, 25, "", "a PUT that changes userName and drops the email leaves the invitation sent to the old email", "82ce574bc0ed6da7"},
		{302, 25, "", "a PUT rename leaves the old userName's invitation", "177f0f8d6745acb3"},
	},
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

var (
	flagSeed      = flag.Uint64("model.seed", 0, "first random seed (0: from the clock); sequence i uses seed+i")
	flagSequences = flag.Int("model.sequences", envInt("MODEL_SEQUENCES", 1), "random sequences per backend")
	flagOps       = flag.Int("model.ops", envInt("MODEL_OPS", 25), "operations per sequence")
	flagBackend   = flag.String("model.backend", envOr("MODEL_BACKEND", "both"), "kubernetes, dockerhub or both")
	flagReplay    = flag.Uint64("model.replay", 0, "replay this seed only (with -model.ops and -model.keep)")
	flagKeep      = flag.String("model.keep", envOr("MODEL_KEEP", ""), "replay only these operation indices (comma-separated)")
	flagSettle    = flag.Duration("model.settle", envDuration("MODEL_SETTLE", 60*time.Second), "longest wait for the backend to settle")
	flagShrink    = flag.Duration("model.shrink", envDuration("MODEL_SHRINK", 2*time.Minute), "time spent shrinking one failure (0: none)")
	flagRegress   = flag.Bool("model.regressions", true, "also run the regression seeds")
	flagExclude   = flag.String("model.exclude", envOr("MODEL_EXCLUDE", ""),
		"operation kinds never generated, comma-separated (e.g. patch-dockerTeam,hints,delete-config; hints: no dockerTeam anywhere)")
	flagPrint = flag.Bool("model.print", false, "print the operations of -model.replay (or -model.seed) and exit, without a cluster")
)

var sys *system

func TestMain(m *testing.M) {
	flag.Parse()
	if *flagSeed == 0 {
		if v, err := strconv.ParseUint(os.Getenv("MODEL_SEED"), 10, 64); err == nil {
			*flagSeed = v
		} else {
			*flagSeed = uint64(time.Now().UnixNano() % 1_000_000_000)
		}
	}
	if *flagReplay == 0 {
		if v, err := strconv.ParseUint(os.Getenv("MODEL_REPLAY"), 10, 64); err == nil {
			*flagReplay = v
		}
	}
	if *flagPrint {
		seed := *flagReplay
		if seed == 0 {
			seed = *flagSeed
		}
		for _, be := range backends() {
			fmt.Printf("%s seed=%d:\n", be, seed)
			m := newModel(be)
			m.webhook = be == kube && webhookSeed(seed)
			if m.webhook {
				fmt.Println("  (grantLayout Webhook)")
			}
			for i, op := range generate(be, seed, *flagOps, parseExclude(*flagExclude)) {
				out := m.apply(op)
				if out.configDeleted {
					m.freshConfig()
				}
				st := ""
				if out.status != 0 {
					st = fmt.Sprintf(" -> %d", out.status)
				}
				fmt.Printf("  %2d  %s%s\n", i, op, st)
			}
			fmt.Print(m.describe())
		}
		os.Exit(0)
	}
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("scim-model-%d.log", os.Getpid()))
	logFile, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logFile)))
	// The API server authorizes with RBAC, then the manager's authorization webhook (the
	// Webhook grant layout), as docs/authorization-webhook.md installs it: the webhook's port
	// is picked before the API server starts, and the API server trusts the CA of its
	// certificate.
	certsDir, err := os.MkdirTemp("", "scim-model-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	webhook, err := newWebhook(certsDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "preparing the authorization webhook:", err)
		_ = os.RemoveAll(certsDir)
		os.Exit(1)
	}
	env := testenv.New()
	if err := testenv.UseAuthorizationWebhook(env, testenv.AuthorizationWebhook{
		URL: "https://" + webhook.addr + authz.Path, CAFile: webhook.caFile, Dir: filepath.Join(certsDir, "apiserver")}); err != nil {
		fmt.Fprintln(os.Stderr, "configuring the API server's authorizers:", err)
		_ = os.RemoveAll(certsDir)
		os.Exit(1)
	}
	cfg, err := testenv.Start(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest (run hack/controlplane.sh for kube-apiserver and etcd):", err)
		_ = os.RemoveAll(certsDir)
		os.Exit(1)
	}
	code := func() int {
		defer func() { _ = os.RemoveAll(certsDir) }()
		defer func() { _ = env.Stop() }()
		s, err := newSystem(cfg, webhook)
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting the manager:", err)
			return 1
		}
		sys = s
		defer func() { _ = sys.stop() }()
		fmt.Printf("model: manager log in %s\n", logPath)
		return m.Run()
	}()
	_ = logFile.Close()
	os.Exit(code)
}

// webhookServing is where the manager serves its authorization webhook.
type webhookServing struct {
	addr    string // loopback host:port
	certDir string // tls.crt, tls.key
	caFile  string // the CA the API server verifies the webhook with
}

func newWebhook(dir string) (webhookServing, error) {
	certs, err := devenv.LocalTLS(dir)
	if err != nil {
		return webhookServing{}, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return webhookServing{}, err
	}
	return webhookServing{addr: addr, certDir: certs.CertDir, caFile: certs.CAFile}, nil
}

func newSystem(cfg *rest.Config, webhook webhookServing) (*system, error) {
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	s := &system{rest: cfg, c: c, scimAddr: addr, webhook: webhook, httpc: &http.Client{Timeout: 30 * time.Second}}
	return s, s.start()
}

// result of one sequence: failed at op index at (len(ops): the final check).
type result struct {
	failed bool
	at     int
	msg    string
	ran    int
	done   map[int]bool // indices of the operations that were valid and sent
}

// runSequence runs ops (those whose index keep allows) in a fresh namespace and config.
// seqWebhook is webhookSeed of the sequence TestModel runs (and shrinks): runSequence
// creates its configs with grantLayout Webhook.
var seqWebhook bool

func runSequence(ctx context.Context, t *testing.T, be string, ops []Op, keep map[int]bool, quiet bool) result {
	logf := func(format string, args ...any) {
		if !quiet {
			t.Logf(format, args...)
		}
	}
	so := settleOpts{max: *flagSettle, min: 20 * time.Second, quiet: 10 * time.Second}
	r, err := sys.newRun(ctx, be, so, logf)
	if err != nil {
		return result{failed: true, msg: "setting up: " + err.Error()}
	}
	defer r.close(ctx)
	ran := 0
	done := map[int]bool{}
	fail := func(at int, msg string) result {
		done[at] = true
		return result{failed: true, at: at, ran: ran, msg: msg, done: done}
	}
	for i, op := range ops {
		if keep != nil && !keep[i] {
			continue
		}
		before := r.m.clone()
		want := r.m.apply(op)
		if !want.valid {
			logf("  %2d  skip %s", i, op)
			continue
		}
		ran++
		done[i] = true
		if want.preSettle {
			if err := r.withModel(before).check(ctx); err != nil {
				return fail(i, fmt.Sprintf("before op %d (%s): %v", i, op, err))
			}
		}
		expect := ""
		if want.status != 0 {
			expect = fmt.Sprintf(" -> %d", want.status)
		}
		logf("  %2d  %s%s", i, op, expect)
		if err := r.exec(ctx, op, want); err != nil {
			return fail(i, fmt.Sprintf("op %d (%s): %v", i, op, err))
		}
		if want.postSettle {
			if err := r.check(ctx); err != nil {
				return fail(i, fmt.Sprintf("after op %d (%s): %v", i, op, err))
			}
		}
		if want.configDeleted {
			if err := r.check(ctx); err != nil {
				return fail(i, fmt.Sprintf("after op %d (%s): %v", i, op, err))
			}
			r.m.freshConfig()
			if err := r.newConfig(ctx); err != nil {
				return fail(i, "a fresh config: "+err.Error())
			}
		}
	}
	if err := r.check(ctx); err != nil {
		return result{failed: true, at: len(ops), ran: ran, msg: "final check: " + err.Error(), done: done}
	}
	return result{ran: ran, done: done}
}

// withModel returns the run checked against another model state (the one before an op
// whose preSettle applies to the state it follows).
func (r *run) withModel(m *model) *run {
	c := *r
	c.m = m
	return &c
}

// shrink removes operations greedily (halves, then smaller chunks, down to single
// operations) while the sequence still fails, within the time budget.
func shrink(ctx context.Context, t *testing.T, be string, ops []Op, budget time.Duration) (map[int]bool, result) {
	deadline := time.Now().Add(budget)
	keep := map[int]bool{}
	for i := range ops {
		keep[i] = true
	}
	var last result
	if first := runSequence(ctx, t, be, ops, keep, true); first.failed && first.done != nil {
		keep, last = first.done, first // what was skipped, or came after the failure, goes
	}
	for chunk := len(ops) / 2; chunk >= 1; chunk /= 2 {
		for start := 0; start < len(ops); start += chunk {
			if time.Now().After(deadline) {
				return keep, last
			}
			var removed []int
			for i := start; i < start+chunk && i < len(ops); i++ {
				if keep[i] {
					removed = append(removed, i)
				}
			}
			if len(removed) == 0 {
				continue
			}
			try := map[int]bool{}
			for k := range keep {
				try[k] = true
			}
			for _, i := range removed {
				delete(try, i)
			}
			res := runSequence(ctx, t, be, ops, try, true)
			if res.failed && res.done != nil {
				keep, last = res.done, res
				t.Logf("  shrink: still fails without ops %v (%d left)", removed, len(keep))
			}
		}
	}
	return keep, last
}

func keepList(keep map[int]bool, n int) string {
	var l []string
	for i := 0; i < n; i++ {
		if keep[i] {
			l = append(l, strconv.Itoa(i))
		}
	}
	return strings.Join(l, ",")
}

func excludeArg(exclude string) string {
	if exclude == "" {
		return ""
	}
	return " -model.exclude=" + exclude
}

func backends() []string {
	switch *flagBackend {
	case kube, hub:
		return []string{*flagBackend}
	}
	return []string{kube, hub}
}

func TestModel(t *testing.T) {
	ctx := context.Background()
	type seq struct {
		seed    uint64
		ops     int
		tag     string
		exclude string
	}
	var sequences, operations, nRegressions int
	var failures []string
	for _, be := range backends() {
		var list []seq
		if *flagReplay != 0 {
			list = []seq{{*flagReplay, *flagOps, "replay", *flagExclude}}
		} else {
			if *flagRegress {
				for _, r := range regressions[be] {
					list = append(list, seq{r.seed, r.ops, "regression: " + r.why, r.exclude})
					nRegressions++
				}
			}
			for i := 0; i < *flagSequences; i++ {
				list = append(list, seq{*flagSeed + uint64(i), *flagOps, "random", *flagExclude})
			}
		}
		shrunkOne := false
		for _, s := range list {
			ops := generate(be, s.seed, s.ops, parseExclude(s.exclude))
			var keep map[int]bool
			if s.tag == "replay" && *flagKeep != "" {
				keep = map[int]bool{}
				for _, f := range strings.Split(*flagKeep, ",") {
					if i, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
						keep[i] = true
					}
				}
			}
			seqWebhook = be == kube && webhookSeed(s.seed)
			layout := ""
			if seqWebhook {
				layout = ", grantLayout Webhook"
			}
			t.Logf("%s sequence seed=%d (%s, %d ops%s)", be, s.seed, s.tag, len(ops), layout)
			start := time.Now()
			res := runSequence(ctx, t, be, ops, keep, false)
			sequences++
			operations += res.ran
			if !res.failed {
				t.Logf("%s seed=%d passed in %s", be, s.seed, time.Since(start).Round(time.Second))
				continue
			}
			report := fmt.Sprintf("%s seed=%d FAILED %s", be, s.seed, res.msg)
			if !shrunkOne && *flagShrink > 0 && keep == nil && s.tag == "random" {
				shrunkOne = true
				t.Logf("%s seed=%d failed; shrinking for up to %s", be, s.seed, *flagShrink)
				sk, last := shrink(ctx, t, be, ops, *flagShrink)
				var lines []string
				for i, op := range ops {
					if sk[i] {
						lines = append(lines, fmt.Sprintf("    %2d  %s", i, op))
					}
				}
				report += fmt.Sprintf("\n  shrunk to %d ops:\n%s", len(sk), strings.Join(lines, "\n"))
				if last.failed {
					report += "\n  shrunk failure: " + last.msg
				}
				report += fmt.Sprintf("\n  replay: go test ./test/model/ -run TestModel -v -args -model.backend=%s -model.replay=%d -model.ops=%d%s -model.keep=%s",
					be, s.seed, s.ops, excludeArg(s.exclude), keepList(sk, len(ops)))
			} else {
				report += fmt.Sprintf("\n  replay: go test ./test/model/ -run TestModel -v -args -model.backend=%s -model.replay=%d -model.ops=%d%s",
					be, s.seed, s.ops, excludeArg(s.exclude))
			}
			failures = append(failures, report)
			t.Error(report)
		}
	}
	var seeds []string
	for i := 0; i < *flagSequences; i++ {
		seeds = append(seeds, strconv.FormatUint(*flagSeed+uint64(i), 10))
	}
	t.Logf("model: %d sequences, %d operations run, backends %v, random seeds %s (and %d regression sequences), %d failed",
		sequences, operations, backends(), strings.Join(seeds, ","), nRegressions, len(failures))
}
