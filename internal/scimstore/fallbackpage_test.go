package scimstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// Before the member order has caught up with the cache (a replica starting), pages and
// cursor pages are cut from a list of the cache instead (the fallback of ListUsersPage and
// ListUsersCursor). Both ways give the same pages: the config's members by id, without a
// member of another config in the namespace or a member being deleted. (page_test.go
// compares both ways with the full list; this adds the member being deleted, which the
// fallback filters itself, and a cursor walk back.)
func TestPagesWithoutTheOrderMatchTheOrder(t *testing.T) {
	ctx, direct, mgr := startCache(t, false)
	ns := uniqueNamespace(ctx, t, direct, "fallbackpage")
	var want []string
	add := func(config, user string, deleting bool) {
		m := &scimv1.OrgMember{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName(config, user),
				Labels: map[string]string{scimv1.LabelConfig: config}, Finalizers: []string{scimv1.FinalizerDeprovision}},
			Spec: scimv1.OrgMemberSpec{ConfigName: config, UserName: user, Active: true},
		}
		if err := direct.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
		if deleting {
			if err := direct.Delete(ctx, m); err != nil {
				t.Fatal(err)
			}
			return
		}
		if config == "acme" {
			want = append(want, m.Name)
		}
	}
	for i := range 7 {
		add("acme", fmt.Sprintf("user%d@example.com", i), false)
	}
	add("other", "user0@example.com", false)
	add("acme", "leaving@example.com", true)
	slices.Sort(want)

	order, err := NewMemberOrder(ctx, mgr.GetCache())
	if err != nil {
		t.Fatal(err)
	}
	sc := Scope{Config: &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}},
		BaseURL: "https://scim.example/" + ns + "/acme"}
	ordered := &Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: logr.Discard(), Order: order}
	listed := &Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: logr.Discard()}
	deadline := time.Now().Add(30 * time.Second) // bounds a broken cache; not a speed assertion
	for {
		// the member being deleted must show as such first: its creation alone would count
		var leaving scimv1.OrgMember
		err := mgr.GetClient().Get(ctx, client.ObjectKey{Namespace: ns, Name: naming.MemberName("acme", "leaving@example.com")}, &leaving)
		a, an, _ := ordered.ListUsersPage(ctx, sc, 1, 100)
		b, bn, _ := listed.ListUsersPage(ctx, sc, 1, 100)
		if err == nil && !leaving.DeletionTimestamp.IsZero() && order.caughtUp() && an == len(want) && bn == len(want) && len(a) == len(want) && len(b) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cache never showed the %d members: ordered %d, listed %d", len(want), an, bn)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ids := func(rs []scim.Resource) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, ResourceID(r))
		}
		return out
	}
	for _, p := range [][2]int{{1, 3}, {3, 3}, {6, 5}, {7, 1}, {8, 1}, {0, 100}, {1, 0}, {100, 10}, {2, -1}} {
		a, an, aerr := ordered.ListUsersPage(ctx, sc, p[0], p[1])
		b, bn, berr := listed.ListUsersPage(ctx, sc, p[0], p[1])
		from := min(max(p[0], 1)-1, len(want))
		exp := want[from:min(from+max(p[1], 0), len(want))]
		if aerr != nil || berr != nil || an != len(want) || bn != len(want) ||
			!slices.Equal(ids(a), exp) || !slices.Equal(ids(b), exp) {
			t.Errorf("page start %d count %d: ordered %v of %d (%v), listed %v of %d (%v); want %v of %d",
				p[0], p[1], ids(a), an, aerr, ids(b), bn, berr, exp, len(want))
		}
	}
	// a walk forward by threes, then back from its last page, both ways alike
	walk := func(s *Store) (pages [][]string) {
		c := Cursor{}
		var last *Cursor
		for range 10 {
			p, err := s.ListUsersCursor(ctx, sc, c, 3)
			if err != nil || p.Total != len(want) {
				t.Fatalf("cursor page: total %d, err %v", p.Total, err)
			}
			pages = append(pages, ids(p.Resources))
			if p.Next == nil {
				last = p.Prev
				break
			}
			c = *p.Next
		}
		for last != nil {
			p, err := s.ListUsersCursor(ctx, sc, *last, 3)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, ids(p.Resources))
			last = p.Prev
		}
		return pages
	}
	a, b := walk(ordered), walk(listed)
	exp := [][]string{want[0:3], want[3:6], want[6:7], want[3:6], want[0:3]}
	if fmt.Sprint(a) != fmt.Sprint(exp) || fmt.Sprint(b) != fmt.Sprint(exp) {
		t.Errorf("cursor walk: ordered %v, listed %v; want %v", a, b, exp)
	}
}
