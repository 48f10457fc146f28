package scimstore

import (
	"context"
	"testing"
	"time"
)

// A writer must never be overtaken while it works: every write's timeout stays under half
// the claims' grace, whatever WriteTimeout is set to.
func TestWriteTimeoutUnderClaimGrace(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, claimGrace / 2, claimGrace, time.Hour} {
		s := &Store{WriteTimeout: d}
		before := time.Now()
		ctx, cancel := s.writeCtx(context.Background())
		dl, ok := ctx.Deadline()
		cancel()
		if !ok || dl.Sub(before) > claimGrace/2 {
			t.Errorf("WriteTimeout %v: the write's deadline is %v away, want at most claimGrace/2 = %v", d, dl.Sub(before), claimGrace/2)
		}
	}
}
