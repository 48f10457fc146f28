package scimserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scim-operator/scim-operator/internal/scimserver"
)

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().String()
}

// writeCert writes a self-signed serving certificate for 127.0.0.1 with the given serial
// number into dir as tls.crt and tls.key, in place (as a plain file write, not an atomic
// Secret volume swap: the server must cope with both).
func writeCert(dir string, serial int64) {
	GinkgoHelper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	kb, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)).To(Succeed())
}

// started starts s on its own context and stops it when the spec ends.
func started(s *scimserver.Server) {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done).Should(Receive(BeNil()))
	})
}

// servedSerial opens a fresh TLS connection to addr and returns the serial number of the
// certificate the server presents.
func servedSerial(addr string) (int64, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the spec reads the served certificate
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

var insecureClient = &http.Client{Transport: &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed test certificate
	DisableKeepAlives: true,
}}

func get(hc *http.Client, url, token string) (*http.Response, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, string(b), err
}

var _ = Describe("Start", func() {
	newServer := func(o scimserver.Options) (*scimserver.Server, error) {
		o.Client, o.APIReader, o.Cache, o.Log = mgrClient, mgrReader, mgrCache, logr.Discard()
		return scimserver.New(o)
	}

	for _, useTLS := range []bool{false, true} {
		It("serves until its context ends (TLS "+map[bool]string{false: "off", true: "on"}[useTLS]+")", func() {
			c := newEnv().config("started", "start-token")
			o := scimserver.Options{Addr: freeAddr(), InsecureHTTP: true}
			scheme := "http"
			if useTLS {
				o.CertDir, o.InsecureHTTP = GinkgoT().TempDir(), false
				writeCert(o.CertDir, 1)
				scheme = "https"
			}
			s, err := newServer(o)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.NeedLeaderElection()).To(BeFalse())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Start(ctx) }()
			Eventually(func() (int, error) {
				res, _, err := get(insecureClient, scheme+"://"+o.Addr+c.base+"/Users", "start-token")
				if err != nil {
					return 0, err
				}
				return res.StatusCode, nil
			}).Should(Equal(200))
			cancel()
			Eventually(done).Should(Receive(BeNil()))
		})
	}

	It("over TLS, hands out https URLs and answers plain HTTP with no SCIM data", func() {
		c := newEnv().config("tls-urls", "tls-urls-token")
		dir := GinkgoT().TempDir()
		writeCert(dir, 1)
		addr := freeAddr()
		s, err := newServer(scimserver.Options{Addr: addr, CertDir: dir})
		Expect(err).NotTo(HaveOccurred())
		started(s)
		var body string
		Eventually(func() (int, error) {
			res, b, err := get(insecureClient, "https://"+addr+c.base+"/ServiceProviderConfig", "tls-urls-token")
			if err != nil {
				return 0, err
			}
			body = b
			return res.StatusCode, nil
		}).Should(Equal(200))
		Expect(body).To(ContainSubstring(`"location":"https://` + addr + c.base + `/ServiceProviderConfig"`))

		By("X-Forwarded-Proto from a peer that is no trusted proxy changes nothing")
		req, err := http.NewRequest("GET", "https://"+addr+c.base+"/ResourceTypes/User", nil)
		Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Authorization", "Bearer tls-urls-token")
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("X-Forwarded-Host", "evil.example")
		res, err := insecureClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer res.Body.Close()
		Expect(res.StatusCode).To(Equal(200))
		b, err := io.ReadAll(res.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(ContainSubstring(`"location":"https://` + addr + c.base + `/ResourceTypes/User"`))

		By("plain HTTP to the TLS port")
		res, body, err = get(http.DefaultClient, "http://"+addr+c.base+"/Users", "tls-urls-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.StatusCode).To(Equal(400))
		Expect(body).To(ContainSubstring("HTTP request to an HTTPS server"))
	})

	It("picks up a certificate rewritten on disk without a restart", func() {
		dir := GinkgoT().TempDir()
		writeCert(dir, 1001)
		addr := freeAddr()
		s, err := newServer(scimserver.Options{Addr: addr, CertDir: dir})
		Expect(err).NotTo(HaveOccurred())
		started(s)
		Eventually(func() (int64, error) { return servedSerial(addr) }).Should(Equal(int64(1001)))
		writeCert(dir, 1002)
		// fsnotify sees the writes at once; the watcher's 10 s poll is the fallback
		Eventually(func() (int64, error) { return servedSerial(addr) }, 15*time.Second, 100*time.Millisecond).Should(Equal(int64(1002)))
	})

	Describe("refuses to run without a usable certificate", func() {
		It("fails New for a directory without tls.crt, naming what is missing", func() {
			dir := GinkgoT().TempDir()
			_, err := newServer(scimserver.Options{CertDir: dir})
			Expect(err).To(MatchError(And(ContainSubstring("no usable TLS certificate in "+dir), ContainSubstring("tls.crt"),
				ContainSubstring("no such file"))))
			By("CheckCertDir, which the manager calls first, says the same")
			Expect(scimserver.CheckCertDir(dir)).To(MatchError(err.Error()))
			writeCert(dir, 1)
			Expect(scimserver.CheckCertDir(dir)).To(Succeed())
		})
		It("fails New for a directory with tls.crt but no tls.key", func() {
			dir := GinkgoT().TempDir()
			writeCert(dir, 1)
			Expect(os.Remove(filepath.Join(dir, "tls.key"))).To(Succeed())
			_, err := newServer(scimserver.Options{CertDir: dir})
			Expect(err).To(MatchError(ContainSubstring(filepath.Join(dir, "tls.key"))))
		})
		It("fails New for a tls.crt that is no certificate", func() {
			dir := GinkgoT().TempDir()
			writeCert(dir, 1)
			Expect(os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("not PEM"), 0o600)).To(Succeed())
			_, err := newServer(scimserver.Options{CertDir: dir})
			Expect(err).To(MatchError(ContainSubstring("no usable TLS certificate")))
		})
		It("fails New for a nonexistent directory", func() {
			_, err := newServer(scimserver.Options{CertDir: "/nonexistent/scim-certs"})
			Expect(err).To(MatchError(ContainSubstring("/nonexistent/scim-certs/tls.crt")))
		})
		It("fails New when asked for both a certificate and plain HTTP", func() {
			dir := GinkgoT().TempDir()
			writeCert(dir, 1)
			_, err := newServer(scimserver.Options{CertDir: dir, InsecureHTTP: true})
			Expect(err).To(MatchError(ContainSubstring("exclude each other")))
		})
		It("refuses to Start plain HTTP that nobody asked for", func() {
			addr := freeAddr()
			s, err := newServer(scimserver.Options{Addr: addr})
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Start(context.Background())).To(MatchError(ContainSubstring("refusing to serve SCIM over plain HTTP")))
			_, err = net.DialTimeout("tcp", addr, time.Second)
			Expect(err).To(HaveOccurred(), "nothing listens")
		})
	})
})
