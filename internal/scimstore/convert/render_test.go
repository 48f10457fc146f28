package convert

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// benchMember is a member as make bench's IdP writes them (userName, name, one work email,
// externalId), cached with its config label and its last-modified annotation.
func benchMember(i int) *scimv1.OrgMember {
	user := fmt.Sprintf("user%06d@example.com", i)
	at := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	return &scimv1.OrgMember{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("u-%032x", i), Generation: 1,
			UID: types.UID(fmt.Sprintf("6f1c2d3e-%04x-4000-8000-%012x", i%0xffff, i)), CreationTimestamp: at,
			Labels:      map[string]string{scimv1.LabelConfig: "acme"},
			Annotations: map[string]string{scimv1.AnnotationLastModified: "2026-12-01T10:00:00.123456789Z"}},
		Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: user, ExternalID: fmt.Sprintf("00u%08d", i), Active: true,
			Name:   &scimv1.Name{GivenName: "User", FamilyName: fmt.Sprint(i)},
			Emails: []scimv1.MultiValue{{Value: user, Type: "work", Primary: true}}},
	}
}

// BenchmarkRenderUser: one user of a page as the store renders it (its version with the
// groups it shows, none here), the conversion only; encoding is BenchmarkEncodePage's.
//
//	go test ./internal/scimstore/convert -run '^$' -bench RenderUser -benchmem
func BenchmarkRenderUser(b *testing.B) {
	m := benchMember(42)
	b.ReportAllocs()
	for b.Loop() {
		UserToSCIMVersion(m, "https://127.0.0.1:8443/scim/v2/bench/acme", VersionWith(m, nil))
	}
}

// BenchmarkVersionWith: one user's version token.
func BenchmarkVersionWith(b *testing.B) {
	m := benchMember(42)
	b.ReportAllocs()
	for b.Loop() {
		VersionWith(m, nil)
	}
}

// versionWithFNV is VersionWith as it was written with hash/fnv and fmt: the tokens IdPs
// hold as ETags.
func versionWithFNV(o *scimv1.OrgMember, groups []string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(string(o.GetUID()) + "\n"))
	groups = append([]string(nil), groups...)
	sort.Strings(groups)
	for _, g := range groups {
		_, _ = h.Write([]byte(g + "\n"))
	}
	_, _ = h.Write([]byte(o.GetAnnotations()[AnnotationMembersRevision]))
	return fmt.Sprintf("%d-%08x", o.GetGeneration(), h.Sum32())
}

// VersionWith gives the tokens hash/fnv gave, so that an ETag an IdP holds is still good
// after an upgrade: random members (generations, revisions, groups in any order,
// non-ASCII text) against the former implementation.
func TestVersionWithIsHashFNV(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 1))
	text := func() string {
		const alphabet = "abc-\x00\nédø€😀"
		rs := []rune(alphabet)
		b := make([]rune, rng.IntN(12))
		for i := range b {
			b[i] = rs[rng.IntN(len(rs))]
		}
		return string(b)
	}
	for i := range 2000 {
		m := benchMember(i)
		m.UID = types.UID(text())
		m.Generation = rng.Int64N(1 << 40)
		if rng.IntN(2) == 0 {
			m.Annotations[AnnotationMembersRevision] = text()
		}
		var groups []string
		for range rng.IntN(4) {
			groups = append(groups, text())
		}
		given := append([]string(nil), groups...)
		if got, want := VersionWith(m, groups), versionWithFNV(m, groups); got != want {
			t.Fatalf("member %d (uid %q, groups %q): token %s, hash/fnv gave %s", i, m.UID, groups, got, want)
		}
		if fmt.Sprint(groups) != fmt.Sprint(given) {
			t.Fatalf("VersionWith reordered its caller's groups: %q, given %q", groups, given)
		}
	}
}

// Tokens the former implementation gave, as literals (review 30 F5): a change to both
// VersionWith and versionWithFNV above still fails here. A member in two groups given out
// of order, a generation of -1 without annotations, and a group with a members revision.
func TestVersionTokensAreTheFormerOnes(t *testing.T) {
	bare := benchMember(7)
	bare.Generation, bare.Annotations = -1, nil
	g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Name: "acme-eng", UID: "0b6f6f2e-1c1d-4c55-9f0e-7d2a5e3b9c10",
		Generation: 3, Annotations: map[string]string{AnnotationMembersRevision: "12"}}}
	for what, c := range map[string][2]string{
		"a member in groups b and a":   {VersionWith(benchMember(42), []string{"b", "a"}), "1-fea22bc6"},
		"generation -1, no annotation": {VersionWith(bare, nil), "-1-22471645"},
		"a group":                      {VersionOf(g), "3-2bf8cf63"},
	} {
		if c[0] != c[1] {
			t.Errorf("%s: token %s, the former implementation gave %s", what, c[0], c[1])
		}
	}
}
