// Package dockerhub is the membership backend for a Docker Hub organization: an
// organization access token exchanged for a short-lived JWT, members looked up before
// anyone is invited, invites cancelled by id and members removed by Docker ID, teams
// ("groups" in the API), absolute pagination links, and one rate limiter per
// organization. The wire contract is ../shared/docs/DOCKERHUB.md and
// docs/dockerhub-contract.md.
package dockerhub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/go-logr/logr"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/metrics"
)

const (
	// DefaultBaseURL is Docker Hub's API.
	DefaultBaseURL = "https://hub.docker.com"
	// DefaultRequestsPerMinute is the per-organization request budget of SharedLimiter
	// when Options.Limiter is nil.
	DefaultRequestsPerMinute = 180
	// DefaultTimeout bounds each HTTP call.
	DefaultTimeout = 30 * time.Second
	// DefaultPageSize is the page size asked for when listing.
	DefaultPageSize = 100
	// BackendName is the "backend" label of this backend's metrics.
	BackendName = "dockerhub"

	// tokenRefreshMargin: a JWT this close to its exp is replaced before use.
	tokenRefreshMargin = time.Minute
	// maxPages guards against a service that never stops answering a next link.
	maxPages = 10000
)

// Options configure a Backend.
type Options struct {
	// BaseURL of the API (default https://hub.docker.com); tests point it at the emulator.
	BaseURL string
	// Org is the organization's name.
	Org string
	// AccessToken is the organization access token's secret (dckr_oat_...). It is sent
	// only to the token endpoint and never logged or put in errors.
	AccessToken string
	// HTTPClient (default: a client without its own timeout over sharedTransport; Timeout
	// bounds each call).
	HTTPClient *http.Client
	// Limiter is shared by every worker of one organization (default
	// SharedLimiter(Org, DefaultRequestsPerMinute)).
	Limiter *rate.Limiter
	// DefaultRole for members whose desired role is empty (default "member").
	DefaultRole string
	// Timeout bounds each HTTP call (default 30s).
	Timeout time.Duration
	// Log receives one line per call at V(1), never with secrets.
	Log logr.Logger
	// PageSize asked for when listing (default 100).
	PageSize int
	// LegacyLogin exchanges the token through the deprecated POST /v2/users/login
	// instead of POST /v2/auth/token.
	LegacyLogin bool
	// Now is the clock used for token expiry and rate-limit pauses (default time.Now).
	Now func() time.Time
}

// Backend is one Docker Hub organization. It is safe for concurrent use.
type Backend struct {
	opts Options
	base *url.URL
	gate *gate

	mu     sync.Mutex // guards the token; held while exchanging, so only one exchange runs
	jwt    string
	jwtExp time.Time
}

var (
	_ backend.Backend      = (*Backend)(nil)
	_ backend.EmailInviter = (*Backend)(nil)
)

// New validates opts and returns the backend. It makes no call.
func New(opts Options) (*Backend, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimSuffix(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, backend.NewPermanent("InvalidConfiguration", fmt.Errorf("dockerhub: base URL %q is not an http(s) URL", opts.BaseURL))
	}
	if strings.TrimSpace(opts.Org) == "" {
		return nil, backend.NewPermanent("InvalidConfiguration", errors.New("dockerhub: organization name is empty"))
	}
	if opts.AccessToken == "" {
		return nil, backend.NewPermanent("InvalidCredentials", errors.New("dockerhub: access token is empty"))
	}
	if opts.DefaultRole == "" {
		opts.DefaultRole = "member"
	}
	if !validRole(opts.DefaultRole) {
		return nil, backend.NewPermanent("InvalidConfiguration", fmt.Errorf("dockerhub: default role %q is not member, editor or owner", opts.DefaultRole))
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Transport: sharedTransport}
	}
	if opts.Limiter == nil {
		opts.Limiter = SharedLimiter(opts.Org, DefaultRequestsPerMinute)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Org = strings.TrimSpace(opts.Org)
	return &Backend{opts: opts, base: base, gate: gateFor(base.Host, opts.Org)}, nil
}

// ---- shared limiter and the 429 pause ----

var (
	limitersMu sync.Mutex
	limiters   = map[string]*rate.Limiter{}
	gates      = map[string]*gate{}
)

// SharedLimiter returns the one limiter of an organization (case-insensitively), so
// every worker and every Backend of that organization share one budget. A later call
// with another perMinute changes the shared limiter's rate.
//
// perMinute holds for every minute, the first included: no 60 s window has more calls.
// The bucket holds a tenth of the budget (a burst after a quiet spell) and refills at the
// rest of it, perMinute-burst a minute, so a full bucket spent at once plus a minute of
// refill is perMinute. (Refilling at perMinute would allow perMinute plus the burst in a
// minute that starts with a full bucket.) Sustained, the calls run at 90% of perMinute.
func SharedLimiter(org string, perMinute int) *rate.Limiter {
	if perMinute <= 0 {
		perMinute = DefaultRequestsPerMinute
	}
	burst := max(1, perMinute/10)
	// At least one a minute: with perMinute 1 the bucket's one call and the next are a
	// full minute apart.
	limit := rate.Limit(float64(max(perMinute-burst, 1)) / time.Minute.Seconds())
	key := strings.ToLower(strings.TrimSpace(org))
	limitersMu.Lock()
	defer limitersMu.Unlock()
	l, ok := limiters[key]
	if !ok {
		l = rate.NewLimiter(limit, burst)
		limiters[key] = l
		return l
	}
	if l.Limit() != limit {
		l.SetLimit(limit)
		l.SetBurst(burst)
	}
	return l
}

// gate pauses every caller of one organization after a 429 until the service's hint
// has passed, so one worker's 429 does not turn into a storm from the others.
type gate struct {
	mu    sync.Mutex
	until time.Time
}

func gateFor(host, org string) *gate {
	key := strings.ToLower(host + "/" + org)
	limitersMu.Lock()
	defer limitersMu.Unlock()
	g, ok := gates[key]
	if !ok {
		g = &gate{}
		gates[key] = g
	}
	return g
}

func (g *gate) wait(now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until.Sub(now)
}

func (g *gate) pause(until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until.After(g.until) {
		g.until = until
	}
}

// ---- errors ----

// APIError is an answer other than 2xx, with a short message taken from its body.
// It is wrapped in a *backend.Error.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

func statusOf(err error) int {
	var a *APIError
	if errors.As(err, &a) {
		return a.Status
	}
	return 0
}

func messageOf(err error) string {
	var a *APIError
	if errors.As(err, &a) {
		return a.Message
	}
	return ""
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// summarize turns an error body into a short, clear message: the detail/message/text
// of the JSON shapes Hub uses, the title of an HTML page, or a truncated snippet.
func summarize(contentType string, body []byte) string {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return ""
	}
	if strings.Contains(contentType, "html") || bytes.HasPrefix(b, []byte("<")) {
		if m := titleRE.FindSubmatch(b); m != nil {
			return "HTML error page: " + truncate(clean(string(m[1])), 80)
		}
		return "HTML error page"
	}
	var shape struct {
		Detail  any            `json:"detail"`
		Message any            `json:"message"`
		Text    any            `json:"text"`
		Fields  map[string]any `json:"fields"`
	}
	if json.Unmarshal(b, &shape) == nil {
		var parts []string
		for _, v := range []any{shape.Detail, shape.Message, shape.Text} {
			if s, ok := v.(string); ok && s != "" && !containsStr(parts, s) {
				parts = append(parts, s)
			}
		}
		keys := make([]string, 0, len(shape.Fields))
		for k := range shape.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, _ := json.Marshal(shape.Fields[k])
			parts = append(parts, k+": "+string(v))
		}
		if len(parts) > 0 {
			return truncate(clean(strings.Join(parts, "; ")), 200)
		}
	}
	return truncate(clean(string(b)), 120)
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// retryHint reads Retry-After (seconds or an HTTP date), the older X-Retry-After (a
// unix timestamp), or, when the budget is spent, X-RateLimit-Reset.
func retryHint(h http.Header, now time.Time) time.Duration {
	clamp := func(d time.Duration) time.Duration {
		return min(max(d, 0), time.Hour)
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			return clamp(time.Duration(n * float64(time.Second)))
		}
		if t, err := http.ParseTime(v); err == nil {
			return clamp(t.Sub(now))
		}
	}
	if v := strings.TrimSpace(h.Get("X-Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if n < 1e9 { // a small number is seconds, not a timestamp
				return clamp(time.Duration(n) * time.Second)
			}
			return clamp(time.Unix(n, 0).Sub(now))
		}
	}
	if h.Get("X-RateLimit-Remaining") == "0" {
		if n, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			return clamp(time.Unix(n, 0).Sub(now))
		}
	}
	return 0
}

func classify(a *APIError, h http.Header, now time.Time) error {
	switch {
	case a.Status == http.StatusTooManyRequests:
		return backend.NewRateLimited(retryHint(h, now), a)
	case a.Status >= 500:
		return backend.NewTransient("BackendUnavailable", a)
	case a.Status == http.StatusUnauthorized:
		return backend.NewPermanent("InvalidCredentials", a)
	case a.Status == http.StatusForbidden:
		return backend.NewPermanent("Forbidden", a)
	case a.Status == http.StatusNotFound:
		return backend.NewPermanent("NotFound", a)
	case a.Status == http.StatusRequestTimeout:
		return backend.NewTransient("BackendUnavailable", a)
	case a.Status >= 400:
		return backend.NewPermanent("Rejected", a)
	default:
		return backend.NewTransient("UnexpectedResponse", a)
	}
}

// ---- HTTP ----

func (b *Backend) now() time.Time { return b.opts.Now() }

func (b *Backend) api(segments ...string) string {
	var sb strings.Builder
	sb.WriteString(b.base.String())
	sb.WriteString("/v2")
	for _, s := range segments {
		sb.WriteByte('/')
		sb.WriteString(url.PathEscape(s))
	}
	return sb.String()
}

// waitBudget takes one request from the organization's limiter. Under backend.NoWait (a
// controller worker) it waits at most backend.MaxInlineWait: a longer delay is answered
// as RateLimited with that delay, and the worker requeues instead of sleeping.
func (b *Backend) waitBudget(ctx context.Context) error {
	if backend.MayWait(ctx) {
		return b.opts.Limiter.Wait(ctx)
	}
	r := b.opts.Limiter.Reserve()
	if !r.OK() {
		return b.opts.Limiter.Wait(ctx) // burst 0: Wait reports why
	}
	d := r.Delay()
	if d > backend.MaxInlineWait {
		r.Cancel()
		return backend.NewRateLimited(d, fmt.Errorf("the request budget of organization %s is spent for now", b.opts.Org))
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// send makes one HTTP call within Timeout, after the limiter and the 429 pause.
func (b *Backend) send(ctx context.Context, method, target, bearer string, in any) (int, http.Header, []byte, error) {
	if d := b.gate.wait(b.now()); d > 0 {
		return 0, nil, nil, backend.NewRateLimited(d, fmt.Errorf("Docker Hub asked %s to slow down; waiting", b.opts.Org))
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	if err := b.waitBudget(ctx); err != nil {
		if backend.ClassOf(err) == backend.RateLimited {
			return 0, nil, nil, err
		}
		return 0, nil, nil, backend.NewTransient("RateLimiterWait", fmt.Errorf("%s %s: waiting for the organization's request budget: %w", method, pathOf(target), err))
	}
	// Again after the wait for the budget: a 429 another caller got meanwhile pauses this
	// call too (without this, calls that were waiting went out inside the Retry-After).
	if d := b.gate.wait(b.now()); d > 0 {
		return 0, nil, nil, backend.NewRateLimited(d, fmt.Errorf("Docker Hub asked %s to slow down; waiting", b.opts.Org))
	}
	if err := backend.Guarded(ctx); err != nil {
		return 0, nil, nil, err
	}
	var body io.Reader
	if in != nil {
		js, err := json.Marshal(in)
		if err != nil {
			return 0, nil, nil, backend.NewPermanent("InvalidRequest", err)
		}
		body = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return 0, nil, nil, backend.NewPermanent("InvalidRequest", fmt.Errorf("%s %s: %w", method, pathOf(target), err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "scim-operator")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	start := time.Now()
	resp, err := b.opts.HTTPClient.Do(req)
	if err != nil {
		b.opts.Log.V(1).Info("Docker Hub call failed", "method", method, "path", pathOf(target), "duration", time.Since(start))
		return 0, nil, nil, backend.NewTransient("BackendUnavailable", fmt.Errorf("%s %s: %w", method, pathOf(target), unwrapURLError(err)))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	b.opts.Log.V(1).Info("Docker Hub call", "method", method, "path", pathOf(target), "status", resp.StatusCode,
		"duration", time.Since(start), "rateLimitRemaining", resp.Header.Get("X-RateLimit-Remaining"))
	if err != nil {
		return 0, nil, nil, backend.NewTransient("BackendUnavailable", fmt.Errorf("%s %s: reading the answer: %w", method, pathOf(target), err))
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if d := retryHint(resp.Header, b.now()); d > 0 {
			b.gate.pause(b.now().Add(d))
		}
	}
	return resp.StatusCode, resp.Header, data, nil
}

// unwrapURLError keeps the cause of a *url.Error (its URL is said by the caller).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func pathOf(target string) string {
	if u, err := url.Parse(target); err == nil {
		return u.Path
	}
	return "?"
}

// do makes an authenticated call: on a 401 the JWT is exchanged again once and the
// call retried once. A 2xx answer is decoded into out (when not nil).
func (b *Backend) do(ctx context.Context, method, target string, in, out any) error {
	for attempt := 0; ; attempt++ {
		tok, err := b.token(ctx)
		if err != nil {
			return err
		}
		status, hdr, data, err := b.send(ctx, method, target, tok, in)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			b.dropToken(tok)
			continue
		}
		if status >= 200 && status < 300 {
			if out != nil && len(bytes.TrimSpace(data)) > 0 {
				if err := json.Unmarshal(data, out); err != nil {
					return backend.NewTransient("UnexpectedResponse", fmt.Errorf("%s %s: %d answer is not the expected JSON: %s",
						method, pathOf(target), status, summarize(hdr.Get("Content-Type"), data)))
				}
			}
			return nil
		}
		return classify(&APIError{Method: method, Path: pathOf(target), Status: status,
			Message: summarize(hdr.Get("Content-Type"), data)}, hdr, b.now())
	}
}

// ---- token ----

func (b *Backend) dropToken(tok string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.jwt == tok {
		b.jwt = ""
	}
}

// token returns a JWT valid for at least tokenRefreshMargin, exchanging the access
// token when needed. Concurrent callers wait for one exchange.
func (b *Backend) token(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.jwt != "" && b.now().Add(tokenRefreshMargin).Before(b.jwtExp) {
		return b.jwt, nil
	}
	var (
		target string
		in     any
		out    struct {
			AccessToken string `json:"access_token"`
			Token       string `json:"token"`
		}
	)
	if b.opts.LegacyLogin {
		target = b.api("users", "login")
		in = map[string]string{"username": b.opts.Org, "password": b.opts.AccessToken}
	} else {
		target = b.api("auth", "token")
		in = map[string]string{"identifier": b.opts.Org, "secret": b.opts.AccessToken}
	}
	status, hdr, data, err := b.send(ctx, http.MethodPost, target, "", in)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		a := &APIError{Method: http.MethodPost, Path: pathOf(target), Status: status, Message: summarize(hdr.Get("Content-Type"), data)}
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			return "", backend.NewPermanent("InvalidCredentials", fmt.Errorf("exchanging the organization access token of %s: %w", b.opts.Org, a))
		}
		return "", classify(a, hdr, b.now())
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return "", backend.NewTransient("UnexpectedResponse", fmt.Errorf("POST %s: token answer is not JSON: %s", pathOf(target), summarize(hdr.Get("Content-Type"), data)))
	}
	tok := out.AccessToken
	if tok == "" {
		tok = out.Token
	}
	if tok == "" {
		return "", backend.NewTransient("UnexpectedResponse", fmt.Errorf("POST %s: the answer holds no token", pathOf(target)))
	}
	b.jwt, b.jwtExp = tok, b.expiry(tok)
	return tok, nil
}

// expiry reads the JWT's exp without verifying it (only Docker can; we only need to
// know when to ask for a new one). A token without a readable exp is kept 5 minutes.
func (b *Backend) expiry(tok string) time.Time {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err == nil {
		if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
			return exp.Time
		}
	}
	return b.now().Add(5 * time.Minute)
}

// ---- metrics ----

func (b *Backend) record(op string, start time.Time, err error) {
	result := metrics.ResultSuccess
	if err != nil {
		switch backend.ClassOf(err) {
		case backend.RateLimited:
			result = metrics.ResultRateLimited
		case backend.Permanent:
			result = metrics.ResultPermanent
		default:
			result = metrics.ResultTransient
		}
	}
	metrics.ObserveBackendCall(BackendName, op, result, start)
}

// sharedTransport is the default clients' connection pool, one for every organization: Go's
// default keeps 2 idle connections per host, and the OrgMember controller's workers (16 by
// default) call hub.docker.com at once, so most calls would open a TLS connection anew.
var sharedTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return t
}()
