package scimstore

import (
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

func orderMember(ns, config, name string, deleting bool) *scimv1.OrgMember {
	m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: scimv1.OrgMemberSpec{ConfigName: config}}
	if deleting {
		now := metav1.Now()
		m.DeletionTimestamp = &now
	}
	return m
}

// The order follows the informer's events: a member leaves it when it is being deleted,
// when it is deleted (also as a tombstone) and when it moves to another config; pages and
// cursors cut the ids in order.
func TestMemberOrderFollowsEvents(t *testing.T) {
	o := &MemberOrder{configs: map[string]*btreeOfIDs{}}
	add := func(m *scimv1.OrgMember) { o.update(nil, member(m)) }
	var want []string
	for i := range 50 {
		id := fmt.Sprintf("u-%02d", (i*7)%50) // out of order
		add(orderMember("ns", "acme", id, false))
		want = append(want, id)
	}
	add(orderMember("ns", "other", "u-99", false))
	add(orderMember("other-ns", "acme", "u-98", false))
	slices.Sort(want)
	ids, n := o.page("ns", "acme", 1, 1000)
	if n != 50 || !slices.Equal(ids, want) {
		t.Fatalf("page of all: %d %v", n, ids)
	}
	if ids, _ := o.page("ns", "acme", 11, 5); !slices.Equal(ids, want[10:15]) {
		t.Errorf("page 11+5: %v, want %v", ids, want[10:15])
	}
	if ids, n := o.page("ns", "acme", 51, 5); len(ids) != 0 || n != 50 {
		t.Errorf("page past the end: %v %d", ids, n)
	}

	// being deleted: out; a status update of a live member changes nothing
	old := orderMember("ns", "acme", "u-03", false)
	o.update(old, orderMember("ns", "acme", "u-03", true))
	o.update(orderMember("ns", "acme", "u-04", false), orderMember("ns", "acme", "u-04", false))
	// deleted, seen as a tombstone
	o.update(member(toolscache.DeletedFinalStateUnknown{Key: "ns/u-05", Obj: orderMember("ns", "acme", "u-05", false)}), nil)
	// moved to another config
	o.update(orderMember("ns", "acme", "u-06", false), orderMember("ns", "other", "u-06", false))
	want = slices.DeleteFunc(want, func(id string) bool { return id == "u-03" || id == "u-05" || id == "u-06" })
	if ids, n := o.page("ns", "acme", 1, 1000); n != 47 || !slices.Equal(ids, want) {
		t.Errorf("after the removals: %d %v", n, ids)
	}
	if ids, n := o.page("ns", "other", 1, 10); n != 2 || !slices.Equal(ids, []string{"u-06", "u-99"}) {
		t.Errorf("the other config: %d %v", n, ids)
	}
	if !o.shows("ns", "u-06", orderMember("ns", "other", "u-06", false)) || o.shows("ns", "u-06", orderMember("ns", "acme", "u-06", false)) {
		t.Error("shows: u-06 is in config other only")
	}
	if !o.shows("ns", "u-05", nil) || o.shows("ns", "u-07", nil) || !o.shows("ns", "u-03", orderMember("ns", "acme", "u-03", true)) {
		t.Error("shows: u-05 and u-03 are out, u-07 is in")
	}

	// cursors: the walk KeysetPage gives over the same ids
	for _, c := range []Cursor{{}, {Key: "u-10"}, {Key: "u-49"}, {Key: "u-05"}, {Back: true, Key: "u-20"}, {Back: true, Key: "u-00"}} {
		ids, n, next, prev := o.cursor("ns", "acme", c, 7)
		from, to, wnext, wprev := KeysetPage(len(want), func(i int) string { return want[i] }, c, 7)
		if n != len(want) || !slices.Equal(ids, want[from:to]) || fmt.Sprint(next) != fmt.Sprint(wnext) || fmt.Sprint(prev) != fmt.Sprint(wprev) {
			t.Errorf("cursor %+v: %v %d %v %v, want %v %v %v", c, ids, n, next, prev, want[from:to], wnext, wprev)
		}
	}
	if ids, n, next, prev := o.cursor("ns", "nobody", Cursor{}, 7); len(ids) != 0 || n != 0 || next != nil || prev != nil {
		t.Errorf("cursor of an empty config: %v %d %v %v", ids, n, next, prev)
	}
}
