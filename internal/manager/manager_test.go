package manager

import (
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// TestAuthorizationWebhookNeedsACertificate: the webhook is HTTPS only; a manager asked to
// serve it with no certificate to serve it with does not start.
func TestAuthorizationWebhookNeedsACertificate(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	base := Options{MetricsAddr: "0", ProbeAddr: "0", ScimInsecureHTTP: true, SkipControllerNameValidation: true,
		AuthorizationWebhookAddr: "127.0.0.1:0"}
	if _, err := New(cfg, base); err == nil || !strings.Contains(err.Error(), "--authorization-webhook-cert-dir") {
		t.Errorf("no certificate: New = %v, want an error naming --authorization-webhook-cert-dir", err)
	}
	empty := base
	empty.AuthorizationWebhookCertDir = t.TempDir()
	if _, err := New(cfg, empty); err == nil || !strings.Contains(err.Error(), "tls.crt") {
		t.Errorf("an empty certificate directory: New = %v, want an error naming tls.crt", err)
	}
}
