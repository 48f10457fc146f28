package membership_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/membership"
)

// view is the members of g that In finds among ms.
func view(ms []*scimv1.OrgMember, g *scimv1.OrgGroup) []string {
	var out []string
	for _, m := range ms {
		if membership.In(m, g) {
			out = append(out, m.Name)
		}
	}
	return out
}

// TestChangeIsAllOrNothing walks random membership changes through their three steps, with
// every member settled or not in a random order, and checks what In answers at each step:
// the members before the commit, the members after it from the commit on, whatever has
// been settled. Stray marks of changes that never committed ride along and must not count.
func TestChangeIsAllOrNothing(t *testing.T) {
	seed := uint64(20261130)
	rng := rand.New(rand.NewPCG(seed, seed))
	for round := range 500 {
		const n = 12
		g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Name: "g-team", Annotations: map[string]string{}}}
		var ms []*scimv1.OrgMember
		before := map[string]bool{}
		for i := range n {
			m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("u-%02d", i), Labels: map[string]string{}}}
			if rng.IntN(2) == 0 {
				m.Labels[scimv1.LabelGroupPrefix+g.Name] = ""
				before[m.Name] = true
			}
			if rng.IntN(4) == 0 { // a mark of a change that never committed
				m.Labels[membership.MarkKey("dead")] = membership.MarkValue(g.Name, rng.IntN(2) == 0)
			}
			if rng.IntN(4) == 0 { // a mark of another group's change
				m.Labels[membership.MarkKey("other")] = membership.MarkValue("g-other", true)
			}
			ms = append(ms, m)
		}
		if rng.IntN(2) == 0 { // a finished earlier change
			g.Annotations[scimv1.AnnotationMembersChange] = membership.Finished("old")
		}
		want := func(set map[string]bool) []string {
			var out []string
			for _, m := range ms {
				if set[m.Name] {
					out = append(out, m.Name)
				}
			}
			return out
		}
		// the change: each member is added, removed or left alone
		id := fmt.Sprintf("c%d", round)
		after := map[string]bool{}
		var touched []*scimv1.OrgMember
		for _, m := range ms {
			after[m.Name] = before[m.Name]
			switch rng.IntN(3) {
			case 0:
				m.Labels[membership.MarkKey(id)] = membership.MarkValue(g.Name, true)
				after[m.Name] = true
				touched = append(touched, m)
			case 1:
				m.Labels[membership.MarkKey(id)] = membership.MarkValue(g.Name, false)
				after[m.Name] = false
				touched = append(touched, m)
			}
		}
		if got := view(ms, g); !slices.Equal(got, want(before)) {
			t.Fatalf("round %d: marked, not committed: readers see %v, want %v", round, got, want(before))
		}
		g.Annotations[scimv1.AnnotationMembersChange] = id
		if got := view(ms, g); !slices.Equal(got, want(after)) {
			t.Fatalf("round %d: committed: readers see %v, want %v", round, got, want(after))
		}
		rng.Shuffle(len(touched), func(i, j int) { touched[i], touched[j] = touched[j], touched[i] })
		for k, m := range touched { // settle one by one
			group, add, ok := membership.Mark(m.Labels, id)
			if !ok || group != g.Name {
				t.Fatalf("round %d: the mark of %s does not read back", round, m.Name)
			}
			delete(m.Labels, membership.MarkKey(id))
			if add {
				m.Labels[scimv1.LabelGroupPrefix+group] = ""
			} else {
				delete(m.Labels, scimv1.LabelGroupPrefix+group)
			}
			if got := view(ms, g); !slices.Equal(got, want(after)) {
				t.Fatalf("round %d: %d of %d settled: readers see %v, want %v", round, k+1, len(touched), got, want(after))
			}
		}
		g.Annotations[scimv1.AnnotationMembersChange] = membership.Finished(id)
		if got := view(ms, g); !slices.Equal(got, want(after)) {
			t.Fatalf("round %d: finished: readers see %v, want %v", round, got, want(after))
		}
		if membership.Unfinished(g) != "" {
			t.Fatalf("round %d: a finished change reads as unfinished", round)
		}
	}
}

func TestGroupsOfAMember(t *testing.T) {
	labels := map[string]string{
		scimv1.LabelGroupPrefix + "g-a":   "",
		membership.MarkKey("c1"):          membership.MarkValue("g-b", true),
		membership.MarkKey("c2"):          membership.MarkValue("g-a", false),
		membership.MarkKey("bad"):         "nonsense",
		scimv1.LabelConfig:                "cfg",
		"example.com/unrelated":           "x",
		membership.MarkKey("c3"):          membership.MarkValue("g-b", false),
		scimv1.LabelGroupPrefix + "g-zzz": "",
	}
	got := membership.Groups(labels)
	slices.Sort(got)
	if want := []string{"g-a", "g-b", "g-zzz"}; !slices.Equal(got, want) {
		t.Fatalf("Groups = %v, want %v", got, want)
	}
	if _, _, ok := membership.Mark(labels, "bad"); ok {
		t.Fatal("a malformed mark reads as a mark")
	}
}
