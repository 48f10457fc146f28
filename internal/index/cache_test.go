package index

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// fakeInformer is an informer whose store and event handlers the test moves, separately:
// the handlers of a real informer run a moment after its store changed.
type fakeInformer struct {
	cache.Informer // (methods the index does not call: nil)
	store          toolscache.Store
	handlers       []toolscache.ResourceEventHandler
	synced         chan struct{}
}

func newFakeInformer() *fakeInformer {
	return &fakeInformer{store: toolscache.NewStore(toolscache.MetaNamespaceKeyFunc), synced: make(chan struct{})}
}

func (f *fakeInformer) AddEventHandler(h toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	f.handlers = append(f.handlers, h)
	return fakeRegistration{f.synced}, nil
}
func (f *fakeInformer) AddIndexers(toolscache.Indexers) error { return nil }
func (f *fakeInformer) GetStore() toolscache.Store            { return f.store }

// storeOnly changes the store (the handlers have not been told yet).
func (f *fakeInformer) storeOnly(t *testing.T, old, cur client.Object) {
	t.Helper()
	var err error
	switch {
	case cur == nil:
		err = f.store.Delete(old)
	case old == nil:
		err = f.store.Add(cur)
	default:
		err = f.store.Update(cur)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// tell delivers an event to the handlers.
func (f *fakeInformer) tell(old, cur any) {
	for _, h := range f.handlers {
		switch {
		case cur == nil:
			h.OnDelete(old)
		case old == nil:
			h.OnAdd(cur, false)
		default:
			h.OnUpdate(old, cur)
		}
	}
}

// event is what a real informer does: the store, then the handlers.
func (f *fakeInformer) event(t *testing.T, old, cur client.Object) {
	t.Helper()
	f.storeOnly(t, old, cur)
	f.tell(anyOf(old), anyOf(cur))
}

// anyOf is o as a handler is given it: a nil object is a nil interface, not a typed nil.
func anyOf(o client.Object) any {
	if o == nil {
		return nil
	}
	return o
}

type fakeRegistration struct{ synced chan struct{} }

func (r fakeRegistration) HasSynced() bool {
	select {
	case <-r.synced:
		return true
	default:
		return false
	}
}
func (r fakeRegistration) HasSyncedChecker() toolscache.DoneChecker { return doneChecker(r.synced) }

type doneChecker chan struct{}

func (d doneChecker) Name() string          { return "fake" }
func (d doneChecker) Done() <-chan struct{} { return d }

// errNotCompact is the fake cache's answer to every List the index does not answer itself.
var errNotCompact = errors.New("the cache's own List")

// fakeCache hands out fakeInformers by Go type.
type fakeCache struct {
	cache.Cache
	informers map[reflect.Type]*fakeInformer
}

func (c *fakeCache) GetInformer(_ context.Context, obj client.Object, _ ...cache.InformerGetOption) (cache.Informer, error) {
	t := reflect.TypeOf(obj)
	if c.informers[t] == nil {
		c.informers[t] = newFakeInformer()
	}
	return c.informers[t], nil
}
func (c *fakeCache) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errNotCompact
}
func (c *fakeCache) Start(context.Context) error           { return nil }
func (c *fakeCache) WaitForCacheSync(context.Context) bool { return true }

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := scimv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// startedCache is a Cache over a fakeCache with the member indexes of Setup, started; the
// informer's initial list is not done until the test closes synced.
func startedCache(t *testing.T) (*Cache, *fakeInformer) {
	t.Helper()
	fc := &fakeCache{informers: map[reflect.Type]*fakeInformer{}}
	ic, err := Wrap(fc, cache.Options{Scheme: testScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(t.Context(), ic); err != nil {
		t.Fatal(err)
	}
	if err := ic.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return ic, fc.informers[reflect.TypeFor[*scimv1.OrgMember]()]
}

func memberNames(l *scimv1.OrgMemberList) []string {
	var out []string
	for _, m := range l.Items {
		out = append(out, m.Namespace+"/"+m.Name)
	}
	slices.Sort(out)
	return out
}

// scan is what a lookup of field = value in ns must answer: the store's members carrying it.
func scan(inf *fakeInformer, ns string, fn client.IndexerFunc, value string) []string {
	var out []string
	for _, raw := range inf.store.List() {
		m := raw.(*scimv1.OrgMember)
		if m.Namespace == ns && slices.Contains(fn(m), value) {
			out = append(out, m.Namespace+"/"+m.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Before the index has seen the informer's initial list, a lookup waits for it (bounded by
// its context) instead of answering from a partial map; the cache's WaitForCacheSync waits
// for it too. A lookup before the cache started fails as the cache's own do.
func TestCacheLookupWaitsForTheInitialList(t *testing.T) {
	fc := &fakeCache{informers: map[reflect.Type]*fakeInformer{}}
	ic, err := Wrap(fc, cache.Options{Scheme: testScheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(t.Context(), ic); err != nil {
		t.Fatal(err)
	}
	var l scimv1.OrgMemberList
	err = ic.List(t.Context(), &l, client.InNamespace("ns"), client.MatchingFields{UserName: Key("acme", "ann@x.io")})
	var notStarted *cache.ErrCacheNotStarted
	if !errors.As(err, &notStarted) {
		t.Fatalf("a lookup before the start: %v, want ErrCacheNotStarted", err)
	}
	if err := ic.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	inf := fc.informers[reflect.TypeFor[*scimv1.OrgMember]()]
	inf.event(t, nil, member("ns", "m-ann", "acme", "ann@x.io", ""))
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = ic.List(short, &l, client.InNamespace("ns"), client.MatchingFields{UserName: Key("acme", "ann@x.io")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a lookup before the initial list: %v (%d members), want the context's deadline", err, len(l.Items))
	}
	if ic.WaitForCacheSync(short) {
		t.Fatal("WaitForCacheSync passed before the index saw the initial list")
	}
	done := make(chan error, 1)
	go func() {
		done <- ic.List(t.Context(), &l, client.InNamespace("ns"), client.MatchingFields{UserName: Key("acme", "ann@x.io")})
	}()
	close(inf.synced)
	if err := <-done; err != nil || !slices.Equal(memberNames(&l), []string{"ns/m-ann"}) {
		t.Fatalf("after the initial list: %v %v", memberNames(&l), err)
	}
	if !ic.WaitForCacheSync(t.Context()) {
		t.Fatal("WaitForCacheSync after the initial list")
	}
}

// Lookups agree with a scan of the store at every step: creates, a rename, a second member
// of one userName, deletes (also as a tombstone), a re-create; while the handler lags the
// store, a lookup answers no object that does not carry the value, and Shows tells the lag.
func TestCacheLookupsAgreeWithAScan(t *testing.T) {
	ic, inf := startedCache(t)
	close(inf.synced)
	ctx := t.Context()
	values := map[string]client.IndexerFunc{}
	for _, u := range []string{"ann@x.io", "anne@x.io", "ben@x.io"} {
		values[Key("acme", u)] = MemberUserName
	}
	for _, x := range []string{"x-1", "x-2"} {
		values[Key("acme", x)] = MemberExternalID
	}
	field := func(fn client.IndexerFunc) string {
		if reflect.ValueOf(fn).Pointer() == reflect.ValueOf(MemberUserName).Pointer() {
			return UserName
		}
		return ExternalID
	}
	// agree checks every value in ns; lagging: the handler has not been told the last step,
	// so a lookup may miss the step's member but answers nothing the scan does not.
	agree := func(step string, lagging bool) {
		t.Helper()
		for v, fn := range values {
			for _, ns := range []string{"ns", "other"} {
				var l scimv1.OrgMemberList
				if err := ic.List(ctx, &l, client.InNamespace(ns), client.MatchingFields{field(fn): v}); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				got, want := memberNames(&l), scan(inf, ns, fn, v)
				if lagging {
					for _, g := range got {
						if !slices.Contains(want, g) {
							t.Errorf("%s (handler behind): %s %s in %s answers %s, which the store's does not carry", step, field(fn), v, ns, g)
						}
					}
				} else if !slices.Equal(got, want) {
					t.Errorf("%s: %s %s in %s: lookup %v, scan %v", step, field(fn), v, ns, got, want)
				}
			}
		}
	}
	// each step: the store first (the lookups may lag, never lie, and Shows says so), then
	// the handlers (the lookups agree, and Shows says so)
	step := func(name string, old, cur client.Object) {
		t.Helper()
		inf.storeOnly(t, old, cur)
		agree(name, true)
		if obj := cmp(cur, old); obj != nil && changes(old, cur) && ic.Shows(obj, cur == nil) {
			t.Errorf("%s: Shows before the handler was told", name)
		}
		inf.tell(anyOf(old), anyOf(cur))
		agree(name, false)
		if obj := cmp(cur, old); obj != nil && !ic.Shows(obj, cur == nil) {
			t.Errorf("%s: Shows is false after the handler was told", name)
		}
	}
	ann := member("ns", "m-ann", "acme", "Ann@x.io", "x-1")
	step("create ann", nil, ann)
	ben := member("ns", "m-ben", "acme", "ben@x.io", "x-2")
	step("create ben", nil, ben)
	step("create ben in another namespace", nil, member("other", "m-ben", "acme", "ben@x.io", "x-2"))
	anne := member("ns", "m-ann", "acme", "anne@x.io", "x-2")
	step("rename ann to anne (and ben's externalId)", ann, anne)
	twin := member("ns", "m-anne-2", "acme", "ANNE@x.io", "")
	step("a second anne", nil, twin)
	step("delete the first anne", anne, nil)
	// a tombstone: deleted while the watch was down
	inf.storeOnly(t, twin, nil)
	agree("tombstone, store only", true)
	inf.tell(toolscache.DeletedFinalStateUnknown{Key: "ns/m-anne-2", Obj: twin}, nil)
	agree("tombstone", false)
	step("re-create ann", nil, member("ns", "m-ann", "acme", "ann@x.io", "x-1"))
	if t.Failed() {
		return
	}
	// the answers are copies (with their kind), unless asked otherwise; selectors and limits
	var l scimv1.OrgMemberList
	if err := ic.List(ctx, &l, client.InNamespace("ns"), client.MatchingFields{UserName: Key("acme", "ann@x.io")}); err != nil {
		t.Fatal(err)
	}
	shared, _, _ := inf.store.GetByKey("ns/m-ann")
	if len(l.Items) != 1 || l.Items[0].Kind != "OrgMember" || &l.Items[0] == shared {
		t.Errorf("a lookup answered %+v, want a copy with its kind", l.Items)
	}
	var ptrs scimv1.OrgMemberList
	if err := ic.List(ctx, &ptrs, client.InNamespace("ns"), client.MatchingFields{UserName: Key("acme", "ann@x.io")},
		client.UnsafeDisableDeepCopy); err != nil || len(ptrs.Items) != 1 {
		t.Fatalf("without a copy: %v %v", ptrs.Items, err)
	}
	if err := ic.List(ctx, &l, client.InNamespace("ns"), client.MatchingFields{UserName: Key("acme", "ann@x.io")},
		client.MatchingLabels{"team": "a"}); err != nil || len(l.Items) != 0 {
		t.Errorf("a label selector the member does not match: %d %v", len(l.Items), err)
	}
}

// changes tells whether an event changes the member indexes' entries of its object.
func changes(old, cur client.Object) bool {
	if old == nil || cur == nil {
		return true
	}
	return !slices.Equal(MemberUserName(old), MemberUserName(cur)) || !slices.Equal(MemberExternalID(old), MemberExternalID(cur))
}

func cmp(cur, old client.Object) client.Object {
	if cur != nil {
		return cur
	}
	return old
}

// What the compact indexes do not answer goes to the cache: other fields, other kinds, a
// field selector that also names another field (refused rather than half-answered).
func TestCacheListPassesTheRestOn(t *testing.T) {
	ic, inf := startedCache(t)
	close(inf.synced)
	ctx := t.Context()
	var ml scimv1.OrgMemberList
	if err := ic.List(ctx, &ml, client.InNamespace("ns"), client.MatchingFields{Config: "acme"}); !errors.Is(err, errNotCompact) {
		t.Errorf("the Config index: %v", err)
	}
	if err := ic.List(ctx, &ml, client.InNamespace("ns")); !errors.Is(err, errNotCompact) {
		t.Errorf("no field selector: %v", err)
	}
	var gl scimv1.OrgGroupList
	if err := ic.List(ctx, &gl, client.InNamespace("ns"), client.MatchingFields{ExternalID: "acme/x"}); !errors.Is(err, errNotCompact) {
		t.Errorf("OrgGroup externalId (client-go's): %v", err)
	}
	err := ic.List(ctx, &ml, client.InNamespace("ns"), client.MatchingFields{UserName: "acme/a", Config: "acme"})
	if err == nil || errors.Is(err, errNotCompact) {
		t.Errorf("two fields, one compact: %v", err)
	}
}

// Compact keeps a keyMap only on a Cache; a FieldIndexer that is not a cache (a fake client)
// gets an ordinary index, and another cache is refused.
func TestCompactWhereItLands(t *testing.T) {
	s := testScheme(t)
	b := fake.NewClientBuilder().WithScheme(s).WithObjects(member("ns", "m-ann", "acme", "ann@x.io", ""))
	if err := Setup(t.Context(), builderIndexer{b}); err != nil {
		t.Fatal(err)
	}
	c := b.Build()
	var l scimv1.OrgMemberList
	if err := c.List(t.Context(), &l, client.InNamespace("ns"), client.MatchingFields{UserName: Key("acme", "ann@x.io")}); err != nil || len(l.Items) != 1 {
		t.Errorf("a fake client's userName index: %d %v", len(l.Items), err)
	}
	if err := Setup(t.Context(), &fakeCache{informers: map[reflect.Type]*fakeInformer{}}); err == nil {
		t.Error("Setup took a cache that NewCache did not build")
	}
}

type builderIndexer struct{ b *fake.ClientBuilder }

func (bi builderIndexer) IndexField(_ context.Context, obj client.Object, field string, fn client.IndexerFunc) error {
	bi.b.WithIndex(obj, field, fn)
	return nil
}
