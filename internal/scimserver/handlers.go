package scimserver

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

type reqInfo struct {
	config   string
	resource string
	target   target
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

// target is what a request's path names: /scim/v2/<namespace>/<name>/<Resource>[/<id>].
type target struct {
	ns, name string
	// resource is the canonical resource segment ("Users", ..., "other"), raw as sent.
	resource, raw string
	id, extra     string
}

// route parses the path into the request's target, then hands the request on to next;
// a path that names no base path answers 404 before any authentication.
func (s *Server) route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		t := target{ns: parts[0], name: parts[1]}
		if len(parts) > 2 {
			t.raw = parts[2]
		}
		if len(parts) > 3 {
			t.id = parts[3]
			if i := strings.Index(t.id, "/"); i >= 0 {
				t.id, t.extra = t.id[:i], t.id[i+1:]
			}
		}
		t.resource = canonicalResource(t.raw)
		ri := info(r)
		ri.resource = t.resource
		ri.target = t
		next.ServeHTTP(w, r)
	})
}

// scopedHandler serves a request of an authenticated tenant.
type scopedHandler func(w http.ResponseWriter, r *http.Request, sc scimstore.Scope)

// authenticate is the authentication middleware: it checks the bearer token against the
// ScimConfig the path names and yields that tenant's scope to next. The token is checked
// before anything else: a valid token is never refused because of failures, its own or
// anyone's. Only failed attempts meet the limiter.
func (s *Server) authenticate(next scopedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := info(r)
		ns, name := ri.target.ns, ri.target.name
		tok, hasTok := bearer(r)
		cfg, err := s.store.Config(r.Context(), ns, name)
		known := err == nil
		if !hasTok {
			s.authFailed(w, r, ns, name, known, "missing token", "a bearer token is required (Authorization: Bearer <token>)")
			return
		}
		if errors.Is(err, scimstore.ErrNoSuchConfig) {
			// an unknown config answers like a wrong token: no probing which configs exist
			s.authFailed(w, r, ns, name, false, "unknown ScimConfig", "the bearer token is not valid for this SCIM endpoint")
			return
		}
		if err != nil {
			scim.WriteError(w, err)
			return
		}
		// a client within its failure budget may make a live Secret read on a mismatch
		// (a token rotated a moment ago); past it, it may not
		mayRead := s.limiter.mayFail(failureKey(s.clients.client(r), ns, name), time.Now())
		ok, err := s.tokens.matches(r.Context(), cfg, []byte(tok), mayRead)
		if !ok && err != nil && scimstore.Unavailable(err) {
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
		next(w, r, scimstore.Scope{Config: cfg, BaseURL: s.baseURL(r, ns, name)})
	})
}

// dispatch sends an authenticated request to the handler of its resource and verb.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, sc scimstore.Scope) {
	t := info(r).target
	if r.Method == http.MethodHead {
		// HEAD is GET without the body (RFC 9110 section 9.3.2); net/http drops the body
		// for the request it read, whatever the handlers see.
		r = r.WithContext(r.Context())
		r.Method = http.MethodGet
	}
	if t.extra != "" {
		scim.WriteError(w, scim.NotFound("no SCIM endpoint at %s", r.URL.Path))
		return
	}
	if rs, ok := s.types[t.resource]; ok {
		s.resource(w, r, sc, rs, t.id)
		return
	}
	switch t.resource {
	case ".search":
		if t.id != "" {
			scim.WriteError(w, scim.NotFound("no SCIM endpoint at %s", r.URL.Path))
			return
		}
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		s.rootSearch(w, r, sc)
	case "Bulk":
		if t.id != "" {
			scim.WriteError(w, scim.NotFound("no SCIM endpoint at %s", r.URL.Path))
			return
		}
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		s.bulk(w, r, sc)
	case "ServiceProviderConfig", "ResourceTypes", "Schemas":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		s.discovery(w, sc, t.resource, t.id)
	default:
		scim.WriteError(w, scim.NotFound("no SCIM resource %q; this endpoint serves Users, Groups, Bulk, ServiceProviderConfig, ResourceTypes, Schemas and .search", t.raw))
	}
}

func canonicalResource(seg string) string {
	for _, c := range []string{"Users", "Groups", "ServiceProviderConfig", "ResourceTypes", "Schemas", ".search", "Bulk"} {
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
		scim.WriteJSON(w, http.StatusOK, scim.ServiceProviderConfig(sc.BaseURL, s.o.MaxBodyBytes))
	case "ResourceTypes":
		var docs []map[string]any
		for _, rs := range s.typeList {
			docs = append(docs, scim.ResourceTypeDoc(sc.BaseURL, rs.Type()))
		}
		if id == "" {
			writeList(w, scim.ListOf(docs))
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
		writeList(w, scim.ListOf(docs))
	}
}
