package e2e

// Token rotation under traffic (issue 11, item 2): IdP connections keep sending SCIM
// requests (lookups, creates, PATCHes) while `kubectl scim rotate` replaces the token. One
// IdP is never updated: its old token must work until spec.tokenGracePeriod ends and be
// refused (401) after. The other is updated by automation the moment the new token is in
// its Secret (a pipeline that rotates and pushes the token to the IdP's API): the new token
// must work from then on. No request may fail for any other reason.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/testenv"
	"github.com/scim-operator/scim-operator/test/access"
)

// kubectlScim runs `kubectl scim ...` (the built plugin on PATH, as installed). Its output
// may hold a token: callers never print it.
func kubectlScim(args ...string) (string, string, error) {
	binDir, err := pluginBin()
	Expect(err).NotTo(HaveOccurred())
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.AssetsDir(), "kubectl"), append([]string{"scim"}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return stdout.String(), stderr.String(), err
}

// sent is one request of the traffic.
type sent struct {
	newToken   bool
	start, end time.Time
	what       string
	status     int
	err        error
}

var _ = Describe("token rotation under traffic", Label(faultsLabel), func() {
	It("keeps the old token until the grace period ends, then refuses it with 401, and fails no request for any other reason", func() {
		grace := knobDuration("FAULTS_GRACE", 8*time.Second)
		users := faultsUsers()
		ns, cfg, oldToken := ownConfig(grace.String())
		j := &journey{spec: "token-rotation", ns: ns, cfg: client.ObjectKeyFromObject(cfg), roles: access.RolesOf(cfg),
			c: idpClient{base: mgr.SCIMURL + cfg.Status.BasePath, token: oldToken, agent: "Okta SCIM Client 1.0.0", ctype: "application/scim+json"}}

		var (
			mu       sync.Mutex
			log      []sent
			newTok   atomic.Value // string: the updated IdP's token once it has it
			created  atomic.Int32
			stop     = make(chan struct{})
			wg       sync.WaitGroup
			lagStops atomic.Int32
		)
		newTok.Store("")
		record := func(s sent) {
			mu.Lock()
			defer mu.Unlock()
			log = append(log, s)
		}
		// worker sends requests until stop; lagging workers keep the old token forever and
		// give up at their first 401, as an IdP that was not updated does.
		worker := func(w int, lagging bool) {
			defer GinkgoRecover()
			defer wg.Done()
			var mine []*person
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond): // a steady stream, not a flood
				}
				c := j.c
				useNew := false
				if t := newTok.Load().(string); t != "" && !lagging {
					c.token, useNew = t, true
				}
				var method, path, body, what string
				switch {
				case k%4 == 0 && int(created.Load()) < users:
					// create: the IdP's lookup first is its own request below
					n := created.Add(1)
					if int(n) > users {
						continue
					}
					p := &person{i: int(n) - 1, userName: fmt.Sprintf("r%03d.%s@example.com", n-1, ns), active: true}
					p.email = p.userName
					method, path, what = "POST", "/Users", "create"
					body = fmt.Sprintf(`{"schemas":[%s],"userName":%q,"emails":[{"value":%q,"primary":true}],"active":true}`, userSchema, p.userName, p.email)
					s := sent{newToken: useNew, start: time.Now(), what: what}
					code, out, err := c.send(method, path, body)
					s.end, s.status, s.err = time.Now(), code, err
					record(s)
					if code == 201 {
						p.id, _ = out["id"].(string)
						mine = append(mine, p)
						mu.Lock()
						j.people = append(j.people, p)
						mu.Unlock()
					} else {
						created.Add(-1) // not created: someone tries again
					}
					if code == 401 && lagging {
						lagStops.Add(1)
						return
					}
					continue
				case k%4 == 1 && len(mine) > 0:
					p := mine[k%len(mine)]
					method, path, what = "PATCH", "/Users/"+p.id, "patch"
					body = fmt.Sprintf(`{%s,"Operations":[{"op":"replace","path":"displayName","value":"W%d K%d"}]}`, patchSchema, w, k)
				case k%4 == 2 && len(mine) > 0:
					method, path, what = "GET", filterQuery("userName", mine[k%len(mine)].userName, "&startIndex=1&count=100"), "lookup"
				default:
					method, path, what = "GET", "/Users?startIndex=1&count=2", "list"
				}
				s := sent{newToken: useNew, start: time.Now(), what: what}
				s.status, _, s.err = c.send(method, path, body)
				s.end = time.Now()
				record(s)
				if s.status == 401 && lagging {
					lagStops.Add(1)
					return
				}
			}
		}

		By("steady traffic from two IdPs, then `kubectl scim rotate`")
		workers := max(2, faultsWorkers())
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go worker(w, w%2 == 0)
		}
		time.Sleep(2 * time.Second)
		rotated := time.Now()
		_, stderr, err := kubectlScim("rotate", "example", "-n", ns)
		Expect(err).NotTo(HaveOccurred(), stderr)

		By("the second IdP gets the new token the moment it is in the Secret")
		var fresh string
		// (booleans, not the tokens, in any failure message: tokens are never printed)
		Eventually(func() bool {
			fresh, _ = devenv.Token(ctx, cluster.Client, cfg)
			return fresh != "" && fresh != oldToken
		}, readyTimeout, 10*time.Millisecond).Should(BeTrue(), "a new token")
		updated := time.Now()
		newTok.Store(fresh)
		out, _, err := kubectlScim("token", "example", "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out) == fresh).To(BeTrue(), "`kubectl scim token` prints the new token")

		var s corev1.Secret
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: naming.TokenSecretName("example")}, &s)).To(Succeed())
		expires, err := time.Parse(time.RFC3339, s.Annotations[naming.AnnotationPreviousTokenExpires])
		Expect(err).NotTo(HaveOccurred(), "the previous token's expiry is recorded")
		// the grace period runs from the rotation: the controller wrote the expiry between the
		// rotate command and the moment the new token was seen (RFC 3339: whole seconds)
		Expect(expires).To(BeTemporally(">=", rotated.Add(grace).Add(-time.Second)), "the grace period runs from the rotation")
		Expect(expires).To(BeTemporally("<=", updated.Add(grace).Add(time.Second)), "the grace period runs from the rotation")

		By(fmt.Sprintf("traffic through the end of the %s grace period and beyond", grace))
		time.Sleep(time.Until(expires) + 3*time.Second)
		close(stop)
		wg.Wait()
		trafficEnd := time.Now()
		j.c.token = fresh

		By("after the grace period: the old token 401, the new one 200")
		code, body, err := scimClientFor(j.c, oldToken).send("GET", "/Users?startIndex=1&count=1", "")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(401), "%v", body)
		Expect(body["status"]).To(Equal("401"))
		j.c.must(200, "GET", "/Users?startIndex=1&count=1", "")

		By("classifying every request")
		var oldOK, oldOKLast2s, oldRefused, newOK, straddle int
		var wrong []string
		for _, r := range log {
			ok := r.err == nil && (r.status == 200 || r.status == 201 || r.status == 204)
			desc := func(why string) string {
				return fmt.Sprintf("%s %s token, %s..%s (expiry %s): %d %v: %s", r.what, map[bool]string{true: "new", false: "old"}[r.newToken],
					r.start.Format("15:04:05.000"), r.end.Format("15:04:05.000"), expires.Format("15:04:05"), r.status, r.err, why)
			}
			switch {
			case r.newToken && ok:
				newOK++
			case r.newToken:
				wrong = append(wrong, desc("the new token was refused"))
			case r.end.Before(expires) && ok:
				oldOK++
				if r.start.After(expires.Add(-2 * time.Second)) {
					oldOKLast2s++
				}
			case r.end.Before(expires):
				wrong = append(wrong, desc("the old token failed within its grace period"))
			case !r.start.Before(expires) && r.err == nil && r.status == 401:
				oldRefused++
			case !r.start.Before(expires):
				wrong = append(wrong, desc("after the grace period the old token must get 401"))
			case ok || (r.err == nil && r.status == 401):
				straddle++ // sent before the expiry, answered after: either answer is right
				if ok && r.start.After(expires.Add(-2*time.Second)) {
					// sent in the last 2 s and accepted: the grace was not cut short (on a
					// loaded machine few requests both start and end in that window)
					oldOKLast2s++
				}
			default:
				wrong = append(wrong, desc("failed for another reason"))
			}
		}
		counts := fmt.Sprintf("requests=%d old-token-ok=%d (sent in the last 2s of grace and accepted: %d) new-token-ok=%d refused-after-grace=%d at-expiry=%d other-failures=%d grace=%s new-token-used=%s-after-kubectl-scim-rotate",
			len(log), oldOK, oldOKLast2s, newOK, oldRefused, straddle, len(wrong), grace, updated.Sub(rotated).Round(100*time.Millisecond))
		GinkgoWriter.Println(counts)
		Expect(wrong).To(BeEmpty(), counts)
		Expect(oldOKLast2s).To(BeNumerically(">", 0), "the old token was sent, and accepted, in the last 2 s of its grace period: %s", counts)
		Expect(oldRefused).To(BeNumerically(">", 0), "the old token was refused after it: %s", counts)
		Expect(newOK).To(BeNumerically(">", 0), counts)
		Expect(int(lagStops.Load())).To(Equal(workers/2+workers%2), "every IdP left on the old token was refused in the end")

		By("everyone created during the rotation is there, once, with access")
		took, last := settle(settleTimeout(len(j.people)), j.kubeCheck)
		Expect(last).To(BeEmpty())
		j.kubectlShows(kubePhase)
		j.faults.Store(1) // the rotation
		GinkgoWriter.Printf("traffic ended %s before the backend settled\n", time.Since(trafficEnd).Round(100*time.Millisecond))
		j.kubeFigures(took, counts)
	})
})

// scimClientFor is c with another token.
func scimClientFor(c idpClient, token string) idpClient {
	c.token = token
	return c
}
