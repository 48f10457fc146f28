package scim

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckJSON(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		body, refused string // refused: a substring of the detail, "" when accepted
	}{
		{`{"userName":"a@example.com","emails":[{"value":"a@example.com","primary":true}]}`, ""},
		{`{"Operations":[{"op":"add","value":{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"u-1"}}}}]}`, ""},
		{`{"userName":"j\u00f6rg@example.com","x":"\ud83d\ude00"}`, ""},    // escaped BMP letter and a surrogate pair
		{`{"userName":"jörg@example.com","x":"\\ud800"}`, ""},              // an escaped backslash, not an escape
		{`{"a":{"b":1},"b":{"a":1},"c":[{"a":1},{"a":2}]}`, ""},            // equal names in different objects
		{`{"userName":"a","x":` + deep(MaxJSONDepth-1) + `}`, ""},          // exactly the limit
		{`{"userName":"a","x":` + deep(MaxJSONDepth) + `}`, "deeper than"}, // one more
		{`{"x":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100) + `}`, "deeper than"},
		{"{\"userName\":\"\xff@example.com\"}", "not valid UTF-8"},
		{`{"userName":"\ud800@example.com"}`, `lone surrogate (\uD800)`},
		{`{"userName":"\udc00@example.com"}`, `lone surrogate (\uDC00)`},
		{`{"userName":"\ud800\u0041"}`, `lone surrogate (\uD800)`},
		{`{"userName":"\ud800`, `lone surrogate`},
		{`{"userName":"a","userName":"b"}`, `names "userName" twice`},
		{`{"userName":"a","USERNAME":"b"}`, `names "userName" and "USERNAME"`},
		{`{"Operations":[{"op":"add","OP":"remove"}]}`, `names "op" and "OP"`},
		{`{"a":[1,{"b":2}],"a":3}`, `names "a" twice`},
		{`{"a":{"x":1,"x":2}}`, `names "x" twice`},
		{`{"userName":`, ""}, // syntax errors are the decoder's to report
		{`{"a" 1, "a": 2}`, ""},
	}
	for _, c := range cases {
		err := CheckJSON([]byte(c.body))
		if c.refused == "" {
			if err != nil {
				t.Errorf("CheckJSON(%.60q) = %v, want nil", c.body, err)
			}
			continue
		}
		se, ok := err.(*Error)
		if !ok || se.Status != 400 || se.ScimType != ErrInvalidSyntax || !strings.Contains(se.Detail, c.refused) {
			t.Errorf("CheckJSON(%.60q) = %v, want 400 invalidSyntax with %q", c.body, err, c.refused)
		}
	}
}

// FuzzCheckJSON: CheckJSON never panics, and a body it accepts that decodes is UTF-8,
// nests at most MaxJSONDepth levels and decodes the same with every member.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"userName":"a","emails":[{"value":"b"}]}`, `{"a":"\ud83d\ude00","A":1}`, `[[[]]]`, `{"a":"\\u"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if CheckJSON([]byte(body)) != nil {
			return
		}
		var v any
		if json.Unmarshal([]byte(body), &v) != nil {
			return
		}
		if !utf8.ValidString(body) {
			t.Fatalf("accepted invalid UTF-8 %q", body)
		}
		if d := depth(v); d > MaxJSONDepth {
			t.Fatalf("accepted depth %d: %q", d, body)
		}
	})
}

func depth(v any) int {
	d := 0
	switch t := v.(type) {
	case map[string]any:
		for _, e := range t {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range t {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}
