package scimserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// Bulk (RFC 7644 section 3.7). Every operation runs through the functions of its
// single-request form (create, replace, patch, delete over the same resource store,
// under the same scope, with its version as If-Match), one after the other.

// MaxBulkOperations is the most operations one Bulk request may hold (ServiceProviderConfig
// bulk.maxOperations); a request with more answers 413.
const MaxBulkOperations = scim.MaxBulkOperations

const bulkIDPrefix = "bulkId:"

type bulkRequest struct {
	Schemas      []string          `json:"schemas"`
	FailOnErrors *int              `json:"failOnErrors"`
	Operations   []json.RawMessage `json:"Operations"`
}

type bulkOpIn struct {
	Method  string          `json:"method"`
	BulkID  *string         `json:"bulkId"`
	Version string          `json:"version"`
	Path    string          `json:"path"`
	Data    json.RawMessage `json:"data"`
}

// bulkOpOut is one operation of the BulkResponse; status is a string, as in the RFC's
// examples and in its error bodies.
type bulkOpOut struct {
	Method   string      `json:"method"`
	BulkID   string      `json:"bulkId,omitempty"`
	Version  string      `json:"version,omitempty"`
	Location string      `json:"location,omitempty"`
	Status   string      `json:"status"`
	Response *scim.Error `json:"response,omitempty"`
}

type bulkResponse struct {
	Schemas    []string    `json:"schemas"`
	Operations []bulkOpOut `json:"Operations"`
}

// bulkOp is one operation being run.
type bulkOp struct {
	in     bulkOpIn
	method string
	rs     scimstore.Resources
	id     string // from the path; a bulkId reference until resolved
	data   any    // the parsed data, when it references bulkIds
	refs   []string
	err    error // found before running: the operation answers it
	done   bool
	out    *bulkOpOut
	// deferred: a POST created without its references to break a cycle; its whole data
	// is still to be put (under the version it was created with)
	deferred bool
}

// bulk serves POST <base>/Bulk.
func (s *Server) bulk(w http.ResponseWriter, r *http.Request, sc scimstore.Scope) {
	body, err := readBody(w, r, s.o.MaxBodyBytes)
	if err != nil {
		var se *scim.Error
		if errors.As(err, &se) && se.Status == http.StatusRequestEntityTooLarge {
			err = scim.Errorf(http.StatusRequestEntityTooLarge, "",
				"the size of the bulk request exceeds maxPayloadSize (%d bytes)", s.o.MaxBodyBytes)
		}
		scim.WriteError(w, err)
		return
	}
	var req bulkRequest
	if err := decodeObject(body, &req); err != nil {
		scim.WriteError(w, err)
		return
	}
	if req.Operations == nil {
		scim.WriteError(w, scim.BadRequest(scim.ErrInvalidSyntax, "a bulk request needs an Operations array"))
		return
	}
	if n := len(req.Operations); n > MaxBulkOperations {
		scim.WriteError(w, scim.Errorf(http.StatusRequestEntityTooLarge, "",
			"the bulk request holds %d operations, more than maxOperations (%d)", n, MaxBulkOperations))
		return
	}
	failOn := 0
	if req.FailOnErrors != nil {
		if *req.FailOnErrors < 1 {
			scim.WriteError(w, scim.BadRequest(scim.ErrInvalidValue, "failOnErrors must be a positive integer, got %d", *req.FailOnErrors))
			return
		}
		failOn = *req.FailOnErrors
	}
	ops, err := s.planBulk(req.Operations)
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	s.runBulk(r, sc, ops, failOn)
	resp := bulkResponse{Schemas: []string{scim.SchemaBulkResponse}, Operations: []bulkOpOut{}}
	for _, op := range ops {
		if op.out != nil {
			resp.Operations = append(resp.Operations, *op.out)
		}
	}
	scim.WriteJSON(w, http.StatusOK, resp)
}

// planBulk decodes the operations and checks what can be checked before running any:
// an error of the request as a whole (a duplicate bulkId) answers 400 for all; an error
// of one operation is that operation's answer.
func (s *Server) planBulk(raw []json.RawMessage) ([]*bulkOp, error) {
	ops := make([]*bulkOp, len(raw))
	defined := map[string]int{}
	for i, b := range raw {
		op := &bulkOp{}
		ops[i] = op
		if err := decodeObject(b, &op.in); err != nil {
			op.err = err
			continue
		}
		op.method = strings.ToUpper(op.in.Method)
		if op.in.BulkID != nil {
			id := *op.in.BulkID
			if j, dup := defined[id]; dup {
				return nil, scim.BadRequest(scim.ErrInvalidValue, "bulkId %q is used by operations %d and %d; a bulkId names one operation", id, j+1, i+1)
			}
			if id == "" {
				op.err = scim.BadRequest(scim.ErrInvalidValue, "bulkId must not be empty")
				continue
			}
			defined[id] = i
		}
		op.err = s.checkBulkOp(op)
	}
	// references to bulkIds that name no POST of this request answer 400 now
	for _, op := range ops {
		if op.err != nil {
			continue
		}
		for _, ref := range op.refs {
			j, ok := defined[ref]
			if !ok {
				op.err = scim.BadRequest(scim.ErrInvalidValue, "bulkId %q is not defined by any operation of this request", ref)
				break
			}
			if ops[j].method != http.MethodPost {
				op.err = scim.BadRequest(scim.ErrInvalidValue, "bulkId %q names a %s operation; only a POST creates a resource to refer to", ref, ops[j].method)
				break
			}
			if ops[j] == op {
				op.err = scim.BadRequest(scim.ErrInvalidValue, "the operation refers to its own bulkId %q", ref)
				break
			}
		}
	}
	return ops, nil
}

// checkBulkOp validates one operation's method, path and data, as its single-request
// form would its method and URL.
func (s *Server) checkBulkOp(op *bulkOp) error {
	switch op.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	case "":
		return scim.BadRequest(scim.ErrInvalidValue, "an operation needs a method (POST, PUT, PATCH or DELETE)")
	default:
		return scim.BadRequest(scim.ErrInvalidValue, "method %q is not allowed in a bulk request; use POST, PUT, PATCH or DELETE", op.in.Method)
	}
	if op.method == http.MethodPost && op.in.BulkID == nil {
		return scim.BadRequest(scim.ErrInvalidValue, "a POST operation needs a bulkId (RFC 7644 section 3.7)")
	}
	p := op.in.Path
	if p == "" {
		return scim.BadRequest(scim.ErrInvalidValue, "an operation needs a path, such as /Users or /Groups/<id>")
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#") {
		return scim.BadRequest(scim.ErrInvalidValue, "path %q must be a resource path relative to the base URL, such as /Users or /Groups/<id>", p)
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	rs, ok := s.types[canonicalResource(parts[0])]
	if !ok || len(parts) > 2 || (len(parts) == 2 && parts[1] == "") {
		return scim.NotFound("no SCIM resource at %s; bulk operations address /Users, /Groups and their resources", p)
	}
	op.rs = rs
	if len(parts) == 2 {
		op.id = parts[1]
	}
	switch {
	case op.method == http.MethodPost && op.id != "":
		return scim.Errorf(http.StatusMethodNotAllowed, "", "POST creates resources at %s; use PUT, PATCH or DELETE on %s", "/"+parts[0], p)
	case op.method != http.MethodPost && op.id == "":
		return scim.Errorf(http.StatusMethodNotAllowed, "", "%s needs a resource path such as %s/<id>", op.method, "/"+parts[0])
	}
	if ref, ok := strings.CutPrefix(op.id, bulkIDPrefix); ok {
		op.refs = append(op.refs, ref)
	}
	if op.method == http.MethodDelete {
		return nil
	}
	if len(op.in.Data) == 0 || string(op.in.Data) == "null" {
		return scim.BadRequest(scim.ErrInvalidSyntax, "a %s operation needs data", op.method)
	}
	var data any
	dec := json.NewDecoder(bytes.NewReader(op.in.Data))
	dec.UseNumber() // numbers are put back as sent when references are substituted
	if err := dec.Decode(&data); err != nil {
		return scim.BadRequest(scim.ErrInvalidSyntax, "the operation's data is not valid JSON")
	}
	if refs := bulkRefs(data, nil); len(refs) > 0 {
		op.refs = append(op.refs, refs...)
		op.data = data
	}
	return nil
}

// bulkRefs lists the bulkIds that strings of v refer to ("bulkId:<id>").
func bulkRefs(v any, out []string) []string {
	switch v := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(v, bulkIDPrefix); ok {
			out = append(out, ref)
		}
	case []any:
		for _, e := range v {
			out = bulkRefs(e, out)
		}
	case map[string]any:
		for _, e := range v {
			out = bulkRefs(e, out)
		}
	}
	return out
}

// substitute replaces the bulkId references of v that resolved has by the ids they
// name.
func substitute(v any, resolved map[string]string) any {
	switch t := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(t, bulkIDPrefix); ok {
			if id, ok := resolved[ref]; ok {
				return id
			}
		}
		return t
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = substitute(e, resolved)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = substitute(e, resolved)
		}
		return out
	}
	return v
}

// strip removes from v the references to the bulkIds open says are not resolved yet:
// an element of a multi-valued attribute whose value is one (a group member) and a
// complex attribute whose value is one (a user's manager). It fails when such a
// reference is anywhere else, where taking it out would change what the data means.
func strip(v any, open func(string) bool) (any, bool) {
	isOpenRef := func(e any) bool {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		for k, val := range m {
			if strings.EqualFold(k, "value") {
				if s, ok := val.(string); ok {
					if ref, ok := strings.CutPrefix(s, bulkIDPrefix); ok && open(ref) {
						return true
					}
				}
			}
		}
		return false
	}
	switch t := v.(type) {
	case string:
		if ref, ok := strings.CutPrefix(t, bulkIDPrefix); ok && open(ref) {
			return nil, false
		}
		return t, true
	case []any:
		out := make([]any, 0, len(t))
		for _, e := range t {
			if isOpenRef(e) {
				continue
			}
			se, ok := strip(e, open)
			if !ok {
				return nil, false
			}
			out = append(out, se)
		}
		return out, true
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			if isOpenRef(e) {
				continue
			}
			se, ok := strip(e, open)
			if !ok {
				return nil, false
			}
			out[k] = se
		}
		return out, true
	}
	return v, true
}

// bulkRun is one Bulk request being run.
type bulkRun struct {
	s        *Server
	r        *http.Request
	sc       scimstore.Scope
	ops      []*bulkOp
	failOn   int
	errs     int
	resolved map[string]string // bulkId -> id of the resource its POST created
	failed   map[string]bool   // bulkIds of operations that failed
}

// runBulk runs the operations in request order, except that an operation waits for the
// POSTs whose bulkIds it refers to. When every waiting operation waits on another
// (circular references, RFC 7644 section 3.7.1), the first waiting POST whose references
// can be left out is created without them, and once the others exist it is replaced
// (PUT, under the version it was created with) by its whole data. Circular references
// that cannot be broken so answer 409. Processing stops after failOn errors (0: never).
func (s *Server) runBulk(r *http.Request, sc scimstore.Scope, ops []*bulkOp, failOn int) {
	b := &bulkRun{s: s, r: r, sc: sc, ops: ops, failOn: failOn,
		resolved: map[string]string{}, failed: map[string]bool{}}
	for !b.stopped() && !b.allDone() {
		if b.step() {
			continue
		}
		if b.breakCycle() {
			continue
		}
		// nothing can run: the rest wait on each other in a way that cannot be broken
		for _, op := range ops {
			if !op.done && !b.stopped() {
				b.finish(op, b.errorOut(op, scim.Errorf(http.StatusConflict, "",
					"the operation is part of circular bulkId references that cannot be resolved")))
			}
		}
	}
	// a POST created without its references, whose whole data failOnErrors left unput,
	// is taken back out: it was not processed, and is not in the answer
	for _, op := range ops {
		if op.deferred && !op.done {
			_ = s.delete(r.Context(), sc, op.rs, op.id, scim.ETags{})
		}
	}
}

func (b *bulkRun) stopped() bool { return b.failOn > 0 && b.errs >= b.failOn }

func (b *bulkRun) allDone() bool {
	for _, op := range b.ops {
		if !op.done {
			return false
		}
	}
	return true
}

func (b *bulkRun) open(ref string) bool { _, ok := b.resolved[ref]; return !ok }

// finish records an operation's answer.
func (b *bulkRun) finish(op *bulkOp, out bulkOpOut) {
	op.done = true
	op.out = &out
	if out.Response != nil {
		b.errs++
		if op.in.BulkID != nil {
			b.failed[*op.in.BulkID] = true
		}
		return
	}
	if op.in.BulkID != nil && op.id != "" && (op.method == http.MethodPost || op.deferred) {
		b.resolved[*op.in.BulkID] = op.id
	}
}

// step runs the first operation, in request order, that waits on nothing. It tells
// whether there was one.
func (b *bulkRun) step() bool {
	for _, op := range b.ops {
		if op.done {
			continue
		}
		if op.err != nil {
			b.finish(op, b.errorOut(op, op.err))
			return true
		}
		var failedRef string
		waiting := false
		for _, ref := range op.refs {
			if b.failed[ref] {
				failedRef = ref
				break
			}
			if b.open(ref) && !(op.deferred && ref == *op.in.BulkID) {
				waiting = true
			}
		}
		if failedRef != "" {
			err := scim.Errorf(http.StatusConflict, "", "the operation refers to bulkId %q, whose operation failed", failedRef)
			if op.deferred {
				// created without its references to break a cycle: take it back out, so
				// that the POST is absent as its single-request form would be
				_ = b.s.delete(b.r.Context(), b.sc, op.rs, op.id, scim.ETags{})
			}
			b.finish(op, b.errorOut(op, err))
			return true
		}
		if waiting {
			continue
		}
		b.finish(op, b.run(op))
		return true
	}
	return false
}

// breakCycle creates the first waiting POST whose open references can be left out,
// without them; its whole data is put once they resolve. It tells whether it found one.
func (b *bulkRun) breakCycle() bool {
	for _, op := range b.ops {
		if op.done || op.deferred || op.method != http.MethodPost || op.data == nil {
			continue
		}
		stripped, ok := strip(substitute(op.data, b.resolved), b.open)
		if !ok {
			continue
		}
		data, _ := json.Marshal(stripped)
		out, err := b.s.create(b.r.Context(), b.sc, op.rs, data)
		if err != nil {
			b.finish(op, b.errorOut(op, err))
			return true
		}
		op.id, _ = out["id"].(string)
		op.in.Version = etagOf(out)
		op.deferred = true
		b.resolved[*op.in.BulkID] = op.id
		return true
	}
	return false
}

// run runs one operation through its single-request form.
func (b *bulkRun) run(op *bulkOp) bulkOpOut {
	ctx := b.r.Context()
	if ref, ok := strings.CutPrefix(op.id, bulkIDPrefix); ok {
		op.id = b.resolved[ref]
	}
	data := []byte(op.in.Data)
	if op.data != nil {
		data, _ = json.Marshal(substitute(op.data, b.resolved))
	}
	ifMatch := scim.ParseETags([]string{op.in.Version})
	var out scim.Resource
	var err error
	status := http.StatusOK
	switch {
	case op.deferred:
		// the second half of a POST that broke a cycle: its whole data, now resolvable
		out, err = b.s.replace(ctx, b.sc, op.rs, op.id, data, ifMatch, scimstore.View{})
		status = http.StatusCreated
	case op.method == http.MethodPost:
		out, err = b.s.create(ctx, b.sc, op.rs, data)
		status = http.StatusCreated
	case op.method == http.MethodPut:
		out, err = b.s.replace(ctx, b.sc, op.rs, op.id, data, ifMatch, scimstore.View{})
	case op.method == http.MethodPatch:
		out, err = b.s.patch(ctx, b.sc, op.rs, op.id, data, ifMatch, scimstore.View{})
	case op.method == http.MethodDelete:
		err = b.s.delete(ctx, b.sc, op.rs, op.id, ifMatch)
		status = http.StatusNoContent
	}
	if err != nil {
		return b.errorOut(op, err)
	}
	if op.id == "" && out != nil {
		op.id, _ = out["id"].(string)
	}
	res := b.base(op)
	res.Status = strconv.Itoa(status)
	if out != nil {
		res.Version = etagOf(out)
		res.Location = locationOf(out)
	}
	return res
}

// base is the part of an operation's answer that does not depend on its outcome.
func (b *bulkRun) base(op *bulkOp) bulkOpOut {
	out := bulkOpOut{Method: op.method}
	if out.Method == "" {
		out.Method = op.in.Method
	}
	if op.in.BulkID != nil {
		out.BulkID = *op.in.BulkID
	}
	if op.rs != nil && op.id != "" && !strings.HasPrefix(op.id, bulkIDPrefix) {
		out.Location = b.sc.BaseURL + op.rs.Type().Endpoint + "/" + op.id
	}
	return out
}

// errorOut is an operation's answer for err: its status, and the SCIM error as the
// response (RFC 7644 section 3.7.3).
func (b *bulkRun) errorOut(op *bulkOp, err error) bulkOpOut {
	se := scim.AsError(err)
	out := b.base(op)
	out.Status = strconv.Itoa(se.Status)
	out.Response = se
	return out
}
