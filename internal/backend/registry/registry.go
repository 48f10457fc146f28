// Package registry gives each ScimConfig its membership Backend (a backend.Provider) and
// keeps one Backend per ScimConfig for as long as the config and its credentials are
// unchanged, so that what a backend caches (a Docker Hub JWT, a rate limiter shared by
// every worker) is shared by all reconciles of one organization.
//
// The Docker Hub access token is read from the Secret that
// spec.backend.dockerhub.accessTokenSecretRef names, with the API reader (Secrets are not
// cached in full). To notice a rotated token without reading the Secret on every call, the
// registry reads the Secret's metadata through the client (the manager's cache watches
// Secrets metadata-only) and re-reads the Secret only when its resourceVersion changed.
package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// Reasons of the registry's Permanent errors.
const (
	ReasonCredentialsMissing = "CredentialsMissing"
	ReasonUnknownBackend     = "UnknownBackend"
	ReasonBackendUnavailable = "BackendUnavailable"
	ReasonInvalidConfig      = "InvalidBackendConfig"
)

// DockerHubFunc builds the Docker Hub backend of a ScimConfig from its access token.
type DockerHubFunc func(ctx context.Context, cfg *scimv1.ScimConfig, token string) (backend.Backend, error)

// Options configure a Registry.
type Options struct {
	// DockerHub builds Docker Hub backends. Nil: a dockerhub ScimConfig gets a Permanent
	// "BackendUnavailable" error.
	DockerHub DockerHubFunc
	// KubernetesOptions are passed to every kubernetes backend.
	KubernetesOptions []k8sbackend.Option
}

// Registry implements backend.Provider. It is safe for concurrent use.
type Registry struct {
	c       client.Client
	api     client.Reader
	opts    Options
	mu      sync.Mutex
	entries map[types.NamespacedName]entry
}

var _ backend.Provider = (*Registry)(nil)

// entry is a cached backend and what it was built from.
type entry struct {
	uid        types.UID
	generation int64
	secretRV   string
	b          backend.Backend
}

// New returns a registry. c writes bindings and reads Secret metadata (cached is fine);
// apiReader reads Secrets from the API server.
func New(c client.Client, apiReader client.Reader, opts Options) *Registry {
	return &Registry{c: c, api: apiReader, opts: opts, entries: map[types.NamespacedName]entry{}}
}

// For returns the Backend of cfg, reusing the one built for the same ScimConfig UID,
// generation and credentials Secret resourceVersion.
func (r *Registry) For(ctx context.Context, cfg *scimv1.ScimConfig) (backend.Backend, error) {
	if cfg == nil {
		return nil, backend.NewPermanent(ReasonInvalidConfig, errors.New("no ScimConfig"))
	}
	key := types.NamespacedName{Namespace: cfg.Namespace, Name: cfg.Name}
	switch cfg.Spec.Backend.Type {
	case scimv1.BackendKubernetes, "":
		if b, ok := r.cached(key, cfg, ""); ok {
			return b, nil
		}
		b := k8sbackend.New(r.c, cfg, r.opts.KubernetesOptions...)
		return r.store(key, cfg, "", b), nil
	case scimv1.BackendDockerHub:
		return r.dockerHub(ctx, key, cfg)
	default:
		return nil, backend.NewPermanent(ReasonUnknownBackend,
			fmt.Errorf("spec.backend.type %q is not a known backend (kubernetes, dockerhub)", cfg.Spec.Backend.Type))
	}
}

func (r *Registry) dockerHub(ctx context.Context, key types.NamespacedName, cfg *scimv1.ScimConfig) (backend.Backend, error) {
	if r.opts.DockerHub == nil {
		return nil, backend.NewPermanent(ReasonBackendUnavailable, errors.New("the dockerhub backend is not available in this build"))
	}
	dh := cfg.Spec.Backend.DockerHub
	if dh == nil {
		return nil, backend.NewPermanent(ReasonInvalidConfig, errors.New("spec.backend.dockerhub is required when spec.backend.type is dockerhub"))
	}
	ref := dh.AccessTokenSecretRef
	secretKey := types.NamespacedName{Namespace: cfg.Namespace, Name: ref.Name}

	// The cheap path: the Secret's metadata (from the cache) says nothing changed.
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := r.c.Get(ctx, secretKey, meta)
	switch {
	case err == nil:
		if b, ok := r.cached(key, cfg, meta.ResourceVersion); ok {
			return b, nil
		}
	case apierrors.IsNotFound(err):
		// The cache may lag a new Secret: the API reader below decides.
	default:
		return nil, classify(err, fmt.Sprintf("reading Secret %s", secretKey))
	}

	var s corev1.Secret
	if err := r.api.Get(ctx, secretKey, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, backend.NewPermanent(ReasonCredentialsMissing, fmt.Errorf(
				"Secret %q in namespace %q does not exist (spec.backend.dockerhub.accessTokenSecretRef, key %q)", ref.Name, cfg.Namespace, ref.Key))
		}
		return nil, classify(err, fmt.Sprintf("reading Secret %s", secretKey))
	}
	token := s.Data[ref.Key]
	if len(token) == 0 {
		return nil, backend.NewPermanent(ReasonCredentialsMissing, fmt.Errorf(
			"Secret %q in namespace %q has no key %q or it is empty (spec.backend.dockerhub.accessTokenSecretRef)", ref.Name, cfg.Namespace, ref.Key))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[key]; ok && e.matches(cfg, s.ResourceVersion) {
		return e.b, nil
	}
	b, err := r.opts.DockerHub(ctx, cfg, string(token))
	if err != nil {
		var be *backend.Error
		if errors.As(err, &be) {
			return nil, err
		}
		return nil, backend.NewPermanent(ReasonInvalidConfig, err)
	}
	r.entries[key] = entry{uid: cfg.UID, generation: cfg.Generation, secretRV: s.ResourceVersion, b: b}
	return b, nil
}

func (e entry) matches(cfg *scimv1.ScimConfig, secretRV string) bool {
	return e.uid == cfg.UID && e.generation == cfg.Generation && e.secretRV == secretRV
}

func (r *Registry) cached(key types.NamespacedName, cfg *scimv1.ScimConfig, secretRV string) (backend.Backend, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[key]; ok && e.matches(cfg, secretRV) {
		return e.b, true
	}
	return nil, false
}

// store keeps b unless a concurrent caller stored an equivalent backend first, and returns
// the one kept.
func (r *Registry) store(key types.NamespacedName, cfg *scimv1.ScimConfig, secretRV string, b backend.Backend) backend.Backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[key]; ok && e.matches(cfg, secretRV) {
		return e.b
	}
	r.entries[key] = entry{uid: cfg.UID, generation: cfg.Generation, secretRV: secretRV, b: b}
	return b
}

// Forget drops the cached backend of a ScimConfig (call it when the config is deleted).
func (r *Registry) Forget(namespace, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.entries, types.NamespacedName{Namespace: namespace, Name: name})
}

// classify turns an API server error while reading credentials into a backend error.
func classify(err error, what string) error {
	wrapped := fmt.Errorf("%s: %w", what, err)
	switch {
	case apierrors.IsForbidden(err):
		return backend.NewPermanent("Forbidden", wrapped)
	case apierrors.IsTooManyRequests(err):
		return backend.NewRateLimited(0, wrapped)
	default:
		return backend.NewTransient("APIServerUnavailable", wrapped)
	}
}
