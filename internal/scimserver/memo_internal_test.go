package scimserver

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// secretReader serves one token Secret, honouring its context like the API client does,
// and counts its reads.
type secretReader struct {
	client.Reader
	token string
	rv    string // the Secret's resourceVersion
	reads atomic.Int32
	slow  time.Duration
}

func (r *secretReader) Get(ctx context.Context, _ client.ObjectKey, o client.Object, _ ...client.GetOption) error {
	r.reads.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-time.After(r.slow):
	case <-ctx.Done():
		return ctx.Err()
	}
	s, ok := o.(*corev1.Secret)
	if !ok {
		return errors.New("not a Secret")
	}
	s.Data = map[string][]byte{naming.TokenKey: []byte(r.token)}
	s.ResourceVersion = r.rv
	return nil
}

// metaReader is the manager's cache of Secret metadata: it knows each Secret's
// resourceVersion, not its data.
type metaReader struct {
	client.Reader
	rv string
}

func (r *metaReader) Get(_ context.Context, _ client.ObjectKey, o client.Object, _ ...client.GetOption) error {
	m, ok := o.(*metav1.PartialObjectMetadata)
	if !ok {
		return errors.New("only metadata is cached")
	}
	m.ResourceVersion = r.rv
	return nil
}

var memoConfig = &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1"}}

// Issue 8 review: a wrong token whose client hangs up forced a re-read with that client's
// cancelled context, and the failure replaced the good memo: the valid token then got 503
// (or 401) for a second, as often as the attacker liked.
func TestWrongTokenOfAClientThatHangsUpCannotRefuseTheValidOne(t *testing.T) {
	m := newTokenMemo(&secretReader{token: "good-token"}, nil, 3*time.Second)
	ctx := context.Background()
	if ok, err := m.matches(ctx, memoConfig, []byte("good-token"), false); !ok {
		t.Fatalf("prime: %v", err)
	}
	time.Sleep(minRefresh + 100*time.Millisecond)
	dead, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = m.matches(dead, memoConfig, []byte("wrong"), true)
	if ok, err := m.matches(ctx, memoConfig, []byte("good-token"), false); !ok {
		t.Fatalf("the valid token was refused after another client's failed attempt: %v", err)
	}
}

// Concurrent wrong tokens share one Secret read: they cannot flood the API server.
func TestConcurrentWrongTokensShareOneRead(t *testing.T) {
	r := &secretReader{token: "good-token", slow: 200 * time.Millisecond}
	m := newTokenMemo(r, nil, 3*time.Second)
	done := make(chan struct{})
	for range 50 {
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = m.matches(context.Background(), memoConfig, []byte("wrong"), true)
		}()
	}
	for range 50 {
		<-done
	}
	if n := r.reads.Load(); n > 4 {
		t.Fatalf("50 concurrent wrong tokens made %d Secret reads, want a shared few", n)
	}
}

// Issue 11: a token rotated within a second of the memo's last read was refused (401, then
// 429) until the memo was a second old, so an IdP updated by automation right after
// `kubectl scim rotate` failed. The cached metadata shows the Secret changed: re-read.
func TestARotatedTokenIsAcceptedAtOnce(t *testing.T) {
	r := &secretReader{token: "old-token", rv: "1"}
	meta := &metaReader{rv: "1"}
	m := newTokenMemo(r, meta, 3*time.Second)
	ctx := context.Background()
	if ok, err := m.matches(ctx, memoConfig, []byte("old-token"), false); !ok {
		t.Fatalf("prime: %v", err)
	}
	r.token, r.rv, meta.rv = "new-token", "2", "2" // rotated, and the cache has seen it
	if ok, err := m.matches(ctx, memoConfig, []byte("new-token"), false); !ok {
		t.Fatalf("the rotated token was refused within %s of the last read: %v", minRefresh, err)
	}
	reads := r.reads.Load()
	if ok, _ := m.matches(ctx, memoConfig, []byte("wrong"), false); ok {
		t.Fatal("a wrong token was accepted")
	}
	if n := r.reads.Load(); n != reads {
		t.Fatalf("a wrong token read the unchanged Secret again within %s (%d reads, was %d)", minRefresh, n, reads)
	}
}
