package scimstore

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/scimstore/convert"
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
// deep copy each (issue 10: half of a page's CPU at 100,000 members), and leave them exactly
// as they were: the conversion, the group lookup and the version only read. One member
// carries every part the conversion reads (groups, annotations, every attribute).
func TestPagesReadTheCacheSharedAndLeaveIt(t *testing.T) {
	ctx, direct, mgr := startCache(t, false)
	ns := uniqueNamespace(ctx, t, direct, "pageshared")
	group := naming.GroupName("acme", "Engineering")
	if err := direct.Create(ctx, &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: group},
		Spec: scimv1.OrgGroupSpec{ConfigName: "acme", DisplayName: "Engineering"}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, u := range []string{"ann@example.com", "ben@example.com", "cat@example.com"} {
		m := &scimv1.OrgMember{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName("acme", u),
				Labels: map[string]string{scimv1.LabelConfig: "acme"}, Finalizers: []string{scimv1.FinalizerDeprovision}},
			Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: u, Active: i != 1},
		}
		if i == 0 {
			m.Labels[scimv1.LabelGroupPrefix+group] = ""
			m.Annotations = map[string]string{scimv1.AnnotationLastModified: "2026-11-30T10:00:00Z",
				convert.AnnotationMembersRevision: "7"}
			m.Spec.DisplayName, m.Spec.Title, m.Spec.Locale = "Ann", "Engineer", "en-GB"
			m.Spec.Name = &scimv1.Name{GivenName: "Ann", FamilyName: "Example", Formatted: "Ann Example"}
			m.Spec.Emails = []scimv1.MultiValue{{Value: u, Type: "work", Primary: true}, {Value: "ann@home.example", Type: "home"}}
			m.Spec.PhoneNumbers = []scimv1.MultiValue{{Value: "+44 20 7946 0000", Type: "work"}}
			m.Spec.Enterprise = &scimv1.EnterpriseUser{Department: "R&D", CostCenter: "42",
				Manager: &scimv1.Manager{Value: naming.MemberName("acme", "ben@example.com"), DisplayName: "Ben"}}
			m.Spec.Docker = &scimv1.DockerUser{Role: "member", Org: "acme", Team: "eng"}
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
	gets := &memberGets{Client: mgr.GetClient()}
	s := &Store{Client: gets, APIReader: mgr.GetAPIReader(), Log: logr.Discard(), Order: order}
	sc := Scope{Config: &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}},
		BaseURL: "https://scim.example/" + ns + "/acme"}
	deadline := time.Now().Add(30 * time.Second) // bounds a broken cache; not a speed assertion
	for {
		var g scimv1.OrgGroup
		_, total, err := s.ListUsersPage(ctx, sc, 1, 0)
		if err == nil && order.caughtUp() && total == len(ids) && mgr.GetClient().Get(ctx, client.ObjectKey{Namespace: ns, Name: group}, &g) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never showed the members and the group")
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
	gets.n.Store(0)
	page, total, err := s.ListUsersPage(ctx, sc, 1, 10)
	if err != nil || total != len(ids) || len(page) != len(ids) {
		t.Fatalf("page: %d of %d users, err %v", len(page), total, err)
	}
	cp, err := s.ListUsersCursor(ctx, sc, Cursor{}, 10)
	if err != nil || len(cp.Resources) != len(ids) {
		t.Fatalf("cursor page: %d users, err %v", len(cp.Resources), err)
	}
	if n := gets.n.Load(); n != 0 {
		t.Errorf("the pages read %d members through the client (a deep copy each), want none", n)
	}
	rich := 0
	for _, r := range append(page, cp.Resources...) {
		if r["id"] != ids[0] {
			continue
		}
		rich++
		if gl, _ := r["groups"].([]any); len(gl) != 1 {
			t.Errorf("%s: groups %v, want Engineering", ids[0], r["groups"])
		}
		if ph, _ := r["phoneNumbers"].([]any); len(ph) != 1 || r[scim.SchemaEnterpriseUser] == nil || r[scim.SchemaDockerUser] == nil {
			t.Errorf("%s lacks attributes: %v", ids[0], r)
		}
	}
	if rich != 2 {
		t.Errorf("the member with every attribute is on %d of the 2 pages", rich)
	}
	compared := 0
	for _, id := range ids {
		m, _ := order.cached(ns, id)
		if m != before[id] {
			continue // replaced by an update meanwhile: nothing to compare
		}
		compared++
		if !reflect.DeepEqual(m, snapshot[id]) {
			t.Errorf("reading %s for a page changed the cache's object:\n got %+v\nwant %+v", id, m, snapshot[id])
		}
	}
	if compared == 0 {
		t.Fatal("every member was replaced during the reads: nothing was compared")
	}
}

// memberGets counts the OrgMembers read through the client.
type memberGets struct {
	client.Client
	n atomic.Int64
}

func (c *memberGets) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*scimv1.OrgMember); ok {
		c.n.Add(1)
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// The shipped cache's informer holds members as the cachepolicy transform leaves them
// (issue 10, memory): managedFields stripped, and the strings members repeat held once.
func TestShippedCacheHoldsMembersInterned(t *testing.T) {
	ctx, direct, mgr := startCache(t, false)
	ns := uniqueNamespace(ctx, t, direct, "interned")
	var names []string
	for _, u := range []string{"ann@example.com", "ben@example.com"} {
		m := &scimv1.OrgMember{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName("acme", u),
				Labels: map[string]string{scimv1.LabelConfig: "acme"}, Finalizers: []string{scimv1.FinalizerDeprovision}},
			Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: u, Active: true},
		}
		if err := direct.Create(ctx, m, client.FieldOwner(FieldOwner)); err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name)
	}
	inf, err := mgr.GetCache().GetInformer(ctx, &scimv1.OrgMember{})
	if err != nil {
		t.Fatal(err)
	}
	store := inf.(interface{ GetStore() toolscache.Store }).GetStore()
	var held [2]*scimv1.OrgMember
	deadline := time.Now().Add(30 * time.Second) // bounds a broken cache; not a speed assertion
	for held[0] == nil || held[1] == nil {
		for i, name := range names {
			if o, ok, _ := store.GetByKey(ns + "/" + name); ok {
				held[i] = o.(*scimv1.OrgMember)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the informer never held both members")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a, b := held[0], held[1]
	if a.ManagedFields != nil {
		t.Errorf("the cache holds managedFields: %v", a.ManagedFields)
	}
	shared := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !shared(a.Namespace, b.Namespace) || !shared(a.Spec.ConfigName, b.Spec.ConfigName) ||
		!shared(a.Labels[scimv1.LabelConfig], b.Labels[scimv1.LabelConfig]) || !shared(a.Finalizers[0], b.Finalizers[0]) {
		t.Error("the cache's members each hold their own namespace, config and finalizer: the members' transform is not in the shipped cache")
	}
}
