package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

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
	// provisional: a POST created without the references in stripped to break a cycle,
	// not yet completed; only the operations of its cycle see its id
	provisional bool
	stripped    map[string]bool
	active      bool // being resolved (on the stack)
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
	posts    map[string]*bulkOp // bulkId -> its POST
	resolved map[string]string  // bulkId -> id of the resource its POST created
	failed   map[string]bool    // bulkIds of operations that failed
	stack    []*bulkOp          // the operations being resolved, outermost first
	pending  []*bulkOp          // provisional POSTs left before their completion
}

// runBulk runs the operations in request order. An operation that refers to a bulkId
// first runs the POST that defines it, where it is in the request, and what that one
// refers to, depth first: "resolving" it. A reference back to an operation being
// resolved is a cycle (RFC 7644 section 3.7.1): the outermost POST of the cycle whose
// open references can be left out (a member, a manager) is created without them
// ("provisional"), only the operations of the cycle see its id, and once they ran it is
// completed by a PATCH that adds just what was left out. An operation outside the cycle
// runs only after that completion. A completion that fails, or a cycle member whose
// references failed, takes the resource back out (deleted, retried, on a context the
// client cannot cancel), and what was created referring to it too. Circular references
// that cannot be broken answer 409. Processing stops after failOn errors counted in that
// order (0: never); what stopped in the middle of a cycle is taken back out.
func (s *Server) runBulk(r *http.Request, sc scimstore.Scope, ops []*bulkOp, failOn int) {
	b := &bulkRun{s: s, r: r, sc: sc, ops: ops, failOn: failOn, posts: map[string]*bulkOp{},
		resolved: map[string]string{}, failed: map[string]bool{}}
	for _, op := range ops {
		if op.method == http.MethodPost && op.in.BulkID != nil {
			b.posts[*op.in.BulkID] = op
		}
	}
	for _, op := range ops {
		if b.stopped() {
			break
		}
		if !op.done && !op.provisional {
			b.resolve(op)
		}
	}
	// stopped in the middle of a cycle: what is not complete was not processed
	for _, op := range ops {
		if op.provisional && !op.done {
			b.fail(op, scim.Errorf(http.StatusConflict, "",
				"processing stopped (failOnErrors) before the operation's circular bulkId references were resolved"))
		}
	}
	b.refresh()
}

func (b *bulkRun) stopped() bool { return b.failOn > 0 && b.errs >= b.failOn }

func (b *bulkRun) open(ref string) bool { _, ok := b.resolved[ref]; return !ok }

// finish records an operation's answer.
func (b *bulkRun) finish(op *bulkOp, out bulkOpOut) {
	op.done = true
	op.out = &out
	if out.Response != nil {
		b.errs++
		if op.in.BulkID != nil {
			b.failed[*op.in.BulkID] = true
			delete(b.resolved, *op.in.BulkID)
		}
		return
	}
	if op.in.BulkID != nil && op.id != "" && op.method == http.MethodPost {
		b.resolved[*op.in.BulkID] = op.id
	}
	b.completePending()
}

// fail answers err for op; a provisional op is taken back out, and what refers to it.
func (b *bulkRun) fail(op *bulkOp, err error) {
	wasProvisional := op.provisional
	if op.provisional {
		b.takeBack(op)
		op.provisional = false
	}
	b.finish(op, b.errorOut(op, err))
	if wasProvisional {
		b.cascade(op)
	}
}

// cascade fails the POSTs that were created referring to op's provisional resource,
// now gone: they are taken back out too.
func (b *bulkRun) cascade(op *bulkOp) {
	if op.in.BulkID == nil {
		return
	}
	gone := *op.in.BulkID
	b.failed[gone] = true
	delete(b.resolved, gone)
	for _, o := range b.ops {
		if o == op || o.method != http.MethodPost || o.id == "" || !refersTo(o, gone) {
			continue
		}
		if o.done && o.out != nil && o.out.Response == nil || o.provisional {
			b.takeBack(o)
			o.provisional = false
			o.done = false
			b.fail(o, scim.Errorf(http.StatusConflict, "", "the operation refers to bulkId %q, whose operation failed", gone))
			b.cascade(o)
		}
	}
}

func refersTo(op *bulkOp, ref string) bool {
	for _, r := range op.refs {
		if r == ref {
			return true
		}
	}
	return false
}

// takeBack deletes what op created. It must not be left half-written whatever the
// client does: it runs on a context the request's cancellation does not reach, bounded,
// and retries.
func (b *bulkRun) takeBack(op *bulkOp) {
	if op.id == "" || strings.HasPrefix(op.id, bulkIDPrefix) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.r.Context()), takeBackTimeout)
	defer cancel()
	backoff := 50 * time.Millisecond
	for {
		err := b.s.delete(ctx, b.sc, op.rs, op.id, scim.ETags{})
		if err == nil || scim.AsError(err).Status == http.StatusNotFound {
			op.id = "" // gone: its answer names no location
			return
		}
		select {
		case <-ctx.Done():
			b.s.o.Log.Error(err, "bulk: could not take back a resource created to break a cycle", "type", op.rs.Type().Name, "id", op.id)
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// takeBackTimeout bounds the retries of taking back a cycle-broken resource.
const takeBackTimeout = 30 * time.Second

// resolve runs op after the POSTs it refers to. It answers the outermost operation of a
// cycle where it must be broken when that is not op (the operations above it unwind,
// unanswered, and run again once it is created), else nil.
func (b *bulkRun) resolve(op *bulkOp) *bulkOp {
	if op.err != nil {
		b.finish(op, b.errorOut(op, op.err))
		return nil
	}
	op.active = true
	b.stack = append(b.stack, op)
	defer func() {
		op.active = false
		b.stack = b.stack[:len(b.stack)-1]
	}()
	waiting := false
	for i := 0; i < len(op.refs); i++ {
		ref := op.refs[i]
		if i == 0 {
			waiting = false
		}
		if op.done { // taken back meanwhile: its cycle failed
			return nil
		}
		if b.failed[ref] {
			b.fail(op, scim.Errorf(http.StatusConflict, "", "the operation refers to bulkId %q, whose operation failed", ref))
			return nil
		}
		if b.stopped() {
			return nil
		}
		if !b.open(ref) {
			continue
		}
		p := b.posts[ref]
		if p.active {
			if op.provisional {
				// left out when op was created: added by its completion, once p exists
				waiting = true
				continue
			}
			q := b.breakable(p)
			if q == nil {
				// every operation of the cycle answers it
				for j := len(b.stack) - 1; j >= 0 && !b.stack[j].done; j-- {
					b.fail(b.stack[j], scim.Errorf(http.StatusConflict, "",
						"the operation is part of circular bulkId references that cannot be resolved"))
					if b.stack[j] == p {
						break
					}
				}
				return nil
			}
			if q != op {
				return q
			}
			if !b.createProvisional(op) {
				return nil
			}
			i = -1
			continue
		}
		q := b.resolve(p)
		if q != nil && q != op {
			return q
		}
		if q == op {
			if !b.createProvisional(op) {
				return nil
			}
		}
		i = -1 // again: what p ran may have failed or resolved others
	}
	if b.stopped() || op.done {
		return nil
	}
	if waiting {
		// completed once the operations of the cycle below it exist
		b.pending = append(b.pending, op)
		return nil
	}
	b.runAndFinish(op)
	return nil
}

// runAndFinish runs op and records its answer; a completion that fails takes the
// resource back out (and what refers to it) and answers the error.
func (b *bulkRun) runAndFinish(op *bulkOp) {
	out := b.run(op)
	if out.Response != nil && op.provisional {
		b.fail(op, out.Response)
	} else {
		b.finish(op, out)
	}
	op.provisional = false
}

// breakable is the outermost POST of the cycle from p to the innermost operation being
// resolved whose open references can be left out.
func (b *bulkRun) breakable(p *bulkOp) *bulkOp {
	in := false
	for _, op := range b.stack {
		in = in || op == p
		if !in || op.method != http.MethodPost || op.provisional || op.data == nil {
			continue
		}
		if _, ok := strip(substitute(op.data, b.resolved), b.open); ok {
			return op
		}
	}
	return nil
}

// createProvisional creates op without its open references; its id is then resolved
// for the operations of its cycle. It tells whether it was created (else op failed).
func (b *bulkRun) createProvisional(op *bulkOp) bool {
	stripped, _ := strip(substitute(op.data, b.resolved), b.open)
	op.stripped = map[string]bool{}
	for _, ref := range op.refs {
		if b.open(ref) {
			op.stripped[ref] = true
		}
	}
	data, _ := json.Marshal(stripped)
	out, err := b.s.create(b.r.Context(), b.sc, op.rs, data)
	if err != nil {
		b.fail(op, err)
		return false
	}
	op.id, _ = out["id"].(string)
	op.provisional = true
	b.resolved[*op.in.BulkID] = op.id
	return true
}

// completePending completes the provisional POSTs whose left-out references exist now.
func (b *bulkRun) completePending() {
	for i := 0; i < len(b.pending); i++ {
		op := b.pending[i]
		ready := true
		for ref := range op.stripped {
			if b.open(ref) {
				ready = false
			}
		}
		if !ready || op.done {
			continue
		}
		b.pending = append(b.pending[:i], b.pending[i+1:]...)
		b.runAndFinish(op)
		i = -1
	}
}

// refresh answers, for every operation that wrote a resource, the version the resource
// has when the answer is written: a later operation of the request (a group taking a
// user as member) changes the version of what an earlier one wrote.
func (b *bulkRun) refresh() {
	ctx := context.WithoutCancel(b.r.Context())
	for _, op := range b.ops {
		if op.out == nil || op.out.Response != nil || op.method == http.MethodDelete || op.id == "" {
			continue
		}
		if out, err := op.rs.Get(ctx, b.sc, op.id, scimstore.View{}); err == nil {
			op.out.Version = etagOf(out)
		}
	}
}

// completion is the PATCH that adds to a provisional resource what was left out of it.
func (b *bulkRun) completion(op *bulkOp) []byte {
	left := leftOut(op.data, func(ref string) bool { return op.stripped[ref] })
	p, _ := json.Marshal(map[string]any{
		"schemas":    []string{scim.SchemaPatchOp},
		"Operations": []any{map[string]any{"op": "add", "value": substitute(left, b.resolved)}},
	})
	return p
}

// leftOut is the part of v that strip(v, open) leaves out: the elements and complex
// attributes whose value is an open reference, in their place.
func leftOut(v any, open func(string) bool) any {
	isOpenRef := func(e any) bool {
		m, ok := e.(map[string]any)
		if !ok {
			return false
		}
		for k, val := range m {
			if s, ok := val.(string); ok && strings.EqualFold(k, "value") {
				if ref, ok := strings.CutPrefix(s, bulkIDPrefix); ok && open(ref) {
					return true
				}
			}
		}
		return false
	}
	switch t := v.(type) {
	case []any:
		var out []any
		for _, e := range t {
			if isOpenRef(e) {
				out = append(out, e)
			} else if l := leftOut(e, open); l != nil {
				out = append(out, l)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range t {
			if isOpenRef(e) {
				out[k] = e
			} else if l := leftOut(e, open); l != nil {
				out[k] = l
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return nil
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
	case op.provisional:
		// the second half of a POST that broke a cycle: what was left out, now resolvable,
		// added under no precondition of its own making
		out, err = b.s.patch(ctx, b.sc, op.rs, op.id, b.completion(op), scim.ETags{}, scimstore.View{})
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
