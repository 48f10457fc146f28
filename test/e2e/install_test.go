package e2e

// The shipped install on a real API server (issue 11, item 5): `make build-installer`'s
// dist/install.yaml is applied to the suite's control plane (server-side apply, for real),
// and the manager binary then runs as the installed ServiceAccount, with the Deployment's
// own flags, and does its job with only the RBAC the install grants: leader election, a
// ScimConfig made Ready, a SCIM create that reaches Active in the kubernetes backend, a
// group pushed and deleted (its status and finalizer), a delete that takes the access
// away, metrics behind authentication, and not one refusal of the installed identity (nor
// a rejected event) in the manager's log.
//
// The manager authenticates with a bound token of that ServiceAccount (a TokenRequest, as
// the kubelet gives a pod), not through an impersonating kubeconfig: the manager writes
// bindings by impersonating each tenant's ServiceAccount, and impersonation does not nest.
// Its tenant clients would replace the kubeconfig's Impersonate-User with the tenant's and
// be authorized as the kubeconfig's real (admin) user, so the install's "impersonate
// scim-provisioner" rule would never be tested. A token is exactly the pod's identity.
//
// The control plane runs no controllers and no kubelet: the Deployment is created, and
// nothing runs its pods; the binary runs here instead, on loopback.

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

const (
	installNS = "scim-operator-system"
	installSA = "scim-operator-controller-manager"
)

// buildInstaller runs `make build-installer` in a copy of the working tree (every file git
// tracks or would track) and returns the dist/install.yaml it wrote. In a copy, because
// the target regenerates config/ (make manifests) and edits config/manager while it runs:
// packages tested beside this one (test/model, test/crd) read config/crd/bases meanwhile.
func buildInstaller() []byte {
	root := testenv.RepoRoot()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	Expect(err).NotTo(HaveOccurred())
	tree := filepath.Join(GinkgoT().TempDir(), "tree")
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		raw, err := os.ReadFile(filepath.Join(root, rel))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		Expect(err).NotTo(HaveOccurred())
		st, err := os.Stat(filepath.Join(root, rel))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.MkdirAll(filepath.Join(tree, filepath.Dir(rel)), 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(tree, rel), raw, st.Mode().Perm())).To(Succeed())
	}
	cmd := exec.CommandContext(ctx, "make", "build-installer")
	cmd.Dir = tree
	b, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "make build-installer:\n%s", b)
	install, err := os.ReadFile(filepath.Join(tree, "dist", "install.yaml"))
	Expect(err).NotTo(HaveOccurred())
	return install
}

// installObjects reads what the install says about its manager: its Deployment, and the
// bindings that name its ServiceAccount ("Kind/namespace/name"), and how many objects it has.
func installObjects(install []byte) (dep *appsv1.Deployment, bindings []string, objects int) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(install), 4096)
	for {
		var raw map[string]any
		if err := dec.Decode(&raw); err != nil {
			Expect(err).To(MatchError(io.EOF))
			break
		}
		if len(raw) == 0 {
			continue
		}
		objects++
		kind, _ := raw["kind"].(string)
		b, err := jsonString(raw)
		Expect(err).NotTo(HaveOccurred())
		switch kind {
		case "Deployment":
			dep = &appsv1.Deployment{}
			Expect(yaml.NewYAMLOrJSONDecoder(strings.NewReader(b), 4096).Decode(dep)).To(Succeed())
		case "ClusterRoleBinding", "RoleBinding":
			var rb rbacv1.RoleBinding // same subjects field for both kinds
			Expect(yaml.NewYAMLOrJSONDecoder(strings.NewReader(b), 4096).Decode(&rb)).To(Succeed())
			for _, s := range rb.Subjects {
				if s.Kind == "ServiceAccount" && s.Name == installSA && s.Namespace == installNS {
					bindings = append(bindings, kind+"/"+rb.Namespace+"/"+rb.Name)
				}
			}
		}
	}
	sort.Strings(bindings)
	return dep, bindings, objects
}

// saBindings lists every binding in the cluster that names the installed ServiceAccount.
func saBindings() []string {
	var out []string
	var crbs rbacv1.ClusterRoleBindingList
	Expect(cluster.Client.List(ctx, &crbs)).To(Succeed())
	for _, b := range crbs.Items {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == installSA && s.Namespace == installNS {
				out = append(out, "ClusterRoleBinding//"+b.Name)
			}
		}
	}
	var rbs rbacv1.RoleBindingList
	Expect(cluster.Client.List(ctx, &rbs)).To(Succeed())
	for _, b := range rbs.Items {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Name == installSA && s.Namespace == installNS {
				out = append(out, "RoleBinding/"+b.Namespace+"/"+b.Name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// deploymentArgs are the manager container's flags from the install, without the ones the
// suite sets for a process on loopback (addresses, the certificate directory).
func deploymentArgs(dep *appsv1.Deployment) []string {
	var args []string
	for _, c := range dep.Spec.Template.Spec.Containers {
		if c.Name != "manager" {
			continue
		}
		for _, a := range c.Args {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			switch name {
			case "scim-bind-address", "health-probe-bind-address", "metrics-bind-address", "scim-cert-dir":
				continue
			}
			args = append(args, a)
		}
	}
	return args
}

var _ = Describe("the shipped install on a real API server", Label(faultsLabel), func() {
	It("applies dist/install.yaml, and the manager does its job as the installed ServiceAccount with only the install's RBAC", func() {
		By("make build-installer")
		install := buildInstaller()
		dep, grants, objects := installObjects(install)
		Expect(dep).NotTo(BeNil(), "the install has a Deployment")
		Expect(dep.Spec.Template.Spec.ServiceAccountName).To(Equal(installSA))
		Expect(grants).NotTo(BeEmpty(), "the install binds roles to its ServiceAccount")

		By("kubectl apply --server-side (no dry run)")
		path := writeTemp("install.yaml", string(install))
		out := mustKubectl("apply", "--server-side", "-f", path)
		Expect(strings.Count(out, " serverside-applied\n")).To(Equal(objects), "every object is applied:\n%s", out)
		Expect(out).To(ContainSubstring("deployment.apps/scim-operator-controller-manager serverside-applied"))
		Expect(mustKubectl("get", "deployment,serviceaccount", "-n", installNS, "-o", "name")).To(And(
			ContainSubstring("deployment.apps/"+installSA), ContainSubstring("serviceaccount/"+installSA)))
		Expect(saBindings()).To(Equal(grants), "the ServiceAccount holds exactly the install's bindings, nothing the suite made")

		By("stopping the suite's manager: from here on only the installed identity works")
		Expect(mgr.Stop()).To(Succeed())
		suiteMgr := mgr
		DeferCleanup(func() {
			if mgr != nil && mgr != suiteMgr {
				Expect(mgr.Stop()).To(Succeed())
			}
			var err error
			mgr, err = devenv.StartManager(ctx, binPath, mgrKubeconfig, logFile, certs, managerArgs...)
			Expect(err).NotTo(HaveOccurred())
		})

		By("running the manager binary as the installed ServiceAccount, with the Deployment's flags")
		kc, err := devenv.ServiceAccountKubeconfig(ctx, cluster, installNS, installSA, filepath.Join(GinkgoT().TempDir(), "installed.kubeconfig"))
		Expect(err).NotTo(HaveOccurred())
		// the installed identity's bearer token is a secret like any other: never logged
		raw, err := clientcmd.LoadFromFile(kc)
		Expect(err).NotTo(HaveOccurred())
		for _, ai := range raw.AuthInfos {
			Expect(ai.Token).NotTo(BeEmpty())
			extraSecret(ai.Token, "the installed ServiceAccount's token")
		}
		// a right the install lacks shows as the API server refusing this identity, or an
		// event it may not record; the install's RBAC is in the authorizer before it starts
		rbacSynced()
		identity := "system:serviceaccount:" + installNS + ":" + installSA
		refusedPlain, refusedJSON := identity+`" cannot`, identity+`\" cannot`
		watched := &lineWriter{out: logFile, watch: []string{refusedPlain, refusedJSON, eventRejected}}
		refused := func() []string {
			var seen []string
			for _, t := range watched.watch {
				if watched.logged(t) {
					seen = append(seen, t)
				}
			}
			return seen
		}
		metricsAddr, err := devenv.FreeAddr()
		Expect(err).NotTo(HaveOccurred())
		args := append(deploymentArgs(dep),
			"--leader-election-namespace="+installNS, // a pod's own namespace; out of a pod it must be said
			"--metrics-bind-address="+metricsAddr,    // secure, as deployed, on loopback
			"--zap-log-level=10")                     // everything it logs is searched for tokens (secrets_test.go)
		Expect(args).To(ContainElement("--leader-elect"))
		Expect(args).To(ContainElement(HavePrefix("--default-service-account=")))
		mgr, err = devenv.StartManager(ctx, binPath, kc, watched, certs, args...)
		Expect(err).NotTo(HaveOccurred())

		By("a ScimConfig becomes Ready: the manager leads and its controllers work")
		ns, _, c := readyConfig()
		lease := mustKubectl("get", "lease", "-n", installNS, manager.LeaderElectionID, "-o", "jsonpath={.spec.holderIdentity}")
		Expect(lease).NotTo(BeEmpty(), "the manager holds the leader election lease")

		By("a SCIM create reaches Active, and the person gets access")
		user := "installed." + ns + "@example.com"
		Expect(canListPods(user)).To(Equal("no"))
		start := time.Now()
		code, body, _ := c.do("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"`+user+`"}`)
		Expect(code).To(Equal(201), "%v", body)
		id := body["id"].(string)
		Eventually(func() string {
			out, _ := kubectl("get", "orgmember", "-n", ns, id, "-o", "jsonpath={.status.phase}")
			return out
		}, readyTimeout).Should(Equal("Active"))
		Eventually(func() string { return canListPods(user) }, readyTimeout).Should(Equal("yes"))
		converge := time.Since(start)
		bindings := strings.Fields(mustKubectl("get", "clusterrolebindings", "-o", "name",
			"-l", "scim.operator.dev/config-namespace="+ns+",scim.operator.dev/owner-uid"))
		Expect(bindings).To(HaveLen(1), "one binding for one person and one role")

		By("a group pushed with that member is made Ready, and its deletion completes (its finalizer)")
		code, body, _ = c.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"installed-team","members":[{"value":"`+id+`"}]}`)
		Expect(code).To(Equal(201), "%v", body)
		gid := body["id"].(string)
		Eventually(func() string {
			out, _ := kubectl("get", "orggroup", "-n", ns, gid, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			return out
		}, readyTimeout).Should(Equal("True"))
		code, _, _ = c.do("DELETE", "/Groups/"+gid, "")
		Expect(code).To(Equal(204))
		Eventually(func() string { return mustKubectl("get", "orggroups", "-n", ns, "-o", "name") }, readyTimeout).Should(BeEmpty())

		By("a SCIM delete takes the access away")
		code, _, _ = c.do("DELETE", "/Users/"+id, "")
		Expect(code).To(Equal(204))
		Eventually(func() string { return canListPods(user) }, readyTimeout).Should(Equal("no"))
		Eventually(func() string {
			return mustKubectl("get", "orgmembers,clusterrolebindings", "-n", ns, "-o", "name",
				"-l", "scim.operator.dev/config-namespace="+ns+",scim.operator.dev/owner-uid")
		}, readyTimeout).Should(BeEmpty())
		Eventually(func() string { return mustKubectl("get", "orgmembers", "-n", ns, "-o", "name") }, readyTimeout).Should(BeEmpty())

		By("metrics answer a scraper bound to the install's metrics-reader role, and nobody else")
		scraper := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scraper"}}
		Expect(cluster.Client.Create(ctx, scraper)).To(Succeed())
		Expect(cluster.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-scraper"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "scim-operator-metrics-reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "scraper", Namespace: ns}}})).To(Succeed())
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(600))}}
		Expect(cluster.Client.SubResource("token").Create(ctx, scraper, tr)).To(Succeed())
		extraSecret(tr.Status.Token, "a scraper's ServiceAccount token")
		rbacSynced()
		// the endpoint's certificate is self-signed (no --metrics-cert-dir), on loopback
		scrape := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec
		get := func(token string) (int, string) {
			req, err := http.NewRequestWithContext(ctx, "GET", "https://"+metricsAddr+"/metrics", nil)
			Expect(err).NotTo(HaveOccurred())
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := scrape.Do(req)
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, metrics := get(tr.Status.Token)
		Expect(code).To(Equal(200))
		Expect(metrics).To(ContainSubstring("scim_operator_config_enabled"))
		code, _ = get("")
		Expect(code).To(Equal(401), "no token, no metrics")

		By("the installed identity was never refused, and every event it recorded was accepted")
		Expect(refused()).To(BeEmpty(), "the manager logged a refusal of the installed ServiceAccount (see manager.log)")

		f := figures{spec: "install", users: 1, converge: converge,
			more: fmt.Sprintf("install-bindings=%d objects-applied=%d", len(grants), objects)}
		f.report()
	})
})
