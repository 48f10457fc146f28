package kubernetes

import (
	"sync"
	"time"
)

// proofTTL is how long a dry-run of the real binding as the ServiceAccount (the API
// server's escalation check, ensure in the Webhook layout) stands as the proof for the
// next OrgGrants of the same role. The check depends on the ServiceAccount and the role,
// never on the subject, so during a full sync it was one dry-run per member for one
// answer: 0.84 of the ~6 API writes per member that bound a 10,000-member sync (make
// bench, the API server's request counts). The cost is a window: a ServiceAccount whose
// right to bind a role is revoked can still have OrgGrants of it written for up to
// proofTTL, as it could have bound them itself a moment earlier (grants made before a
// revocation stay, in both layouts). Check never uses a proof, and forgets them all.
const proofTTL = 10 * time.Second

// proofs holds, per role (roleRef.key), when the ServiceAccount was last proven to be
// allowed to bind it. A Backend is one config generation's, so a changed ServiceAccount
// name starts with none.
type proofs struct {
	mu sync.Mutex
	at map[string]time.Time
}

// holds tells whether r was proven within proofTTL of now.
func (p *proofs) holds(r roleRef, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.at[r.key()]
	return ok && !now.Before(at) && now.Sub(at) < proofTTL
}

// record notes that r was proven at now (a dry-run as the ServiceAccount succeeded).
func (p *proofs) record(r roleRef, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.at == nil {
		p.at = map[string]time.Time{}
	}
	p.at[r.key()] = now
}

// forget drops every proof.
func (p *proofs) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.at)
}
