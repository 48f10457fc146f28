package dockerhub

import (
	"errors"
	"testing"

	"github.com/scim-operator/scim-operator/internal/backend"
)

// Issue 11 review: a reconcile under way when its config was disabled went on calling
// Docker Hub after Paused=True. A guarded context stops every call before it is sent.
func TestAGuardedContextSendsNothing(t *testing.T) {
	e := setup(t)
	stop := errors.New("config disabled")
	gctx := backend.WithGuard(ctx(t), func() error { return stop })
	before := len(e.emu.Requests())
	if _, err := e.b.ObserveMember(gctx, "zed@example.com"); !errors.Is(err, stop) {
		t.Fatalf("want the guard's error, got %v", err)
	}
	if n := len(e.emu.Requests()) - before; n != 0 {
		t.Fatalf("a guarded call reached Docker Hub (%d requests)", n)
	}
	if _, err := e.b.ObserveMember(ctx(t), "zed@example.com"); err != nil {
		t.Fatalf("unguarded: %v", err)
	}
}
