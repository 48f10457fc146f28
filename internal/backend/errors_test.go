package backend_test

import (
	"errors"
	"testing"

	"github.com/scim-operator/scim-operator/internal/backend"
)

// A failed call is config-wide only when it says something about the whole organization
// connection for good (credentials, the organization, the configuration). A 5xx, a dropped
// connection or an API server that does not answer is a failure of that one call: the
// member that made it retries with its own backoff, and the config's other members go on.
func TestConfigWide(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		err  error
		want bool
	}{
		{backend.NewPermanent("InvalidCredentials", boom), true},
		{backend.NewPermanent("OrganizationNotFound", boom), true},
		{backend.NewPermanent("Forbidden", boom), true},
		{backend.NewPermanent("ServiceAccountMissing", boom), true},
		// the registry's "this backend is not in this build": a configuration problem
		{backend.NewPermanent("BackendUnavailable", boom), true},
		{backend.NewTransient("BackendUnavailable", boom), false},
		{backend.NewTransient("APIServerUnavailable", boom), false},
		{backend.NewRateLimited(0, boom), false},
		{backend.NewPermanent("InvalidUser", boom), false},
		{backend.NewPermanent("LastOwner", boom), false},
		{boom, false},
	} {
		if got := backend.ConfigWide(c.err); got != c.want {
			t.Errorf("ConfigWide(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
