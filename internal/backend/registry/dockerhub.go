package registry

import (
	"context"

	"github.com/go-logr/logr"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/backend/dockerhub"
)

// DockerHub is the DockerHubFunc of the manager: a dockerhub backend for the config's
// organization, sharing one rate limiter per organization across every worker.
func DockerHub(log logr.Logger) DockerHubFunc {
	return func(_ context.Context, cfg *scimv1.ScimConfig, token string) (backend.Backend, error) {
		dh := cfg.Spec.Backend.DockerHub
		return dockerhub.New(dockerhub.Options{
			BaseURL:     dh.BaseURL,
			Org:         cfg.Spec.Organization,
			AccessToken: token,
			Limiter:     dockerhub.SharedLimiter(cfg.Spec.Organization, int(dh.RequestsPerMinute)),
			DefaultRole: dh.DefaultRole,
			Log:         log.WithValues("organization", cfg.Spec.Organization),
		})
	}
}
