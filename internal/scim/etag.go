package scim

import "strings"

// ETags is a parsed If-Match or If-None-Match header (RFC 7232 sections 3.1 and 3.2):
// "*", or a list of entity tags.
type ETags struct {
	// Any is true for "*".
	Any bool
	// Tags are the opaque tags, without the weakness indicator W/ and the quotes.
	Tags []string
}

// ParseETags parses the values of an If-Match or If-None-Match header (every line of
// it). It is lenient: tags may lack their quotes, and W/ may be written in any case.
func ParseETags(values []string) ETags {
	var l ETags
	for _, h := range values {
		for i := 0; i < len(h); {
			switch c := h[i]; {
			case c == ' ' || c == '\t' || c == ',':
				i++
				continue
			case c == '*':
				l.Any = true
				i++
				continue
			}
			if len(h)-i >= 2 && (h[i] == 'W' || h[i] == 'w') && h[i+1] == '/' {
				i += 2
			}
			var tag string
			if i < len(h) && h[i] == '"' {
				j := strings.IndexByte(h[i+1:], '"')
				if j < 0 {
					tag, i = h[i+1:], len(h)
				} else {
					tag, i = h[i+1:i+1+j], i+j+2
				}
			} else {
				j := strings.IndexAny(h[i:], " \t,")
				if j < 0 {
					j = len(h) - i
				}
				tag, i = h[i:i+j], i+j
			}
			l.Tags = append(l.Tags, tag)
		}
	}
	return l
}

// Present tells whether the header named anything.
func (l ETags) Present() bool { return l.Any || len(l.Tags) > 0 }

// MatchesWeak tells whether the list holds etag (a resource's current ETag, such as
// W/"7") by the weak comparison of RFC 7232 section 2.3.2: the opaque tags are equal,
// whether either is weak. "*" matches any current representation.
func (l ETags) MatchesWeak(etag string) bool {
	if l.Any {
		return true
	}
	want := OpaqueTag(etag)
	for _, t := range l.Tags {
		if t == want {
			return true
		}
	}
	return false
}

// OpaqueTag is the opaque tag of an entity tag: W/"7" and "7" are 7.
func OpaqueTag(etag string) string {
	etag = strings.TrimSpace(etag)
	if len(etag) >= 2 && (etag[0] == 'W' || etag[0] == 'w') && etag[1] == '/' {
		etag = etag[2:]
	}
	return strings.Trim(etag, `"`)
}
