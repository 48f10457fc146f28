package scimserver

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/scim-operator/scim-operator/internal/scim"
)

// TestBulkResponseEncodesAsEncodingJSON: the Bulk response, every field set and unset,
// encodes (scim.Encode) to encoding/json's bytes.
func TestBulkResponseEncodesAsEncodingJSON(t *testing.T) {
	resp := bulkResponse{Schemas: []string{scim.SchemaBulkResponse}, Operations: []bulkOpOut{
		{Method: "POST", BulkID: "b&<1>", Version: `W/"3"`, Location: "https://h/scim/v2/Users/u-1?a=<b>", Status: "201"},
		{Method: "PATCH", Status: "400", Response: scim.BadRequest(scim.ErrInvalidValue, `"<y>" & \u2028`)},
		{Method: "DELETE", Status: "204"},
		{Method: "PUT", BulkID: "x", Status: "412", Response: &scim.Error{Status: 412, Detail: "stale"}},
	}}
	for _, v := range []any{resp, bulkResponse{Schemas: []string{scim.SchemaBulkResponse}, Operations: []bulkOpOut{}}, bulkResponse{}} {
		want, werr := json.Marshal(v)
		got, gerr := scim.Encode(v)
		if werr != nil || gerr != nil || !bytes.Equal(got, want) {
			t.Fatalf("the bulk response encodes as\n%s (%v), encoding/json gives\n%s (%v)", got, gerr, want, werr)
		}
	}
}
