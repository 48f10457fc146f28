package devenv

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalTLS(t *testing.T) {
	dir := t.TempDir()
	lt, err := LocalTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if lt.CAFile != filepath.Join(dir, "scim-ca.crt") || lt.CertDir != filepath.Join(dir, "scim-tls") {
		t.Fatalf("CAFile %s, CertDir %s", lt.CAFile, lt.CertDir)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "scim-ca.key"):              0o600,
		filepath.Join(lt.CertDir, "..data", "tls.key"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}

	t.Run("the serving certificate verifies against the CA file for every loopback name", func(t *testing.T) {
		pemCA, err := os.ReadFile(lt.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemCA) {
			t.Fatal("the CA file holds no certificate")
		}
		pair, err := tls.LoadX509KeyPair(filepath.Join(lt.CertDir, "tls.crt"), filepath.Join(lt.CertDir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"127.0.0.1", "::1", "localhost"} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: h}); err != nil {
				t.Errorf("%s: %v", h, err)
			}
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "scim.example.com"}); err == nil {
			t.Error("valid for a name it was not issued for")
		}
	})

	t.Run("a client that trusts the CA file talks HTTPS to a server with the certificate; others refuse it", func(t *testing.T) {
		pair, err := tls.LoadX509KeyPair(filepath.Join(lt.CertDir, "tls.crt"), filepath.Join(lt.CertDir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
		hs.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
		hs.StartTLS()
		defer hs.Close()
		_, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
		for _, host := range []string{"127.0.0.1", "localhost"} {
			res, err := lt.Client().Get("https://" + net.JoinHostPort(host, port) + "/")
			if err != nil {
				t.Fatalf("%s: %v", host, err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if string(b) != "ok" {
				t.Errorf("%s: body %q", host, b)
			}
		}
		_, err = (&http.Client{}).Get("https://127.0.0.1:" + port + "/")
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("a client without the CA: err = %v, want an unknown authority", err)
		}
	})

	t.Run("a second run keeps the CA and issues a new serving certificate in place", func(t *testing.T) {
		ca1, _ := os.ReadFile(lt.CAFile)
		crt1, _ := os.ReadFile(filepath.Join(lt.CertDir, "tls.crt"))
		data1, _ := os.Readlink(filepath.Join(lt.CertDir, "..data"))
		again, err := LocalTLS(dir)
		if err != nil {
			t.Fatal(err)
		}
		ca2, _ := os.ReadFile(again.CAFile)
		crt2, _ := os.ReadFile(filepath.Join(again.CertDir, "tls.crt"))
		if !bytes.Equal(ca1, ca2) {
			t.Error("the CA changed: whoever trusted it must trust it again")
		}
		if bytes.Equal(crt1, crt2) {
			t.Error("the serving certificate did not change")
		}
		if _, err := os.Stat(filepath.Join(again.CertDir, data1)); !os.IsNotExist(err) {
			t.Errorf("the previous data directory %s is still there (%v)", data1, err)
		}
		entries, _ := os.ReadDir(again.CertDir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) != 5 { // ..<timestamp>, ..data, ca.crt, tls.crt, tls.key
			t.Errorf("cert dir holds %v", names)
		}
		for _, n := range []string{"tls.crt", "tls.key", "ca.crt"} {
			if target, err := os.Readlink(filepath.Join(again.CertDir, n)); err != nil || target != filepath.Join("..data", n) {
				t.Errorf("%s -> %q (%v), want a link through ..data", n, target, err)
			}
		}
	})

	t.Run("a CA file that is not a CA (or not there) is replaced", func(t *testing.T) {
		if err := os.WriteFile(lt.CAFile, []byte("garbage"), 0o644); err != nil {
			t.Fatal(err)
		}
		again, err := LocalTLS(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(again.CAFile)
		if !strings.Contains(string(b), "BEGIN CERTIFICATE") || !again.CA.Cert.IsCA {
			t.Errorf("CA file: %q", b)
		}
	})
}
