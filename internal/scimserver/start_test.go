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

func writeCert(dir string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	kb, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)).To(Succeed())
	Expect(os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)).To(Succeed())
}

var _ = Describe("Start", func() {
	for _, useTLS := range []bool{false, true} {
		It("serves until its context ends (TLS "+map[bool]string{false: "off", true: "on"}[useTLS]+")", func() {
			c := newEnv().config("started", "start-token")
			dir := GinkgoT().TempDir()
			scheme := "http"
			if useTLS {
				writeCert(dir)
				scheme = "https"
			}
			addr := freeAddr()
			s, err := scimserver.New(scimserver.Options{Addr: addr, CertDir: dir, Client: mgrClient, APIReader: mgrReader, Cache: mgrCache, Log: logr.Discard()})
			Expect(err).NotTo(HaveOccurred())
			Expect(s.NeedLeaderElection()).To(BeFalse())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Start(ctx) }()
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test cert
			req, _ := http.NewRequest("GET", scheme+"://"+addr+c.base+"/Users", nil)
			req.Header.Set("Authorization", "Bearer start-token")
			Eventually(func() (int, error) {
				res, err := hc.Do(req)
				if err != nil {
					return 0, err
				}
				res.Body.Close()
				return res.StatusCode, nil
			}).Should(Equal(200))
			cancel()
			Eventually(done).Should(Receive(BeNil()))
		})
	}
})
