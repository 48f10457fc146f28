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
//
// A kubernetes backend writes its bindings as a ServiceAccount of the ScimConfig's
// namespace (spec.backend.kubernetes.serviceAccountName, else Options.DefaultServiceAccount),
// through a client that impersonates it (Options.RestConfig): the API server judges every
// binding with the tenant's rights, so a ScimConfig grants no more than its tenant could.
// With neither a ServiceAccount nor a default, the backend writes as the manager (kept for
// single-tenant installs; the shipped install sets the default).
package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
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
	// ReasonImpersonationUnavailable: a config names a ServiceAccount but the registry was
	// built without a RestConfig to impersonate it with.
	ReasonImpersonationUnavailable = "ImpersonationUnavailable"
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
	// RestConfig is the manager's connection to the API server (mgr.GetConfig()). A
	// kubernetes backend that acts as a ServiceAccount creates and patches its bindings
	// through a client built from it that impersonates the ServiceAccount. Nil: a config
	// that names a ServiceAccount (or any kubernetes config, with DefaultServiceAccount set)
	// gets a Permanent "ImpersonationUnavailable" error, never the manager's own rights.
	RestConfig *rest.Config
	// DefaultServiceAccount is the ServiceAccount, in each ScimConfig's own namespace, that
	// a kubernetes backend acts as when its spec.backend.kubernetes.serviceAccountName is
	// empty (the manager's --default-service-account flag: lockdown). Empty: such a
	// config's bindings are written with the manager's own rights.
	DefaultServiceAccount string
}

// Registry implements backend.Provider. It is safe for concurrent use.
type Registry struct {
	c       client.Client
	api     client.Reader
	opts    Options
	imp     *k8sbackend.Impersonator
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
	r := &Registry{c: c, api: apiReader, opts: opts, entries: map[types.NamespacedName]entry{}}
	if opts.RestConfig != nil {
		r.imp = k8sbackend.NewImpersonator(opts.RestConfig, client.Options{Scheme: c.Scheme(), Mapper: c.RESTMapper()})
	}
	return r
}

// UseRestConfig gives the registry the manager's connection to impersonate ServiceAccounts
// through, when Options.RestConfig was not set (controllers.SetupWithManager calls it
// with mgr.GetConfig()). Call it before the first For.
func (r *Registry) UseRestConfig(cfg *rest.Config) {
	if cfg == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.imp == nil {
		r.imp = k8sbackend.NewImpersonator(cfg, client.Options{Scheme: r.c.Scheme(), Mapper: r.c.RESTMapper()})
	}
}

func (r *Registry) impersonator() *k8sbackend.Impersonator {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.imp
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
		b, err := r.kubernetes(cfg)
		if err != nil {
			return nil, err
		}
		return r.store(key, cfg, "", b), nil
	case scimv1.BackendDockerHub:
		return r.dockerHub(ctx, key, cfg)
	default:
		return nil, backend.NewPermanent(ReasonUnknownBackend,
			fmt.Errorf("spec.backend.type %q is not a known backend (kubernetes, dockerhub)", cfg.Spec.Backend.Type))
	}
}

// kubernetes builds the kubernetes backend of cfg: bindings written as its ServiceAccount
// when it has one (or the default), as the manager otherwise.
func (r *Registry) kubernetes(cfg *scimv1.ScimConfig) (backend.Backend, error) {
	opts := slices.Clone(r.opts.KubernetesOptions)
	if r.api != nil {
		opts = append(opts, k8sbackend.WithLiveReader(r.api))
	}
	if sa := k8sbackend.ServiceAccountOf(cfg, r.opts.DefaultServiceAccount); sa != "" {
		imp := r.impersonator()
		if imp == nil {
			return nil, backend.NewPermanent(ReasonImpersonationUnavailable, fmt.Errorf(
				"ServiceAccount %q in namespace %q should write this ScimConfig's bindings, but this manager was "+
					"built without a connection to impersonate it with; refusing to write them with the manager's own rights", sa, cfg.Namespace))
		}
		w, err := imp.For(cfg.Namespace, sa)
		if err != nil {
			return nil, backend.NewPermanent(ReasonImpersonationUnavailable, err)
		}
		opts = append(opts, k8sbackend.ActAs(sa, w))
	}
	return k8sbackend.New(r.c, cfg, opts...), nil
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
