package scimserver

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/token"
)

// tokenMemo remembers each config's accepted tokens for a few seconds, read through an
// uncached reader: no cluster-wide Secret cache.
type tokenMemo struct {
	r   client.Reader
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]memoEntry
}

type memoEntry struct {
	at  time.Time
	acc token.Accepted
	err error
}

func newTokenMemo(r client.Reader, ttl time.Duration) *tokenMemo {
	return &tokenMemo{r: r, ttl: ttl, m: map[string]memoEntry{}}
}

// minRefresh is how soon after a read a presented token that does not match may cause
// another read (so that a freshly rotated token works at once).
const minRefresh = time.Second

// matches tells whether presented is accepted for cfg now. A mismatch re-reads the Secret
// when the memo is older than minRefresh.
func (t *tokenMemo) matches(ctx context.Context, cfg *scimv1.ScimConfig, presented []byte) (bool, error) {
	acc, age, err := t.accepted(ctx, cfg, t.ttl)
	if err == nil && acc.Matches(presented, time.Now()) {
		return true, nil
	}
	if age > minRefresh {
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
	acc, err := token.Resolve(ctx, t.r, cfg)
	t.mu.Lock()
	if len(t.m) > 10000 {
		t.m = map[string]memoEntry{}
	}
	t.m[k] = memoEntry{at: now, acc: acc, err: err}
	t.mu.Unlock()
	return acc, 0, err
}

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

// failureLimiter slows down clients that keep presenting bad tokens: each client IP
// may fail authentication 10 times in a burst, then once per 2 seconds; beyond that it
// gets 429 without its token even being checked.
type failureLimiter struct {
	mu sync.Mutex
	m  map[string]*limEntry
}

type limEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newFailureLimiter() *failureLimiter { return &failureLimiter{m: map[string]*limEntry{}} }

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (f *failureLimiter) get(ip string) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if len(f.m) > 10000 {
		for k, e := range f.m {
			if now.Sub(e.seen) > 10*time.Minute {
				delete(f.m, k)
			}
		}
	}
	e, ok := f.m[ip]
	if !ok {
		e = &limEntry{lim: rate.NewLimiter(rate.Every(2*time.Second), 10)}
		f.m[ip] = e
	}
	e.seen = now
	return e.lim
}

// blocked tells whether ip has no failures left.
func (f *failureLimiter) blocked(ip string) bool { return f.get(ip).Tokens() < 1 }

// failed records an authentication failure.
func (f *failureLimiter) failed(ip string) { f.get(ip).Allow() }
