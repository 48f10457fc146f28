package authz

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Path is where the webhook answers: the URL in the API server's webhook kubeconfig is
// https://<manager>/authorize.
const Path = "/authorize"

// maxBody bounds a review's body: a SubjectAccessReview is small (user, groups, extra,
// attributes).
const maxBody = 256 << 10

var (
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "scim_authz_decisions_total",
		Help: "Authorization webhook answers by decision: allowed, no_opinion, error (no opinion after a cache read failed), bad_request.",
	}, []string{"decision"})
	decisionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "scim_authz_decision_duration_seconds",
		Help:    "Time the authorization webhook takes to answer a SubjectAccessReview (from the body read to the answer).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 14),
	})
)

func init() {
	metrics.Registry.MustRegister(decisions, decisionDuration)
}

// ServerOptions configure the webhook's listener.
type ServerOptions struct {
	// Addr is the listen address, e.g. "127.0.0.1:9443".
	Addr string
	// CertDir holds tls.crt and tls.key, reloaded when they change. Required: the API
	// server calls the webhook over HTTPS only.
	CertDir string
	// Cache is waited for before the listener opens (nil: not waited for).
	Cache cache.Cache
	Log   logr.Logger
}

// Server serves the Authorizer over HTTPS at Path. It is a manager Runnable that runs on
// every replica.
type Server struct {
	o     ServerOptions
	authz *Authorizer
	certs *certwatcher.CertWatcher
	// listening is true while the listener accepts connections (ReadyCheck).
	listening atomic.Bool
}

// NewServer builds the server of a; it reads the certificate now, so that a missing one
// is an error at startup.
func NewServer(a *Authorizer, o ServerOptions) (*Server, error) {
	if o.Addr == "" {
		return nil, errors.New("authz: no listen address")
	}
	if o.CertDir == "" {
		return nil, errors.New("authz: the authorization webhook is served over HTTPS only: give a certificate directory")
	}
	cw, err := certwatcher.New(filepath.Join(o.CertDir, corev1.TLSCertKey), filepath.Join(o.CertDir, corev1.TLSPrivateKeyKey))
	if err != nil {
		return nil, fmt.Errorf("authz: no usable TLS certificate in %s (it must hold %s and %s): %w",
			o.CertDir, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	return &Server{o: o, authz: a, certs: cw}, nil
}

// NeedLeaderElection is false: every replica answers the API server.
func (s *Server) NeedLeaderElection() bool { return false }

// ReadyCheck passes once the listener accepts connections.
func (s *Server) ReadyCheck(_ *http.Request) error {
	if !s.listening.Load() {
		return errors.New("authorization webhook listener not started")
	}
	return nil
}

// Handler is the webhook's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serveReview)
	return mux
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.o.Cache != nil && !s.o.Cache.WaitForCacheSync(ctx) {
		return errors.New("authz: cache did not sync")
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}, GetCertificate: s.certs.GetCertificate}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		TLSConfig:         tlsCfg,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("authz: listen %s: %w", s.o.Addr, err)
	}
	ln = tls.NewListener(ln, tlsCfg)
	errc := make(chan error, 2)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		if err := s.certs.Start(wctx); err != nil && wctx.Err() == nil {
			errc <- fmt.Errorf("authz: watching %s: %w", s.o.CertDir, err)
		}
	}()
	s.listening.Store(true)
	defer s.listening.Store(false)
	s.o.Log.Info("serving the authorization webhook", "addr", ln.Addr().String(), "path", Path, "certDir", s.o.CertDir)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		_ = srv.Close()
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// serveReview answers one SubjectAccessReview. Bad input gets 400; a cache that cannot be
// read gets no opinion with an evaluationError. Nothing of the request but the user name
// is logged (a review carries no token, but its extra fields may carry anything).
func (s *Server) serveReview(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST a SubjectAccessReview", http.StatusMethodNotAllowed)
		decisions.WithLabelValues("bad_request").Inc()
		return
	}
	var review authorizationv1.SubjectAccessReview
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = json.Unmarshal(body, &review)
	}
	if err == nil && (review.APIVersion != authorizationv1.SchemeGroupVersion.String() || review.Kind != "SubjectAccessReview") {
		err = fmt.Errorf("apiVersion %q kind %q, want %s SubjectAccessReview", review.APIVersion, review.Kind, authorizationv1.SchemeGroupVersion)
	}
	if err == nil && review.Spec.ResourceAttributes == nil && review.Spec.NonResourceAttributes == nil {
		err = errors.New("neither resourceAttributes nor nonResourceAttributes")
	}
	if err != nil {
		decisions.WithLabelValues("bad_request").Inc()
		http.Error(w, "not a SubjectAccessReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	d, aerr := s.authz.Authorize(r.Context(), review.Spec)
	out := authorizationv1.SubjectAccessReview{TypeMeta: review.TypeMeta}
	out.UID = review.UID
	out.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: d.Allowed, Reason: d.Reason}
	label := "no_opinion"
	switch {
	case aerr != nil:
		label = "error"
		out.Status = authorizationv1.SubjectAccessReviewStatus{EvaluationError: "scim-operator could not read its cache"}
		s.o.Log.Error(aerr, "authorizing", "user", review.Spec.User)
	case d.Allowed:
		label = "allowed"
	}
	decisions.WithLabelValues(label).Inc()
	decisionDuration.Observe(time.Since(start).Seconds())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&out)
}
