package authz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/authz"
)

var seq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func namespace(t *testing.T, f *fixture) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "authz-"}}
	if err := f.direct.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.direct.Delete(context.Background(), ns) })
	return ns.Name
}

func create(t *testing.T, f *fixture, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := f.direct.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
		t.Cleanup(func() { _ = f.direct.Delete(context.Background(), o) })
	}
}

// synced waits until the manager's cache holds obj as last written (or, deleted, not at all):
// a check made after it reads what the test wrote, without any timed wait.
func synced(t *testing.T, f *fixture, obj client.Object, deleted bool) {
	t.Helper()
	g := NewWithT(t)
	key := client.ObjectKeyFromObject(obj)
	cp := obj.DeepCopyObject().(client.Object)
	g.Eventually(func() bool {
		err := f.mgr.GetCache().Get(context.Background(), key, cp)
		if deleted {
			return apierrors.IsNotFound(err)
		}
		// resourceVersions are opaque, but an API server backed by etcd counts them up: the
		// controllers may have written the object again since (a ScimConfig's status)
		if err != nil {
			return false
		}
		have, _ := strconv.ParseUint(cp.GetResourceVersion(), 10, 64)
		want, _ := strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
		return have >= want
	}, 20*time.Second, 10*time.Millisecond).Should(BeTrue(), "the cache never caught up with %T %s", obj, key)
}

func scimConfig(ns, name string, layout scimv1.GrantLayout, clusterRoles []string, roles ...scimv1.NamespacedRole) *scimv1.ScimConfig {
	return &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: scimv1.ScimConfigSpec{Organization: "acme", Backend: scimv1.BackendSpec{
			Type:       scimv1.BackendKubernetes,
			Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: clusterRoles, Roles: roles, GrantLayout: layout},
		}},
	}
}

// ledger is an OrgGrant as the kubernetes backend writes it (its labels, the subject, the
// role and its scope).
func ledger(ns, config, subjectKind, subject, roleKind, role, grantNS string) *scimv1.OrgGrant {
	ann := map[string]string{}
	if subjectKind == rbacv1.UserKind {
		ann["scim.operator.dev/user-name"] = subject
	}
	return &scimv1.OrgGrant{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: unique("scim-u"), Annotations: ann, Labels: map[string]string{
			scimv1.LabelConfig:                   config,
			"scim.operator.dev/config-namespace": ns,
		}},
		Spec: scimv1.OrgGrantSpec{
			Subject:   scimv1.OrgGrantSubject{Kind: scimv1.GrantSubjectKind(subjectKind), Name: subject},
			Role:      scimv1.OrgGrantRole{Kind: scimv1.GrantRoleKind(roleKind), Name: role},
			Namespace: grantNS,
		},
	}
}

// layout patches the config's grant layout (a merge patch: the controllers write the
// config too).
func layout(t *testing.T, f *fixture, cfg *scimv1.ScimConfig, l scimv1.GrantLayout) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"backend":{"kubernetes":{"grantLayout":%q}}}}`, l))
	if err := f.direct.Patch(context.Background(), cfg, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

func podReader(name string) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}}
}

func pods(user string, groups []string, ns string) authorizationv1.SubjectAccessReviewSpec {
	return authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: ns, Name: "p"}}
}

func allowed(t *testing.T, f *fixture, spec authorizationv1.SubjectAccessReviewSpec) bool {
	t.Helper()
	d, err := (&authz.Authorizer{Reader: f.mgr.GetCache()}).Authorize(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return d.Allowed
}

func eventuallyAllowed(t *testing.T, f *fixture, spec authorizationv1.SubjectAccessReviewSpec, want bool) {
	t.Helper()
	NewWithT(t).Eventually(func() bool { return allowed(t, f, spec) }, 20*time.Second, 10*time.Millisecond).
		Should(Equal(want), "%s: allowed should become %v", spec.User, want)
}

// TestAuthorizerFollowsTheLedgerAndTheConfig: the Authorizer over the manager's cache
// allows exactly what a ledger grant of a config that still lists the role allows, and
// never denies.
func TestAuthorizerFollowsTheLedgerAndTheConfig(t *testing.T) {
	f := env(t)
	ns, other := namespace(t, f), namespace(t, f)
	reader, secretReader := unique("pod-reader"), unique("secret-reader")
	nsRole := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "cm-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}}}
	cfg := scimConfig(ns, "org", scimv1.GrantLayoutWebhook, []string{reader},
		scimv1.NamespacedRole{Namespace: other, Kind: "Role", Name: "cm-reader"})
	create(t, f, podReader(reader), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: secretReader},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}}, nsRole, cfg)

	alice := ledger(ns, "org", rbacv1.UserKind, "alice@x.io", "ClusterRole", reader, "")
	create(t, f, alice)
	t.Run("a cluster-wide grant allows its role's rules anywhere", func(t *testing.T) {
		eventuallyAllowed(t, f, pods("alice@x.io", nil, "anywhere"), true)
		if !allowed(t, f, pods("alice@x.io", nil, "")) {
			t.Error("a cluster-wide grant does not allow the cluster-scoped form")
		}
		spec := pods("alice@x.io", nil, "anywhere")
		spec.ResourceAttributes.Verb = "delete"
		if allowed(t, f, spec) {
			t.Error("a verb the role does not have is allowed")
		}
		if allowed(t, f, pods("bob@x.io", nil, "anywhere")) {
			t.Error("another user is allowed")
		}
	})

	t.Run("a grant of a role the config does not list gives nothing", func(t *testing.T) {
		b := ledger(ns, "org", rbacv1.UserKind, "mallory@x.io", "ClusterRole", secretReader, "")
		create(t, f, b)
		synced(t, f, b, false)
		spec := pods("mallory@x.io", nil, "x")
		spec.ResourceAttributes.Resource = "secrets"
		if allowed(t, f, spec) {
			t.Error("a ledger grant of a role the config does not list is honoured")
		}
	})

	t.Run("a namespaced grant only in its namespace", func(t *testing.T) {
		b := ledger(ns, "org", rbacv1.UserKind, "carol@x.io", "Role", "cm-reader", other)
		create(t, f, b)
		spec := func(in string) authorizationv1.SubjectAccessReviewSpec {
			return authorizationv1.SubjectAccessReviewSpec{User: "carol@x.io",
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: in}}
		}
		eventuallyAllowed(t, f, spec(other), true)
		if allowed(t, f, spec(ns)) {
			t.Error("a namespaced grant is honoured in another namespace")
		}
		if allowed(t, f, spec("")) {
			t.Error("a namespaced grant is honoured cluster-wide")
		}
	})

	t.Run("a group subject", func(t *testing.T) {
		b := ledger(ns, "org", rbacv1.GroupKind, "team-a", "ClusterRole", reader, "")
		create(t, f, b)
		eventuallyAllowed(t, f, pods("dave@x.io", []string{"system:authenticated", "team-a"}, "x"), true)
		if allowed(t, f, pods("dave@x.io", []string{"team-b"}, "x")) {
			t.Error("a member of another group is allowed")
		}
	})

	t.Run("system: users and groups never", func(t *testing.T) {
		// the API server refuses such an OrgGrant (the CRD's validation) ...
		for _, o := range []*scimv1.OrgGrant{
			ledger(ns, "org", rbacv1.UserKind, "system:evil", "ClusterRole", reader, ""),
			ledger(ns, "org", rbacv1.GroupKind, " System:authenticated", "ClusterRole", reader, ""),
		} {
			if err := f.direct.Create(context.Background(), o); !apierrors.IsInvalid(err) {
				t.Errorf("creating an OrgGrant to %q: %v, want Invalid", o.Spec.Subject.Name, err)
			}
		}
		// ... and the authorizer honours none for a system: user or group either
		g := ledger(ns, "org", rbacv1.GroupKind, "team-sys", "ClusterRole", reader, "")
		create(t, f, g)
		eventuallyAllowed(t, f, pods("someone@x.io", []string{"team-sys"}, "x"), true)
		if allowed(t, f, pods("system:evil", []string{"team-sys"}, "x")) {
			t.Error("a system: user is allowed through its group")
		}
		if allowed(t, f, pods("system:evil", nil, "x")) {
			t.Error("a system: user is allowed")
		}
		if allowed(t, f, pods("erin@x.io", []string{"system:authenticated"}, "x")) {
			t.Error("a grant to a system: group is honoured")
		}
	})

	t.Run("an OrgGrant that names no config of its namespace gives nothing", func(t *testing.T) {
		noLabel := ledger(ns, "org", rbacv1.UserKind, "frank@x.io", "ClusterRole", reader, "")
		delete(noLabel.Labels, "scim.operator.dev/config-namespace")
		elsewhere := ledger(other, "org", rbacv1.UserKind, "frank@x.io", "ClusterRole", reader, "") // not the config's namespace
		elsewhere.Labels["scim.operator.dev/config-namespace"] = ns
		create(t, f, noLabel, elsewhere)
		synced(t, f, elsewhere, false)
		if allowed(t, f, pods("frank@x.io", nil, "x")) {
			t.Error("an OrgGrant without the config-namespace label or outside the config's namespace is honoured")
		}
	})

	t.Run("the config in the Bindings layout, then gone", func(t *testing.T) {
		if !allowed(t, f, pods("alice@x.io", nil, "x")) {
			t.Fatal("alice lost her grant before the config changed")
		}
		layout(t, f, cfg, scimv1.GrantLayoutBindings)
		synced(t, f, cfg, false)
		if allowed(t, f, pods("alice@x.io", nil, "x")) {
			t.Error("a config in the Bindings layout still grants through the webhook")
		}
		layout(t, f, cfg, scimv1.GrantLayoutWebhook)
		eventuallyAllowed(t, f, pods("alice@x.io", nil, "x"), true)
		if err := f.direct.Delete(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		synced(t, f, cfg, true)
		if allowed(t, f, pods("alice@x.io", nil, "x")) {
			t.Error("a deleted config still grants")
		}
	})
}

// TestDeletingTheBindingRevokes: the grant goes with its OrgGrant, as soon as the cache has
// seen the deletion.
func TestDeletingTheBindingRevokes(t *testing.T) {
	f := env(t)
	ns := namespace(t, f)
	reader := unique("pod-reader")
	create(t, f, podReader(reader), scimConfig(ns, "org", scimv1.GrantLayoutWebhook, []string{reader}))
	b := ledger(ns, "org", rbacv1.UserKind, "gina@x.io", "ClusterRole", reader, "")
	create(t, f, b)
	eventuallyAllowed(t, f, pods("gina@x.io", nil, "x"), true)
	if err := f.direct.Delete(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	eventuallyAllowed(t, f, pods("gina@x.io", nil, "x"), false)
}

// TestWebhookHTTP: the served endpoint answers a SubjectAccessReview over HTTPS and turns
// away what is not one with 400.
func TestWebhookHTTP(t *testing.T) {
	f := env(t)
	c := f.tls.Client()
	post := func(body string) (int, string) {
		t.Helper()
		var resp *http.Response
		NewWithT(t).Eventually(func() error {
			var err error
			resp, err = c.Post(f.url, "application/json", strings.NewReader(body))
			return err
		}, 20*time.Second, 50*time.Millisecond).Should(Succeed()) // the listener opens after the cache syncs
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	for _, bad := range []string{
		"", "{", "[]", `{"apiVersion":"v1","kind":"Pod"}`,
		`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"u"}}`,
		`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":42}}`,
	} {
		if code, body := post(bad); code != http.StatusBadRequest {
			t.Errorf("body %q: status %d (%s), want 400", bad, code, body)
		}
	}
	code, body := post(`{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"nobody@x.io",` +
		`"resourceAttributes":{"verb":"get","resource":"pods","namespace":"x"}}}`)
	if code != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", code, body)
	}
	var got authorizationv1.SubjectAccessReview
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "SubjectAccessReview" || got.APIVersion != "authorization.k8s.io/v1" || got.Status.Allowed || got.Status.Denied {
		t.Errorf("answer %s, want a v1 SubjectAccessReview with no opinion", body)
	}
	resp, err := c.Get(f.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
}
