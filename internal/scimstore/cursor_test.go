package scimstore

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scim"
)

func cursorQuery(uid, ns, name, endpoint, filter string) CursorQuery {
	return CursorQuery{Scope: Scope{Config: &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{UID: k8stypes.UID("u-" + uid), Namespace: ns, Name: name}}},
		Endpoint: endpoint, Filter: filter}
}

func scimType(err error) string {
	var se *scim.Error
	if errors.As(err, &se) && se.Status == 400 {
		return se.ScimType
	}
	return fmt.Sprintf("not a 400: %v", err)
}

func TestCursorRoundTripAndRefusals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	q := cursorQuery("1", "ns", "acme", "Users", `userName sw "a"`)
	for _, c := range []Cursor{{}, {Key: "u-abc"}, {Back: true, Key: "u-zz"}, {Key: "0/u-x\x00"}} {
		s := EncodeCursor(q, c, now)
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Fatalf("cursor %q has a character outside RFC 3986 unreserved: %q", s, r)
			}
		}
		got, err := DecodeCursor(q, s, now.Add(scim.CursorTimeout))
		if err != nil || got != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, got, err)
		}
		if _, err := DecodeCursor(q, s, now.Add(scim.CursorTimeout+time.Second)); scimType(err) != scim.ErrExpiredCursor {
			t.Fatalf("an old cursor: %v", err)
		}
	}
	s := EncodeCursor(q, Cursor{Key: "u-abc"}, now)
	others := map[string]CursorQuery{
		"another tenant (UID)":  cursorQuery("2", "ns", "acme", "Users", `userName sw "a"`),
		"another namespace":     cursorQuery("1", "ns2", "acme", "Users", `userName sw "a"`),
		"another config":        cursorQuery("1", "ns", "acme2", "Users", `userName sw "a"`),
		"another endpoint":      cursorQuery("1", "ns", "acme", "Groups", `userName sw "a"`),
		"another filter":        cursorQuery("1", "ns", "acme", "Users", `userName sw "b"`),
		"no filter":             cursorQuery("1", "ns", "acme", "Users", ``),
		"the root search":       cursorQuery("1", "ns", "acme", ".search", `userName sw "a"`),
		"filter shifted fields": cursorQuery("1", "ns", "acmeUsers", "", `userName sw "a"`),
	}
	for what, other := range others {
		if _, err := DecodeCursor(other, s, now); scimType(err) != scim.ErrInvalidCursor {
			t.Errorf("%s: %v", what, err)
		}
	}
	// every single-character change is refused
	for i := range s {
		for _, r := range "AQg_-z0" {
			if rune(s[i]) == r {
				continue
			}
			bad := s[:i] + string(r) + s[i+1:]
			if c, err := DecodeCursor(q, bad, now); err == nil {
				t.Fatalf("changed cursor %q accepted as %+v", bad, c)
			} else if scimType(err) != scim.ErrInvalidCursor {
				t.Fatalf("changed cursor %q: %v", bad, err)
			}
		}
	}
	for _, bad := range []string{"x", "!!!!", "AAAA", s[:len(s)-1], s + "A", string(make([]byte, 4000))} {
		if _, err := DecodeCursor(q, bad, now); scimType(err) != scim.ErrInvalidCursor {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := DecodeCursor(q, EncodeCursor(q, Cursor{Key: "u"}, now.Add(time.Hour)), now); scimType(err) != scim.ErrInvalidCursor {
		t.Errorf("a cursor from the future: %v", err)
	}
}

// TestKeysetPageWalks checks the pages of a walk: forward pages cover every item exactly
// once in order, the last has no next cursor, the first no previous one, and each page's
// previous cursor gives the page before it.
func TestKeysetPageWalks(t *testing.T) {
	for n := 0; n <= 13; n++ {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("k%02d", i*2)
		}
		key := func(i int) string { return keys[i] }
		for count := 1; count <= 5; count++ {
			var seen []string
			var pages [][2]int
			c := Cursor{}
			for steps := 0; ; steps++ {
				if steps > n+1 {
					t.Fatalf("n=%d count=%d: the walk does not end", n, count)
				}
				from, to, next, prev := KeysetPage(n, key, c, count)
				if (prev == nil) != (len(pages) == 0) {
					t.Fatalf("n=%d count=%d page %d: prev %+v", n, count, len(pages), prev)
				}
				if prev != nil {
					pf, pt, _, _ := KeysetPage(n, key, *prev, count)
					if [2]int{pf, pt} != pages[len(pages)-1] {
						t.Fatalf("n=%d count=%d: previous of [%d,%d) is [%d,%d), want %v", n, count, from, to, pf, pt, pages[len(pages)-1])
					}
				}
				pages = append(pages, [2]int{from, to})
				seen = append(seen, keys[from:to]...)
				if next == nil {
					break
				}
				c = *next
			}
			if !slices.Equal(seen, keys) {
				t.Fatalf("n=%d count=%d: walk saw %v", n, count, seen)
			}
		}
	}
	// a key between items, past the end, before the start
	keys := []string{"b", "d", "f"}
	key := func(i int) string { return keys[i] }
	if f, to, next, prev := KeysetPage(3, key, Cursor{Key: "c"}, 5); f != 1 || to != 3 || next != nil || prev == nil || prev.Key != "d" {
		t.Fatalf("after c: [%d,%d) %v %v", f, to, next, prev)
	}
	if f, to, next, prev := KeysetPage(3, key, Cursor{Key: "z"}, 5); f != 3 || to != 3 || next != nil || prev == nil {
		t.Fatalf("after z: [%d,%d) %v %v", f, to, next, prev)
	} else if pf, pt, _, _ := KeysetPage(3, key, *prev, 2); pf != 1 || pt != 3 {
		t.Fatalf("before the end: [%d,%d)", pf, pt)
	}
	if f, to, next, prev := KeysetPage(3, key, Cursor{Back: true, Key: "a"}, 5); f != 0 || to != 0 || next == nil || next.Key != "" || prev != nil {
		t.Fatalf("before a: [%d,%d) %v %v", f, to, next, prev)
	}
}
