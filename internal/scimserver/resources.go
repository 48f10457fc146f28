package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// tooLargeDrainBytes bounds what is read, and thrown away, of a body over the limit.
const tooLargeDrainBytes = 8 << 20

// readBody reads a request body within limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			// Let a client that is still sending finish (up to a bound), so that it reads
			// the 413 rather than a connection reset in the middle of its write: the server
			// closes the connection after a body over the limit without reading the rest.
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, tooLargeDrainBytes))
			return nil, scim.Errorf(http.StatusRequestEntityTooLarge, "", "request body is larger than %d bytes", limit)
		}
		return nil, scim.BadRequest(scim.ErrInvalidSyntax, "cannot read the request body")
	}
	return b, nil
}

// decodeObject decodes a JSON object (a request body, or the data of a Bulk operation)
// into into, answering bad input with 400 invalidSyntax.
func decodeObject(b []byte, into any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return scim.BadRequest(scim.ErrInvalidSyntax, "the request body is empty; a JSON object is required")
	}
	if b[0] != '{' {
		return scim.BadRequest(scim.ErrInvalidSyntax, "the request body must be a JSON object")
	}
	if err := scim.CheckJSON(b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, into); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return scim.BadRequest(scim.ErrInvalidSyntax, "the request body does not match the expected shape: %s must be %s", te.Field, te.Type.String())
		}
		return scim.BadRequest(scim.ErrInvalidSyntax, "the request body is not valid JSON: %s", err.Error())
	}
	return nil
}

// readObject reads a JSON object body within the server's body limit into into.
func (s *Server) readObject(w http.ResponseWriter, r *http.Request, into any) error {
	b, err := readBody(w, r, s.o.MaxBodyBytes)
	if err != nil {
		return err
	}
	return decodeObject(b, into)
}

// etagOf is a resource's ETag: its meta.version, read before attribute projection may
// drop meta (RFC 7644 3.14: the ETag header is the version, whatever the body holds).
func etagOf(res scim.Resource) string {
	if m, ok := res["meta"].(map[string]any); ok {
		if v, ok := m["version"].(string); ok {
			return v
		}
	}
	return ""
}

// locationOf is a resource's meta.location.
func locationOf(res scim.Resource) string {
	if m, ok := res["meta"].(map[string]any); ok {
		if loc, ok := m["location"].(string); ok {
			return loc
		}
	}
	return ""
}

// writeResource answers one resource with its ETag (and, for a 201, its Location).
func writeResource(w http.ResponseWriter, status int, res scim.Resource, etag string) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if loc := locationOf(res); loc != "" && status == http.StatusCreated {
		w.Header().Set("Location", loc)
	}
	scim.WriteJSON(w, status, res)
}

// writeList is the one list writer: every list answer (resources, searches, discovery).
func writeList(w http.ResponseWriter, l scim.ListResponse) {
	if l.Resources == nil {
		l.Resources = []scim.Resource{}
	}
	l.Schemas = []string{scim.SchemaListResponse}
	l.ItemsPerPage = len(l.Resources)
	scim.WriteJSON(w, http.StatusOK, l)
}

// The write operations, from a request or from a Bulk operation alike: body is the
// request body (a Bulk operation's data), ifMatch the If-Match list (a Bulk operation's
// version), v what the answer shows. They answer the resource written, unprojected.

func (s *Server) create(ctx context.Context, sc scimstore.Scope, rs scimstore.Resources, body []byte) (scim.Resource, error) {
	in := map[string]any{}
	if err := decodeObject(body, &in); err != nil {
		return nil, err
	}
	return rs.Create(ctx, sc, scim.Canonicalize(rs.Type(), in))
}

func (s *Server) replace(ctx context.Context, sc scimstore.Scope, rs scimstore.Resources, id string, body []byte, ifMatch scim.ETags, v scimstore.View) (scim.Resource, error) {
	in := map[string]any{}
	if err := decodeObject(body, &in); err != nil {
		return nil, err
	}
	return rs.Replace(ctx, sc, id, scim.Canonicalize(rs.Type(), in), ifMatch, v)
}

func (s *Server) patch(ctx context.Context, sc scimstore.Scope, rs scimstore.Resources, id string, body []byte, ifMatch scim.ETags, v scimstore.View) (scim.Resource, error) {
	var p scim.PatchRequest
	if err := decodeObject(body, &p); err != nil {
		return nil, err
	}
	return rs.Patch(ctx, sc, id, p.Operations, ifMatch, v)
}

func (s *Server) delete(ctx context.Context, sc scimstore.Scope, rs scimstore.Resources, id string, ifMatch scim.ETags) error {
	return rs.Delete(ctx, sc, id, ifMatch)
}

// resource serves <base>/<Resource>[/<id>] of one resource type: one handler per verb.
func (s *Server) resource(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rs scimstore.Resources, id string) {
	if id == ".search" {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		var q scim.Query
		if err := s.readObject(w, r, &q); err != nil {
			scim.WriteError(w, err)
			return
		}
		s.list(w, r, sc, rs, q)
		return
	}
	q, qerr := scim.QueryFromURL(r.URL.Query())
	switch {
	case id == "" && r.Method == http.MethodGet:
		if qerr != nil {
			scim.WriteError(w, qerr)
			return
		}
		s.list(w, r, sc, rs, q)
	case id == "" && r.Method == http.MethodPost:
		s.handleCreate(w, r, sc, rs)
	case id == "":
		methodNotAllowed(w, "GET, HEAD, POST")
	case r.Method == http.MethodGet:
		s.handleGet(w, r, sc, rs, id, q, qerr)
	case r.Method == http.MethodPut:
		s.handleReplace(w, r, sc, rs, id, q)
	case r.Method == http.MethodPatch:
		s.handlePatch(w, r, sc, rs, id, q, qerr)
	case r.Method == http.MethodDelete:
		s.handleDelete(w, r, sc, rs, id)
	default:
		methodNotAllowed(w, "GET, HEAD, PUT, PATCH, DELETE")
	}
}

func ifMatch(r *http.Request) scim.ETags { return scim.ParseETags(r.Header.Values("If-Match")) }

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rs scimstore.Resources) {
	body, err := readBody(w, r, s.o.MaxBodyBytes)
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	out, err := s.create(r.Context(), sc, rs, body)
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	writeResource(w, http.StatusCreated, out, etagOf(out))
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rs scimstore.Resources, id string, q scim.Query, qerr error) {
	out, err := rs.Get(r.Context(), sc, id, scimstore.ViewOf(q))
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	etag := etagOf(out)
	if inm := scim.ParseETags(r.Header.Values("If-None-Match")); etag != "" && inm.MatchesWeak(etag) {
		// the client's copy is current (RFC 7232 3.2; weak comparison): 304, no body
		w.Header().Set("ETag", etag)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if qerr == nil {
		scim.Project(rs.Type(), out, q.Attributes, q.ExcludedAttributes)
	}
	writeResource(w, http.StatusOK, out, etag)
}

func (s *Server) handleReplace(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rs scimstore.Resources, id string, q scim.Query) {
	body, err := readBody(w, r, s.o.MaxBodyBytes)
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	out, err := s.replace(r.Context(), sc, rs, id, body, ifMatch(r), scimstore.ViewOf(q))
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	writeResource(w, http.StatusOK, out, etagOf(out))
}

func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rs scimstore.Resources, id string, q scim.Query, qerr error) {
	body, err := readBody(w, r, s.o.MaxBodyBytes)
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	out, err := s.patch(r.Context(), sc, rs, id, body, ifMatch(r), scimstore.ViewOf(q))
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	etag := etagOf(out)
	if qerr == nil {
		scim.Project(rs.Type(), out, q.Attributes, q.ExcludedAttributes)
	}
	writeResource(w, http.StatusOK, out, etag)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rs scimstore.Resources, id string) {
	if err := s.delete(r.Context(), sc, rs, id, ifMatch(r)); err != nil {
		scim.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// list answers a list or search request of one resource type.
func (s *Server) list(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rs scimstore.Resources, q scim.Query) {
	page, err := rs.List(r.Context(), sc, scimstore.ListRequest{Query: q})
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	for _, res := range page.Resources {
		scim.Project(rs.Type(), res, q.Attributes, q.ExcludedAttributes)
	}
	writeList(w, scim.ListResponse{TotalResults: page.Total, StartIndex: page.Start, Resources: page.Resources,
		NextCursor: page.NextCursor, PreviousCursor: page.PreviousCursor})
}

// rootSearch is POST <base>/.search: every resource type together, each sorted, paged
// across them.
func (s *Server) rootSearch(w http.ResponseWriter, r *http.Request, sc scimstore.Scope) {
	var q scim.Query
	if err := s.readObject(w, r, &q); err != nil {
		scim.WriteError(w, err)
		return
	}
	var all []scim.Resource
	var keys []string // cursor keys: the types in order, each by id
	var cq scimstore.CursorQuery
	var c scimstore.Cursor
	var count int
	now := time.Now()
	if q.Cursor != nil {
		var err error
		if cq, c, count, err = scimstore.OpenCursor(sc, "/.search", q, now); err != nil {
			scim.WriteError(w, err)
			return
		}
	}
	lr := scimstore.ListRequest{Query: q, Unpaged: true, LeaveMembers: true}
	typeOf := map[string]int{} // id -> index in typeList
	for n, rs := range s.typeList {
		page, err := rs.List(r.Context(), sc, lr)
		if err != nil {
			scim.WriteError(w, err)
			return
		}
		for _, it := range page.Resources {
			keys = append(keys, strconv.Itoa(n)+"/"+scimstore.ResourceID(it))
			typeOf[scimstore.ResourceID(it)] = n
		}
		all = append(all, page.Resources...)
	}
	// only the page's resources are completed (group members) and projected
	finish := func(page []scim.Resource) bool {
		for n, rs := range s.typeList {
			var mine []int
			for i, it := range page {
				if typeOf[scimstore.ResourceID(it)] == n {
					mine = append(mine, i)
				}
			}
			sub := make([]scim.Resource, len(mine))
			for j, i := range mine {
				sub[j] = page[i]
			}
			if err := scimstore.PageMembers(r.Context(), sc, rs, lr, sub); err != nil {
				scim.WriteError(w, err)
				return false
			}
			for j, i := range mine {
				page[i] = sub[j]
				scim.Project(rs.Type(), page[i], q.Attributes, q.ExcludedAttributes)
			}
		}
		return true
	}
	if q.Cursor != nil {
		p := scimstore.ResourcePage(all, func(i int) string { return keys[i] }, c, count)
		if !finish(p.Resources) {
			return
		}
		next, prev := cq.Encode(p, now)
		writeList(w, scim.ListResponse{TotalResults: p.Total, Resources: p.Resources, NextCursor: next, PreviousCursor: prev})
		return
	}
	start, count := q.Page()
	page := []scim.Resource{}
	if start <= len(all) {
		page = all[start-1 : min(start-1+count, len(all))]
	}
	if !finish(page) {
		return
	}
	writeList(w, scim.ListResponse{TotalResults: len(all), StartIndex: start, Resources: page})
}
