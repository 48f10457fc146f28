package dockerhub

import (
	"strings"
	"sync"
	"testing"

	"github.com/scim-operator/scim-operator/internal/backend"
)

// TestConformance runs the contract every backend passes against the Docker Hub emulator
// (with the OpenAPI validator on when the file is present).
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	envs := map[backend.Backend]*env{}
	of := func(b backend.Backend) *env {
		mu.Lock()
		defer mu.Unlock()
		return envs[b]
	}
	backend.RunConformance(t, backend.Harness{
		New: func(t *testing.T) backend.Backend {
			e := setup(t)
			mu.Lock()
			envs[e.b] = e
			mu.Unlock()
			return e.b
		},
		AcceptInvite: func(t *testing.T, b backend.Backend, userName string) {
			// The person signs up with a Docker ID derived from their email.
			id := strings.NewReplacer("@", "", ".", "").Replace(strings.ToLower(userName))
			if err := of(b).emu.AcceptInvite(userName, id); err != nil {
				t.Fatalf("accept the invitation of %s: %v", userName, err)
			}
		},
		HasAccess: func(t *testing.T, b backend.Backend, userName string) bool {
			return of(b).emu.IsMember(userName)
		},
		SupportsTeamMembership: true,
		SupportsRoles:          true,
		Roles:                  []string{"member", "editor"},
	})
}
