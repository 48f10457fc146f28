package scim

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Paging limits.
const (
	DefaultCount = 100
	MaxCount     = 1000
)

// ListResponse is RFC 7644 section 3.4.2's list response; numbers are JSON integers.
type ListResponse struct {
	Schemas      []string   `json:"schemas"`
	TotalResults int        `json:"totalResults"`
	StartIndex   int        `json:"startIndex"`
	ItemsPerPage int        `json:"itemsPerPage"`
	Resources    []Resource `json:"Resources"`
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
			return q, BadRequest(ErrInvalidValue, "count must be an integer, got %q", s)
		}
		q.Count = &n
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
