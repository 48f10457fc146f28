package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// jwtCatcher records the JWTs the emulator hands out for an access token, so that the
// secrets check (secrets_test.go) looks for them too.
func jwtCatcher(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/auth/token") && !strings.HasSuffix(r.URL.Path, "/users/login") {
			next.ServeHTTP(w, r)
			return
		}
		rr := httptest.NewRecorder()
		next.ServeHTTP(rr, r)
		var out struct {
			AccessToken string `json:"access_token"`
			Token       string `json:"token"`
		}
		if json.Unmarshal(rr.Body.Bytes(), &out) == nil {
			extraSecret(out.AccessToken, "a JWT Docker Hub issued")
			extraSecret(out.Token, "a JWT Docker Hub issued")
		}
		for k, vs := range rr.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rr.Code)
		_, _ = w.Write(rr.Body.Bytes())
	})
}

func randomOAT() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "dckr_oat_" + hex.EncodeToString(b)
}

var _ = Describe("a Docker Hub organization, its access token kept secret", func() {
	It("reports a wrong access token without the token, then provisions with the right one", func() {
		ns := newNamespace()
		good, wrong := randomOAT(), randomOAT()
		emu := hubemu.New(hubemu.Options{Org: ns, Tokens: map[string]hubemu.TokenSpec{good: {}}, Middleware: jwtCatcher}).Start()
		DeferCleanup(emu.Close)

		By("a ScimConfig whose access token Docker Hub refuses")
		hub := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hub"}, StringData: map[string]string{"token": wrong}}
		Expect(cluster.Client.Create(ctx, hub)).To(Succeed())
		cfg := &scimv1.ScimConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hub"},
			Spec: scimv1.ScimConfigSpec{Organization: ns, Backend: scimv1.BackendSpec{Type: scimv1.BackendDockerHub,
				DockerHub: &scimv1.DockerHubBackend{BaseURL: emu.URL(), DefaultRole: "member", RequestsPerMinute: 6000,
					AccessTokenSecretRef: scimv1.SecretKeyRef{Name: "hub", Key: "token"}}}},
		}
		Expect(cluster.Client.Create(ctx, cfg)).To(Succeed())
		key := types.NamespacedName{Namespace: ns, Name: "hub"}
		Eventually(func() string {
			Expect(cluster.Client.Get(ctx, key, cfg)).To(Succeed())
			if c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionBackendReady); c != nil {
				return string(c.Status) + "/" + c.Reason
			}
			return ""
		}, readyTimeout).Should(Equal("False/InvalidCredentials"))
		Expect(mustKubectl("describe", "scimconfig", "-n", ns, "hub")).To(ContainSubstring("InvalidCredentials"))

		By("the right access token")
		hub.StringData = map[string]string{"token": good}
		Expect(cluster.Client.Update(ctx, hub)).To(Succeed())
		cfg, err := devenv.WaitReady(ctx, cluster.Client, key, readyTimeout)
		Expect(err).NotTo(HaveOccurred())
		tok, err := devenv.Token(ctx, cluster.Client, cfg)
		Expect(err).NotTo(HaveOccurred())
		c := scimClient{base: mgr.SCIMURL + cfg.Status.BasePath, token: tok}

		By("provisioning and deprovisioning a user through SCIM")
		code, body, _ := c.do("POST", "/Users", `{"userName":"dana@example.com","emails":[{"value":"dana@example.com","primary":true}]}`)
		Expect(code).To(Equal(201), "%v", body)
		id := body["id"].(string)
		invited := func() int { return len(emu.Invites()) }
		Eventually(invited, readyTimeout).Should(Equal(1))
		code, _, _ = c.do("DELETE", "/Users/"+id, "")
		Expect(code).To(Equal(204))
		Eventually(invited, readyTimeout).Should(BeZero())

		By("the JWTs the manager was given are among the searched secrets")
		rec.mu.Lock()
		jwts := 0
		for _, from := range rec.secrets {
			if from == "a JWT Docker Hub issued" {
				jwts++
			}
		}
		rec.mu.Unlock()
		Expect(jwts).To(BeNumerically(">", 0))
	})
})
