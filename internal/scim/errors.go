// Package scim is the SCIM 2.0 protocol (RFC 7643, RFC 7644) without any storage: errors,
// filters, PATCH, attribute projection, sorting, list responses and the discovery
// documents. Resources are handled as generic JSON objects (map[string]any) whose keys
// are canonicalized against the schemas in schema.go.
package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Schema URNs.
const (
	SchemaUser            = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup           = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterpriseUser  = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaDockerUser      = "urn:ietf:params:scim:schemas:extension:docker:2.0:User"
	SchemaSCIM1Core       = "urn:scim:schemas:core:1.0"
	SchemaError           = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaListResponse    = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaPatchOp         = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaSearchRequest   = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
	SchemaBulkRequest     = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
	SchemaBulkResponse    = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
	SchemaServiceProvider = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType    = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema          = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// scimType values of RFC 7644 section 3.12.
const (
	ErrInvalidFilter = "invalidFilter"
	ErrTooMany       = "tooMany"
	ErrUniqueness    = "uniqueness"
	ErrMutability    = "mutability"
	ErrInvalidSyntax = "invalidSyntax"
	ErrInvalidPath   = "invalidPath"
	ErrNoTarget      = "noTarget"
	ErrInvalidValue  = "invalidValue"
	ErrInvalidVers   = "invalidVers"
	ErrSensitive     = "sensitive"
	// RFC 9865 section 2.1 (cursor pagination), all with status 400.
	ErrInvalidCursor = "invalidCursor"
	ErrExpiredCursor = "expiredCursor"
	ErrInvalidCount  = "invalidCount"
)

// Error is a SCIM error response (RFC 7644 section 3.12).
type Error struct {
	Status   int
	ScimType string
	Detail   string
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter int
}

func (e *Error) Error() string {
	if e.ScimType != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.ScimType, e.Detail)
	}
	return fmt.Sprintf("%d: %s", e.Status, e.Detail)
}

type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// MarshalJSON writes the RFC 7644 error body; status is a string.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorBody{
		Schemas: []string{SchemaError}, Status: strconv.Itoa(e.Status),
		ScimType: e.ScimType, Detail: e.Detail,
	})
}

// Errorf builds an Error.
func Errorf(status int, scimType, format string, args ...any) *Error {
	return &Error{Status: status, ScimType: scimType, Detail: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 with a scimType.
func BadRequest(scimType, format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, scimType, format, args...)
}

// NotFound is a 404.
func NotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, "", format, args...)
}

// AsError turns any error into a SCIM Error (500 for foreign errors, without their text).
func AsError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error"}
}

// ContentType is the media type of every SCIM response.
const ContentType = "application/scim+json; charset=utf-8"

// WriteJSON writes a SCIM JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := Encode(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = Encode(&Error{Status: status, Detail: "cannot encode response"})
	}
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError writes err as a SCIM error response.
func WriteError(w http.ResponseWriter, err error) {
	se := AsError(err)
	if se.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(se.RetryAfter))
	}
	WriteJSON(w, se.Status, se)
}
