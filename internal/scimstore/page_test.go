package scimstore

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// TestListUsersPageMatchesFullList checks, against a real API server and the manager's
// cache, that ListUsersPage answers exactly what the general path (ListUsers of all,
// SortResources without sortBy, then the page cut) answers: same members, same order,
// same content, same total.
func TestListUsersPageMatchesFullList(t *testing.T) {
	ctx, direct, mgr := startCache(t, false)

	ns := uniqueNamespace(ctx, t, direct, "paging")
	groups := []string{naming.GroupName("acme", "Engineering"), naming.GroupName("acme", "Sales")}
	for i, g := range groups {
		og := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: g},
			Spec: scimv1.OrgGroupSpec{ConfigName: "acme", DisplayName: []string{"Engineering", "Sales"}[i]}}
		if err := direct.Create(ctx, og); err != nil {
			t.Fatal(err)
		}
	}
	const ours, theirs = 23, 5
	for i := range ours + theirs {
		config := "acme"
		if i >= ours {
			config = "other"
		}
		userName := fmt.Sprintf("user%02d@example.com", i)
		m := &scimv1.OrgMember{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName(config, userName), Labels: map[string]string{}},
			Spec: scimv1.OrgMemberSpec{ConfigName: config, UserName: userName, Active: i%4 != 0,
				ExternalID: fmt.Sprintf("ext-%d", i), DisplayName: fmt.Sprintf("User %d", i)},
		}
		if i%3 == 0 {
			m.Labels[scimv1.LabelGroupPrefix+groups[i%2]] = ""
		}
		if err := direct.Create(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	plain := &Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: logr.Discard()}
	order, err := NewMemberOrder(ctx, mgr.GetCache())
	if err != nil {
		t.Fatal(err)
	}
	ordered := &Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: logr.Discard(), Order: order}
	sc := Scope{Config: &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}},
		BaseURL: "https://scim.example/" + ns + "/acme"}
	// wait for the cache and the order to hold every member (not a speed assertion: the
	// deadline only bounds a broken cache)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, total, err := plain.ListUsersPage(ctx, sc, 1, 0)
		_, ototal, _ := ordered.ListUsersPage(ctx, sc, 1, 0)
		if err == nil && total == ours && order.caughtUp() && ototal == ours {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache never showed %d members: total %d (ordered %d), err %v", ours, total, ototal, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	all, err := plain.ListUsers(ctx, sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := scim.SortResources(scim.UserType, all, "", ""); err != nil {
		t.Fatal(err)
	}
	if len(all) != ours {
		t.Fatalf("full list has %d users, want %d", len(all), ours)
	}
	withGroups := 0
	for _, r := range all {
		if r["groups"] != nil {
			withGroups++
		}
	}
	if withGroups == 0 {
		t.Fatal("no listed user carries groups: the comparison would not cover them")
	}
	for name, s := range map[string]*Store{"listed and sorted": plain, "member order": ordered} {
		for _, p := range []struct{ start, count int }{
			{1, 10}, {11, 10}, {21, 10}, {1, 1}, {7, 5}, {23, 1}, {24, 5}, {100, 10}, {5, 0}, {1, 1000}, {0, 3}, {2, -1},
		} {
			page, total, err := s.ListUsersPage(ctx, sc, p.start, p.count)
			if err != nil {
				t.Fatalf("%s: page %+v: %v", name, p, err)
			}
			if total != ours {
				t.Errorf("%s: page %+v: total %d, want %d", name, p, total, ours)
			}
			want := []scim.Resource{}
			if from := max(p.start, 1); from <= len(all) {
				want = all[from-1 : min(from-1+max(p.count, 0), len(all))]
			}
			got, _ := json.Marshal(page)
			exp, _ := json.Marshal(want)
			if string(got) != string(exp) {
				t.Errorf("%s: page %+v differs from the full-conversion path:\n got %s\nwant %s", name, p, got, exp)
			}
		}
		// cursor pages: the same walk as ResourcePage over the fully converted list
		for _, c := range []Cursor{{}, {Key: all[4]["id"].(string)}, {Key: all[22]["id"].(string)}, {Key: "zzz"},
			{Back: true, Key: all[9]["id"].(string)}, {Back: true, Key: all[0]["id"].(string)}, {Back: true, Key: "zzz"}} {
			for _, count := range []int{1, 5, 100} {
				got, err := s.ListUsersCursor(ctx, sc, c, count)
				if err != nil {
					t.Fatalf("%s: cursor %+v: %v", name, c, err)
				}
				want := ResourcePage(all, byID(all), c, count)
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				if string(g) != string(w) {
					t.Errorf("%s: cursor %+v count %d differs from ResourcePage:\n got %s\nwant %s", name, c, count, g, w)
				}
			}
		}
	}

	// the same client's next page shows its create and its delete (waitCache waits for the
	// order too)
	for i := range 5 {
		r, err := ordered.CreateUser(ctx, sc, scim.Resource{"userName": fmt.Sprintf("new%d@example.com", i)})
		if err != nil {
			t.Fatal(err)
		}
		id := r["id"].(string)
		page, total, err := ordered.ListUsersPage(ctx, sc, 1, 1000)
		if err != nil || total != ours+1 || !hasID(page, id) {
			t.Fatalf("page after creating %s: total %d, has it %v, err %v", id, total, hasID(page, id), err)
		}
		if err := ordered.DeleteUser(ctx, sc, id, ""); err != nil {
			t.Fatal(err)
		}
		page, total, err = ordered.ListUsersPage(ctx, sc, 1, 1000)
		if err != nil || total != ours || hasID(page, id) {
			t.Fatalf("page after deleting %s: total %d, has it %v, err %v", id, total, hasID(page, id), err)
		}
	}

	// the cache objects stay untouched by the shared (no deep copy) list
	var m scimv1.OrgMember
	first := all[0]["id"].(string)
	if err := mgr.GetClient().Get(ctx, client.ObjectKey{Namespace: ns, Name: first}, &m); err != nil {
		t.Fatal(err)
	}
	if m.Spec.ConfigName != "acme" || m.Name != first {
		t.Errorf("cached member changed: %+v", m.ObjectMeta)
	}
}

func hasID(page []scim.Resource, id string) bool {
	for _, r := range page {
		if ResourceID(r) == id {
			return true
		}
	}
	return false
}
