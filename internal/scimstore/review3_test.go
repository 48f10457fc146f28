package scimstore

// Adversarial review of the mark / commit / finish protocol (issue 9, defect 3). Each test
// runs the store against a real API server and the shipped cache, without the finisher
// controller, so that a committed but unfinished change stays as its writer left it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/membership"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
)

type review3Env struct {
	ctx    context.Context
	direct client.Client
	mgr    ctrl.Manager
	s      *Store
	sc     Scope
	ns     string
}

// review3Start starts an API server, the shipped cache and indexes (no controllers, no
// finisher), and a namespace with n members of config "acme". The namespace's name is ns
// with a suffix the API server makes unique (e.ns): the package's API server outlives a
// pass of its tests (go test -count=2), and envtest never finishes a namespace's deletion.
func review3Start(t *testing.T, ns string, n int, withFinisher ...bool) (*review3Env, []string) {
	t.Helper()
	ctx, direct, mgr := startCache(t, len(withFinisher) > 0 && withFinisher[0])
	ns = uniqueNamespace(ctx, t, direct, ns)
	var ids []string
	for i := 0; i < n; i++ {
		userName := fmt.Sprintf("r3user%d@example.com", i)
		m := &scimv1.OrgMember{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName("acme", userName), Labels: map[string]string{}},
			Spec:       scimv1.OrgMemberSpec{ConfigName: "acme", UserName: userName, Active: true},
		}
		if err := direct.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Name)
	}
	sort.Strings(ids)
	e := &review3Env{ctx: ctx, direct: direct, mgr: mgr, ns: ns,
		s: &Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: logr.Discard(), Indexes: index.Of(mgr.GetCache())},
		sc: Scope{Config: &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme", UID: "acme-uid"}},
			BaseURL: "https://scim.example/" + ns + "/acme"}}
	// the cache holds every member (the deadline only bounds a broken cache)
	e.until(t, "the cache shows the members", func() bool {
		_, total, err := e.s.ListUsersPage(ctx, e.sc, 1, 0)
		return err == nil && total == n
	})
	return e, ids
}

// uniqueNamespace creates a namespace named prefix plus a suffix the API server makes
// unique, and returns its name, so a test can run again on the same API server.
func uniqueNamespace(ctx context.Context, t *testing.T, c client.Client, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

// until polls cond; the deadline only bounds a broken setup, it asserts no speed.
func (e *review3Env) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func memberIDs(r scim.Resource) []string {
	out := []string{}
	ms, _ := r["members"].([]any)
	for _, m := range ms {
		out = append(out, m.(map[string]any)["value"].(string))
	}
	sort.Strings(out)
	return out
}

func groupValues(ids []string) []any {
	var out []any
	for _, id := range ids {
		out = append(out, map[string]any{"value": id})
	}
	return out
}

// stripGate holds the label strips of a group's delete (OrgMember patches that remove a
// group label) until released, as a slow API server or a large group would.
type stripGate struct {
	client.Client
	label   string
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func (g *stripGate) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	if _, ok := o.(*scimv1.OrgMember); ok {
		if data, err := p.Data(o); err == nil && removesLabel(data, g.label) {
			g.once.Do(func() { close(g.reached) })
			<-g.release
		}
	}
	return g.Client.Patch(ctx, o, p, opts...)
}

// TestReview3DeleteStripRacesRecreate: a group is deleted; its delete strips the group
// label from its members after the object is gone. The IdP (or another replica) creates
// the group again under the same displayName - the same object name - with a member the
// old group had. The create finds that member still labelled and counts on the label; the
// old delete's strip then takes it away. The IdP was answered 201 with the member, and
// the member is gone from the group for every reader: a change the IdP was told exists
// is lost.
func TestReview3DeleteStripRacesRecreate(t *testing.T) {
	e, ids := review3Start(t, "review3-strip", 2)
	ctx := e.ctx
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Eng", "members": groupValues(ids)})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	gid := r["id"].(string)
	if got := memberIDs(r); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("created with %v, want %v", got, ids)
	}

	// the delete, on a store whose label strips wait at the gate
	gate := &stripGate{Client: e.mgr.GetClient(), label: scimv1.LabelGroupPrefix + gid,
		reached: make(chan struct{}), release: make(chan struct{})}
	slow := &Store{Client: gate, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}
	deleted := make(chan error, 1)
	go func() { deleted <- slow.DeleteGroup(ctx, e.sc, gid, "") }()
	<-gate.reached // the group object is gone; its labels are being stripped

	// the group created again, same displayName, with the first member
	var r2 scim.Resource
	e.until(t, "the group can be created again", func() bool {
		r2, err = e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Eng", "members": groupValues(ids[:1])})
		return err == nil
	})
	if r2["id"] != gid {
		t.Logf("re-created under another name %v (the race needs the same name)", r2["id"])
	}
	if got := memberIDs(r2); fmt.Sprint(got) != fmt.Sprint(ids[:1]) {
		t.Fatalf("re-created with %v, want %v", got, ids[:1])
	}

	// the old delete's strips go on
	close(gate.release)
	if err := <-deleted; err != nil {
		t.Fatalf("delete: %v", err)
	}
	var g scimv1.OrgGroup
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: r2["id"].(string)}, &g); err != nil {
		t.Fatal(err)
	}
	e.until(t, "the cache shows the strips", func() bool {
		var m scimv1.OrgMember
		err := e.mgr.GetClient().Get(ctx, types.NamespacedName{Namespace: e.ns, Name: ids[1]}, &m)
		return err == nil && !membership.Labelled(m.Labels, gid)
	})
	got, err := e.s.GetGroup(ctx, e.sc, r2["id"].(string), true)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(memberIDs(got)) != fmt.Sprint(ids[:1]) {
		t.Fatalf("the re-created group answered 201 with %v and now has %v: the old delete's strip took a member of the new group",
			ids[:1], memberIDs(got))
	}
}

// TestReview3UserVersionMovesWithCommit: a user's meta.version (its ETag) hashes its group
// labels, but what readers see of its groups moves with the commit of the group's change,
// which writes only the group. Between the commit and the finish (seconds normally; until
// the finisher gets to it when the writer died) GET /Users/{id} answers a different
// "groups" under the version it had before the change, and the version then changes
// (at the finish) when nothing a reader sees changed.
func TestReview3UserVersionMovesWithCommit(t *testing.T) {
	e, ids := review3Start(t, "review3-etag", 1)
	ctx := e.ctx
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Ops"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	gid := r["id"].(string)
	before, err := e.s.GetUser(ctx, e.sc, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if before["groups"] != nil {
		t.Fatalf("groups before the change: %v", before["groups"])
	}

	// a change adding the user, marked and committed; its writer died before the finish
	id := newChangeID()
	var m scimv1.OrgMember
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: ids[0]}, &m); err != nil {
		t.Fatal(err)
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[membership.MarkKey(id)] = membership.MarkValue(gid, true)
	if err := e.direct.Update(ctx, &m); err != nil {
		t.Fatal(err)
	}
	var g scimv1.OrgGroup
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &g); err != nil {
		t.Fatal(err)
	}
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[scimv1.AnnotationMembersChange] = id
	bumpMembersRevision(&g)
	if err := e.direct.Update(ctx, &g); err != nil {
		t.Fatal(err)
	}

	var after scim.Resource
	e.until(t, "the user's groups show the committed change", func() bool {
		after, err = e.s.GetUser(ctx, e.sc, ids[0])
		return err == nil && after["groups"] != nil
	})
	v0 := before["meta"].(map[string]any)["version"]
	v1 := after["meta"].(map[string]any)["version"]
	if v0 == v1 {
		t.Fatalf("GET /Users/%s answered groups=%v and groups=%v under one version %v", ids[0], before["groups"], after["groups"], v0)
	}
}

// memberPatchOutage fails OrgMember patches after the first `after` while down, and counts
// the failed patches that take a change label off (dropMarks).
type memberPatchOutage struct {
	client.Client
	mu          sync.Mutex
	down        bool
	after       int
	patches     int
	failedDrops int
}

func (o *memberPatchOutage) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*scimv1.OrgMember); ok {
		o.mu.Lock()
		o.patches++
		if o.down && o.patches > o.after {
			// a drop: a patch that removes a mark (or every label: "labels":null)
			if data, err := p.Data(obj); err == nil && (strings.Contains(string(data), `"labels":null`) ||
				strings.Contains(string(data), scimv1.LabelChangePrefix) && strings.Contains(string(data), "null")) {
				o.failedDrops++
			}
			o.mu.Unlock()
			return unreachableErr
		}
		o.mu.Unlock()
	}
	return o.Client.Patch(ctx, obj, p, opts...)
}

var unreachableErr = &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}

// TestReview3UncommittedMarksAreCollected: a group's create is cut between its marks and
// its commit (503, nothing there for readers: right). The marks it left are taken out by a
// one-shot background goroutine whose writes go to the same API server that just failed;
// when they fail too, nothing ever collects them - not the finisher (it only runs
// committed changes), not the IdP's retry (a new change id). Every cut change leaves a
// label per marked member for good, and each one costs every GET of that user a lookup.
func TestReview3UncommittedMarksAreCollected(t *testing.T) {
	e, ids := review3Start(t, "review3-leak", 5, true)
	ctx := e.ctx
	flaky := &memberPatchOutage{Client: e.mgr.GetClient(), down: true, after: 2}
	bs := &Store{Client: flaky, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}
	if _, err := bs.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Leak", "members": groupValues(ids)}); err == nil {
		t.Fatal("the create got through an API server that was away")
	}
	e.until(t, "the marks' drop was tried while the API server was away", func() bool {
		flaky.mu.Lock()
		defer flaky.mu.Unlock()
		return flaky.failedDrops >= 2
	})
	flaky.mu.Lock()
	flaky.down = false
	flaky.mu.Unlock()
	// the IdP's retry succeeds (and is finished)
	var r scim.Resource
	var err error
	e.until(t, "the IdP's retry of the create succeeds", func() bool {
		r, err = e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Leak", "members": groupValues(ids)})
		return err == nil
	})
	if fmt.Sprint(memberIDs(r)) != fmt.Sprint(ids) {
		t.Fatalf("retry answered %v, want %v", memberIDs(r), ids)
	}
	marked := func() []string {
		var list scimv1.OrgMemberList
		if err := e.direct.List(ctx, &list, client.InNamespace(e.ns)); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range list.Items {
			for k, v := range m.Labels {
				if strings.HasPrefix(k, scimv1.LabelChangePrefix) {
					out = append(out, m.Name+" "+k+"="+v)
				}
			}
		}
		return out
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(marked()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("marks of a change that never committed are never collected: %v", marked())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeCounter counts the API server writes made through it, by kind.
type writeCounter struct {
	client.Client
	mu     sync.Mutex
	counts map[string]int
}

func (w *writeCounter) count(kind string) {
	w.mu.Lock()
	w.counts[kind]++
	w.mu.Unlock()
}

func (w *writeCounter) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	w.count(fmt.Sprintf("patch %T", o))
	return w.Client.Patch(ctx, o, p, opts...)
}

func (w *writeCounter) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	w.count(fmt.Sprintf("create %T", o))
	return w.Client.Create(ctx, o, opts...)
}

func (w *writeCounter) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	w.count(fmt.Sprintf("update %T", o))
	return w.Client.Update(ctx, o, opts...)
}

func (w *writeCounter) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	w.count(fmt.Sprintf("delete %T", o))
	return w.Client.Delete(ctx, o, opts...)
}

func (w *writeCounter) take() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.counts
	w.counts = map[string]int{}
	return out
}

// TestReview3WritesPerChange measures the API server writes of a group create with n
// members and of a PATCH that adds n and removes n, and bounds them linearly (2 per
// touched member, plus a few for the group and its claim): a change must not cost O(n^2).
func TestReview3WritesPerChange(t *testing.T) {
	const n = 40
	e, ids := review3Start(t, "review3-cost", 2*n)
	ctx := e.ctx
	wc := &writeCounter{Client: e.mgr.GetClient(), counts: map[string]int{}}
	s := &Store{Client: wc, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}
	total := func(m map[string]int) int {
		sum := 0
		for _, v := range m {
			sum += v
		}
		return sum
	}
	r, err := s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Cost", "members": groupValues(ids[:n])})
	if err != nil {
		t.Fatal(err)
	}
	created := wc.take()
	t.Logf("create with %d members: %d writes %v", n, total(created), created)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	patch := []scim.PatchOp{
		{Op: "add", Path: "members", Value: raw(groupValues(ids[n:]))},
		{Op: "remove", Path: "members", Value: raw(groupValues(ids[:n]))},
	}
	if _, err := s.PatchGroup(ctx, e.sc, r["id"].(string), patch, "", true); err != nil {
		t.Fatal(err)
	}
	patched := wc.take()
	t.Logf("PATCH adding %d and removing %d: %d writes %v", n, n, total(patched), patched)
	if total(created) > 2*n+4 || total(patched) > 2*(2*n)+4 {
		t.Fatalf("writes are not linear in the members touched: create %d, patch %d", total(created), total(patched))
	}
}

// TestReview3CreateMarksAnotherGroupsMembers: a group created as "Eng" and renamed "Ops"
// keeps its object name, the hash of "Eng". A new group "Eng" tries that name first: before
// its create finds the name taken, it marks out every member labelled with it - the
// members of the live group "Ops" - and then drops those marks again. A create of an
// empty group costs two writes per member of an unrelated group.
func TestReview3CreateMarksAnotherGroupsMembers(t *testing.T) {
	const n = 30
	e, ids := review3Start(t, "review3-rename", n)
	ctx := e.ctx
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Eng", "members": groupValues(ids)})
	if err != nil {
		t.Fatal(err)
	}
	gid := r["id"].(string)
	raw, _ := json.Marshal("Ops")
	if _, err := e.s.PatchGroup(ctx, e.sc, gid, []scim.PatchOp{{Op: "replace", Path: "displayName", Value: raw}}, "", false); err != nil {
		t.Fatal(err)
	}
	wc := &writeCounter{Client: e.mgr.GetClient(), counts: map[string]int{}}
	s := &Store{Client: wc, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}
	r2, err := s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Eng"})
	if err != nil {
		t.Fatal(err)
	}
	if r2["id"] == gid {
		t.Fatal("the new group took the renamed group's name")
	}
	// (counted: the marks, written before the create; their drop runs in the background
	// and may or may not be counted yet)
	counts := wc.take()
	t.Logf("create of an empty group beside a renamed group of %d members: %v", n, counts)
	if counts["patch *v1alpha1.OrgMember"] > 0 {
		t.Fatalf("an empty group's create wrote %d OrgMember patches (members of the renamed group %s)",
			counts["patch *v1alpha1.OrgMember"], gid)
	}
}

// laggingMembers is a replica's cache whose OrgMember informer is behind its OrgGroup
// informer (they are separate watches; a change of many members is a backlog of member
// events while the group's commit is one event): OrgMember reads come from a snapshot.
type laggingMembers struct {
	client.Client
	frozen client.Client
}

func (l *laggingMembers) Get(ctx context.Context, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	if _, ok := o.(*scimv1.OrgMember); ok {
		return l.frozen.Get(ctx, key, o, opts...)
	}
	return l.Client.Get(ctx, key, o, opts...)
}

func (l *laggingMembers) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*scimv1.OrgMemberList); ok {
		return l.frozen.List(ctx, list, opts...)
	}
	return l.Client.List(ctx, list, opts...)
}

// TestReview3ReadsDoNotGoBack: change c1 adds u1 and is committed (readers see u1), but
// not finished yet (its writer died; the finisher or the next change finishes it). The
// next change c2 removes u0: it finishes c1 (u1's mark becomes its label) and commits.
// A replica whose member informer has not yet delivered u1's settle, but whose group
// informer has delivered c2's commit, applies c2's marks (none on u1) over u1's labels
// (none yet) and drops u1: a reader that saw [u0 u1] now sees [u0], the group before c1,
// although nothing took u1 out. Membership reads went backwards; with labels alone (the
// old protocol) one informer's view was always some past state.
func TestReview3ReadsDoNotGoBack(t *testing.T) {
	e, ids := review3Start(t, "review3-lag", 2)
	ctx := e.ctx
	u0, u1 := ids[0], ids[1]
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Lag", "members": groupValues([]string{u0})})
	if err != nil {
		t.Fatal(err)
	}
	gid := r["id"].(string)

	// c1: u1 marked, committed; its writer died before the finish
	c1 := newChangeID()
	var m scimv1.OrgMember
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: u1}, &m); err != nil {
		t.Fatal(err)
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[membership.MarkKey(c1)] = membership.MarkValue(gid, true)
	if err := e.direct.Update(ctx, &m); err != nil {
		t.Fatal(err)
	}
	var g scimv1.OrgGroup
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &g); err != nil {
		t.Fatal(err)
	}
	g.Annotations[scimv1.AnnotationMembersChange] = c1
	bumpMembersRevision(&g)
	if err := e.direct.Update(ctx, &g); err != nil {
		t.Fatal(err)
	}
	both := fmt.Sprint([]string{u0, u1})
	e.until(t, "the cache shows c1", func() bool {
		r, err := e.s.GetGroup(ctx, e.sc, gid, true)
		return err == nil && fmt.Sprint(memberIDs(r)) == both
	})

	// the lagging replica's member view: as the API server has the members now
	lag := e.laggingMemberStore(t)
	seen, err := lag.GetGroup(ctx, e.sc, gid, true)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(memberIDs(seen)) != both {
		t.Fatalf("the lagging replica before c2: %v, want %v", memberIDs(seen), both)
	}

	// c2 removes u0 (on the healthy replica): it finishes c1 first
	raw, _ := json.Marshal(groupValues([]string{u0}))
	if _, err := e.s.PatchGroup(ctx, e.sc, gid, []scim.PatchOp{{Op: "remove", Path: "members", Value: raw}}, "", true); err != nil {
		t.Fatal(err)
	}
	// the lagging replica's group informer has c2's commit
	var c2 string
	e.until(t, "the group cache shows c2", func() bool {
		var cg scimv1.OrgGroup
		if err := e.mgr.GetClient().Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &cg); err != nil {
			return false
		}
		c2, _ = membership.LastChange(&cg)
		return c2 != "" && c2 != c1
	})
	seen, err = lag.GetGroup(ctx, e.sc, gid, true)
	if err != nil {
		t.Fatal(err)
	}
	got := memberIDs(seen)
	if !slices.Contains(got, u1) {
		t.Fatalf("the lagging replica saw %v, then %v: u1, a member since c1 and never removed, is gone (c2 committed, c1's settle not yet in its member cache)",
			both, got)
	}
}

// removesLabel tells whether a merge patch removes label (alone, or with every label:
// "labels": null, as a patch that empties the map reads).
func removesLabel(patch []byte, label string) bool {
	var p struct {
		Metadata map[string]json.RawMessage `json:"metadata"`
	}
	if json.Unmarshal(patch, &p) != nil {
		return false
	}
	raw, ok := p.Metadata["labels"]
	if !ok {
		return false
	}
	if string(raw) == "null" {
		return true
	}
	var labels map[string]*string
	if json.Unmarshal(raw, &labels) != nil {
		return false
	}
	v, ok := labels[label]
	return ok && v == nil
}

// laggingMemberStore is a store of a replica whose member cache stays as the API server
// has the members now (its group cache follows): the member informer lags.
func (e *review3Env) laggingMemberStore(t *testing.T) *Store {
	t.Helper()
	var list scimv1.OrgMemberList
	if err := e.direct.List(e.ctx, &list, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for i := range list.Items {
		list.Items[i].ResourceVersion = ""
		objs = append(objs, &list.Items[i])
	}
	frozen := fake.NewClientBuilder().WithScheme(e.mgr.GetScheme()).
		WithIndex(&scimv1.OrgMember{}, index.Group, func(o client.Object) []string { return index.GroupsOf(o.GetLabels()) }).
		WithIndex(&scimv1.OrgMember{}, index.Change, func(o client.Object) []string { return index.ChangesOf(o.GetLabels()) }).
		WithObjects(objs...).Build()
	return &Store{Client: &laggingMembers{Client: e.mgr.GetClient(), frozen: frozen}, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}
}
