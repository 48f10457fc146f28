package scim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
)

// sameEncoding fails t unless Encode and encoding/json's Marshal give v the same bytes, or
// both refuse it.
func sameEncoding(t *testing.T, what string, v any) {
	t.Helper()
	want, werr := json.Marshal(v)
	got, gerr := Encode(v)
	if (werr != nil) != (gerr != nil) {
		t.Errorf("%s: encoding/json error %v, Encode error %v", what, werr, gerr)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: Encode differs from encoding/json:\n got %s\nwant %s", what, got, want)
	}
}

// page is a list response of n users shaped as the store answers them.
func page(t testing.TB, n int) ListResponse {
	l := ListResponse{Schemas: []string{SchemaListResponse}, TotalResults: 100000, StartIndex: 99901, ItemsPerPage: n}
	for i := range n {
		var m map[string]any
		if err := json.Unmarshal([]byte(alice), &m); err != nil {
			t.Fatal(err)
		}
		r := Canonicalize(UserType, m)
		r["id"] = fmt.Sprintf("u-%06d", i)
		r["userName"] = fmt.Sprintf("user%06d@example.com", i)
		r["groups"] = []any{map[string]any{"value": "g-1", "display": "Eng & <Ops>", "$ref": "https://h/scim/v2/Groups/g-1"}}
		r["meta"] = map[string]any{"resourceType": "User", "created": "2024-01-02T03:04:05Z",
			"lastModified": "2024-06-01T00:00:00Z", "version": `W/"12345"`, "location": "https://h/scim/v2/Users/" + r["id"].(string)}
		l.Resources = append(l.Resources, r)
	}
	return l
}

// TestEncodeMatchesEncodingJSON: every kind of response this package builds (the Bulk
// response, rendered users and groups are compared where they are built), and the
// values where encoders are known to part (HTML characters, invalid UTF-8, U+2028, float
// formats, nil against empty, non-finite numbers), encode to encoding/json's bytes.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	sameEncoding(t, "a page of users", page(t, 100))
	sameEncoding(t, "an empty page", ListResponse{Schemas: []string{SchemaListResponse}, Resources: []Resource{}})
	sameEncoding(t, "a page without resources", ListResponse{Schemas: []string{SchemaListResponse}})
	sameEncoding(t, "a cursor page", ListResponse{Schemas: []string{SchemaListResponse}, NextCursor: "a+b/c=", ItemsPerPage: 1,
		Resources: []Resource{{"id": "x"}}})
	sameEncoding(t, "a page of 1,000 users (MaxCount)", page(t, 1000))
	projected := page(t, 3)
	Project(UserType, projected.Resources[0], []string{"userName", "emails.value", "name.givenName"}, nil)
	Project(UserType, projected.Resources[1], nil, []string{"emails", "groups", "name"})
	sameEncoding(t, "a projected page", projected)
	sameEncoding(t, "a middle cursor page", ListResponse{Schemas: []string{SchemaListResponse}, TotalResults: 3, ItemsPerPage: 1,
		NextCursor: "n<&>", PreviousCursor: "p+/=", Resources: page(t, 1).Resources})
	sameEncoding(t, "an error", &Error{Status: 409, ScimType: ErrUniqueness, Detail: `a user with userName "<a>&b" already exists`})
	sameEncoding(t, "an error without scimType", &Error{Status: 500, Detail: "internal error"})
	sameEncoding(t, "the service provider config", ServiceProviderConfig("https://h/scim/v2?a=<b>&c", 1<<20))
	for _, rt := range []*ResourceType{UserType, GroupType} {
		sameEncoding(t, "a resource type", ResourceTypeDoc("https://h/scim/v2", rt))
	}
	var docs []map[string]any
	for _, s := range AllSchemas() {
		d := SchemaDoc("https://h/scim/v2", s)
		sameEncoding(t, "a schema", d)
		docs = append(docs, d)
	}
	sameEncoding(t, "the schemas list", ListOf(docs))
	for _, v := range []any{
		"<script>&amp;", "\xff\xfe", "a\u2028b\u2029c", "\x00\x01\x1f\x7f", "\"\\/", "é😀", "\xed\xa0\x80",
		0.0, math.Copysign(0, -1), 1e20, 1e21, 1e-6, 1e-7, 0.1, 123456789.125, -1.5e300, math.SmallestNonzeroFloat64,
		float32(0.1), int64(math.MaxInt64), uint8(7), true, nil,
		math.NaN(), math.Inf(1),
		json.RawMessage(`{"b" : 1, "a":[ 1 ,2]}`), json.Number("12.50"),
		map[string]any{}, map[string]any(nil), []any(nil), []any{}, []string(nil), Resource(nil),
		map[string]any{"b": 1, "a": map[string]any{"z": []any{nil, "x"}, "\xff": 1, "<": 2, "": 3}},
		[]map[string]any{{"value": "v", "primary": true}},
	} {
		sameEncoding(t, fmt.Sprintf("%T %#v", v, v), v)
		sameEncoding(t, fmt.Sprintf("%#v in a resource", v), Resource{"k": v, "list": []any{v}})
	}
}

// FuzzEncode: any string (valid UTF-8 or not) and any number, as keys and values of a
// resource, and any JSON document decoded as the server decodes requests, encode to
// encoding/json's bytes.
func FuzzEncode(f *testing.F) {
	f.Add("a<b>&c", 1.5, []byte(alice))
	f.Add("\xff\u2028", 1e21, []byte(`[1,"x",{"a":null}]`))
	f.Fuzz(func(t *testing.T, s string, x float64, doc []byte) {
		sameEncoding(t, "a resource", Resource{
			s: []any{s, x, map[string]any{"value": s, s: x}}, "n": x, "k": s,
		})
		sameEncoding(t, "an error", &Error{Status: 400, ScimType: s, Detail: s})
		var v any
		if json.Unmarshal(doc, &v) == nil {
			sameEncoding(t, "a decoded document", v)
		}
	})
}

// BenchmarkEncodePage: one page of 100 users, with Encode and with encoding/json.
func BenchmarkEncodePage(b *testing.B) {
	l := page(b, 100)
	for _, c := range []struct {
		name string
		enc  func(any) ([]byte, error)
	}{{"Encode", Encode}, {"encoding-json", json.Marshal}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.enc(l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
