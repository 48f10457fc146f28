package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

type scimClient struct {
	base, token string
}

func (c scimClient) do(method, path, body string) (int, map[string]any, http.Header) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, strings.NewReader(body))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var out map[string]any
	if len(raw) > 0 {
		ExpectWithOffset(1, json.Unmarshal(raw, &out)).To(Succeed(), "body: %s", raw)
	}
	return resp.StatusCode, out, resp.Header
}

// readyConfig applies the sample ScimConfig in a fresh namespace and returns a SCIM
// client for it, the way an IdP admin would set it up.
func readyConfig() (string, *scimv1.ScimConfig, scimClient) {
	ns := newNamespace()
	mustKubectl("apply", "-n", ns, "-f", filepath.Join(testenv.RepoRoot(), "config", "samples", "scim_v1alpha1_scimconfig.yaml"))
	cfg, err := devenv.WaitReady(ctx, cluster.Client, types.NamespacedName{Namespace: ns, Name: "example"}, readyTimeout)
	Expect(err).NotTo(HaveOccurred())
	tok, err := devenv.Token(ctx, cluster.Client, cfg)
	Expect(err).NotTo(HaveOccurred())
	return ns, cfg, scimClient{base: "http://" + mgr.SCIMAddr + cfg.Status.BasePath, token: tok}
}

var _ = Describe("the SCIM endpoint as an IdP sees it", func() {
	It("provisions a user that kubectl then shows, and keeps it across a manager restart", func() {
		ns, cfg, c := readyConfig()

		By("Test Connection")
		code, body, _ := c.do("GET", "/Users?startIndex=1&count=2", "")
		Expect(code).To(Equal(200))
		Expect(body["totalResults"]).To(BeEquivalentTo(0))

		By("creating a user")
		code, body, hdr := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
			"userName":"jane@example.com","name":{"givenName":"Jane","familyName":"Doe"},
			"emails":[{"value":"jane@example.com","type":"work","primary":true}],"active":true,"password":"t3mp!"}`)
		Expect(code).To(Equal(201), "%v", body)
		Expect(hdr.Get("ETag")).NotTo(BeEmpty())
		Expect(body).NotTo(HaveKey("password"))
		id := body["id"].(string)

		out := mustKubectl("get", "orgmembers", "-n", ns)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(strings.Fields(lines[0])).To(Equal([]string{"NAME", "USER", "ACTIVE", "PHASE", "READY", "AGE"}))
		Expect(lines[1]).To(MatchRegexp(`^` + id + `\s+jane@example.com\s+true\s`))

		By("a wrong token is refused")
		code, body, hdr = scimClient{base: c.base, token: "nope"}.do("GET", "/Users", "")
		Expect(code).To(Equal(401))
		Expect(hdr.Get("WWW-Authenticate")).To(HavePrefix("Bearer"))
		Expect(body["status"]).To(Equal("401"))

		By("killing the manager and starting it again")
		Expect(mgr.Kill()).To(Succeed())
		var err error
		mgr, err = devenv.StartManager(ctx, binPath, cluster.Kubeconfig, logFile, managerArgs...)
		Expect(err).NotTo(HaveOccurred())
		c.base = "http://" + mgr.SCIMAddr + cfg.Status.BasePath
		code, body, _ = c.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "JANE@example.com"`), "")
		Expect(code).To(Equal(200))
		Expect(body["totalResults"]).To(BeEquivalentTo(1))
	})

	It("rotates the token with kubectl, honouring the grace period", func() {
		ns, cfg, c := readyConfig()
		old := c.token
		mustKubectl("annotate", "-n", ns, "scimconfig", "example", scimv1.AnnotationRotateToken+"=e2e-1")
		var fresh string
		Eventually(func() string {
			got, err := devenv.Token(ctx, cluster.Client, cfg)
			Expect(err).NotTo(HaveOccurred())
			fresh = got
			return got
		}, 30*time.Second).ShouldNot(Equal(old))

		code, _, _ := scimClient{base: c.base, token: fresh}.do("GET", "/Users", "")
		Expect(code).To(Equal(200), "the new token works")
		code, _, _ = c.do("GET", "/Users", "")
		Expect(code).To(Equal(200), "the old token works during the sample's 24h grace period")
	})

	It("answers 403 for a disabled config", func() {
		ns, _, c := readyConfig()
		mustKubectl("patch", "-n", ns, "scimconfig", "example", "--type=merge", "-p", `{"spec":{"enabled":false}}`)
		Eventually(func() int { code, _, _ := c.do("GET", "/Users", ""); return code }, 30*time.Second).Should(Equal(403))
		_, body, _ := c.do("GET", "/Users", "")
		Expect(body["detail"]).To(ContainSubstring("disabled"))
	})
})

var _ = Describe("membership through the kubernetes backend", func() {
	canI := func(user string) string {
		out, _ := kubectl("auth", "can-i", "list", "pods", "-n", "default", "--as", user)
		return strings.TrimSpace(out)
	}
	phase := func(ns, id string) func() string {
		return func() string {
			out, _ := kubectl("get", "orgmember", "-n", ns, id, "-o", "jsonpath={.status.phase}")
			return out
		}
	}

	It("grants access on provisioning and takes it away on deactivation and deletion", func() {
		ns, _, c := readyConfig()
		user := "rbac-" + ns + "@example.com"
		Expect(canI(user)).To(Equal("no"))

		code, body, _ := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+user+`","active":true}`)
		Expect(code).To(Equal(201), "%v", body)
		id := body["id"].(string)
		Eventually(phase(ns, id), readyTimeout).Should(Equal("Active"))
		Eventually(func() string { return canI(user) }, readyTimeout).Should(Equal("yes"))

		By("deactivating (Okta's PATCH without a path)")
		code, body, _ = c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","value":{"active":false}}]}`)
		Expect(code).To(Equal(200), "%v", body)
		Eventually(phase(ns, id), readyTimeout).Should(Equal("Deactivated"))
		Eventually(func() string { return canI(user) }, readyTimeout).Should(Equal("no"))

		By("telling the story in kubectl describe")
		desc := mustKubectl("describe", "orgmember", "-n", ns, id)
		Expect(desc).To(ContainSubstring("Deactivated"))
		Expect(desc).To(MatchRegexp(`(?s)Events:.*Deactivated`))

		By("reactivating (Entra's string boolean)")
		code, _, _ = c.do("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"Replace","path":"active","value":"True"}]}`)
		Expect(code).To(Equal(200))
		Eventually(func() string { return canI(user) }, readyTimeout).Should(Equal("yes"))

		By("deleting")
		code, _, _ = c.do("DELETE", "/Users/"+id, "")
		Expect(code).To(Equal(204))
		Eventually(func() string { return canI(user) }, readyTimeout).Should(Equal("no"))
		Eventually(func() string {
			out, _ := kubectl("get", "orgmembers", "-n", ns, "-o", "name")
			return out
		}, readyTimeout).Should(BeEmpty())

		By("counting members on the ScimConfig")
		// The count is refreshed when the config reconciles (every minute, or at once on the
		// reconcile annotation): ask, and wait for it to say 0. (An empty answer, a config
		// never counted, is not an answer.)
		n := 0
		Eventually(func() string {
			n++
			mustKubectl("annotate", "-n", ns, "scimconfig", "example", "--overwrite",
				fmt.Sprintf("%s=e2e-count-%d", scimv1.AnnotationReconcile, n))
			return mustKubectl("get", "scimconfig", "-n", ns, "example", "-o", "jsonpath={.status.members.total}")
		}, readyTimeout, 2*time.Second).Should(Equal("0"))
	})
})
