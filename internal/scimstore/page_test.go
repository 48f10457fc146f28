package scimstore

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
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

	ns := "paging"
	if err := direct.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
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

	s := &Store{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Log: logr.Discard()}
	sc := Scope{Config: &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acme"}},
		BaseURL: "https://scim.example/" + ns + "/acme"}
	// wait for the cache to hold every member (not a speed assertion: the deadline only
	// bounds a broken cache)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, total, err := s.ListUsersPage(ctx, sc, 1, 0)
		if err == nil && total == ours {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache never showed %d members: total %d, err %v", ours, total, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	all, err := s.ListUsers(ctx, sc, nil)
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
	for _, p := range []struct{ start, count int }{
		{1, 10}, {11, 10}, {21, 10}, {1, 1}, {7, 5}, {23, 1}, {24, 5}, {100, 10}, {5, 0}, {1, 1000},
	} {
		page, total, err := s.ListUsersPage(ctx, sc, p.start, p.count)
		if err != nil {
			t.Fatalf("page %+v: %v", p, err)
		}
		if total != ours {
			t.Errorf("page %+v: total %d, want %d", p, total, ours)
		}
		want := []scim.Resource{}
		if p.start <= len(all) {
			want = all[p.start-1 : min(p.start-1+p.count, len(all))]
		}
		got, _ := json.Marshal(page)
		exp, _ := json.Marshal(want)
		if string(got) != string(exp) {
			t.Errorf("page %+v differs from the full-conversion path:\n got %s\nwant %s", p, got, exp)
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
