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
	return nil
}

var memoConfig = &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1"}}

// Issue 8 review: a wrong token whose client hangs up forced a re-read with that client's
// cancelled context, and the failure replaced the good memo: the valid token then got 503
// (or 401) for a second, as often as the attacker liked.
func TestWrongTokenOfAClientThatHangsUpCannotRefuseTheValidOne(t *testing.T) {
	m := newTokenMemo(&secretReader{token: "good-token"}, 3*time.Second)
	ctx := context.Background()
	if ok, err := m.matches(ctx, memoConfig, []byte("good-token")); !ok {
		t.Fatalf("prime: %v", err)
	}
	time.Sleep(minRefresh + 100*time.Millisecond)
	dead, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = m.matches(dead, memoConfig, []byte("wrong"))
	if ok, err := m.matches(ctx, memoConfig, []byte("good-token")); !ok {
		t.Fatalf("the valid token was refused after another client's failed attempt: %v", err)
	}
}

// Concurrent wrong tokens share one Secret read: they cannot flood the API server.
func TestConcurrentWrongTokensShareOneRead(t *testing.T) {
	r := &secretReader{token: "good-token", slow: 200 * time.Millisecond}
	m := newTokenMemo(r, 3*time.Second)
	done := make(chan struct{})
	for range 50 {
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = m.matches(context.Background(), memoConfig, []byte("wrong"))
		}()
	}
	for range 50 {
		<-done
	}
	if n := r.reads.Load(); n > 4 {
		t.Fatalf("50 concurrent wrong tokens made %d Secret reads, want a shared few", n)
	}
}
