package index

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

func sortedKeys(keys []types.NamespacedName) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.String())
	}
	slices.Sort(out)
	return out
}

// The keyMap keeps one key in one, two to maxFew in a slice and more in a set, and moves a
// value between them as objects come and go; lookups always answer the keys recorded.
func TestKeyMapOneFewLots(t *testing.T) {
	m := newKeyMap()
	var want []string
	check := func(step string) {
		t.Helper()
		got := sortedKeys(m.lookup("v"))
		if !slices.Equal(got, want) {
			t.Fatalf("%s: lookup %v, want %v", step, got, want)
		}
		h := m.hash("v")
		_, one := m.one[h]
		_, few := m.few[h]
		_, lots := m.lots[h]
		n, in := len(want), 0
		for _, b := range []bool{one, few, lots} {
			if b {
				in++
			}
		}
		if in != min(n, 1) || one != (n == 1) || (n > maxFew && !lots) || (n > 1 && n <= maxFew/2 && !few) {
			t.Fatalf("%s: %d keys kept in one=%v few=%v lots=%v", step, n, one, few, lots)
		}
		for _, k := range want {
			ns, name, _ := strings.Cut(k, "/")
			if !m.has("v", nn(ns, name)) {
				t.Fatalf("%s: has(%s) is false", step, k)
			}
		}
	}
	for i := range 3 * maxFew {
		k := nn("ns", fmt.Sprintf("o%02d", i))
		m.update(k, nil, []string{"v"})
		m.update(k, nil, []string{"v"}) // again: no second copy
		want = append(want, k.String())
		slices.Sort(want)
		check(fmt.Sprintf("add %d", i))
	}
	for i := 3*maxFew - 1; i >= 0; i-- {
		k := nn("ns", fmt.Sprintf("o%02d", i))
		m.update(k, []string{"v"}, nil)
		m.update(k, []string{"v"}, nil) // again: nothing
		want = slices.DeleteFunc(want, func(s string) bool { return s == k.String() })
		check(fmt.Sprintf("remove %d", i))
	}
	if len(m.one)+len(m.few)+len(m.lots) != 0 {
		t.Fatalf("empty map keeps %d %d %d entries", len(m.one), len(m.few), len(m.lots))
	}
	// a key is only removed where it is: removing another object's key changes nothing
	m.update(nn("ns", "a"), nil, []string{"v"})
	m.update(nn("ns", "b"), []string{"v"}, nil)
	m.update(nn("other", "a"), []string{"v"}, nil)
	want = []string{"ns/a"}
	check("foreign removals")
}

// A value in both states keeps its key, with the new object's strings (the old object's are
// not kept alive); a value that changed moves.
func TestKeyMapUpdateRefreshesAndMoves(t *testing.T) {
	m := newKeyMap()
	oldName := strings.Clone("a")
	m.update(nn("ns", oldName), nil, []string{"x", "y"})
	newName := strings.Clone("a")
	m.update(nn("ns", newName), []string{"x", "y"}, []string{"y", "z"})
	if got := m.lookup("x"); len(got) != 0 {
		t.Errorf("x still names %v", got)
	}
	for _, v := range []string{"y", "z"} {
		if got := m.lookup(v); len(got) != 1 || got[0] != nn("ns", "a") {
			t.Errorf("%s: %v", v, got)
		}
	}
	if k := m.one[m.hash("y")]; unsafe.StringData(k.Name) != unsafe.StringData(newName) {
		t.Error("y keeps the old object's name string")
	}
}

func member(ns, name, config, userName, externalID string) *scimv1.OrgMember {
	return &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: scimv1.OrgMemberSpec{ConfigName: config, UserName: userName, ExternalID: externalID}}
}

// The event handler: adds, a rename (userName change), objects sharing a value, a delete
// as an object and as a tombstone (with its last state, and without one), and a resync
// (an update that changes nothing).
func TestCompactIndexFollowsEvents(t *testing.T) {
	ix := &compactIndex{field: UserName, scope: InNamespace, fn: MemberUserName, keys: newKeyMap()}
	key := func(u string) string { return Key("acme", u) }
	names := func(u string) []string {
		t.Helper()
		return sortedKeys(ix.keys.lookup(key(u)))
	}
	ann := member("ns", "m-ann", "acme", "Ann@x.io", "")
	ix.update(nil, ann)
	ix.update(nil, member("ns", "m-ben", "acme", "ben@x.io", ""))
	if got := names("ann@x.io"); !slices.Equal(got, []string{"ns/m-ann"}) {
		t.Fatalf("ann: %v", got)
	}
	// a rename moves the member; a second member takes the old name while the first keeps it
	renamed := member("ns", "m-ann", "acme", "anne@x.io", "")
	ix.update(ann, renamed)
	if got := names("ann@x.io"); len(got) != 0 {
		t.Errorf("ann after the rename: %v", got)
	}
	if got := names("anne@x.io"); !slices.Equal(got, []string{"ns/m-ann"}) {
		t.Errorf("anne: %v", got)
	}
	twin := member("ns", "m-anne-2", "acme", "ANNE@x.io", "")
	ix.update(nil, twin)
	if got := names("anne@x.io"); !slices.Equal(got, []string{"ns/m-ann", "ns/m-anne-2"}) {
		t.Errorf("two members of one userName: %v", got)
	}
	ix.update(renamed, renamed) // resync
	if got := names("anne@x.io"); !slices.Equal(got, []string{"ns/m-ann", "ns/m-anne-2"}) {
		t.Errorf("after a resync: %v", got)
	}
	// deleted as an object, then as a tombstone with its last state
	ix.update(renamed, nil)
	if got := names("anne@x.io"); !slices.Equal(got, []string{"ns/m-anne-2"}) {
		t.Errorf("after a delete: %v", got)
	}
	ix.update(toolscache.DeletedFinalStateUnknown{Key: "ns/m-anne-2", Obj: twin}, nil)
	if got := names("anne@x.io"); len(got) != 0 {
		t.Errorf("after a tombstone: %v", got)
	}
	// a tombstone without an object: its key is dropped wherever it is
	ix.update(toolscache.DeletedFinalStateUnknown{Key: "ns/m-ben"}, nil)
	if got := names("ben@x.io"); len(got) != 0 {
		t.Errorf("after a tombstone without its object: %v", got)
	}
	// re-created under the old name
	ix.update(nil, member("ns", "m-ann", "acme", "ann@x.io", ""))
	if got := names("ann@x.io"); !slices.Equal(got, []string{"ns/m-ann"}) {
		t.Errorf("re-created: %v", got)
	}
	// not an object of the kind (never from a typed informer): nothing, no panic
	ix.update(nil, &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g"}})
	ix.update(nil, "junk")
}

// A lookup re-reads every candidate in the store: an entry whose object is gone, or no
// longer carries the value (the map lags the store), is not answered; the scope is Field's.
func TestCompactLookupRechecksTheStore(t *testing.T) {
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	ix := &compactIndex{field: UserName, scope: InNamespace, fn: MemberUserName, keys: newKeyMap(), store: store}
	add := func(m *scimv1.OrgMember) {
		if err := store.Add(m); err != nil {
			t.Fatal(err)
		}
		ix.update(nil, m)
	}
	add(member("ns", "a", "acme", "ann@x.io", ""))
	add(member("other", "a", "acme", "ann@x.io", ""))
	names := func(ns, u string) []string {
		var out []string
		for _, o := range ix.lookup(ns, Key("acme", u)) {
			out = append(out, client.ObjectKeyFromObject(o.(client.Object)).String())
		}
		slices.Sort(out)
		return out
	}
	if got := names("ns", "ann@x.io"); !slices.Equal(got, []string{"ns/a"}) {
		t.Errorf("in ns: %v", got)
	}
	if got := names("", "ann@x.io"); len(got) != 0 {
		t.Errorf("an InNamespace index answered a lookup across namespaces: %v", got)
	}
	// the store moved on, the map not yet: a rename and a delete
	if err := store.Update(member("ns", "a", "acme", "anne@x.io", "")); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(member("other", "a", "acme", "ann@x.io", "")); err != nil {
		t.Fatal(err)
	}
	if got := names("ns", "ann@x.io"); len(got) != 0 {
		t.Errorf("a renamed member is still found by its old name: %v", got)
	}
	if got := names("other", "ann@x.io"); len(got) != 0 {
		t.Errorf("a deleted member is still found: %v", got)
	}
}
