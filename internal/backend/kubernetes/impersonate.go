package kubernetes

import (
	"errors"
	"fmt"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServiceAccountUser is the user name the API server gives a ServiceAccount.
func ServiceAccountUser(namespace, name string) string {
	return fmt.Sprintf("system:serviceaccount:%s:%s", namespace, name)
}

// Impersonator builds the clients that write bindings as a tenant's ServiceAccount: each
// impersonates "system:serviceaccount:<namespace>:<name>" (the API server adds the
// ServiceAccount's groups), so the API server authorizes every write, and runs its RBAC
// escalation check, with that ServiceAccount's rights, not the manager's. One client is
// kept per ServiceAccount; they share the manager's scheme and RESTMapper, and client-go
// shares the underlying connections between configs with the same TLS settings. It is
// safe for concurrent use.
type Impersonator struct {
	cfg     *rest.Config
	opts    client.Options
	mu      sync.Mutex
	clients map[string]client.Client
}

// NewImpersonator returns an Impersonator on the manager's connection cfg. opts should
// carry the manager's Scheme and Mapper (a nil Mapper means one discovery per client).
// Its Cache is ignored: every impersonated call goes to the API server.
func NewImpersonator(cfg *rest.Config, opts client.Options) *Impersonator {
	opts.Cache = nil
	return &Impersonator{cfg: cfg, opts: opts, clients: map[string]client.Client{}}
}

// For returns the client that acts as ServiceAccount name in namespace.
func (i *Impersonator) For(namespace, name string) (client.Client, error) {
	if namespace == "" || name == "" {
		return nil, errors.New("impersonation needs a ServiceAccount namespace and name")
	}
	user := ServiceAccountUser(namespace, name)
	i.mu.Lock()
	defer i.mu.Unlock()
	if c, ok := i.clients[user]; ok {
		return c, nil
	}
	cfg := rest.CopyConfig(i.cfg)
	// Exactly this user: no groups or extras carried over from the manager's own config
	// (the API server derives a ServiceAccount's groups itself).
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, i.opts)
	if err != nil {
		return nil, fmt.Errorf("a client acting as %s: %w", user, err)
	}
	i.clients[user] = c
	return c, nil
}

// Forget drops the client of a ServiceAccount (call it when no config names it any more).
func (i *Impersonator) Forget(namespace, name string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	delete(i.clients, ServiceAccountUser(namespace, name))
}
