package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scim-operator/scim-operator/internal/devenv"
)

// request sends one SCIM request with hc and returns the status, the decoded body, the
// headers and the TLS state of the connection.
func request(hc *http.Client, method, url, token string, headers ...string) (int, map[string]any, http.Header, *tls.ConnectionState) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := hc.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	Expect(err).NotTo(HaveOccurred())
	var body map[string]any
	if res.Header.Get("Content-Type") != "" && strings.HasPrefix(res.Header.Get("Content-Type"), "application/scim+json") {
		Expect(json.Unmarshal(raw, &body)).To(Succeed(), "%s", raw)
	} else {
		body = map[string]any{"raw": string(raw)}
	}
	return res.StatusCode, body, res.Header, res.TLS
}

func location(body map[string]any) string {
	GinkgoHelper()
	meta, ok := body["meta"].(map[string]any)
	Expect(ok).To(BeTrue(), "no meta in %v", body)
	loc, _ := meta["location"].(string)
	return loc
}

// clientFrom is a client that trusts the suite's CA and connects from the loopback
// address local.
func clientFrom(local string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: certs.CA.Pool(), MinVersion: tls.VersionTLS12},
	}}
}

// servedSerial opens a fresh TLS connection to the SCIM listener, verifying it against
// the CA, and returns the serial number of the certificate it presents.
func servedSerial() (string, error) {
	conn, err := tls.Dial("tcp", mgr.SCIMAddr, &tls.Config{RootCAs: certs.CA.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

var _ = Describe("the SCIM endpoint's TLS", func() {
	It("serves HTTPS by default, verifiable with the CA file alone, and says https in its URLs", func() {
		_, cfg, c := readyConfig()
		Expect(mgr.SCIMURL).To(Equal("https://" + mgr.SCIMAddr))

		By("a client that trusts only the CA file, as curl --cacert does")
		pemCA, err := os.ReadFile(certs.CAFile)
		Expect(err).NotTo(HaveOccurred())
		roots := x509.NewCertPool()
		Expect(roots.AppendCertsFromPEM(pemCA)).To(BeTrue())
		curl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		code, body, _, state := request(curl, "GET", c.base+"/ServiceProviderConfig", c.token)
		Expect(code).To(Equal(200), "%v", body)
		Expect(state).NotTo(BeNil())
		Expect(state.Version).To(BeNumerically(">=", tls.VersionTLS12))
		Expect(state.NegotiatedProtocol).To(BeElementOf("", "http/1.1"))
		Expect(location(body)).To(Equal("https://" + mgr.SCIMAddr + cfg.Status.BasePath + "/ServiceProviderConfig"))

		By("meta.location and Location of a created user are https too")
		code, body, hdr := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"tls@example.com","active":true}`)
		Expect(code).To(Equal(201), "%v", body)
		Expect(location(body)).To(HavePrefix("https://" + mgr.SCIMAddr + cfg.Status.BasePath + "/Users/"))
		Expect(hdr.Get("Location")).To(Equal(location(body)))

		By("a client that does not trust the CA refuses the certificate")
		_, err = (&http.Client{Timeout: 10 * time.Second}).Get(c.base + "/ServiceProviderConfig")
		var unknown x509.UnknownAuthorityError
		Expect(errors.As(err, &unknown)).To(BeTrue(), "err = %v", err)

		By("plain HTTP to the port gets no SCIM answer")
		code, body, _, _ = request(&http.Client{Timeout: 10 * time.Second}, "GET", "http://"+mgr.SCIMAddr+cfg.Status.BasePath+"/Users", c.token)
		Expect(code).To(Equal(400))
		Expect(body["raw"]).To(ContainSubstring("HTTP request to an HTTPS server"))
	})

	It("takes X-Forwarded-Proto and X-Forwarded-Host from the trusted proxy only (--scim-trusted-proxies)", func() {
		_, cfg, c := readyConfig()
		fwd := []string{"X-Forwarded-Proto", "http", "X-Forwarded-Host", "scim.example.com"}

		By("from 127.0.0.1, not a trusted proxy: the connection's scheme and host")
		code, body, _, _ := request(clientFrom("127.0.0.1"), "GET", c.base+"/ServiceProviderConfig", c.token, fwd...)
		Expect(code).To(Equal(200), "%v", body)
		Expect(location(body)).To(Equal("https://" + mgr.SCIMAddr + cfg.Status.BasePath + "/ServiceProviderConfig"))

		By("from " + trustedProxy + ", the trusted proxy: what it forwarded")
		code, body, _, _ = request(clientFrom(trustedProxy), "GET", c.base+"/ServiceProviderConfig", c.token, fwd...)
		Expect(code).To(Equal(200), "%v", body)
		Expect(location(body)).To(Equal("http://scim.example.com" + cfg.Status.BasePath + "/ServiceProviderConfig"))
		code, body, _, _ = request(clientFrom(trustedProxy), "GET", c.base+"/ResourceTypes/User", c.token,
			"X-Forwarded-Proto", "https", "X-Forwarded-Host", "scim.example.com")
		Expect(code).To(Equal(200), "%v", body)
		Expect(location(body)).To(Equal("https://scim.example.com" + cfg.Status.BasePath + "/ResourceTypes/User"))
	})

	It("picks up a renewed certificate without a restart", func() {
		_, _, c := readyConfig()
		before, err := servedSerial()
		Expect(err).NotTo(HaveOccurred())
		pid := mgr.PID()

		By("renewing the certificate on disk as the kubelet updates a Secret volume")
		renewed, err := certs.CA.WriteServingCert(certs.CertDir, devenv.LocalHosts...)
		Expect(err).NotTo(HaveOccurred())
		Expect(renewed.SerialNumber.String()).NotTo(Equal(before))
		Eventually(servedSerial, 30*time.Second, 200*time.Millisecond).Should(Equal(renewed.SerialNumber.String()))

		By("the same process still answers SCIM over the new certificate")
		Expect(mgr.PID()).To(Equal(pid))
		Consistently(mgr.Done(), time.Second).ShouldNot(Receive())
		code, _, _ := c.do("GET", "/Users", "")
		Expect(code).To(Equal(200))
	})

	Describe("the binary refuses to start without a usable certificate", func() {
		// run starts the binary with args and returns its output once it exits.
		run := func(args ...string) string {
			GinkgoHelper()
			scim, err := devenv.FreeAddr()
			Expect(err).NotTo(HaveOccurred())
			probe, err := devenv.FreeAddr()
			Expect(err).NotTo(HaveOccurred())
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(rctx, binPath, append([]string{"--kubeconfig=" + cluster.Kubeconfig,
				"--scim-bind-address=" + scim, "--health-probe-bind-address=" + probe, "--metrics-bind-address=0"}, args...)...)
			out, err := cmd.CombinedOutput()
			Expect(rctx.Err()).NotTo(HaveOccurred(), "the manager kept running:\n%s", out)
			var ee *exec.ExitError
			Expect(errors.As(err, &ee)).To(BeTrue(), "the manager exited cleanly: %v\n%s", err, out)
			Expect(ee.ExitCode()).To(Equal(1))
			_, err = net.DialTimeout("tcp", scim, time.Second)
			Expect(err).To(HaveOccurred(), "nothing listens on the SCIM address")
			return string(out)
		}

		It("fails for a certificate directory without tls.crt and tls.key, naming them", func() {
			empty := GinkgoT().TempDir()
			out := run("--scim-cert-dir=" + empty)
			Expect(out).To(ContainSubstring("no usable TLS certificate in " + empty))
			Expect(out).To(ContainSubstring(filepath.Join(empty, "tls.crt")))
		})

		It("fails for a directory that does not exist", func() {
			out := run("--scim-cert-dir=" + filepath.Join(workDir, "no-such-dir"))
			Expect(out).To(ContainSubstring("no usable TLS certificate in " + filepath.Join(workDir, "no-such-dir")))
		})

		It("fails with neither a certificate directory nor --scim-insecure-http, saying which flags", func() {
			out := run()
			Expect(out).To(ContainSubstring("--scim-cert-dir"))
			Expect(out).To(ContainSubstring("--scim-insecure-http"))
		})

		It("fails when given both", func() {
			out := run("--scim-cert-dir="+certs.CertDir, "--scim-insecure-http")
			Expect(out).To(ContainSubstring("exclude each other"))
		})
	})
})
