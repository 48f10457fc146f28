package scim

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Paging limits.
const (
	DefaultCount = 100
	MaxCount     = 1000
)

// ListResponse is RFC 7644 section 3.4.2's list response; numbers are JSON integers.
// Cursor pages (RFC 9865) carry nextCursor (absent on the last page) and previousCursor
// (absent on the first) instead of startIndex, which index pages always carry (>= 1).
type ListResponse struct {
	Schemas        []string   `json:"schemas"`
	TotalResults   int        `json:"totalResults"`
	StartIndex     int        `json:"startIndex,omitempty"`
	ItemsPerPage   int        `json:"itemsPerPage"`
	NextCursor     string     `json:"nextCursor,omitempty"`
	PreviousCursor string     `json:"previousCursor,omitempty"`
	Resources      []Resource `json:"Resources"`
}

// Query is a parsed list or search request.
type Query struct {
	Filter             string   `json:"filter,omitempty"`
	SortBy             string   `json:"sortBy,omitempty"`
	SortOrder          string   `json:"sortOrder,omitempty"`
	StartIndex         int      `json:"startIndex,omitempty"`
	Count              *int     `json:"count,omitempty"`
	Attributes         []string `json:"attributes,omitempty"`
	ExcludedAttributes []string `json:"excludedAttributes,omitempty"`
	// Cursor asks for cursor pagination (RFC 9865): non-nil when the parameter is
	// present, empty for the first page.
	Cursor *string `json:"cursor,omitempty"`
}

// SplitAttrs splits a comma-separated attributes parameter.
func SplitAttrs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// QueryFromURL reads list parameters from a URL query (parameter names case-insensitive).
func QueryFromURL(v url.Values) (Query, error) {
	get := func(name string) (string, bool) {
		for k, vs := range v {
			if strings.EqualFold(k, name) && len(vs) > 0 {
				return vs[0], true
			}
		}
		return "", false
	}
	var q Query
	q.Filter, _ = get("filter")
	q.SortBy, _ = get("sortBy")
	q.SortOrder, _ = get("sortOrder")
	if s, ok := get("startIndex"); ok && s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, BadRequest(ErrInvalidValue, "startIndex must be an integer, got %q", s)
		}
		q.StartIndex = n
	}
	if s, ok := get("count"); ok && s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			if _, cursor := get("cursor"); cursor {
				// RFC 9865 section 2 (errors): a count that is not valid with a cursor
				// answers invalidCount
				return q, BadRequest(ErrInvalidCount, "count must be a positive integer with cursor pagination, got %q", s)
			}
			return q, BadRequest(ErrInvalidValue, "count must be an integer, got %q", s)
		}
		q.Count = &n
	}
	if s, ok := get("cursor"); ok {
		q.Cursor = &s
	}
	if s, ok := get("attributes"); ok {
		q.Attributes = SplitAttrs(s)
	}
	if s, ok := get("excludedAttributes"); ok {
		q.ExcludedAttributes = SplitAttrs(s)
	}
	return q, nil
}

// Page returns the 1-based start index and the count after applying defaults and limits:
// startIndex < 1 is 1; count defaults to DefaultCount, is capped at MaxCount, and
// negative counts are 0.
func (q Query) Page() (start, count int) {
	start = q.StartIndex
	if start < 1 {
		start = 1
	}
	count = DefaultCount
	if q.Count != nil {
		count = *q.Count
	}
	if count < 0 {
		count = 0
	}
	if count > MaxCount {
		count = MaxCount
	}
	return start, count
}

// Paging methods and cursor limits (RFC 9865), as /ServiceProviderConfig advertises them.
const (
	// CursorTimeout is how long a cursor stays valid after the page that issued it.
	CursorTimeout = time.Hour
)

// CursorPage returns the page size of a cursor request: count defaults to DefaultCount
// and is capped at MaxCount; a count below 1 answers 400 invalidCount (RFC 9865: a
// positive integer). With a cursor, startIndex and a sortBy other than id ascending
// answer 400 invalidValue: a cursor walk is in id order, the one order no write can move
// an item in (sortBy=id names that order and is accepted).
func (q Query) CursorPage() (int, error) {
	if q.StartIndex != 0 {
		return 0, BadRequest(ErrInvalidValue, "startIndex and cursor cannot be used together: choose index or cursor pagination")
	}
	if q.SortBy != "" && !(strings.EqualFold(q.SortBy, "id") && (q.SortOrder == "" || strings.EqualFold(q.SortOrder, "ascending"))) {
		return 0, BadRequest(ErrInvalidValue, "sortBy cannot be used with cursor pagination other than sortBy=id ascending: cursor pages are ordered by id, the only order that concurrent renames cannot change; use startIndex to sort otherwise")
	}
	count := DefaultCount
	if q.Count != nil {
		count = *q.Count
	}
	if count < 1 {
		return 0, BadRequest(ErrInvalidCount, "count must be a positive integer with cursor pagination, got %d", count)
	}
	return min(count, MaxCount), nil
}

// SortResources sorts resources by an attribute path (ascending by default), then by id
// so that order is stable across pages. Without sortBy, resources are ordered by id.
func SortResources(rt *ResourceType, list []Resource, sortBy, sortOrder string) error {
	desc := strings.EqualFold(sortOrder, "descending")
	if sortOrder != "" && !desc && !strings.EqualFold(sortOrder, "ascending") {
		return BadRequest(ErrInvalidValue, "sortOrder must be ascending or descending, got %q", sortOrder)
	}
	var keys []string
	if sortBy != "" {
		keys = make([]string, len(list))
		for i, r := range list {
			keys[i] = sortKey(rt, r, sortBy)
		}
	}
	idx := make([]int, len(list))
	for i := range idx {
		idx[i] = i
	}
	id := func(i int) string { s, _ := list[i]["id"].(string); return s }
	sort.SliceStable(idx, func(a, b int) bool {
		i, j := idx[a], idx[b]
		if keys != nil && keys[i] != keys[j] {
			// missing values sort last in ascending order
			switch {
			case keys[i] == "":
				return desc
			case keys[j] == "":
				return !desc
			}
			if desc {
				return keys[i] > keys[j]
			}
			return keys[i] < keys[j]
		}
		return id(i) < id(j)
	})
	sorted := make([]Resource, len(list))
	for n, i := range idx {
		sorted[n] = list[i]
	}
	copy(list, sorted)
	return nil
}

func sortKey(rt *ResourceType, r Resource, path string) string {
	uri, rest := rt.splitURN(path)
	name, sub, _ := strings.Cut(rest, ".")
	attr, v := resolve(rt, r, uri, name)
	if sub != "" {
		var sa *Attribute
		if attr != nil {
			sa = attr.Sub(sub)
		}
		var vals []any
		for _, el := range asList(v) {
			if m, ok := el.(map[string]any); ok {
				vals = append(vals, lookupKey(m, sa, sub))
			}
		}
		v = primaryOrFirst(vals, nil)
	} else if attr != nil && attr.MultiValued {
		v = primaryOrFirst(asList(v), attr)
	}
	switch t := v.(type) {
	case string:
		return strings.ToLower(t)
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	}
	return ""
}

func primaryOrFirst(vals []any, attr *Attribute) any {
	pick := func(el any) any {
		if m, ok := el.(map[string]any); ok && attr != nil {
			return m["value"]
		}
		return el
	}
	for _, el := range vals {
		if m, ok := el.(map[string]any); ok && m["primary"] == true {
			return pick(el)
		}
	}
	if len(vals) > 0 {
		return pick(vals[0])
	}
	return nil
}
