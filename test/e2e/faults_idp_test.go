package e2e

// Faults survived end to end (issue 11): the specs labelled "faults" (journeys_test.go,
// rotation_test.go, disable_test.go, install_test.go) drive the real manager binary over
// real HTTP and kubectl with faults on the way, and each prints one figures line:
//
//	FIGURES <spec>: users=N faults=K converge=D duplicates=0 lost=0 [more]
//
// users: people the IdP provisioned; faults: what was injected (lost responses re-sent,
// a token rotated, a config disabled mid-sync); converge: from the last change until the
// backend matched; duplicates: a second OrgMember for one userName, a second binding for
// one grant, an invitation sent more often than the journey asked for, an id listed twice
// by the SCIM API; lost: someone the IdP was told exists who is missing from the SCIM API,
// the cluster or (while active) the backend. Both must be 0, and are asserted after the
// line is printed.
//
// The short variants run in `make test` (make test-e2e). The long ones are the same specs
// with bigger knobs, `make test-faults` (FAULTS_USERS=200 and longer windows), read from
// the environment:
//
//	FAULTS_USERS           people per journey and per disable spec (default 30)
//	FAULTS_GRACE           the token grace period of the rotation spec (default 8s)
//	FAULTS_QUIET           how long a disabled config is watched for backend calls (default 5s)
//	FAULTS_WORKERS         concurrent IdP connections (default 4)

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
	"github.com/scim-operator/scim-operator/test/access"
)

// faultsLabel marks the specs `make test-faults` runs with its long knobs.
const faultsLabel = "faults"

func knobInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func knobDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func faultsUsers() int   { return knobInt("FAULTS_USERS", 30) }
func faultsWorkers() int { return knobInt("FAULTS_WORKERS", 4) }

// settleTimeout bounds the wait for n people to converge: a minute, and more for more.
func settleTimeout(n int) time.Duration { return readyTimeout + time.Duration(n)*time.Second }

// idpClient is an identity provider's HTTP client: its base URL, token, User-Agent and
// Content-Type. send is safe for concurrent use and asserts nothing (workers report).
type idpClient struct {
	base, token, agent, ctype string
}

func (c idpClient) send(method, path, body string) (int, map[string]any, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	if body != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("%s %s answered %d with a body that is not JSON: %.200s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out, nil
}

// must sends a request that must answer want, and returns its body.
func (c idpClient) must(want int, method, path, body string) map[string]any {
	code, out, err := c.send(method, path, body)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s %s", method, path)
	ExpectWithOffset(1, code).To(Equal(want), "%s %s answered %v", method, path, out)
	return out
}

// total is a ListResponse's totalResults, which must be a JSON integer.
func total(body map[string]any) int {
	n, ok := body["totalResults"].(float64)
	ExpectWithOffset(1, ok).To(BeTrue(), "totalResults is a number: %v", body)
	ExpectWithOffset(1, n).To(Equal(float64(int(n))), "totalResults is an integer")
	return int(n)
}

// figures is a spec's figures line (see the top of this file).
type figures struct {
	spec              string
	users, faults     int
	converge          time.Duration
	duplicates, lost  int
	more              string
	duplicatesExplain []string
	lostExplain       []string
}

// report prints the line (in the spec's report, and with -v as it runs), then asserts
// that nothing was duplicated or lost.
func (f figures) report() {
	line := fmt.Sprintf("FIGURES %s: users=%d faults=%d converge=%s duplicates=%d lost=%d",
		f.spec, f.users, f.faults, f.converge.Round(100*time.Millisecond), f.duplicates, f.lost)
	if f.more != "" {
		line += " " + f.more
	}
	AddReportEntry("figures", line)
	GinkgoWriter.Println(line)
	collectFigures(line)
	ExpectWithOffset(1, f.duplicates).To(BeZero(), "duplicates: %v", f.duplicatesExplain)
	ExpectWithOffset(1, f.lost).To(BeZero(), "lost: %v", f.lostExplain)
}

// settle polls check (every half second) until it answers "" or timeout passes, and
// returns how long it took and its last answer.
func settle(timeout time.Duration, check func() string) (time.Duration, string) {
	start := time.Now()
	last := "not checked"
	for time.Since(start) < timeout {
		if last = check(); last == "" {
			return time.Since(start), ""
		}
		select {
		case <-ctx.Done():
			return time.Since(start), "interrupted: " + last
		case <-time.After(500 * time.Millisecond):
		}
	}
	return time.Since(start), last
}

// ownConfigYAML is a kubernetes-backend ScimConfig with a ClusterRole of its own, so that
// the holders of that role are this config's and nothing else's (the sample's role is
// shared by every spec that applies the sample). Its tenant, the ServiceAccount
// scim-provisioner, may bind exactly that role, as the sample's may bind the sample's.
// The role lets its holders list pods (what `kubectl auth can-i` asks) and get the one
// ConfigMap named after it (what the SubjectAccessReviews ask: no other role grants it).
func ownConfigYAML(ns, name, grace string) string {
	return strings.NewReplacer("NS", ns, "NAME", name, "GRACE", grace).Replace(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: NS-reader}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [configmaps], verbs: [get], resourceNames: [NS-reader]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: scim-provisioner, namespace: NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: NS-provisioner}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [create, patch]}
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [NS-reader]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: NS-provisioner}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: NS-provisioner}
subjects:
- {kind: ServiceAccount, name: scim-provisioner, namespace: NS}
---
apiVersion: scim.operator.dev/v1alpha1
kind: ScimConfig
metadata: {name: NAME, namespace: NS}
spec:
  enabled: true
  organization: acme
  backend:
    type: kubernetes
    kubernetes:
      serviceAccountName: scim-provisioner
      clusterRoles: [NS-reader]
  verifiedDomains: [example.com]
  tokenGracePeriod: GRACE
`)
}

// ownConfig applies ownConfigYAML in a fresh namespace with kubectl, waits for it to be
// Ready and returns its namespace, itself and its token. (Like every spec's namespace,
// its objects stay until the suite's control plane stops.)
func ownConfig(grace string) (string, *scimv1.ScimConfig, string) {
	ns := newNamespace()
	path := filepath.Join(GinkgoT().TempDir(), "config.yaml")
	Expect(writeFile(path, ownConfigYAML(ns, "example", grace))).To(Succeed())
	mustKubectl("apply", "-f", path)
	cfg, err := devenv.WaitReady(ctx, cluster.Client, types.NamespacedName{Namespace: ns, Name: "example"}, readyTimeout)
	Expect(err).NotTo(HaveOccurred())
	tok, err := devenv.Token(ctx, cluster.Client, cfg)
	Expect(err).NotTo(HaveOccurred())
	return ns, cfg, tok
}

// readerAttrs is what the SubjectAccessReviews of an own config ask: only its role grants it.
func readerAttrs(ns string) authzv1.ResourceAttributes {
	return authzv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Name: ns + "-reader", Namespace: "default"}
}

// rbacSynced waits until the API server's authorizer has seen every RBAC write so far.
func rbacSynced() {
	ExpectWithOffset(1, testenv.RBACSynced(ctx, cluster.Client)).To(Succeed())
}

// bindingDuplicates counts the ClusterRoleBindings that repeat a (role, subject) another
// binding of the same role already grants, with what they repeat.
func bindingDuplicates(roles []access.Role) (int, []string) {
	var crbs rbacv1.ClusterRoleBindingList
	Expect(cluster.Client.List(ctx, &crbs)).To(Succeed())
	seen := map[string]int{}
	for _, b := range crbs.Items {
		for _, r := range roles {
			if r.Namespace == "" && b.RoleRef.Kind == r.Kind && b.RoleRef.Name == r.Name {
				for _, s := range b.Subjects {
					seen[r.Name+"/"+s.Kind+"/"+s.Name]++
				}
			}
		}
	}
	n, why := 0, []string(nil)
	for k, c := range seen {
		if c > 1 {
			n += c - 1
			why = append(why, fmt.Sprintf("%d bindings grant %s", c, k))
		}
	}
	return n, why
}
