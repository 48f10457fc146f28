package scimstore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// heldInformer is an OrgMember informer whose event handlers run only when the test says:
// the handlers of a real informer run a moment after its store (which the client reads)
// changed.
type heldInformer struct {
	cache.Informer
	handlers []toolscache.ResourceEventHandler
}

func (h *heldInformer) AddEventHandler(eh toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error) {
	h.handlers = append(h.handlers, eh)
	return syncedRegistration{}, nil
}
func (h *heldInformer) GetStore() toolscache.Store {
	return toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
}

type syncedRegistration struct {
	toolscache.ResourceEventHandlerRegistration
}

func (syncedRegistration) HasSynced() bool { return true }

type heldCache struct {
	cache.Cache
	inf *heldInformer
}

func (c *heldCache) GetInformer(context.Context, client.Object, ...cache.InformerGetOption) (cache.Informer, error) {
	return c.inf, nil
}

// waitCache waits for the compact indexes too: a write the cache (here a fake client)
// already shows is not shown until the userName index names it, and a delete not until
// the index no longer does, so that the writer's next lookup by userName sees its write.
func TestWaitCacheWaitsForTheCompactIndexes(t *testing.T) {
	s := runtime.NewScheme()
	if err := scimv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	inf := &heldInformer{}
	ic, err := index.Wrap(&heldCache{inf: inf}, cache.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := index.Compact(t.Context(), ic, &scimv1.OrgMember{}, index.UserName, index.InNamespace, index.MemberUserName); err != nil {
		t.Fatal(err)
	}
	m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "m"},
		Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: "ann@x.io"}}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(m).Build()
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(m), m); err != nil {
		t.Fatal(err)
	}
	st := &Store{Client: c, CacheWait: time.Hour, Indexes: ic}
	waits := func(what string, rv string, tell func()) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			st.waitCache(context.Background(), m, rv)
			close(done)
		}()
		select {
		case <-done:
			t.Fatalf("%s: waitCache returned before the index showed it", what)
		case <-time.After(100 * time.Millisecond):
		}
		tell()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // liveness only
			t.Fatalf("%s: waitCache did not return once the index showed it", what)
		}
	}
	waits("a create", m.ResourceVersion, func() {
		for _, h := range inf.handlers {
			h.OnAdd(m, false)
		}
	})
	if err := c.Delete(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	waits("a delete", "", func() {
		for _, h := range inf.handlers {
			h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "t/m", Obj: m})
		}
	})
}

// Through the shipped cache (index.NewCache, index.Setup), the member lookups agree with a
// scan of the cache's members at every step: creates, a userName change, two members of one
// userName, a delete, a re-create under the old name; and a SCIM client that writes then
// filters by userName or externalId sees its write (waitCache waits for the indexes).
func TestCompactMemberIndexesThroughTheCache(t *testing.T) {
	e, _ := review3Start(t, "compact-index", 0)
	ctx := e.ctx
	ic := index.Of(e.mgr.GetCache())
	if ic == nil {
		t.Fatalf("the manager's cache is a %T, not an index.Cache", e.mgr.GetCache())
	}
	cached := e.mgr.GetClient()
	values := map[string]string{} // value -> field
	for _, u := range []string{"ann@x.io", "anne@x.io", "ben@x.io"} {
		values[index.Key("acme", naming.NameKey(u))] = index.UserName
	}
	for _, x := range []string{"x-1", "x-2"} {
		values[index.Key("acme", x)] = index.ExternalID
	}
	// agree: every value's lookup answers what a scan of the cache's members carries
	agree := func(step string) {
		t.Helper()
		var all scimv1.OrgMemberList
		if err := cached.List(ctx, &all, client.InNamespace(e.ns)); err != nil {
			t.Fatal(err)
		}
		for v, field := range values {
			fn := index.MemberUserName
			if field == index.ExternalID {
				fn = index.MemberExternalID
			}
			var want []string
			for i := range all.Items {
				if slices.Contains(fn(&all.Items[i]), v) {
					want = append(want, all.Items[i].Name)
				}
			}
			var l scimv1.OrgMemberList
			if err := cached.List(ctx, &l, client.InNamespace(e.ns), client.MatchingFields{field: v}); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range l.Items {
				got = append(got, m.Name)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s %s: lookup %v, scan %v", step, field, v, got, want)
			}
		}
	}
	// settle: the cache holds obj as the API server does (nil: gone) and the indexes show it
	settle := func(step string, key client.ObjectKey, gone bool) {
		t.Helper()
		e.until(t, step+": the cache and its indexes show it", func() bool {
			var m scimv1.OrgMember
			err := cached.Get(ctx, key, &m)
			var live scimv1.OrgMember
			lerr := e.direct.Get(ctx, key, &live)
			if gone {
				return err != nil && lerr != nil && ic.Shows(&scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}, true)
			}
			return err == nil && lerr == nil && m.ResourceVersion == live.ResourceVersion && ic.Shows(&m, false)
		})
		agree(step)
	}
	mk := func(name, userName, externalID string) *scimv1.OrgMember {
		return &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
			Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: userName, ExternalID: externalID, Active: true}}
	}
	ann := mk("m-ann", "Ann@x.io", "x-1")
	if err := e.direct.Create(ctx, ann); err != nil {
		t.Fatal(err)
	}
	settle("create ann", client.ObjectKeyFromObject(ann), false)
	ben := mk("m-ben", "ben@x.io", "x-2")
	if err := e.direct.Create(ctx, ben); err != nil {
		t.Fatal(err)
	}
	settle("create ben", client.ObjectKeyFromObject(ben), false)
	ann.Spec.UserName, ann.Spec.ExternalID = "anne@x.io", "x-2"
	if err := e.direct.Update(ctx, ann); err != nil {
		t.Fatal(err)
	}
	settle("rename ann to anne, with ben's externalId", client.ObjectKeyFromObject(ann), false)
	twin := mk("m-anne-2", "ANNE@x.io", "")
	if err := e.direct.Create(ctx, twin); err != nil {
		t.Fatal(err)
	}
	settle("a second anne", client.ObjectKeyFromObject(twin), false)
	if err := e.direct.Delete(ctx, ann); err != nil {
		t.Fatal(err)
	}
	settle("delete the first anne", client.ObjectKeyFromObject(ann), true)
	again := mk("m-ann", "ann@x.io", "x-1")
	if err := e.direct.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	settle("re-create ann", client.ObjectKeyFromObject(again), false)

	// read-your-writes: the SCIM store with the indexes, as scimserver.New builds it
	s := &Store{Client: cached, APIReader: e.mgr.GetAPIReader(), Log: e.s.Log, Indexes: ic}
	filter := func(expr string) []scim.Resource {
		t.Helper()
		f, err := scim.ParseFilter(scim.UserType, expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ListUsers(ctx, e.sc, f)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for i := range 20 {
		u, x := fmt.Sprintf("ryw%d@x.io", i), fmt.Sprintf("ryw-%d", i)
		r, err := s.CreateUser(ctx, e.sc, scim.Resource{"userName": u, "externalId": x})
		if err != nil {
			t.Fatal(err)
		}
		id := r["id"].(string)
		if got := filter(fmt.Sprintf("userName eq %q", u)); len(got) != 1 || got[0]["id"] != id {
			t.Fatalf("created %s, then userName eq found %v", u, got)
		}
		if got := filter(fmt.Sprintf("externalId eq %q", x)); len(got) != 1 || got[0]["id"] != id {
			t.Fatalf("created %s, then externalId eq %s found %v", u, x, got)
		}
		renamed := "renamed-" + u
		if _, err := s.ReplaceUser(ctx, e.sc, id, scim.Resource{"userName": renamed, "externalId": x}, ""); err != nil {
			t.Fatal(err)
		}
		if got := filter(fmt.Sprintf("userName eq %q", renamed)); len(got) != 1 || got[0]["id"] != id {
			t.Fatalf("renamed %s to %s, then userName eq found %v", u, renamed, got)
		}
		if got := filter(fmt.Sprintf("userName eq %q", u)); len(got) != 0 {
			t.Fatalf("renamed %s to %s, then the old userName found %v", u, renamed, got)
		}
		if err := s.DeleteUser(ctx, e.sc, id, ""); err != nil {
			t.Fatal(err)
		}
		if got := filter(fmt.Sprintf("externalId eq %q", x)); len(got) != 0 {
			t.Fatalf("deleted %s, then externalId eq found %v", id, got)
		}
	}
}
