package scimserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/scim-operator/scim-operator/internal/scim"
)

// fuzzMaxBody is the body limit under fuzzing: small, so that the fuzzer reaches the 413
// branch as easily as the others.
const fuzzMaxBody = 512

// FuzzReadBody feeds any request body to the reader every SCIM write goes through
// (readObject: POST and PUT into a map, PATCH into a PatchRequest, POST /.search into a
// Query). It never panics, and:
//   - it refuses only with a SCIM error: 413 exactly when the body is longer than the
//     limit, otherwise 400 invalidSyntax;
//   - what it accepts is a JSON object in UTF-8 that CheckJSON accepts (no duplicate
//     member names in any case, no lone surrogates, nesting within MaxJSONDepth), decoded
//     exactly as encoding/json decodes it;
//   - it refuses no such object: a body within the limit that is one JSON object passing
//     CheckJSON is read into a map.
//
// Seed corpus: testdata/fuzz/FuzzReadBody (what Okta, Entra ID and OneLogin send, and the
// refusals: too long, not UTF-8, duplicate names, a lone surrogate, too deep, not an object).
func FuzzReadBody(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a@example.com","active":true}`,
		`{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		" \n{}\t",
		`[]`,
	} {
		f.Add([]byte(s))
	}
	s := &Server{o: Options{MaxBodyBytes: fuzzMaxBody}}
	read := func(body []byte, into any) error {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/scim/v2/ns/cfg/Users", bytes.NewReader(body))
		return s.readObject(w, r, into)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		trimmed := bytes.TrimSpace(body)
		object := len(body) <= fuzzMaxBody && len(trimmed) > 0 && trimmed[0] == '{' &&
			json.Valid(trimmed) && scim.CheckJSON(trimmed) == nil

		var m map[string]any
		err := read(body, &m)
		if err != nil {
			var se *scim.Error
			if !errors.As(err, &se) {
				t.Fatalf("refused %q with a non-SCIM error %v", body, err)
			}
			if tooLong := len(body) > fuzzMaxBody; (se.Status == http.StatusRequestEntityTooLarge) != tooLong {
				t.Fatalf("%d-byte body (limit %d) answered %d: %v", len(body), fuzzMaxBody, se.Status, err)
			}
			if se.Status == http.StatusBadRequest && se.ScimType != scim.ErrInvalidSyntax {
				t.Fatalf("refused %q with 400 %q, want invalidSyntax", body, se.ScimType)
			}
			if se.Status != http.StatusBadRequest && se.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("refused %q with status %d", body, se.Status)
			}
			if strings.TrimSpace(se.Detail) == "" {
				t.Fatalf("refused %q without a detail", body)
			}
			if object {
				t.Fatalf("refused a JSON object within the limit that CheckJSON accepts: %q: %v", body, err)
			}
		} else {
			if !object {
				t.Fatalf("accepted %q: not one JSON object within the limit that CheckJSON accepts", body)
			}
			if !utf8.Valid(body) {
				t.Fatalf("accepted invalid UTF-8 %q", body)
			}
			var want map[string]any
			if err := json.Unmarshal(trimmed, &want); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("read %q as %v, encoding/json as %v", body, m, want)
			}
		}

		// The typed destinations (PATCH, POST /.search) never panic, refuse only with a
		// SCIM error and accept only what the map reader accepts.
		var p scim.PatchRequest
		if perr := read(body, &p); perr != nil {
			var se *scim.Error
			if !errors.As(perr, &se) {
				t.Fatalf("PATCH body %q refused with a non-SCIM error %v", body, perr)
			}
		} else if err != nil {
			t.Fatalf("PATCH body %q accepted, refused as a map: %v", body, err)
		}
		var q scim.Query
		if qerr := read(body, &q); qerr != nil {
			var se *scim.Error
			if !errors.As(qerr, &se) {
				t.Fatalf("search body %q refused with a non-SCIM error %v", body, qerr)
			}
		} else if err != nil {
			t.Fatalf("search body %q accepted, refused as a map: %v", body, err)
		}
	})
}
