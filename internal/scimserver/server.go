// Package scimserver serves SCIM 2.0 over HTTPS (plain HTTP only when asked for) for
// every ScimConfig, each under its own base path naming.BasePath(namespace, name),
// authenticated with that config's bearer token. It runs in the manager as a Runnable on
// every replica.
package scimserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// RBAC the SCIM server needs (the manager's role).
// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs,verbs=get;list;watch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgmembers;orggroups,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=scim.operator.dev,resources=orgnameclaims,verbs=get;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is zero.
const DefaultMaxBodyBytes int64 = 1 << 20

// Options configure the server.
type Options struct {
	Addr string // listen address, e.g. ":8090"
	// CertDir holds tls.crt and tls.key (the keys of a kubernetes.io/tls Secret mounted
	// there): Start serves HTTPS with them and picks up new files without a restart. New
	// fails when they cannot be read; there is no fallback to plain HTTP.
	CertDir string
	// InsecureHTTP makes Start serve plain HTTP, for a listener behind a proxy that
	// terminates TLS or on loopback. It is the only way to get plain HTTP: with neither
	// CertDir nor InsecureHTTP, Start refuses to listen. It excludes CertDir.
	InsecureHTTP bool
	Client       client.Client // the manager's (cached) client
	APIReader    client.Reader // uncached reader (token Secrets, read-your-writes fallback)
	Cache        cache.Cache   // for WaitForCacheSync and the members' order (scimstore.MemberOrder)
	MaxBodyBytes int64
	Log          logr.Logger
	// TrustedProxies lists the reverse proxies (CIDRs such as "10.0.0.0/8", or single
	// addresses) whose forwarded headers are believed: X-Forwarded-For names the client
	// for the failed-authentication limiter, and X-Forwarded-Proto and X-Forwarded-Host
	// the scheme and host the IdP used, for meta.location and the discovery documents.
	// Empty (the default): the direct peer is the client, the scheme is the connection's
	// own (https over TLS) and the host is the Host header; X-Forwarded-* are ignored,
	// since any client can send them.
	TrustedProxies []string
}

// Server is the SCIM HTTP server.
type Server struct {
	o     Options
	store *scimstore.Store
	// types are the stores of the resource types by endpoint segment ("Users"), typeList
	// the same in the order of the root .search answer.
	types    map[string]scimstore.Resources
	typeList []scimstore.Resources
	tokens   *tokenMemo
	limiter  *failureLimiter
	clients  clientResolver
	handler  http.Handler
	// certs serves the certificate of CertDir and reloads it when the files change (nil:
	// plain HTTP, only with InsecureHTTP).
	certs *certwatcher.CertWatcher
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
	// The cache's Secret metadata (the manager watches token Secrets, metadata only) tells
	// the token memo when a Secret changed; the client cannot: it reads Secrets uncached.
	var secretMeta client.Reader
	if o.Cache != nil {
		secretMeta = o.Cache
	}
	store := &scimstore.Store{Client: o.Client, APIReader: o.APIReader, Log: o.Log}
	if o.Cache != nil {
		// a write waits for the compact indexes to show it too (read-your-writes)
		store.Indexes = index.Of(o.Cache)
		// the unfiltered /Users pages come from the members' ids kept in order
		if store.Order, err = scimstore.NewMemberOrder(context.Background(), o.Cache); err != nil {
			return nil, fmt.Errorf("scimserver: %w", err)
		}
	}
	s := &Server{
		o:       o,
		store:   store,
		tokens:  newTokenMemo(o.APIReader, secretMeta, 3*time.Second),
		limiter: newFailureLimiter(),
		clients: clientResolver{trusted: trusted},
	}
	if o.CertDir != "" && o.InsecureHTTP {
		return nil, errors.New("scimserver: a certificate directory and plain HTTP exclude each other: choose one")
	}
	if o.CertDir != "" {
		if s.certs, err = loadCerts(o.CertDir); err != nil {
			return nil, err
		}
	}
	s.typeList = []scimstore.Resources{s.store.Users(), s.store.Groups()}
	s.types = map[string]scimstore.Resources{}
	for _, rs := range s.typeList {
		s.types[rs.Type().Endpoint[1:]] = rs
	}
	registerMetrics()
	s.handler = s.instrument(s.route(s.authenticate(s.dispatch)))
	return s, nil
}

// CheckCertDir tells whether dir holds a usable tls.crt and tls.key pair, with the error
// New would return. The manager calls it before anything else, so that a missing
// certificate is the first thing an operator reads, not hidden behind other failures.
func CheckCertDir(dir string) error {
	_, err := tls.LoadX509KeyPair(filepath.Join(dir, corev1.TLSCertKey), filepath.Join(dir, corev1.TLSPrivateKeyKey))
	return certDirError(dir, err)
}

// loadCerts reads tls.crt and tls.key of dir now, so that a missing or unreadable
// certificate is an error at startup rather than a listener that cannot shake hands.
func loadCerts(dir string) (*certwatcher.CertWatcher, error) {
	cw, err := certwatcher.New(filepath.Join(dir, corev1.TLSCertKey), filepath.Join(dir, corev1.TLSPrivateKeyKey))
	if err != nil {
		return nil, certDirError(dir, err)
	}
	return cw, nil
}

func certDirError(dir string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("scimserver: no usable TLS certificate in %s (it must hold %s and %s, as a kubernetes.io/tls Secret mounted there does): %w",
		dir, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
}

// Handler is the server's HTTP handler (for tests).
func (s *Server) Handler() http.Handler { return s.handler }

// NeedLeaderElection is false: every replica serves SCIM.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends: HTTPS with the certificate of CertDir, reloaded when its
// files change, or plain HTTP when InsecureHTTP says so. A Server starts once.
func (s *Server) Start(ctx context.Context) error {
	if s.certs == nil && !s.o.InsecureHTTP {
		return errors.New("scimserver: refusing to serve SCIM over plain HTTP: give a certificate directory (CertDir) or ask for plain HTTP (InsecureHTTP)")
	}
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
		// 1 MiB, Go's default and the body limit: a URL long enough to carry any filter a
		// client may send reaches the SCIM code and gets a SCIM answer (400 invalidFilter
		// past the filter's own length limit), never a bare 431 from net/http.
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       nil,
		// HTTP/2 is off (secure default after CVE-2023-44487); SCIM clients use HTTP/1.1.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext:  func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("scimserver: listen %s: %w", s.o.Addr, err)
	}
	errc := make(chan error, 2)
	if s.certs != nil {
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"http/1.1"},
			GetCertificate: s.certs.GetCertificate,
		}
		ln = tls.NewListener(ln, srv.TLSConfig)
		// the watcher re-reads the files on change events and every 10 s; it returns early
		// only when it cannot watch them, and then the server stops rather than serve a
		// certificate that would never be renewed
		wctx, stopWatch := context.WithCancel(ctx)
		defer stopWatch()
		go func() {
			if err := s.certs.Start(wctx); err != nil && wctx.Err() == nil {
				errc <- fmt.Errorf("scimserver: watching %s: %w", s.o.CertDir, err)
			}
		}()
	}
	s.listening.Store(true)
	defer s.listening.Store(false)
	s.o.Log.Info("serving SCIM", "addr", ln.Addr().String(), "tls", s.certs != nil, "certDir", s.o.CertDir)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		_ = srv.Close()
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
