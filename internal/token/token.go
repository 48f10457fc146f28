// Package token generates SCIM bearer tokens and resolves the tokens a ScimConfig accepts.
package token

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// Generate returns a new random bearer token (256 bits, URL-safe base64).
func Generate() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "scim_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// Accepted is the set of tokens a ScimConfig accepts at one moment.
type Accepted struct {
	Current []byte
	// Previous is accepted until PreviousExpires (zero when there is none).
	Previous        []byte
	PreviousExpires time.Time
}

// Matches compares a presented token with the accepted ones in constant time.
func (a Accepted) Matches(presented []byte, now time.Time) bool {
	ok := len(a.Current) > 0 && subtle.ConstantTimeCompare(presented, a.Current) == 1
	prev := len(a.Previous) > 0 && now.Before(a.PreviousExpires) &&
		subtle.ConstantTimeCompare(presented, a.Previous) == 1
	return ok || prev
}

// SecretRef returns where a ScimConfig's token lives: its tokenSecretRef, or the
// generated Secret.
func SecretRef(cfg *scimv1.ScimConfig) (types.NamespacedName, string) {
	if ref := cfg.Spec.TokenSecretRef; ref != nil {
		return types.NamespacedName{Namespace: cfg.Namespace, Name: ref.Name}, ref.Key
	}
	return types.NamespacedName{Namespace: cfg.Namespace, Name: naming.TokenSecretName(cfg.Name)}, naming.TokenKey
}

// Resolve reads the tokens a ScimConfig accepts now.
func Resolve(ctx context.Context, r client.Reader, cfg *scimv1.ScimConfig) (Accepted, error) {
	ref, key := SecretRef(cfg)
	var s corev1.Secret
	if err := r.Get(ctx, ref, &s); err != nil {
		return Accepted{}, err
	}
	return FromSecret(&s, key)
}

// FromSecret reads the accepted tokens from a token Secret.
func FromSecret(s *corev1.Secret, key string) (Accepted, error) {
	cur := s.Data[key]
	if len(cur) == 0 {
		return Accepted{}, fmt.Errorf("secret %s/%s has no key %q", s.Namespace, s.Name, key)
	}
	a := Accepted{Current: cur}
	if prev := s.Data[naming.PreviousTokenKey]; len(prev) > 0 {
		if t, err := time.Parse(time.RFC3339, s.Annotations[naming.AnnotationPreviousTokenExpires]); err == nil {
			a.Previous, a.PreviousExpires = prev, t
		}
	}
	return a, nil
}
