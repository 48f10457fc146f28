package scimstore

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// The shipped cache (issue 10, memory): each member index is keyed for lookups in the
// member's namespace only (every lookup in the code names one), checked on the cache the
// manager builds (cachepolicy.Cache and index.Setup, as startCache does).
func TestShippedCacheIndexesMembersInNamespaceOnly(t *testing.T) {
	ctx, direct, mgr := startCache(t, false)
	nsA := uniqueNamespace(ctx, t, direct, "cachemem-a")
	nsB := uniqueNamespace(ctx, t, direct, "cachemem-b")
	for _, ns := range []string{nsA, nsB} {
		for _, u := range []string{"ann@example.com", "ben@example.com"} {
			m := &scimv1.OrgMember{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName("acme", u),
					Labels: map[string]string{scimv1.LabelConfig: "acme"}, Finalizers: []string{scimv1.FinalizerDeprovision}},
				Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: u, Active: true},
			}
			if err := direct.Create(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	cached := mgr.GetClient()
	key := index.Key("acme", naming.NameKey("ann@example.com"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var in scimv1.OrgMemberList
		if err := cached.List(ctx, &in, client.InNamespace(nsA), client.MatchingFields{index.UserName: key}); err != nil {
			t.Fatal(err)
		}
		var all scimv1.OrgMemberList
		if err := cached.List(ctx, &all, client.InNamespace(nsA), client.MatchingFields{index.Config: "acme"}); err != nil {
			t.Fatal(err)
		}
		if len(in.Items) == 1 && in.Items[0].Namespace == nsA && len(all.Items) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in %s the userName index finds %d members and the config index %d; want 1 and 2", nsA, len(in.Items), len(all.Items))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// the second key controller-runtime would add for a lookup across namespaces is not kept
	var across scimv1.OrgMemberList
	if err := cached.List(ctx, &across, client.MatchingFields{index.UserName: key}); err != nil {
		t.Fatal(err)
	}
	if len(across.Items) != 0 {
		t.Errorf("a userName lookup across namespaces found %d members: the index keeps both keys per value", len(across.Items))
	}
}

// Pages (index and cursor) convert the shipped cache's own members, shared, instead of a
// deep copy each (issue 10: half of a page's CPU at 100,000 members), and leave them as
// they were: the conversion only reads.
func TestPagesReadTheCacheSharedAndLeaveIt(t *testing.T) {
	ctx, direct, mgr := startCache(t, false)
	ns := uniqueNamespace(ctx, t, direct, "pageshared")
	var ids []string
	for i, u := range []string{"ann@example.com", "ben@example.com", "cat@example.com"} {
		m := &scimv1.OrgMember{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName("acme", u),
				Labels: map[string]string{scimv1.LabelConfig: "acme"}, Finalizers: []string{scimv1.FinalizerDeprovision}},
			Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: u, Active: i != 1, DisplayName: u,
				Name:   &scimv1.Name{GivenName: "G", FamilyName: u},
				Emails: []scimv1.MultiValue{{Value: u, Type: "work", Primary: true}}},
		}
		if err := direct.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Name)
	}
	order, err := NewMemberOrder(ctx, mgr.GetCache())
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: logr.Discard(), Order: order}
	sc := Scope{Config: &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}},
		BaseURL: "https://scim.example/" + ns + "/acme"}
	deadline := time.Now().Add(30 * time.Second) // bounds a broken cache; not a speed assertion
	for {
		if _, total, err := s.ListUsersPage(ctx, sc, 1, 0); err == nil && order.caughtUp() && total == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the order never showed the members")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := map[string]*scimv1.OrgMember{}
	snapshot := map[string]*scimv1.OrgMember{}
	for _, id := range ids {
		m, shared := order.cached(ns, id)
		if !shared || m == nil {
			t.Fatalf("the order cannot read %s from the informer's store (shared %v, found %v): pages deep-copy every member",
				id, shared, m != nil)
		}
		before[id], snapshot[id] = m, m.DeepCopy()
	}
	page, total, err := s.ListUsersPage(ctx, sc, 1, 10)
	if err != nil || total != len(ids) || len(page) != len(ids) {
		t.Fatalf("page: %d of %d users, err %v", len(page), total, err)
	}
	if cp, err := s.ListUsersCursor(ctx, sc, Cursor{}, 10); err != nil || len(cp.Resources) != len(ids) {
		t.Fatalf("cursor page: %d users, err %v", len(cp.Resources), err)
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for _, r := range page {
		if id, _ := r["id"].(string); !want[id] {
			t.Errorf("page entry %v is not one of %v", r["id"], ids)
		}
		if em, _ := r["emails"].([]any); len(em) != 1 {
			t.Errorf("%v: emails %v", r["id"], r["emails"])
		}
	}
	for _, id := range ids {
		m, _ := order.cached(ns, id)
		if m != before[id] {
			continue // replaced by an update meanwhile: nothing to compare
		}
		if !equality.Semantic.DeepEqual(m, snapshot[id]) {
			t.Errorf("reading %s for a page changed the cache's object:\n got %+v\nwant %+v", id, m, snapshot[id])
		}
	}
}
