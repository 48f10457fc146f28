package devenv

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestLocalAuthorizationWebhook: the API server is told the address the manager is told to
// listen on, with the CA of the certificate the manager serves.
func TestLocalAuthorizationWebhook(t *testing.T) {
	dir := t.TempDir()
	certs, err := LocalTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, args, err := LocalAuthorizationWebhook(dir, certs)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(w.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Path != "/authorize" {
		t.Errorf("URL %s, want https://.../authorize", w.URL)
	}
	if !slices.Contains(args, "--authorization-webhook-bind-address="+u.Host) {
		t.Errorf("manager flags %v do not listen on the URL's address %s", args, u.Host)
	}
	if !slices.Contains(args, "--authorization-webhook-cert-dir="+certs.CertDir) || w.CAFile != certs.CAFile {
		t.Errorf("manager flags %v / CA %s: not the certificate directory %s and its CA %s", args, w.CAFile, certs.CertDir, certs.CAFile)
	}
	if !strings.HasPrefix(u.Host, "127.0.0.1:") {
		t.Errorf("the webhook is not on loopback: %s", u.Host)
	}
}
