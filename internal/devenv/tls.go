package devenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The local SCIM endpoint is served over HTTPS like an installed one: `make run` and the
// e2e suite make a CA of their own, issue a serving certificate for the loopback names
// with it, and hand the manager the certificate directory (--scim-cert-dir). Clients
// trust the CA file (curl --cacert); nobody skips verification.

// LocalHosts are the names a local serving certificate is valid for.
var LocalHosts = []string{"127.0.0.1", "::1", "localhost"}

const (
	caValidity      = 365 * 24 * time.Hour
	caMinRemaining  = 7 * 24 * time.Hour // a CA closer to its end than this is replaced
	servingValidity = 30 * 24 * time.Hour
)

// CA is a certificate authority kept in two PEM files (LoadOrCreateCA).
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// LoadOrCreateCA returns the CA of certFile and keyFile when both parse, belong together
// and stay valid for another week; otherwise it makes a new one (valid for a year) and
// writes it there (the key with mode 0600). Keeping the CA across runs lets a developer
// who trusted it once (a browser, Postman, an OS store) keep trusting each new serving
// certificate.
func LoadOrCreateCA(certFile, keyFile string) (*CA, error) {
	if ca, err := loadCA(certFile, keyFile); err == nil {
		return ca, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "scim-operator local CA", Organization: []string{"scim-operator make run"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certFile, ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

func loadCA(certFile, keyFile string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile) // checks that they belong together
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || time.Until(cert.NotAfter) < caMinRemaining || time.Now().Before(cert.NotBefore) {
		return nil, errors.New("not a usable CA")
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), key: key}, nil
}

// Pool is a certificate pool holding this CA alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteServingCert issues a serving certificate for hosts (IP addresses or DNS names),
// valid for 30 days, and writes it into dir as tls.crt and tls.key the way the kubelet
// updates a Secret volume: the files go into a fresh hidden directory, which is published
// by renaming the ..data symlink over the old one, and tls.crt and tls.key are symlinks
// through ..data. A reader never sees a certificate without its key, and a rewrite while
// the manager runs is exactly the rotation it meets in a cluster. It returns the new
// certificate.
func (ca *CA) WriteServingCert(dir string, hosts ...string) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "scim-operator local SCIM endpoint"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(servingValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	err = writeSecretVolume(dir, map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		"ca.crt":  ca.CertPEM,
	})
	if err != nil {
		return nil, fmt.Errorf("writing the serving certificate into %s: %w", dir, err)
	}
	return cert, nil
}

// writeSecretVolume writes files into dir as the kubelet's atomic writer does.
func writeSecretVolume(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data := filepath.Join(dir, "..data")
	old, _ := os.Readlink(data)
	ts, err := os.MkdirTemp(dir, ".."+time.Now().UTC().Format("2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(ts, name), b, 0o600); err != nil {
			return err
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, data); err != nil {
		return err
	}
	for name := range files {
		link, target := filepath.Join(dir, name), filepath.Join("..data", name)
		if got, err := os.Readlink(link); err == nil && got == target {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	if old != "" && old != filepath.Base(ts) && strings.HasPrefix(old, "..") {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }()
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// TLS is what a local manager serves SCIM with: a certificate directory for
// --scim-cert-dir and the CA that signed its certificate.
type TLS struct {
	// CAFile is the CA certificate (PEM): curl --cacert CAFile.
	CAFile string
	// CertDir holds tls.crt and tls.key (and ca.crt), laid out like a Secret volume.
	CertDir string
	CA      *CA
}

// LocalTLS keeps a CA in dir/scim-ca.crt (its key in dir/scim-ca.key), reused across runs
// while it is valid, and writes a fresh serving certificate for LocalHosts into
// dir/scim-tls.
func LocalTLS(dir string) (*TLS, error) {
	t := &TLS{CAFile: filepath.Join(dir, "scim-ca.crt"), CertDir: filepath.Join(dir, "scim-tls")}
	ca, err := LoadOrCreateCA(t.CAFile, filepath.Join(dir, "scim-ca.key"))
	if err != nil {
		return nil, fmt.Errorf("the local CA in %s: %w", dir, err)
	}
	t.CA = ca
	if _, err := ca.WriteServingCert(t.CertDir, LocalHosts...); err != nil {
		return nil, err
	}
	return t, nil
}

// Client is an HTTP client that trusts this CA and nothing else, as curl --cacert does.
func (t *TLS) Client() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: t.CA.Pool(), MinVersion: tls.VersionTLS12},
	}}
}
