package scimstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// Cursor pagination (RFC 9865) is a keyset walk over the resources' ids.
//
// Why keyset over the id: an id is the object's name, unique in the namespace and
// immutable (a rename changes userName or displayName, never the name), so the order
// "by id" is one that no write can move an item in. A cursor says "the items after (or
// before) id K"; the pages of a walk cut the id space into consecutive ranges, so an item
// that exists for the whole walk falls into exactly one of them, whatever is created,
// renamed or deleted meanwhile (items created or deleted during the walk may or may not
// appear). No state is kept on the server: every replica answers every cursor, a restart
// loses nothing, and a client holding a thousand cursors costs nothing. The lookups stay
// those of the index paths (the cache's field indexes).
//
// The cursor is opaque: base64url (RFC 3986 unreserved characters only) of a version, a
// direction, the issue time and the key, followed by an HMAC over all of it and the query
// it belongs to (the ScimConfig's UID, namespace and name, the endpoint and the filter).
// A cursor that was changed, or that belongs to another tenant, endpoint or filter, fails
// the check and answers 400 invalidCursor; one older than scim.CursorTimeout answers 400
// expiredCursor. The HMAC key is derived from the ScimConfig's UID, which every replica
// reads from the cache and which SCIM clients never see; it is not a secret from cluster
// admins, and needs not be: a forged cursor could only start a walk at an id of the
// caller's own tenant, which the caller may list anyway (every page is still scoped to the
// authenticated ScimConfig; the cursor grants nothing).

const (
	cursorVersion  = 1
	cursorMACBytes = 16
	// maxCursorKey bounds a cursor's key (an id is at most 63 characters; the root
	// .search prefixes it with the resource type).
	maxCursorKey = 128
	// cursorSkew tolerates clocks of replicas that disagree a little.
	cursorSkew = 5 * time.Minute
)

// Cursor is a decoded cursor: the page after Key (or before it, when Back). The first
// page of a walk is the zero Cursor.
type Cursor struct {
	Back bool
	Key  string
}

// CursorQuery is what a cursor is bound to: the tenant, the endpoint (Users, Groups or
// .search) and the filter.
type CursorQuery struct {
	Scope    Scope
	Endpoint string
	Filter   string
}

func (q CursorQuery) mac(payload []byte) []byte {
	k := sha256.Sum256([]byte("scim-operator cursor v1\x00" + string(q.Scope.Config.UID)))
	m := hmac.New(sha256.New, k[:])
	m.Write(payload)
	for _, s := range []string{string(q.Scope.Config.UID), q.Scope.ns(), q.Scope.name(), q.Endpoint, strings.TrimSpace(q.Filter)} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	return m.Sum(nil)[:cursorMACBytes]
}

// EncodeCursor is the cursor string of c for query q, issued at issued.
func EncodeCursor(q CursorQuery, c Cursor, issued time.Time) string {
	p := make([]byte, 10, 10+len(c.Key)+cursorMACBytes)
	p[0] = cursorVersion
	if c.Back {
		p[1] = 1
	}
	binary.BigEndian.PutUint64(p[2:10], uint64(issued.Unix()))
	p = append(p, c.Key...)
	p = append(p, q.mac(p)...)
	return base64.RawURLEncoding.EncodeToString(p)
}

func invalidCursor() error {
	return scim.BadRequest(scim.ErrInvalidCursor, "the cursor is not valid for this query: use the nextCursor or previousCursor "+
		"of a page of the same query (same endpoint, filter and credentials), or an empty cursor for the first page")
}

// DecodeCursor reads a cursor sent with query q at now. An empty string is the first page.
func DecodeCursor(q CursorQuery, s string, now time.Time) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	if len(s) > base64.RawURLEncoding.EncodedLen(10+maxCursorKey+cursorMACBytes) {
		return Cursor{}, invalidCursor()
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s) // strict: one cursor, one spelling
	if err != nil || len(b) < 10+cursorMACBytes || b[0] != cursorVersion || b[1] > 1 {
		return Cursor{}, invalidCursor()
	}
	payload, sum := b[:len(b)-cursorMACBytes], b[len(b)-cursorMACBytes:]
	if !hmac.Equal(sum, q.mac(payload)) {
		return Cursor{}, invalidCursor()
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(payload[2:10])), 0)
	if issued.After(now.Add(cursorSkew)) {
		return Cursor{}, invalidCursor()
	}
	if now.Sub(issued) > scim.CursorTimeout {
		return Cursor{}, scim.BadRequest(scim.ErrExpiredCursor, "the cursor has expired: a cursor is valid for %d seconds after the page that "+
			"returned it (cursorTimeout in /ServiceProviderConfig); start again with an empty cursor", int(scim.CursorTimeout/time.Second))
	}
	return Cursor{Back: payload[1] == 1, Key: string(payload[10:])}, nil
}

// KeysetPage cuts the page of c out of n items whose keys key(i) ascend strictly: at
// most count items after c.Key (before it, when c.Back). It returns the page's bounds
// [from, to) and the cursors of the pages next to it: next is nil on the last page, prev
// on the first.
func KeysetPage(n int, key func(i int) string, c Cursor, count int) (from, to int, next, prev *Cursor) {
	if c.Back {
		to = sort.Search(n, func(i int) bool { return key(i) >= c.Key })
		from = max(0, to-count)
	} else {
		from = sort.Search(n, func(i int) bool { return key(i) > c.Key })
		to = min(n, from+count)
	}
	if to < n {
		k := ""
		if to > from {
			k = key(to - 1)
		} else if from > 0 {
			k = key(from - 1)
		}
		next = &Cursor{Key: k}
	}
	switch {
	case to > from && from > 0:
		prev = &Cursor{Back: true, Key: key(from)}
	case to == from && from > 0: // past the end: the page before is the items up to the last
		prev = &Cursor{Back: true, Key: key(from-1) + "\x00"}
	}
	return from, to, next, prev
}

// CursorPage is one page of a cursor walk.
type CursorPage struct {
	Resources []scim.Resource
	// Total counts every item of the query (RFC 9865 keeps totalResults).
	Total      int
	Next, Prev *Cursor
}

// ResourceID is the key of a walk over one resource type: the id.
func ResourceID(r scim.Resource) string { id, _ := r["id"].(string); return id }

// ResourcePage sorts items by key(i) (unique per item) and cuts the page of c out of them.
func ResourcePage(items []scim.Resource, key func(i int) string, c Cursor, count int) CursorPage {
	keys := make([]string, len(items))
	idx := make([]int, len(items))
	for i := range items {
		keys[i], idx[i] = key(i), i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	from, to, next, prev := KeysetPage(len(idx), func(i int) string { return keys[idx[i]] }, c, count)
	page := make([]scim.Resource, 0, to-from)
	for _, i := range idx[from:to] {
		page = append(page, items[i])
	}
	return CursorPage{Resources: page, Total: len(items), Next: next, Prev: prev}
}

// ListUsersCursor answers the cursor page c of all the scope's users (no filter): like
// ListUsersPage it orders the cached OrgMembers by name (the id) and converts only the
// members of the page.
func (s *Store) ListUsersCursor(ctx context.Context, sc Scope, c Cursor, count int) (CursorPage, error) {
	if s.Order.caughtUp() {
		ids, total, next, prev := s.Order.cursor(sc.ns(), sc.name(), c, count)
		return CursorPage{Resources: s.usersOf(ctx, sc, ids), Total: total, Next: next, Prev: prev}, nil
	}
	var list scimv1.OrgMemberList
	// The cache's objects are shared: only read, sorted by pointer and converted here (the
	// conversion only reads, as for usersOf).
	if err := s.Client.List(ctx, &list, client.InNamespace(sc.ns()),
		client.MatchingFields{index.Config: sc.name()}, client.UnsafeDisableDeepCopy); err != nil {
		return CursorPage{}, s.apiError(err, "Users")
	}
	members := make([]*scimv1.OrgMember, 0, len(list.Items))
	for i := range list.Items {
		m := &list.Items[i]
		if m.Spec.ConfigName == sc.name() && m.DeletionTimestamp.IsZero() {
			members = append(members, m)
		}
	}
	slices.SortFunc(members, func(a, b *scimv1.OrgMember) int { return strings.Compare(a.Name, b.Name) })
	from, to, next, prev := KeysetPage(len(members), func(i int) string { return members[i].Name }, c, count)
	page := make([]scim.Resource, 0, to-from)
	for _, m := range members[from:to] {
		page = append(page, s.userResource(ctx, sc, m))
	}
	return CursorPage{Resources: page, Total: len(members), Next: next, Prev: prev}, nil
}

// OpenCursor starts answering a cursor request q on endpoint: it checks the parameters
// that go with a cursor and decodes it (scim errors for what does not).
func OpenCursor(sc Scope, endpoint string, q scim.Query, now time.Time) (CursorQuery, Cursor, int, error) {
	count, err := q.CursorPage()
	if err != nil {
		return CursorQuery{}, Cursor{}, 0, err
	}
	cq := CursorQuery{Scope: sc, Endpoint: endpoint, Filter: q.Filter}
	c, err := DecodeCursor(cq, *q.Cursor, now)
	return cq, c, count, err
}

// Encode returns the cursor strings of a page's neighbours ("" for none).
func (q CursorQuery) Encode(p CursorPage, now time.Time) (next, prev string) {
	if p.Next != nil {
		next = EncodeCursor(q, *p.Next, now)
	}
	if p.Prev != nil {
		prev = EncodeCursor(q, *p.Prev, now)
	}
	return next, prev
}

// cursorList answers a cursor request of one resource type: page cuts the page of a
// decoded cursor.
func cursorList(sc Scope, rt *scim.ResourceType, q scim.Query, page func(c Cursor, count int) (CursorPage, error)) (ListPage, error) {
	now := time.Now()
	cq, c, count, err := OpenCursor(sc, rt.Endpoint, q, now)
	if err != nil {
		return ListPage{}, err
	}
	p, err := page(c, count)
	if err != nil {
		return ListPage{}, err
	}
	next, prev := cq.Encode(p, now)
	return ListPage{Resources: p.Resources, Total: p.Total, NextCursor: next, PreviousCursor: prev}, nil
}

func byID(items []scim.Resource) func(int) string {
	return func(i int) string { return ResourceID(items[i]) }
}
