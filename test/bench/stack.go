package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// stack is what the benchmark measures: kube-apiserver and etcd on loopback, the manager
// binary as a child process serving SCIM over HTTPS (as make run starts it), the sample
// ScimConfig (kubernetes backend), and a watch of the OrgMembers to see their phases
// without loading the API server with lists.
type stack struct {
	cluster *devenv.Cluster
	mgr     *devenv.Manager
	hc      *http.Client
	// base is the sample config's SCIM base URL; token its bearer token.
	base, token string
	ns, config  string
	members     cache.Cache
	logs        *os.File
	// pprof is the manager's net/http/pprof address; metrics its /metrics (plain HTTP, on
	// loopback)
	pprof, metrics string
	// apiRaw reads the API server's /metrics (apiMetrics); it times out after 32 s
	apiRaw rest.Interface
}

func startStack(ctx context.Context, dir string, layout scimv1.GrantLayout, pprof bool, workers int, gates string, say func(string, ...any)) (*stack, error) {
	certs, err := devenv.LocalTLS(dir)
	if err != nil {
		return nil, err
	}
	// as make run starts it: the install's lockdown, grants written as scim-provisioner
	managerArgs := []string{"--default-service-account=scim-provisioner"}
	if workers > 0 {
		managerArgs = append(managerArgs, fmt.Sprintf("--max-concurrent-reconciles=%d", workers))
	}
	local := devenv.LocalOptions{FeatureGates: gates}
	connector := devenv.Connector{ForceLocal: true, Dir: dir, Say: say,
		StartLocal: func(dir string) (*devenv.Cluster, error) { return devenv.StartLocalWith(dir, local) }}
	if layout == scimv1.GrantLayoutWebhook {
		// as make run RUN_ARGS=--authorization-webhook: RBAC, then the manager's webhook
		webhook, args, err := devenv.LocalAuthorizationWebhook(dir, certs)
		if err != nil {
			return nil, err
		}
		local.AuthorizationWebhook = webhook
		managerArgs = append(managerArgs, args...)
	}
	cluster, err := connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	// The bench's own writes (the baselines above all) go unthrottled, as the manager's
	// do: controller-runtime's GetConfig turns client-go's client-side limiter off, and
	// envtest's config keeps one at 1,000 requests a second, which a faster machine's
	// baseline would reach and a ratio against it would then flatter the manager.
	cluster.Config = rest.CopyConfig(cluster.Config)
	cluster.Config.QPS = -1
	if cluster.Client, err = client.New(cluster.Config, client.Options{Scheme: devenv.Scheme}); err != nil {
		_ = cluster.Stop()
		return nil, err
	}
	s := &stack{cluster: cluster, ns: "default", config: "example"}
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	if err != nil {
		return nil, err
	}
	s.apiRaw = dc.RESTClient()
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	if err := devenv.InstallCRDs(ctx, cluster.Client); err != nil {
		return nil, err
	}
	// the baselines' twins now, so that the API server's work for new CRDs is long done
	// when a baseline is timed
	if err := installTwins(ctx, cluster.Client); err != nil {
		return nil, err
	}
	sample := filepath.Join(testenv.RepoRoot(), "config", "samples", "scim_v1alpha1_scimconfig.yaml")
	if err := devenv.ApplyYAML(ctx, cluster.Client, sample, s.ns); err != nil {
		return nil, err
	}
	if err := setLayout(ctx, cluster.Client, types.NamespacedName{Namespace: s.ns, Name: s.config}, layout); err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "manager")
	say("building the manager binary (cmd/manager)")
	if err := devenv.BuildManager(ctx, bin); err != nil {
		return nil, err
	}
	if s.logs, err = os.Create(filepath.Join(dir, "manager.log")); err != nil {
		return nil, err
	}
	// the profiles are always served (loopback): the memory figures read the manager's live
	// heap after a collection from them; -pprof prints where
	if s.pprof, err = devenv.FreeAddr(); err != nil {
		return nil, err
	}
	managerArgs = append(managerArgs, "--pprof-bind-address="+s.pprof)
	// and its metrics (the throughput step reads how long creates waited inside it)
	if s.metrics, err = devenv.FreeAddr(); err != nil {
		return nil, err
	}
	managerArgs = append(managerArgs, "--metrics-bind-address="+s.metrics, "--metrics-secure=false")
	if pprof {
		say("the manager's profiles: http://%s/debug/pprof/ (go tool pprof http://%s/debug/pprof/profile?seconds=20)", s.pprof, s.pprof)
	}
	if s.mgr, err = devenv.StartManager(ctx, bin, cluster.Kubeconfig, s.logs, certs, managerArgs...); err != nil {
		return nil, err
	}
	cfg, err := devenv.WaitReady(ctx, cluster.Client, types.NamespacedName{Namespace: s.ns, Name: s.config}, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	if s.token, err = devenv.Token(ctx, cluster.Client, cfg); err != nil {
		return nil, err
	}
	s.base = s.mgr.SCIMURL + cfg.Status.BasePath
	s.hc = certs.Client()
	tr := s.hc.Transport.(*http.Transport)
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256

	if s.members, err = cache.New(cluster.Config, cache.Options{Scheme: devenv.Scheme,
		DefaultTransform: cache.TransformStripManagedFields()}); err != nil {
		return nil, err
	}
	if _, err := s.members.GetInformer(ctx, &scimv1.OrgMember{}); err != nil {
		return nil, err
	}
	for _, obj := range []client.Object{&rbacv1.ClusterRoleBinding{}, &scimv1.OrgGrant{}} {
		if _, err := s.members.GetInformer(ctx, obj); err != nil {
			return nil, err
		}
	}
	go func() { _ = s.members.Start(ctx) }()
	if !s.members.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the benchmark's watch did not sync")
	}
	ok = true
	return s, nil
}

// setLayout sets the sample config's grant layout before the manager first reads it.
func setLayout(ctx context.Context, c client.Client, key types.NamespacedName, layout scimv1.GrantLayout) error {
	cfg := &scimv1.ScimConfig{}
	if err := c.Get(ctx, key, cfg); err != nil {
		return err
	}
	if cfg.Spec.Backend.Kubernetes == nil {
		return fmt.Errorf("the sample ScimConfig %s has no kubernetes backend", key)
	}
	orig := cfg.DeepCopy()
	cfg.Spec.Backend.Kubernetes.GrantLayout = layout
	return c.Patch(ctx, cfg, client.MergeFrom(orig))
}

func (s *stack) stop() {
	if s.mgr != nil {
		_ = s.mgr.Stop()
	}
	if s.logs != nil {
		_ = s.logs.Close()
	}
	if s.cluster != nil {
		_ = s.cluster.Stop()
	}
}

// scim sends one SCIM request and returns its status and body.
func (s *stack) scim(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func userBody(userName string, active bool) map[string]any {
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"externalId":  "ext-" + userName,
		"active":      active,
		"displayName": "Bench " + userName,
		"name":        map[string]any{"givenName": "Bench", "familyName": userName},
		"emails":      []any{map[string]any{"type": "work", "value": userName, "primary": true}},
	}
}

// rawMember is the OrgMember a SCIM create of userBody writes, for client-go to write
// directly: the same object, without the SCIM server. It carries the deprovision
// finalizer as a SCIM create does: without it the controllers spent a write on each raw
// member that a SCIM one does not need, and the client-go side ran beside twice the
// controller writes (about 2 against 1 per create at concurrency 1).
func rawMember(ns, config, userName string, active bool) *scimv1.OrgMember {
	return &scimv1.OrgMember{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName(config, userName),
			Labels: map[string]string{scimv1.LabelConfig: config}, Finalizers: []string{scimv1.FinalizerDeprovision}},
		Spec: scimv1.OrgMemberSpec{ConfigName: config, UserName: userName, Active: active,
			ExternalID: "ext-" + userName, DisplayName: "Bench " + userName,
			Name:   &scimv1.Name{GivenName: "Bench", FamilyName: userName},
			Emails: []scimv1.MultiValue{{Value: userName, Type: "work", Primary: true}}},
	}
}

// claimAbsent reads userName's claim live, as a SCIM create does after its write
// (internal/scimstore's claimlessVerdict: a GET of the name's OrgNameClaim from the API
// server), and wants it absent: the bench's users are unique, so a claim is a fault.
func (s *stack) claimAbsent(ctx context.Context, userName string) error {
	key := client.ObjectKey{Namespace: s.ns, Name: naming.ClaimName(string(scimv1.NameClaimUser), s.config, userName)}
	err := s.cluster.Client.Get(ctx, key, &scimv1.OrgNameClaim{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err == nil:
		return fmt.Errorf("the claim of %s exists: the bench's users must be new", userName)
	}
	return err
}

// rawGroup is an OrgGroup as the SCIM server writes it, without members (the members'
// labels say whose group it is).
func rawGroup(ns, config, displayName string) *scimv1.OrgGroup {
	return &scimv1.OrgGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.GroupName(config, displayName),
			Labels: map[string]string{scimv1.LabelConfig: config}, Finalizers: []string{scimv1.FinalizerDeprovision}},
		Spec: scimv1.OrgGroupSpec{ConfigName: config, DisplayName: displayName, ExternalID: "ext-" + displayName},
	}
}

// groupsSynced waits until every group is synced (Ready, TeamSynced) with its share of
// the first size people (person i is in group i mod len(groups)).
func (s *stack) groupsSynced(ctx context.Context, groups []*scimv1.OrgGroup, size int, timeout time.Duration) error {
	synced := 0
	return until(ctx, timeout, func() (bool, error) {
		synced = 0
		for j, g := range groups {
			var got scimv1.OrgGroup
			if err := s.cluster.Client.Get(ctx, client.ObjectKeyFromObject(g), &got); err != nil {
				return false, err
			}
			want := size / len(groups)
			if j < size%len(groups) {
				want++
			}
			c := meta.FindStatusCondition(got.Status.Conditions, scimv1.ConditionReady)
			if c != nil && c.Status == metav1.ConditionTrue && got.Status.ObservedGeneration == got.Generation &&
				int(got.Status.MemberCount) == want {
				synced++
			}
		}
		return synced == len(groups), nil
	}, func() error {
		return fmt.Errorf("%d of %d groups synced with their members within -settle %s", synced, len(groups), timeout)
	})
}

// parallel runs f(i) for i in [0, n) on workers goroutines and returns the first error.
func parallel(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		next  int
		first error
	)
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// grow creates OrgMembers from..to-1 (active, in the sample config) with client-go: the
// organization the lookups and the cluster-cost figures are measured at.
func (s *stack) grow(ctx context.Context, from, to int) error {
	return parallel(to-from, 32, func(i int) error {
		return s.cluster.Client.Create(ctx, rawMember(s.ns, s.config, orgUser(from+i), true))
	})
}

func orgUser(i int) string { return fmt.Sprintf("org%06d@example.com", i) }

// phases counts the config's members by phase, from the benchmark's watch.
func (s *stack) phases(ctx context.Context) (map[scimv1.MemberPhase]int, int, error) {
	return s.phasesOf(ctx, s.config)
}

func (s *stack) phasesOf(ctx context.Context, config string) (map[scimv1.MemberPhase]int, int, error) {
	return s.phasesMatching(ctx, config, nil)
}

// phasesMatching is phasesOf counting only the members match accepts (nil: all).
func (s *stack) phasesMatching(ctx context.Context, config string, match func(*scimv1.OrgMember) bool) (map[scimv1.MemberPhase]int, int, error) {
	var l scimv1.OrgMemberList
	// read only, and no copy of 100,000 members four times a second: the bench must not take
	// the CPU the manager and the API server are measured on
	if err := s.members.List(ctx, &l, client.InNamespace(s.ns), client.MatchingLabels{scimv1.LabelConfig: config},
		client.UnsafeDisableDeepCopy); err != nil {
		return nil, 0, err
	}
	out := map[scimv1.MemberPhase]int{}
	for i := range l.Items {
		if match == nil || match(&l.Items[i]) {
			out[l.Items[i].Status.Phase]++
		}
	}
	return out, len(l.Items), nil
}

// clear deletes every member of the sample config and waits, at most timeout, until they
// are gone (the controllers release each first: its finalizer).
func (s *stack) clear(ctx context.Context, timeout time.Duration) error {
	// One deletecollection of thousands of members (each marked for deletion) can outlast
	// the API server's request timeout on a small machine (7,200 after -repeat 3 on 2
	// cores: the stream was reset): it is asked again, and each time marks those left.
	for attempt := 1; ; attempt++ {
		err := s.cluster.Client.DeleteAllOf(ctx, &scimv1.OrgMember{}, client.InNamespace(s.ns),
			client.MatchingLabels{scimv1.LabelConfig: s.config})
		if err == nil {
			break
		}
		if attempt == 5 || ctx.Err() != nil {
			return fmt.Errorf("deleting the sample config's members (%d tries): %w", attempt, err)
		}
	}
	for start := time.Now(); time.Since(start) < timeout; {
		if _, n, err := s.phasesOf(ctx, s.config); err == nil && n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the sample config's members were not gone within %s", timeout)
}

// isSynced tells the full sync's users (fullSync) from the organization's.
func isSynced(m *scimv1.OrgMember) bool { return strings.HasPrefix(m.Spec.UserName, "sync") }

// settle waits until at least wantActive members of the sample config are Active, or until
// timeout; it says how long that took and whether it got there (settleOf: of config).
func (s *stack) settle(ctx context.Context, timeout time.Duration, wantActive int, say func(string, ...any)) (time.Duration, bool) {
	return s.settleOf(ctx, s.config, timeout, wantActive, say)
}

func (s *stack) settleOf(ctx context.Context, config string, timeout time.Duration, wantActive int, say func(string, ...any)) (time.Duration, bool) {
	return s.waitPhaseOf(ctx, config, scimv1.PhaseActive, wantActive, timeout, nil, say)
}

// settleQuiet waits until at least wantDeactivated members of the sample config are
// Deactivated (the controllers are done with the inactive members created so far), or
// until timeout. It polls often: it runs between the throughput's timed chunks.
func (s *stack) settleQuiet(ctx context.Context, timeout time.Duration, wantDeactivated int) (time.Duration, bool) {
	poll := func(int) time.Duration { return 20 * time.Millisecond }
	return s.waitPhase(ctx, s.config, scimv1.PhaseDeactivated, wantDeactivated, timeout, poll, nil, nil)
}

// waitPhaseOf waits until at least want members of config that match accepts (nil: all)
// are in phase, or until timeout, polling a quarter of a second up to 10,000 members,
// proportionally longer above (the bench must not take the CPU it measures).
func (s *stack) waitPhaseOf(ctx context.Context, config string, phase scimv1.MemberPhase, want int, timeout time.Duration,
	match func(*scimv1.OrgMember) bool, say func(string, ...any)) (time.Duration, bool) {
	poll := func(n int) time.Duration {
		return max(250*time.Millisecond, time.Duration(n/10000)*250*time.Millisecond)
	}
	return s.waitPhase(ctx, config, phase, want, timeout, poll, match, say)
}

// waitPhase waits until at least want members of config that match accepts (nil: all)
// are in phase, or until timeout, polling every poll(members); it says how long that took
// and whether it got there, and tells its progress every 30 seconds through say (when set).
func (s *stack) waitPhase(ctx context.Context, config string, phase scimv1.MemberPhase, want int, timeout time.Duration,
	poll func(members int) time.Duration, match func(*scimv1.OrgMember) bool, say func(string, ...any)) (time.Duration, bool) {
	start := time.Now()
	last := time.Now()
	for time.Since(start) < timeout {
		ph, n, err := s.phasesMatching(ctx, config, match)
		if err == nil && ph[phase] >= want {
			return time.Since(start), true
		}
		if say != nil && time.Since(last) > 30*time.Second {
			say("  ... %d of %d members %s after %s", ph[phase], want, phase, time.Since(start).Round(time.Second))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false
		case <-time.After(poll(n)):
		}
	}
	return time.Since(start), false
}

// grants counts what the kubernetes backend wrote (its config label): ClusterRoleBindings
// in the Bindings layout, OrgGrants in the Webhook layout.
func (s *stack) grants(ctx context.Context) int {
	var crbs rbacv1.ClusterRoleBindingList
	var ogs scimv1.OrgGrantList
	if s.members.List(ctx, &crbs, client.UnsafeDisableDeepCopy) != nil || s.members.List(ctx, &ogs, client.UnsafeDisableDeepCopy) != nil {
		return -1
	}
	n := len(ogs.Items)
	for i := range crbs.Items {
		if crbs.Items[i].Labels[scimv1.LabelConfig] != "" {
			n++
		}
	}
	return n
}

// canGet asks the API server's authorizer whether user may get pods cluster-wide (what
// the sample's scim-sample-reader grants), as kubectl auth can-i --as does.
func (s *stack) canGet(ctx context.Context, user string) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: "default"},
	}}
	if err := s.cluster.Client.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// rss is the manager process's resident memory in bytes (/proc/PID/status VmRSS).
func (s *stack) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.mgr.PID()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.mgr.PID())
}

// liveHeap collects the manager's garbage and returns the bytes its heap then holds
// (runtime.MemStats.HeapAlloc): what the manager keeps, without the collector's headroom
// that its resident memory also counts.
func (s *stack) liveHeap(ctx context.Context) (int64, error) {
	body, err := s.pprofGet(ctx, "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("no HeapAlloc in the manager's heap profile (%d bytes)", len(body))
}

// heapProfile writes the manager's heap profile to path.
func (s *stack) heapProfile(ctx context.Context, path string) error {
	return s.saveProfile(ctx, "/debug/pprof/heap", path)
}

// cpuProfile writes the manager's CPU profile over the next d to path.
func (s *stack) cpuProfile(ctx context.Context, d time.Duration, path string) error {
	return s.saveProfile(ctx, "/debug/pprof/profile?seconds="+profileSeconds(d), path)
}

// profileSeconds is d as net/http/pprof's seconds parameter: whole seconds, at least one.
func profileSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// apiCPUProfile writes the API server's CPU profile over the next d to path (its
// /debug/pprof, served while --profiling is on, the default).
func (s *stack) apiCPUProfile(ctx context.Context, d time.Duration, path string) error {
	pb, err := s.apiCPUProfileData(ctx, d)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pb, 0o600)
}

// apiCPUProfileData is the API server's CPU profile over the next d.
func (s *stack) apiCPUProfileData(ctx context.Context, d time.Duration) ([]byte, error) {
	// a client of its own: apiRaw's times out after 32 s (discovery's default), which a
	// profile of 30 s on a busy machine can reach
	cfg := rest.CopyConfig(s.cluster.Config)
	cfg.Timeout = d + time.Minute
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	pb, err := dc.RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", profileSeconds(d)).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("the API server's CPU profile: %w", err)
	}
	return pb, nil
}

// saveProfile writes one of the manager's net/http/pprof profiles to path.
func (s *stack) saveProfile(ctx context.Context, profile, path string) error {
	pb, err := s.pprofGet(ctx, profile)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pb, 0o600)
}

// pprofGet reads one of the manager's net/http/pprof pages.
func (s *stack) pprofGet(ctx context.Context, path string) ([]byte, error) {
	return s.httpGet(ctx, "http://"+s.pprof+path)
}

// httpGet reads a page the manager serves on loopback.
func (s *stack) httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
