package scimserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scimstore"
	"github.com/scim-operator/scim-operator/internal/token"
)

// tokenMemo remembers each config's accepted tokens for a few seconds, read through an
// uncached reader: no cluster-wide Secret cache.
type tokenMemo struct {
	r client.Reader
	// meta reads Secret metadata from the manager's cache (nil: none): a Secret whose
	// resourceVersion there differs from the one read has changed, a rotation.
	meta client.Reader
	ttl  time.Duration
	mu   sync.Mutex
	m    map[string]memoEntry
	// reads collapses concurrent Secret reads of one config into one.
	reads singleflight.Group
}

type memoEntry struct {
	at  time.Time
	acc token.Accepted
	rv  string // the Secret's resourceVersion when read
	err error
}

func newTokenMemo(r, meta client.Reader, ttl time.Duration) *tokenMemo {
	return &tokenMemo{r: r, meta: meta, ttl: ttl, m: map[string]memoEntry{}}
}

// minRefresh is how soon after a read a presented token that does not match may cause
// another read when its client has used up its failure budget, unless the Secret is known
// to have changed since (so that wrong tokens cannot make a read each).
const minRefresh = time.Second

// matches tells whether presented is accepted for cfg now. A token that does not match
// the memo re-reads the Secret live through the API reader when mayRead (its client is
// within its failed-authentication budget): a token rotated a moment ago, read by the IdP
// straight from the API server, works at once on any replica, before any watch event
// lands. Reads of one config are shared (singleflight), and a client can only cause them
// as fast as the failure limiter lets it fail, so wrong tokens cannot become an API-server
// load. Past its budget a mismatch re-reads only when the memo is older than minRefresh,
// or when the manager's cache shows the Secret changed since it was read.
func (t *tokenMemo) matches(ctx context.Context, cfg *scimv1.ScimConfig, presented []byte, mayRead bool) (bool, error) {
	acc, age, err := t.accepted(ctx, cfg, t.ttl)
	if err == nil && acc.Matches(presented, time.Now()) {
		return true, nil
	}
	if mayRead || age > minRefresh || t.changed(ctx, cfg) {
		acc, _, err = t.accepted(ctx, cfg, 0)
		if err == nil && acc.Matches(presented, time.Now()) {
			return true, nil
		}
	}
	return false, err
}

func (t *tokenMemo) accepted(ctx context.Context, cfg *scimv1.ScimConfig, ttl time.Duration) (token.Accepted, time.Duration, error) {
	ref, key := token.SecretRef(cfg)
	k := string(cfg.UID) + "|" + ref.String() + "|" + key
	now := time.Now()
	t.mu.Lock()
	e, ok := t.m[k]
	t.mu.Unlock()
	if ok && now.Sub(e.at) < ttl {
		return e.acc, now.Sub(e.at), e.err
	}
	// One read per config at a time, whoever asks (concurrent wrong tokens share it), on
	// a context of its own: a client that hangs up cannot make the read fail for others.
	v, _, _ := t.reads.Do(k, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), secretReadTimeout)
		defer cancel()
		var s corev1.Secret
		if err := t.r.Get(rctx, ref, &s); err != nil {
			return memoEntry{at: time.Now(), err: err}, nil
		}
		acc, err := token.FromSecret(&s, key)
		return memoEntry{at: time.Now(), acc: acc, rv: s.ResourceVersion, err: err}, nil
	})
	fresh := v.(memoEntry)
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok && e.err == nil && fresh.err != nil &&
		(scimstore.Unavailable(fresh.err) || errors.Is(fresh.err, context.Canceled)) {
		// A read that could not reach the API server never replaces tokens read
		// successfully: the valid token keeps working through a hiccup. A definite answer
		// (the Secret or its key gone) does replace them.
		return e.acc, now.Sub(e.at), nil
	}
	if len(t.m) > 10000 {
		t.m = map[string]memoEntry{}
	}
	t.m[k] = fresh
	return fresh.acc, 0, fresh.err
}

// changed tells whether the manager's cache shows cfg's token Secret at another
// resourceVersion than the memo read (an in-memory lookup, no API request).
func (t *tokenMemo) changed(ctx context.Context, cfg *scimv1.ScimConfig) bool {
	if t.meta == nil {
		return false
	}
	ref, key := token.SecretRef(cfg)
	t.mu.Lock()
	e, ok := t.m[string(cfg.UID)+"|"+ref.String()+"|"+key]
	t.mu.Unlock()
	if !ok || e.rv == "" {
		return false
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := t.meta.Get(ctx, ref, m); err != nil {
		return false
	}
	return m.ResourceVersion != e.rv
}

// secretReadTimeout bounds one read of a token Secret.
const secretReadTimeout = 5 * time.Second

// bearer extracts the bearer token of a request.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Failed authentication attempts are limited per (client address, base path): each pair
// may fail failureBurst times in a row, then once per failureInterval. The limiter only
// ever sees attempts that already failed: a request whose token matches never consults
// it, so no number of failures anywhere can refuse a valid token.
const (
	failureBurst    = 10
	failureInterval = 2 * time.Second
	// failureMaxKeys bounds the limiter's memory (an entry is ~200 bytes).
	failureMaxKeys = 10000
	// sweepEvery is how often idle entries are evicted in the normal course.
	sweepEvery = time.Minute
)

// failureLimiter counts failed authentication attempts per key with one token bucket
// (golang.org/x/time/rate) each. An entry whose bucket has refilled to its burst is
// exactly as good as no entry, so evicting it forgets nothing: that is what "idle" means
// here, and it happens failureBurst*failureInterval (20 s) after a key's last failure.
type failureLimiter struct {
	limit     rate.Limit
	burst     int
	maxKeys   int
	mu        sync.Mutex
	m         map[string]*limEntry
	lastSweep time.Time
	lastFull  time.Time // when a full map was last reported
}

type limEntry struct {
	lim *rate.Limiter
	// throttled is true from the first refused failure until the next allowed one, so
	// that the start of each throttling episode is logged once.
	throttled bool
}

func newFailureLimiter() *failureLimiter {
	return &failureLimiter{
		limit: rate.Every(failureInterval), burst: failureBurst, maxKeys: failureMaxKeys,
		m: map[string]*limEntry{},
	}
}

// verdict is the limiter's answer to one failed attempt.
type verdict struct {
	allowed    bool          // within the budget: answer 401
	retryAfter time.Duration // when refused: until the key may fail again
	report     bool          // when refused: the first refusal of an episode (log it at Info)
	full       bool          // refused because the map is full of keys still failing
}

// failure records one failed attempt of key at now.
func (f *failureLimiter) failure(key string, now time.Time) verdict {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.lastSweep) >= sweepEvery {
		f.sweep(now)
	}
	e := f.m[key]
	if e == nil {
		if len(f.m) >= f.maxKeys && now.Sub(f.lastSweep) >= time.Second {
			f.sweep(now)
		}
		if len(f.m) >= f.maxKeys {
			// Every entry is a key that failed within the last 20 s. Rather than grow
			// or forget a live budget, refuse new keys' failures until entries go idle:
			// only failed attempts get here, so no valid token is refused by this.
			report := now.Sub(f.lastFull) >= sweepEvery
			if report {
				f.lastFull = now
			}
			return verdict{retryAfter: failureInterval, report: report, full: true}
		}
		e = &limEntry{lim: rate.NewLimiter(f.limit, f.burst)}
		f.m[key] = e
	}
	if e.lim.AllowN(now, 1) {
		e.throttled = false
		return verdict{allowed: true}
	}
	v := verdict{report: !e.throttled}
	e.throttled = true
	// the bucket holds less than one token: the wait until it holds one
	missing := 1 - e.lim.TokensAt(now)
	v.retryAfter = time.Duration(missing / float64(f.limit) * float64(time.Second))
	return v
}

// mayFail tells, without spending anything, whether key may fail once more now: true
// within its budget (a failure would answer 401, not 429).
func (f *failureLimiter) mayFail(key string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.m[key]
	if e == nil {
		return len(f.m) < f.maxKeys
	}
	return e.lim.TokensAt(now) >= 1
}

// sweep evicts the entries whose bucket has refilled. The caller holds f.mu.
func (f *failureLimiter) sweep(now time.Time) {
	for k, e := range f.m {
		if e.lim.TokensAt(now) >= float64(f.burst) {
			delete(f.m, k)
		}
	}
	f.lastSweep = now
}

// len is the number of keys tracked (for tests).
func (f *failureLimiter) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// failureKey is the limiter key of a failed attempt by client on the base path of
// ns/name. Names that cannot be Kubernetes names share one key per client, so that a
// client cannot fill memory with long made-up paths; every other path, existing config
// or not, has its own key, so that throttling tells nothing about which configs exist.
func failureKey(client, ns, name string) string {
	if !plausibleName(ns, name) {
		return client + " <invalid>"
	}
	return client + " " + ns + "/" + name
}

// plausibleName tells whether ns and name fit Kubernetes' length limits for a namespace
// and a ScimConfig name; no longer path can name a config.
func plausibleName(ns, name string) bool { return len(ns) <= 63 && len(name) <= 253 }

// clientResolver tells which client a request comes from, and how it addressed the
// server: the direct peer's address and the connection's scheme and Host, or, when the
// peer is a trusted proxy, what its X-Forwarded-For, -Proto and -Host headers say.
type clientResolver struct {
	trusted []netip.Prefix
}

// parseTrustedProxies parses CIDRs ("10.0.0.0/8") and single addresses ("10.0.0.7").
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither a CIDR nor an IP address", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (c clientResolver) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop parses one address as found in RemoteAddr or X-Forwarded-For: a bare IP, or
// an IP with a port ("1.2.3.4:5", "[::1]:5"), as some proxies write.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// client returns the client address of r. With no trusted proxies (the default) it is
// the direct peer, whatever the headers say. When the peer is a trusted proxy,
// X-Forwarded-For is read from the right (the entry the peer appended) leftwards,
// skipping trusted proxies; the first untrusted address is the client. Entries left of
// it were written by the client or by proxies nobody vouches for, so they are ignored:
// a client cannot choose its own key by sending the header itself.
func (c clientResolver) client(r *http.Request) string {
	peer, ok := parseHop(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !c.isTrusted(peer) {
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	cur := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break // garbage from a trusted hop: the last address we can vouch for
		}
		cur = a
		if !c.isTrusted(a) {
			break
		}
	}
	return cur.String()
}

// origin returns the scheme and host the client used to reach the server, for the URLs
// the server hands back (meta.location, Location, discovery documents). By default they
// are the connection's own: "https" when the request came over TLS, else "http", and the
// Host header. Only when the direct peer is a trusted proxy are X-Forwarded-Proto and
// X-Forwarded-Host believed: the last value of each (the one that proxy wrote), when it
// is well-formed ("http" or "https"; a host[:port] with nothing else). From anyone else
// they are ignored, so a client cannot make the server name another host.
func (c clientResolver) origin(r *http.Request) (scheme, host string) {
	scheme, host = "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	peer, ok := parseHop(r.RemoteAddr)
	if !ok || !c.isTrusted(peer) {
		return scheme, host
	}
	if p, ok := lastHeaderValue(r, "X-Forwarded-Proto"); ok {
		if p = strings.ToLower(p); p == "http" || p == "https" {
			scheme = p
		}
	}
	if h, ok := lastHeaderValue(r, "X-Forwarded-Host"); ok && validHost(h) {
		host = h
	}
	return scheme, host
}

// lastHeaderValue is the last comma-separated value of a header over all its lines.
func lastHeaderValue(r *http.Request, name string) (string, bool) {
	vs := r.Header.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	parts := strings.Split(vs[len(vs)-1], ",")
	v := strings.TrimSpace(parts[len(parts)-1])
	return v, v != ""
}

// validHost tells whether h is a bare host or host:port, with no user, path, query or
// anything else a URL could carry.
func validHost(h string) bool {
	if len(h) > 255 || strings.ContainsAny(h, "/\\@?#% \t") {
		return false
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h && u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.Hostname() != ""
}
