package hubemu

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"sigs.k8s.io/yaml"
)

// ContractEnv overrides where the OpenAPI file is read from.
const ContractEnv = "HUB_OPENAPI"

// ContractPath returns where Docker's OpenAPI file is expected: $HUB_OPENAPI, else
// ../shared/dockerhub/hub-openapi.yaml beside the repository (found by walking up from
// the working directory to go.mod).
func ContractPath() string {
	if p := os.Getenv(ContractEnv); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "dockerhub", "hub-openapi.yaml")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Contract is Docker's published OpenAPI file for Hub, repaired and adjusted in memory
// (see LoadContract), ready to validate requests and responses.
type Contract struct {
	doc    *openapi3.T
	router routers.Router
}

// RequireContract loads the contract or skips the test with a clear message when the
// file is absent; a file that does not load fails the test.
func RequireContract(t testing.TB) *Contract {
	t.Helper()
	p := ContractPath()
	if _, err := os.Stat(p); p == "" || err != nil {
		t.Skipf("Docker Hub OpenAPI file not found at %q (set %s or provide ../shared/dockerhub/hub-openapi.yaml): contract checks skipped", p, ContractEnv)
	}
	c, err := LoadContract(p)
	if err != nil {
		t.Fatalf("loading the Docker Hub OpenAPI file: %v", err)
	}
	return c
}

// LoadContract reads the OpenAPI file at path and prepares it for validation.
//
// The published file does not load as it is, so three defects are repaired in memory
// (the file on disk is never changed):
//   - `required: true` stands on single properties of the organization access token
//     schemas, where OpenAPI wants a list of names on the parent schema: each such flag
//     moves into its parent's `required` list;
//   - `#/components/schemas/team_repo` has `allOf: [$ref: #/components/responses/team_repo]`,
//     which is defined nowhere (and would be a response, not a schema): the allOf is dropped;
//   - the example of Users2FALoginRequest.code is a number where its schema says string:
//     it becomes the string;
//   - some responses (repository calls, components list_tags/get_tag) lack the required
//     description: a placeholder is added.
//
// Examples are not validated at all (more of them are off; they are documentation).
//
// Only the calls this project makes (UsedPaths) are kept and validated.
//
// Then the places where the real service is known to differ from the file are allowed,
// exactly those (each is described in docs/dockerhub-contract.md):
//   - D1 GET /v2/orgs/{org}/members answers a paginated object {count,next,previous,results},
//     not an array;
//   - D2 member roles come back capitalized and include "Editor" (the file's enum has
//     Owner, Member, Invitee);
//   - D3 next/previous are null on the last/first page (the file types them string);
//   - D4 the members `search` parameter is a string (the file says integer);
//   - D5 POST /v2/invites/bulk answers {"invitees":[...]} flat (the file nests the
//     bulk_invite object, which itself has "invitees", under "invitees");
//   - D6 paths are accepted with a trailing slash (handled in the validator's routing).
func LoadContract(path string) (*Contract, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	var tree map[string]any
	if err := json.Unmarshal(js, &tree); err != nil {
		return nil, err
	}
	repairDefects(tree)
	keepPaths(tree)
	js, err = json.Marshal(tree)
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(js)
	if err != nil {
		return nil, fmt.Errorf("loading %s (after in-memory repairs): %w", path, err)
	}
	if err := checkPaths(doc); err != nil {
		return nil, err
	}
	if err := allowKnownDifferences(doc); err != nil {
		return nil, err
	}
	// Examples are documentation, not contract, and more than the one repaired above are
	// off (immutable_tags_verify_request's "v.*" fails its own pattern): don't check them.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("validating %s (after in-memory repairs): %w", path, err)
	}
	// No servers: match any host (the emulator listens on 127.0.0.1:random).
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &Contract{doc: doc, router: router}, nil
}

// repairDefects fixes the file's three known defects in the generic tree.
func repairDefects(tree map[string]any) {
	var walk func(v any)
	walk = func(v any) {
		switch n := v.(type) {
		case map[string]any:
			if props, ok := n["properties"].(map[string]any); ok {
				var req []any
				if r, ok := n["required"].([]any); ok {
					req = r
				}
				moved := false
				for name, p := range props {
					pm, ok := p.(map[string]any)
					if !ok {
						continue
					}
					if b, ok := pm["required"].(bool); ok {
						delete(pm, "required")
						if b {
							req = append(req, name)
						}
						moved = true
					}
				}
				if moved && len(req) > 0 {
					n["required"] = req
				}
			}
			for _, c := range n {
				walk(c)
			}
		case []any:
			for _, c := range n {
				walk(c)
			}
		}
	}
	walk(tree)
	schemas := dig(tree, "components", "schemas")
	if tr, ok := schemas["team_repo"].(map[string]any); ok {
		if all, ok := tr["allOf"].([]any); ok {
			kept := []any{}
			for _, a := range all {
				if am, ok := a.(map[string]any); ok && am["$ref"] == "#/components/responses/team_repo" {
					continue
				}
				kept = append(kept, a)
			}
			if len(kept) == 0 {
				delete(tr, "allOf")
			} else {
				tr["allOf"] = kept
			}
		}
	}
	// Responses need a description; a few of the file's have none (repository calls).
	addDesc := func(responses map[string]any) {
		for _, r := range responses {
			if rm, ok := r.(map[string]any); ok && rm["$ref"] == nil {
				if _, ok := rm["description"]; !ok {
					rm["description"] = "(no description in the published file)"
				}
			}
		}
	}
	for _, item := range dig(tree, "paths") {
		if im, ok := item.(map[string]any); ok {
			for _, op := range im {
				if om, ok := op.(map[string]any); ok {
					if rs, ok := om["responses"].(map[string]any); ok {
						addDesc(rs)
					}
				}
			}
		}
	}
	addDesc(dig(tree, "components", "responses"))
	if code := dig(schemas, "Users2FALoginRequest", "properties", "code"); code != nil {
		if ex, ok := code["example"].(float64); ok {
			code["example"] = fmt.Sprintf("%.0f", ex)
		}
	}
}

// UsedPaths are the calls of the file this project makes; the others are dropped before
// validation (several of them have defects of their own, such as GET
// /v2/orgs/{name}/access-tokens declaring no {name} parameter, that are not ours to judge).
var UsedPaths = []string{
	"/v2/users/login",
	"/v2/auth/token",
	"/v2/orgs/{org_name}/members",
	"/v2/orgs/{org_name}/members/{username}",
	"/v2/orgs/{org_name}/invites",
	"/v2/orgs/{org_name}/groups",
	"/v2/orgs/{org_name}/groups/{group_name}",
	"/v2/orgs/{org_name}/groups/{group_name}/members",
	"/v2/orgs/{org_name}/groups/{group_name}/members/{username}",
	"/v2/invites/{id}",
	"/v2/invites/{id}/resend",
	"/v2/invites/bulk",
}

func keepPaths(tree map[string]any) {
	paths := dig(tree, "paths")
	keep := map[string]bool{}
	for _, p := range UsedPaths {
		keep[p] = true
	}
	for p := range paths {
		if !keep[p] {
			delete(paths, p)
		}
	}
}

func checkPaths(doc *openapi3.T) error {
	for _, p := range UsedPaths {
		if doc.Paths.Value(p) == nil {
			return fmt.Errorf("the OpenAPI file no longer has %s", p)
		}
	}
	return nil
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

func allowKnownDifferences(doc *openapi3.T) error {
	schemas := doc.Components.Schemas
	need := func(name string) (*openapi3.Schema, error) {
		s, ok := schemas[name]
		if !ok || s.Value == nil {
			return nil, fmt.Errorf("OpenAPI file has no schema %q", name)
		}
		return s.Value, nil
	}
	paginated, err := need("org_member_paginated")
	if err != nil {
		return err
	}
	member, err := need("org_member")
	if err != nil {
		return err
	}
	bulk, err := need("bulk_invite")
	if err != nil {
		return err
	}
	op := func(path, method string) (*openapi3.Operation, error) {
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			return nil, fmt.Errorf("OpenAPI file has no %s %s", method, path)
		}
		return item.GetOperation(method), nil
	}
	jsonSchema := func(o *openapi3.Operation, status int) (*openapi3.MediaType, error) {
		r := o.Responses.Status(status)
		if r == nil || r.Value == nil || r.Value.Content.Get("application/json") == nil {
			return nil, fmt.Errorf("OpenAPI file has no JSON %d response for %s", status, o.OperationID+o.Summary)
		}
		return r.Value.Content.Get("application/json"), nil
	}
	nullableLinks := func(s *openapi3.Schema) {
		for _, k := range []string{"next", "previous"} {
			if p := s.Properties[k]; p != nil && p.Value != nil {
				p.Value.Nullable = true
			}
		}
	}

	// D1: the members list is the paginated object.
	list, err := op("/v2/orgs/{org_name}/members", http.MethodGet)
	if err != nil {
		return err
	}
	mt, err := jsonSchema(list, http.StatusOK)
	if err != nil {
		return err
	}
	mt.Schema = schemas["org_member_paginated"]
	// D2: capitalized roles, Editor included.
	if role := member.Properties["role"]; role != nil && role.Value != nil {
		if !containsAny(role.Value.Enum, "Editor") {
			role.Value.Enum = append(role.Value.Enum, "Editor")
		}
	}
	// D3: null next/previous on every paginated list we use.
	nullableLinks(paginated)
	for _, p := range []string{"/v2/orgs/{org_name}/groups", "/v2/orgs/{org_name}/groups/{group_name}/members"} {
		o, err := op(p, http.MethodGet)
		if err != nil {
			return err
		}
		mt, err := jsonSchema(o, http.StatusOK)
		if err != nil {
			return err
		}
		nullableLinks(mt.Schema.Value)
	}
	// D4: search is a string.
	if sp := doc.Components.Parameters["search"]; sp != nil && sp.Value != nil && sp.Value.Schema != nil {
		sp.Value.Schema = openapi3.NewStringSchema().NewRef()
	}
	// D5: the bulk-invite answer is flat.
	inv, err := op("/v2/invites/bulk", http.MethodPost)
	if err != nil {
		return err
	}
	mt, err = jsonSchema(inv, http.StatusAccepted)
	if err != nil {
		return err
	}
	mt.Schema = openapi3.NewSchemaRef("", bulk)
	return nil
}

func containsAny(list []any, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Validator checks traffic against a Contract. Violations fail the test given to
// Contract.Validator (t.Errorf, safe from server goroutines) and are kept for inspection.
type Validator struct {
	c *Contract
	t testing.TB

	mu                  sync.Mutex
	violations          []string
	requests, responses int
}

// Validator returns a validator reporting to t (which may be nil: violations are then
// only collected).
func (c *Contract) Validator(t testing.TB) *Validator { return &Validator{c: c, t: t} }

// Violations returns every violation seen so far.
func (v *Validator) Violations() []string {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.violations...)
}

// Checked returns how many requests and responses were validated against the file.
func (v *Validator) Checked() (requests, responses int) {
	if v == nil {
		return 0, 0
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.requests, v.responses
}

func (v *Validator) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	v.mu.Lock()
	v.violations = append(v.violations, msg)
	v.mu.Unlock()
	if v.t != nil {
		v.t.Errorf("Docker Hub contract violation: %s", msg)
	}
}

func bearerOnly(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecurityScheme == nil || in.SecurityScheme.Type != "http" || !strings.EqualFold(in.SecurityScheme.Scheme, "bearer") {
		return fmt.Errorf("unsupported security scheme %q", in.SecuritySchemeName)
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); !ok || strings.TrimSpace(tok) == "" {
		return errors.New("no Bearer token in the Authorization header")
	}
	return nil
}

// CheckRequest validates one request (its body is read and restored). It returns the
// route for CheckResponse, or nil with the violation when the file has no such call.
func (v *Validator) checkRequest(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	rr := r.Clone(r.Context())
	rr.URL.Path = strings.TrimSuffix(r.URL.Path, "/") // D6: trailing slash tolerated
	rr.URL.RawPath = ""
	rr.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := v.c.router.FindRoute(rr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: no such call in the OpenAPI file: %v", r.Method, r.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: rr, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerOnly, MultiError: true}}
	v.mu.Lock()
	v.requests++
	v.mu.Unlock()
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return in, fmt.Errorf("request %s %s: %v", r.Method, r.URL.Path, err)
	}
	return in, nil
}

// OptionalValidator returns a validator reporting to t, or nil (with a note in the
// test log) when the OpenAPI file is absent; a nil Validator's Middleware validates nothing.
func OptionalValidator(t testing.TB) *Validator {
	t.Helper()
	p := ContractPath()
	if _, err := os.Stat(p); p == "" || err != nil {
		t.Logf("Docker Hub OpenAPI file not found at %q (set %s): contract checks skipped", p, ContractEnv)
		return nil
	}
	c, err := LoadContract(p)
	if err != nil {
		t.Fatalf("loading the Docker Hub OpenAPI file: %v", err)
	}
	return c.Validator(t)
}

// Middleware validates each request before next sees it and each response before the
// client does. Responses marked as injected faults (FaultHeader) are not held to the
// file (they stand for gateways and outages the file does not describe), and
// undocumented statuses (429, 5xx) are allowed; a 429 must still carry a retry hint.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	if v == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		in, err := v.checkRequest(r, body)
		if err != nil {
			v.violate("%v", err)
		}
		rec := &recorder{w: w, header: http.Header{}}
		next.ServeHTTP(rec, r)
		if rec.hijacked {
			return
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		fault := rec.header.Get(FaultHeader)
		rec.header.Del(FaultHeader)
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
			if rec.header.Get(h) == "" {
				v.violate("%s %s: response %d lacks %s", r.Method, r.URL.Path, rec.status, h)
			}
		}
		if rec.status == http.StatusTooManyRequests {
			if rec.header.Get("Retry-After") == "" && rec.header.Get("X-Retry-After") == "" {
				v.violate("%s %s: 429 without Retry-After or X-Retry-After", r.Method, r.URL.Path)
			}
			var b struct{ Detail string }
			if json.Unmarshal(rec.body.Bytes(), &b) != nil || b.Detail == "" {
				v.violate("%s %s: 429 body is not {\"detail\":...}: %.80q", r.Method, r.URL.Path, rec.body.String())
			}
		}
		if in != nil && fault == "" {
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: rec.status,
				Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())),
				Options: &openapi3filter.Options{MultiError: true}}
			v.mu.Lock()
			v.responses++
			v.mu.Unlock()
			if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
				v.violate("response %d to %s %s: %v", rec.status, r.Method, r.URL.Path, err)
			}
		}
		for k, vals := range rec.header {
			w.Header()[k] = vals
		}
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

// recorder buffers the response for validation; Hijack passes through (dropped
// connections are not validated).
type recorder struct {
	w        http.ResponseWriter
	header   http.Header
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	r.hijacked = true
	return hj.Hijack()
}
