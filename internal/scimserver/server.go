// Package scimserver serves SCIM 2.0 over HTTP for every ScimConfig, each under its own
// base path naming.BasePath(namespace, name), authenticated with that config's bearer
// token. It runs in the manager as a Runnable on every replica.
package scimserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// RBAC the SCIM server needs (the manager's role).
// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers;orggroups,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is zero.
const DefaultMaxBodyBytes int64 = 1 << 20

// Options configure the server.
type Options struct {
	Addr         string        // listen address, e.g. ":8090"
	CertDir      string        // when it holds tls.crt/tls.key, serve HTTPS; else plain HTTP
	Client       client.Client // the manager's (cached) client
	APIReader    client.Reader // uncached reader (token Secrets, read-your-writes fallback)
	Cache        cache.Cache   // for WaitForCacheSync
	MaxBodyBytes int64
	Log          logr.Logger
	// TrustedProxies lists the reverse proxies (CIDRs such as "10.0.0.0/8", or single
	// addresses) whose X-Forwarded-For header names the client for the failed-
	// authentication limiter. Empty (the default): the limiter keys on the direct peer
	// and X-Forwarded-For is ignored, since any client can send it.
	TrustedProxies []string
}

// Server is the SCIM HTTP server.
type Server struct {
	o       Options
	store   *scimstore.Store
	tokens  *tokenMemo
	limiter *failureLimiter
	clients clientResolver
	handler http.Handler
	tls     bool
	// listening is true while the listener accepts connections (ReadyCheck).
	listening atomic.Bool
}

// ReadyCheck is a readiness check (healthz.Checker) that passes once the SCIM listener
// accepts connections, so a replica takes IdP traffic only when it can answer it.
func (s *Server) ReadyCheck(_ *http.Request) error {
	if !s.listening.Load() {
		return errors.New("SCIM listener not started")
	}
	return nil
}

// New builds a server.
func New(o Options) (*Server, error) {
	if o.Client == nil || o.APIReader == nil {
		return nil, errors.New("scimserver: Client and APIReader are required")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Addr == "" {
		o.Addr = ":8090"
	}
	trusted, err := parseTrustedProxies(o.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("scimserver: %w", err)
	}
	s := &Server{
		o:       o,
		store:   &scimstore.Store{Client: o.Client, APIReader: o.APIReader, Log: o.Log},
		tokens:  newTokenMemo(o.APIReader, 3*time.Second),
		limiter: newFailureLimiter(),
		clients: clientResolver{trusted: trusted},
	}
	if o.CertDir != "" {
		if _, err := os.Stat(filepath.Join(o.CertDir, "tls.crt")); err == nil {
			s.tls = true
		}
	}
	registerMetrics()
	s.handler = s.instrument(http.HandlerFunc(s.route))
	return s, nil
}

// Handler is the server's HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection is false: every replica serves SCIM.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.o.Cache != nil && !s.o.Cache.WaitForCacheSync(ctx) {
		return errors.New("scimserver: cache did not sync")
	}
	srv := &http.Server{
		Addr:              s.o.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      5 * time.Minute, // a group of 50,000 members is a long answer
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
		// HTTP/2 is off (secure default after CVE-2023-44487); SCIM clients use HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext:  func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("scimserver: listen %s: %w", s.o.Addr, err)
	}
	s.listening.Store(true)
	defer s.listening.Store(false)
	if s.tls {
		cw, err := certwatcher.New(filepath.Join(s.o.CertDir, "tls.crt"), filepath.Join(s.o.CertDir, "tls.key"))
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("scimserver: certificates: %w", err)
		}
		go func() { _ = cw.Start(ctx) }()
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cw.GetCertificate}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	s.o.Log.Info("serving SCIM", "addr", ln.Addr().String(), "tls", s.tls)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
		return nil
	}
}
