package scimserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

type reqInfo struct {
	config   string
	resource string
}

type ctxKey struct{}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// instrument adds panic recovery, metrics and one log line per request (never headers).
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{resource: "other"}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.o.Log.Error(nil, "panic serving SCIM request", "panic", p, "method", r.Method, "path", r.URL.Path)
				if sw.code == 0 {
					scim.WriteError(sw, &scim.Error{Status: 500, Detail: "internal error"})
				}
			}
			code := strconv.Itoa(sw.code)
			method := metricMethod(r.Method)
			requestsTotal.WithLabelValues(info.config, method, info.resource, code).Inc()
			requestDuration.WithLabelValues(method, info.resource).Observe(time.Since(start).Seconds())
			s.o.Log.V(1).Info("SCIM request", "method", r.Method, "path", r.URL.Path, "config", info.config,
				"code", sw.code, "duration", time.Since(start).String(), "userAgent", r.UserAgent())
		}()
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, info)))
	})
}

// metricMethod bounds the method label: clients may send any token as a method.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions:
		return m
	}
	return "other"
}

func info(r *http.Request) *reqInfo {
	if i, ok := r.Context().Value(ctxKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

func unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
	scim.WriteError(w, scim.Errorf(http.StatusUnauthorized, "", "%s", detail))
}

// authFailed answers a failed authentication on the base path of ns/name: 401, or 429
// with Retry-After once this client has used up its failure budget for this path. known
// tells whether ns/name is an existing ScimConfig (metric labels are bounded to those).
// reason is for the log; the presented token and the Authorization header never are.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request, ns, name string, known bool, reason, detail string) {
	client := s.clients.client(r)
	v := s.limiter.failure(failureKey(client, ns, name), time.Now())
	if !plausibleName(ns, name) {
		ns, name = "<invalid>", "<invalid>" // a client's made-up path: keep log lines short
	}
	if v.allowed {
		s.o.Log.V(1).Info("SCIM authentication failed", "namespace", ns, "config", name, "client", client, "reason", reason)
		unauthorized(w, detail)
		return
	}
	lns, lcfg := "", ""
	if known {
		lns, lcfg = ns, name
	}
	authThrottled.WithLabelValues(lns, lcfg).Inc()
	secs := int64((v.retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	log := s.o.Log.V(1)
	if v.report {
		log = s.o.Log
	}
	if v.full {
		log.Info("SCIM authentication failures throttled: the failure limiter is full, failures of new clients answer 429 until entries go idle",
			"namespace", ns, "config", name, "client", client, "reason", reason, "maxKeys", failureMaxKeys)
	} else {
		log.Info("SCIM authentication failures throttled: this client keeps failing on this ScimConfig's path; valid tokens are still accepted",
			"namespace", ns, "config", name, "client", client, "reason", reason, "retryAfterSeconds", secs)
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	scim.WriteError(w, scim.Errorf(http.StatusTooManyRequests, "",
		"too many failed authentication attempts from this client on this SCIM endpoint; retry after %d seconds (a valid token is always accepted)", secs))
}

// route: /scim/v2/<namespace>/<name>/<Resource>[/<id>]
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, naming.BasePathPrefix)
	if !ok {
		scim.WriteError(w, scim.NotFound("no SCIM endpoint at %s; SCIM base paths look like %s<namespace>/<scimconfig>", r.URL.Path, naming.BasePathPrefix))
		return
	}
	parts := strings.SplitN(strings.Trim(rest, "/"), "/", 4)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		scim.WriteError(w, scim.NotFound("no SCIM endpoint at %s", r.URL.Path))
		return
	}
	ns, name := parts[0], parts[1]
	var resource, id, extra string
	if len(parts) > 2 {
		resource = parts[2]
	}
	if len(parts) > 3 {
		id = parts[3]
		if i := strings.Index(id, "/"); i >= 0 {
			id, extra = id[:i], id[i+1:]
		}
	}
	ri := info(r)
	ri.resource = canonicalResource(resource)

	// The token is checked before anything else: a valid token is never refused because
	// of failures, its own or anyone's. Only failed attempts meet the limiter.
	tok, hasTok := bearer(r)
	var cfg scimv1.ScimConfig
	err := s.o.Client.Get(r.Context(), types.NamespacedName{Namespace: ns, Name: name}, &cfg)
	known := err == nil
	if !hasTok {
		s.authFailed(w, r, ns, name, known, "missing token", "a bearer token is required (Authorization: Bearer <token>)")
		return
	}
	if err != nil {
		if apierrors.IsNotFound(err) || !scimstore.ValidID(name) {
			// an unknown config answers like a wrong token: no probing which configs exist
			s.authFailed(w, r, ns, name, false, "unknown ScimConfig", "the bearer token is not valid for this SCIM endpoint")
			return
		}
		scim.WriteError(w, scimstore.APIError(err, "ScimConfig"))
		return
	}
	ok, err = s.tokens.matches(r.Context(), &cfg, []byte(tok))
	if !ok && err != nil && apiUnavailable(err) {
		scim.WriteError(w, scimstore.APIError(err, "token"))
		return
	}
	if !ok {
		s.authFailed(w, r, ns, name, true, "wrong token", "the bearer token is not valid for this SCIM endpoint")
		return
	}
	ri.config = ns + "/" + name
	if !cfg.IsEnabled() {
		scim.WriteError(w, scim.Errorf(http.StatusForbidden, "", "SCIM provisioning is disabled for this organization (ScimConfig %s/%s has enabled: false)", ns, name))
		return
	}
	sc := scimstore.Scope{Config: &cfg, BaseURL: s.baseURL(r, ns, name)}
	if r.Method == http.MethodHead {
		// HEAD is GET without the body (RFC 9110 section 9.3.2); net/http drops the body
		// for the request it read, whatever the handlers see.
		r = r.WithContext(r.Context())
		r.Method = http.MethodGet
	}
	if extra != "" {
		scim.WriteError(w, scim.NotFound("no SCIM endpoint at %s", r.URL.Path))
		return
	}
	switch ri.resource {
	case "Users":
		s.resource(w, r, sc, scim.UserType, id)
	case "Groups":
		s.resource(w, r, sc, scim.GroupType, id)
	case ".search":
		if id != "" {
			scim.WriteError(w, scim.NotFound("no SCIM endpoint at %s", r.URL.Path))
			return
		}
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		s.rootSearch(w, r, sc)
	case "ServiceProviderConfig", "ResourceTypes", "Schemas":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		s.discovery(w, sc, ri.resource, id)
	default:
		scim.WriteError(w, scim.NotFound("no SCIM resource %q; this endpoint serves Users, Groups, ServiceProviderConfig, ResourceTypes, Schemas and .search", resource))
	}
}

func canonicalResource(seg string) string {
	for _, c := range []string{"Users", "Groups", "ServiceProviderConfig", "ResourceTypes", "Schemas", ".search"} {
		if strings.EqualFold(seg, c) {
			return c
		}
	}
	switch strings.ToLower(seg) {
	case "serviceproviderconfigs", "serviceconfiguration":
		return "ServiceProviderConfig"
	}
	return "other"
}

// baseURL is the SCIM base URL of ns/name as the IdP addressed it: the scheme and host
// it used (the connection's, or a trusted proxy's X-Forwarded-Proto/Host) and the base
// path. meta.location and the discovery documents are built on it.
func (s *Server) baseURL(r *http.Request, ns, name string) string {
	scheme, host := s.clients.origin(r)
	return scheme + "://" + host + naming.BasePath(ns, name)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	scim.WriteError(w, scim.Errorf(http.StatusMethodNotAllowed, "", "method not allowed; allowed: %s", allow))
}

func (s *Server) discovery(w http.ResponseWriter, sc scimstore.Scope, kind, id string) {
	switch kind {
	case "ServiceProviderConfig":
		if id != "" {
			scim.WriteError(w, scim.NotFound("no such resource"))
			return
		}
		scim.WriteJSON(w, http.StatusOK, scim.ServiceProviderConfig(sc.BaseURL))
	case "ResourceTypes":
		docs := []map[string]any{scim.ResourceTypeDoc(sc.BaseURL, scim.UserType), scim.ResourceTypeDoc(sc.BaseURL, scim.GroupType)}
		if id == "" {
			scim.WriteJSON(w, http.StatusOK, scim.ListOf(docs))
			return
		}
		for _, d := range docs {
			if strings.EqualFold(d["id"].(string), id) {
				scim.WriteJSON(w, http.StatusOK, d)
				return
			}
		}
		scim.WriteError(w, scim.NotFound("ResourceType %q not found", id))
	case "Schemas":
		var docs []map[string]any
		for _, sch := range scim.AllSchemas() {
			d := scim.SchemaDoc(sc.BaseURL, sch)
			if id != "" && strings.EqualFold(sch.ID, id) {
				scim.WriteJSON(w, http.StatusOK, d)
				return
			}
			docs = append(docs, d)
		}
		if id != "" {
			scim.WriteError(w, scim.NotFound("Schema %q not found", id))
			return
		}
		scim.WriteJSON(w, http.StatusOK, scim.ListOf(docs))
	}
}

// readBody reads a JSON object body within the size limit.
// tooLargeDrainBytes bounds what is read, and thrown away, of a body over the limit.
const tooLargeDrainBytes = 8 << 20

func (s *Server) readBody(w http.ResponseWriter, r *http.Request, into any) error {
	body := http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
	b, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			// Let a client that is still sending finish (up to a bound), so that it reads
			// the 413 rather than a connection reset in the middle of its write: the server
			// closes the connection after a body over the limit without reading the rest.
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, tooLargeDrainBytes))
			return scim.Errorf(http.StatusRequestEntityTooLarge, "", "request body is larger than %d bytes", s.o.MaxBodyBytes)
		}
		return scim.BadRequest(scim.ErrInvalidSyntax, "cannot read the request body")
	}
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

// writeResource answers one resource with its ETag (and, for a 201, its Location).
func writeResource(w http.ResponseWriter, status int, res scim.Resource, etag string) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	if m, ok := res["meta"].(map[string]any); ok && status == http.StatusCreated {
		if loc, ok := m["location"].(string); ok {
			w.Header().Set("Location", loc)
		}
	}
	scim.WriteJSON(w, status, res)
}

// ifMatchVersion turns the If-Match header into the version token the store checks
// before its conditional write: "" when there is no header or it is "*" (any current
// version: the store still answers 404 for a missing resource), the tag when it names
// one. Of several tags it picks the one the object on the API server has, read
// uncached: a replica whose cache lags must not refuse a current tag, and since the
// store checks the token again against what it writes, a change in between answers 412.
func (s *Server) ifMatchVersion(r *http.Request, sc scimstore.Scope, rt *scim.ResourceType, id string) string {
	l := scim.ParseETags(r.Header.Values("If-Match"))
	if l.Any || len(l.Tags) == 0 {
		return ""
	}
	tag := l.Tags[0]
	if len(l.Tags) > 1 && scimstore.ValidID(id) {
		var obj client.Object = &scimv1.OrgMember{}
		if rt == scim.GroupType {
			obj = &scimv1.OrgGroup{}
		}
		if err := s.o.APIReader.Get(r.Context(), types.NamespacedName{Namespace: sc.Config.Namespace, Name: id}, obj); err == nil {
			for _, t := range l.Tags {
				if t == scimstore.VersionOf(obj) {
					tag = t
					break
				}
			}
		}
	}
	if tag == "" {
		// W/"" names no version, yet "" asks the store for none: send what no
		// version token is, so that the precondition fails as it must
		return `""`
	}
	return tag
}

func (s *Server) resource(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rt *scim.ResourceType, id string) {
	ctx := r.Context()
	if id == ".search" {
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		var q scim.Query
		if err := s.readBody(w, r, &q); err != nil {
			scim.WriteError(w, err)
			return
		}
		s.list(w, r, sc, rt, q)
		return
	}
	var ifMatch string
	switch r.Method {
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
		if id != "" {
			ifMatch = s.ifMatchVersion(r, sc, rt, id)
		}
	}
	q, qerr := scim.QueryFromURL(r.URL.Query())
	switch {
	case id == "" && r.Method == http.MethodGet:
		if qerr != nil {
			scim.WriteError(w, qerr)
			return
		}
		s.list(w, r, sc, rt, q)
	case id == "" && r.Method == http.MethodPost:
		body := map[string]any{}
		if err := s.readBody(w, r, &body); err != nil {
			scim.WriteError(w, err)
			return
		}
		res := scim.Canonicalize(rt, body)
		var out scim.Resource
		var err error
		if rt == scim.UserType {
			out, err = s.store.CreateUser(ctx, sc, res)
		} else {
			out, err = s.store.CreateGroup(ctx, sc, res)
		}
		if err != nil {
			scim.WriteError(w, err)
			return
		}
		writeResource(w, http.StatusCreated, out, etagOf(out))
	case id == "":
		methodNotAllowed(w, "GET, HEAD, POST")
	case r.Method == http.MethodGet:
		var out scim.Resource
		var err error
		if rt == scim.UserType {
			out, err = s.store.GetUser(ctx, sc, id)
		} else {
			out, err = s.store.GetGroup(ctx, sc, id, withMembers(q, ""))
		}
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
			scim.Project(rt, out, q.Attributes, q.ExcludedAttributes)
		}
		writeResource(w, http.StatusOK, out, etag)
	case r.Method == http.MethodPut:
		body := map[string]any{}
		if err := s.readBody(w, r, &body); err != nil {
			scim.WriteError(w, err)
			return
		}
		res := scim.Canonicalize(rt, body)
		var out scim.Resource
		var err error
		if rt == scim.UserType {
			out, err = s.store.ReplaceUser(ctx, sc, id, res, ifMatch)
		} else {
			out, err = s.store.ReplaceGroup(ctx, sc, id, res, ifMatch, withMembers(q, ""))
		}
		if err != nil {
			scim.WriteError(w, err)
			return
		}
		writeResource(w, http.StatusOK, out, etagOf(out))
	case r.Method == http.MethodPatch:
		var p scim.PatchRequest
		if err := s.readBody(w, r, &p); err != nil {
			scim.WriteError(w, err)
			return
		}
		var out scim.Resource
		var err error
		if rt == scim.UserType {
			out, err = s.store.PatchUser(ctx, sc, id, p.Operations, ifMatch)
		} else {
			out, err = s.store.PatchGroup(ctx, sc, id, p.Operations, ifMatch, withMembers(q, ""))
		}
		if err != nil {
			scim.WriteError(w, err)
			return
		}
		etag := etagOf(out)
		if qerr == nil {
			scim.Project(rt, out, q.Attributes, q.ExcludedAttributes)
		}
		writeResource(w, http.StatusOK, out, etag)
	case r.Method == http.MethodDelete:
		var err error
		if rt == scim.UserType {
			err = s.store.DeleteUser(ctx, sc, id, ifMatch)
		} else {
			err = s.store.DeleteGroup(ctx, sc, id, ifMatch)
		}
		if err != nil {
			scim.WriteError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		methodNotAllowed(w, "GET, HEAD, PUT, PATCH, DELETE")
	}
}

func withMembers(q scim.Query, filter string) bool {
	if strings.Contains(strings.ToLower(filter), "members") {
		return true
	}
	return scim.Includes(q.Attributes, "members") && !scim.Excludes(q.ExcludedAttributes, "members")
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, rt *scim.ResourceType, q scim.Query) {
	var f *scim.Filter
	if strings.TrimSpace(q.Filter) != "" {
		var err error
		if f, err = scim.ParseFilter(rt, q.Filter); err != nil {
			scim.WriteError(w, err)
			return
		}
	}
	if rt == scim.UserType && f == nil && q.SortBy == "" {
		s.listUsersPage(w, r, sc, q)
		return
	}
	var items []scim.Resource
	var err error
	// Members are looked up before the page is cut only when the filter or the order needs
	// them; otherwise only the page's groups get theirs (GET /Groups?count=100 on groups of
	// 50,000 members once built every member of every group).
	membersToSelect := strings.Contains(strings.ToLower(q.Filter), "members") || strings.Contains(strings.ToLower(q.SortBy), "members")
	if rt == scim.UserType {
		items, err = s.store.ListUsers(r.Context(), sc, f)
	} else {
		items, err = s.store.ListGroups(r.Context(), sc, f, membersToSelect)
	}
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	if err := scim.SortResources(rt, items, q.SortBy, q.SortOrder); err != nil {
		scim.WriteError(w, err)
		return
	}
	start, count := q.Page()
	total := len(items)
	page := []scim.Resource{}
	if start <= total {
		end := min(start-1+count, total)
		page = items[start-1 : end]
	}
	if rt == scim.GroupType && !membersToSelect && withMembers(q, "") {
		for i, res := range page {
			withM, err := s.store.GetGroup(r.Context(), sc, res["id"].(string), true)
			var se *scim.Error
			if errors.As(err, &se) && se.Status == http.StatusNotFound {
				continue // deleted since the listing: listed as it was
			}
			if err != nil {
				scim.WriteError(w, err)
				return
			}
			page[i] = withM
		}
	}
	for _, res := range page {
		scim.Project(rt, res, q.Attributes, q.ExcludedAttributes)
	}
	scim.WriteJSON(w, http.StatusOK, scim.ListResponse{
		Schemas: []string{scim.SchemaListResponse}, TotalResults: total,
		StartIndex: start, ItemsPerPage: len(page), Resources: page,
	})
}

// listUsersPage answers an unfiltered, unsorted Users list (the IdPs' paging case) by
// cutting the page before converting: the answer is the one of the general path.
func (s *Server) listUsersPage(w http.ResponseWriter, r *http.Request, sc scimstore.Scope, q scim.Query) {
	// validates sortOrder as the general path does
	if err := scim.SortResources(scim.UserType, nil, "", q.SortOrder); err != nil {
		scim.WriteError(w, err)
		return
	}
	start, count := q.Page()
	page, total, err := s.store.ListUsersPage(r.Context(), sc, start, count)
	if err != nil {
		scim.WriteError(w, err)
		return
	}
	for _, res := range page {
		scim.Project(scim.UserType, res, q.Attributes, q.ExcludedAttributes)
	}
	scim.WriteJSON(w, http.StatusOK, scim.ListResponse{
		Schemas: []string{scim.SchemaListResponse}, TotalResults: total,
		StartIndex: start, ItemsPerPage: len(page), Resources: page,
	})
}

// rootSearch is POST <base>/.search: Users and Groups together.
func (s *Server) rootSearch(w http.ResponseWriter, r *http.Request, sc scimstore.Scope) {
	var q scim.Query
	if err := s.readBody(w, r, &q); err != nil {
		scim.WriteError(w, err)
		return
	}
	var all []scim.Resource
	for _, rt := range []*scim.ResourceType{scim.UserType, scim.GroupType} {
		var f *scim.Filter
		if strings.TrimSpace(q.Filter) != "" {
			var err error
			if f, err = scim.ParseFilter(rt, q.Filter); err != nil {
				scim.WriteError(w, err)
				return
			}
		}
		var items []scim.Resource
		var err error
		if rt == scim.UserType {
			items, err = s.store.ListUsers(r.Context(), sc, f)
		} else {
			items, err = s.store.ListGroups(r.Context(), sc, f, withMembers(q, q.Filter))
		}
		if err != nil {
			scim.WriteError(w, err)
			return
		}
		if err := scim.SortResources(rt, items, q.SortBy, q.SortOrder); err != nil {
			scim.WriteError(w, err)
			return
		}
		for _, it := range items {
			scim.Project(rt, it, q.Attributes, q.ExcludedAttributes)
		}
		all = append(all, items...)
	}
	start, count := q.Page()
	page := []scim.Resource{}
	if start <= len(all) {
		page = all[start-1 : min(start-1+count, len(all))]
	}
	scim.WriteJSON(w, http.StatusOK, scim.ListResponse{
		Schemas: []string{scim.SchemaListResponse}, TotalResults: len(all),
		StartIndex: start, ItemsPerPage: len(page), Resources: page,
	})
}

// apiUnavailable tells a failure to reach the API server (503 with Retry-After) from a
// token that is simply not there: a missing Secret or key answers 401 like a wrong token.
// A 401 or 403 from the API server refused the manager's own credentials or rights, not
// the IdP's token: a kube-apiserver that is starting answers so until its authenticators
// and RBAC are ready (a valid token must not be answered 401, then throttled).
func apiUnavailable(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := st.Status().Code
		return code >= 500 || code == http.StatusTooManyRequests ||
			code == http.StatusUnauthorized || code == http.StatusForbidden
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}
