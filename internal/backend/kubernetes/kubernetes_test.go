package kubernetes_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/cachepolicy"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/testenv"
	"github.com/scim-operator/scim-operator/test/access"
)

var (
	restCfg *rest.Config
	admin   client.Client
	seq     atomic.Int64
)

func TestMain(m *testing.M) {
	// OrgGrants (the Webhook layout) through every client of these tests
	if err := scimv1.AddToScheme(clientgoscheme.Scheme); err != nil {
		fmt.Fprintln(os.Stderr, "scheme:", err)
		os.Exit(1)
	}
	env := testenv.New()
	cfg, err := testenv.Start(env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting envtest:", err)
		os.Exit(1)
	}
	restCfg = cfg
	admin, err = client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// org is one test organization: a ScimConfig naming a ClusterRole (get on one pod name,
// unique to the org, so the orgs of different tests never grant each other's access) and
// a Role in a fresh namespace.
type org struct {
	cfg     *scimv1.ScimConfig
	ns      string
	podName string
	b       *k8sbackend.Backend
}

// layout is the grant layout newOrg's configs use: TestWebhookLayout runs tests again with
// GrantLayoutWebhook.
var layout = scimv1.GrantLayoutBindings

func newName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := admin.Create(t.Context(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// newOrg creates the roles and namespace of a fresh organization and its backend, built on
// c (nil: the admin client).
func newOrg(t *testing.T, c client.Client) *org {
	t.Helper()
	o := &org{ns: newName("scim-ns"), podName: newName("pod")}
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.ns}})
	crName := newName("scim-pod-reader")
	create(t, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: crName},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}, ResourceNames: []string{o.podName}}},
	})
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: crName}})
	})
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "configmap-reader", Namespace: o.ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}}},
	})
	o.cfg = &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Name: newName("acme"), Namespace: o.ns},
		Spec: scimv1.ScimConfigSpec{
			Organization: "acme",
			Backend: scimv1.BackendSpec{
				Type: scimv1.BackendKubernetes,
				Kubernetes: &scimv1.KubernetesBackend{
					GrantLayout:  layout,
					ClusterRoles: []string{crName},
					Roles:        []scimv1.NamespacedRole{{Namespace: o.ns, Kind: "Role", Name: "configmap-reader"}},
				},
			},
		},
	}
	if c == nil {
		c = admin
	}
	o.b = k8sbackend.New(c, o.cfg)
	t.Cleanup(func() {
		if err := k8sbackend.New(admin, o.cfg).RemoveAll(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return o
}

// sar asks the API server's authorizer whether user (with groups) may do verb on resource,
// once the authorizer has seen every RBAC write made before the question.
func sar(t *testing.T, user string, groups []string, attrs authorizationv1.ResourceAttributes) bool {
	t.Helper()
	if err := testenv.RBACSynced(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups, ResourceAttributes: &attrs,
	}}
	if err := admin.Create(t.Context(), r); err != nil {
		t.Fatalf("SubjectAccessReview: %v", err)
	}
	return r.Status.Allowed
}

// access is `kubectl auth can-i` for both grants of the org; it fails the test when only
// one of them holds (a half-provisioned member is a bug). In the Webhook layout RBAC must
// grant nothing, and the grants are read from the ledger as the authorization webhook
// reads them (access.KubeHolders; the webhook itself is not served in this package).
func (o *org) access(t *testing.T, user string, groups []string) bool {
	t.Helper()
	pods := sar(t, user, groups, authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: "default", Name: o.podName})
	cms := sar(t, user, groups, authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: o.ns})
	if o.cfg.Spec.Backend.Kubernetes.Layout() == scimv1.GrantLayoutWebhook {
		if pods || cms {
			t.Fatalf("%s (groups %v): RBAC allows get pod = %v, list configmaps = %v in the Webhook layout, want neither", user, groups, pods, cms)
		}
		pods, cms = o.ledgerHolds(t, 0, user, groups), o.ledgerHolds(t, 1, user, groups)
	}
	if pods != cms {
		t.Fatalf("%s (groups %v): get pod via the ClusterRole = %v but list configmaps via the Role = %v", user, groups, pods, cms)
	}
	return pods
}

// ledgerHolds tells whether the org's ledger grants its i-th role to the user or one of the
// groups, as the authorization webhook reads it.
func (o *org) ledgerHolds(t *testing.T, i int, user string, groups []string) bool {
	t.Helper()
	var ogs scimv1.OrgGrantList
	if err := admin.List(t.Context(), &ogs, client.InNamespace(o.cfg.Namespace)); err != nil {
		t.Fatal(err)
	}
	want := access.RolesOf(o.cfg)[i]
	for j := range ogs.Items {
		b := &ogs.Items[j]
		g, ok := access.LedgerGrant(b)
		if !ok || g != want || b.Labels[k8sbackend.LabelConfig] != o.cfg.Name {
			continue
		}
		s := b.Spec.Subject
		if (s.Kind == scimv1.GrantSubjectUser && s.Name == user) || (s.Kind == scimv1.GrantSubjectGroup && slices.Contains(groups, s.Name)) {
			return true
		}
	}
	return false
}

var orgs = map[backend.Backend]*org{}

func TestConformance(t *testing.T) {
	backend.RunConformance(t, backend.Harness{
		New: func(t *testing.T) backend.Backend {
			o := newOrg(t, nil)
			orgs[o.b] = o
			return o.b
		},
		HasAccess: func(t *testing.T, b backend.Backend, user string) bool {
			return orgs[b].access(t, user, nil)
		},
		TeamHasAccess: func(t *testing.T, b backend.Backend, team string) bool {
			return orgs[b].access(t, "someone-in-the-group", []string{team})
		},
	})
}

func TestCanIFollowsTheMember(t *testing.T) {
	o := newOrg(t, nil)
	ctx := t.Context()
	if o.access(t, "alice@x.io", nil) {
		t.Fatal("alice@x.io has access before EnsureMember")
	}
	m, err := o.b.EnsureMember(ctx, backend.DesiredMember{UserName: "alice@x.io"})
	if err != nil {
		t.Fatalf("EnsureMember: %v", err)
	}
	if m.State != backend.StateMember || m.BackendID != "alice@x.io" {
		t.Fatalf("EnsureMember = %+v, want a Member with BackendID alice@x.io", m)
	}
	if !o.access(t, "alice@x.io", nil) {
		t.Fatal("alice@x.io has no access after EnsureMember")
	}
	if o.access(t, "bob@x.io", nil) {
		t.Fatal("bob@x.io got access from alice's bindings")
	}
	if err := o.b.EnsureMemberAbsent(ctx, "alice@x.io"); err != nil {
		t.Fatalf("EnsureMemberAbsent: %v", err)
	}
	if o.access(t, "alice@x.io", nil) {
		t.Fatal("alice@x.io still has access after EnsureMemberAbsent")
	}
}

func TestLayoutOneBindingPerMemberAndRole(t *testing.T) {
	o := newOrg(t, nil)
	ctx := t.Context()
	for _, u := range []string{"a@x.io", "b@x.io", "c@x.io"} {
		if _, err := o.b.EnsureMember(ctx, backend.DesiredMember{UserName: u}); err != nil {
			t.Fatalf("EnsureMember(%s): %v", u, err)
		}
	}
	sel := client.MatchingLabels{k8sbackend.LabelConfig: o.cfg.Name, k8sbackend.LabelConfigNamespace: o.cfg.Namespace}
	var crbs rbacv1.ClusterRoleBindingList
	if err := admin.List(ctx, &crbs, sel); err != nil {
		t.Fatal(err)
	}
	var rbs rbacv1.RoleBindingList
	if err := admin.List(ctx, &rbs, sel, client.InNamespace(o.ns)); err != nil {
		t.Fatal(err)
	}
	if len(crbs.Items) != 3 || len(rbs.Items) != 3 {
		t.Fatalf("got %d ClusterRoleBindings and %d RoleBindings for 3 members and 2 roles, want 3 and 3", len(crbs.Items), len(rbs.Items))
	}
	for _, b := range crbs.Items {
		if len(b.Subjects) != 1 || b.Subjects[0].Kind != rbacv1.UserKind {
			t.Fatalf("binding %s subjects = %+v, want one User", b.Name, b.Subjects)
		}
		u := b.Subjects[0].Name
		if got := b.Labels[k8sbackend.LabelMember]; got != k8sbackend.MemberHash(u) {
			t.Fatalf("binding %s member label = %q, want MemberHash(%q) = %q", b.Name, got, u, k8sbackend.MemberHash(u))
		}
		if !strings.HasPrefix(b.Name, "scim-u-") {
			t.Fatalf("binding name %q, want the scim-u- prefix", b.Name)
		}
		if len(b.OwnerReferences) != 0 {
			t.Fatalf("binding %s has ownerReferences %v, want none", b.Name, b.OwnerReferences)
		}
	}

	// Dropping the Role from the config: the next EnsureMember removes that binding.
	o.cfg.Spec.Backend.Kubernetes.Roles = nil
	narrower := k8sbackend.New(admin, o.cfg)
	if _, err := narrower.EnsureMember(ctx, backend.DesiredMember{UserName: "a@x.io"}); err != nil {
		t.Fatalf("EnsureMember after narrowing: %v", err)
	}
	if err := admin.List(ctx, &rbs, sel, client.InNamespace(o.ns), client.MatchingLabels{k8sbackend.LabelMember: k8sbackend.MemberHash("a@x.io")}); err != nil {
		t.Fatal(err)
	}
	if len(rbs.Items) != 0 {
		t.Fatalf("a@x.io keeps %d RoleBindings of a role no longer configured, want 0", len(rbs.Items))
	}
	if got := sar(t, "a@x.io", nil, authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: o.ns}); got {
		t.Fatal("a@x.io can still list configmaps after the Role left the config")
	}
	list, err := narrower.ListMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("ListMembers = %+v, want 3 entries", list)
	}
}

func TestConfigsAreIsolated(t *testing.T) {
	one := newOrg(t, nil)
	// A config of the same name in another namespace, binding the same roles.
	otherCfg := one.cfg.DeepCopy()
	otherNS := newName("scim-ns")
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: otherNS}})
	otherCfg.Namespace = otherNS
	two := k8sbackend.New(admin, otherCfg)
	t.Cleanup(func() { _ = two.RemoveAll(context.Background()) })
	ctx := t.Context()
	for _, b := range []*k8sbackend.Backend{one.b, two} {
		if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "zed@x.io"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := one.b.EnsureMemberAbsent(ctx, "zed@x.io"); err != nil {
		t.Fatal(err)
	}
	m, err := two.ObserveMember(ctx, "zed@x.io")
	if err != nil {
		t.Fatal(err)
	}
	if m.State != backend.StateMember {
		t.Fatalf("removal under one config removed the member of another: state %q", m.State)
	}
	if !one.access(t, "zed@x.io", nil) {
		t.Fatal("zed@x.io lost the access the other config grants")
	}
}

func TestGroupBindingGrantsTheGroup(t *testing.T) {
	o := newOrg(t, nil)
	ctx := t.Context()
	if o.access(t, "carol@x.io", []string{"platform"}) {
		t.Fatal("group platform has access before EnsureTeam")
	}
	if err := o.b.EnsureTeam(ctx, "platform"); err != nil {
		t.Fatalf("EnsureTeam: %v", err)
	}
	if !o.access(t, "carol@x.io", []string{"platform"}) {
		t.Fatal("a user in group platform has no access after EnsureTeam")
	}
	if o.access(t, "carol@x.io", []string{"Platform"}) {
		t.Fatal("group names are case-sensitive in Kubernetes: Platform must not match platform")
	}
	if o.access(t, "carol@x.io", nil) {
		t.Fatal("a user outside the group got the group's access")
	}
	if err := o.b.EnsureTeamAbsent(ctx, "platform"); err != nil {
		t.Fatalf("EnsureTeamAbsent: %v", err)
	}
	if o.access(t, "carol@x.io", []string{"platform"}) {
		t.Fatal("group platform keeps access after EnsureTeamAbsent")
	}
}

func wantPermanent(t *testing.T, err error, reason, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want Permanent %s", reason)
	}
	if c := backend.ClassOf(err); c != backend.Permanent {
		t.Fatalf("class = %v, want Permanent: %v", c, err)
	}
	if r := backend.ReasonOf(err); r != reason {
		t.Fatalf("reason = %q, want %q: %v", r, reason, err)
	}
	if !strings.Contains(err.Error(), text) {
		t.Fatalf("error %q does not say %q", err.Error(), text)
	}
}

func TestReservedNamesAreRefused(t *testing.T) {
	o := newOrg(t, nil)
	ctx := t.Context()
	_, err := o.b.EnsureMember(ctx, backend.DesiredMember{UserName: "system:admin"})
	wantPermanent(t, err, k8sbackend.ReasonInvalidUser, `userName "system:admin" starts with "system:"`)
	err = o.b.EnsureTeam(ctx, "System:Authenticated")
	wantPermanent(t, err, k8sbackend.ReasonInvalidTeam, `team name "System:Authenticated" starts with "system:"`)
	_, err = o.b.EnsureMember(ctx, backend.DesiredMember{UserName: "  "})
	wantPermanent(t, err, k8sbackend.ReasonInvalidUser, "empty userName")
	if o.access(t, "anyone", []string{"system:authenticated"}) {
		t.Fatal("system:authenticated got access")
	}
}

func TestCheckReportsConfigurationProblems(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	if err := o.b.Check(ctx); err != nil {
		t.Fatalf("Check of a good config: %v", err)
	}

	missing := o.cfg.DeepCopy()
	missing.Spec.Backend.Kubernetes.ClusterRoles = append(missing.Spec.Backend.Kubernetes.ClusterRoles, "no-such-role")
	wantPermanent(t, k8sbackend.New(admin, missing).Check(ctx), k8sbackend.ReasonRoleNotFound, `ClusterRole "no-such-role" does not exist`)

	missingRole := o.cfg.DeepCopy()
	missingRole.Spec.Backend.Kubernetes.Roles[0].Name = "nope"
	wantPermanent(t, k8sbackend.New(admin, missingRole).Check(ctx), k8sbackend.ReasonRoleNotFound,
		fmt.Sprintf(`Role "nope" in namespace %q does not exist`, o.ns))

	noNS := o.cfg.DeepCopy()
	noNS.Spec.Backend.Kubernetes.Roles = []scimv1.NamespacedRole{{Namespace: "no-such-namespace", Kind: "ClusterRole", Name: noNS.Spec.Backend.Kubernetes.ClusterRoles[0]}}
	wantPermanent(t, k8sbackend.New(admin, noNS).Check(ctx), k8sbackend.ReasonNamespace, `namespace "no-such-namespace"`)

	none := o.cfg.DeepCopy()
	none.Spec.Backend.Kubernetes = nil
	nb := k8sbackend.New(admin, none)
	wantPermanent(t, nb.Check(ctx), k8sbackend.ReasonNoRoles, "names no clusterRoles and no roles")
	_, err := nb.EnsureMember(ctx, backend.DesiredMember{UserName: "a@x.io"})
	wantPermanent(t, err, k8sbackend.ReasonNoRoles, "there is no access to grant")

	// Check's dry-run wrote nothing.
	var crbs rbacv1.ClusterRoleBindingList
	if err := admin.List(ctx, &crbs, client.MatchingLabels{k8sbackend.LabelConfig: o.cfg.Name}); err != nil {
		t.Fatal(err)
	}
	if len(crbs.Items) != 0 {
		t.Fatalf("Check left %d bindings behind", len(crbs.Items))
	}
}

// TestRestrictedOperatorCannotBind impersonates a service account that may write bindings
// but has no bind verb on the role (and does not hold its permissions): the API server
// refuses, and the backend says so as a Permanent NotAllowedToBind. Granting bind by
// resourceNames (the documented setup) then lets it bind exactly that role.
func TestRestrictedOperatorCannotBind(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	sa := newName("operator")
	create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: o.ns}})
	writer := newName("scim-binding-writer")
	create(t, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: writer},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterrolebindings", "rolebindings"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
			{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles", "roles"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{scimv1.GroupVersion.Group}, Resources: []string{"orggrants"}, Verbs: []string{"get", "list", "watch", "create", "patch", "delete"}},
		},
	})
	saSubject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: o.ns}
	create(t, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: writer},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: writer},
		Subjects:   []rbacv1.Subject{saSubject},
	})
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: writer}})
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: writer}})
	})

	imp := rest.CopyConfig(restCfg)
	imp.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", o.ns, sa)}
	restricted, err := client.New(imp, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	rb := k8sbackend.New(restricted, o.cfg)
	crName := o.cfg.Spec.Backend.Kubernetes.ClusterRoles[0]

	_, err = rb.EnsureMember(ctx, backend.DesiredMember{UserName: "mallory@x.io"})
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind,
		fmt.Sprintf(`the operator is not allowed to bind ClusterRole %q`, crName))
	wantPermanent(t, rb.Check(ctx), k8sbackend.ReasonNotAllowedToBind, "not allowed to bind")
	if o.access(t, "mallory@x.io", nil) {
		t.Fatal("mallory@x.io got access through a refused binding")
	}

	// The documented setup: bind by resourceNames on exactly the configured roles.
	binder := newName("scim-binder")
	create(t, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: binder},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"}, ResourceNames: []string{crName}}},
	})
	create(t, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binder},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: binder},
		Subjects:   []rbacv1.Subject{saSubject},
	})
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: binder, Namespace: o.ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles"}, Verbs: []string{"bind"}, ResourceNames: []string{"configmap-reader"}}},
	})
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: binder, Namespace: o.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: binder},
		Subjects:   []rbacv1.Subject{saSubject},
	})
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: binder}})
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: binder}})
	})
	if err := rb.Check(ctx); err != nil {
		t.Fatalf("Check with bind granted: %v", err)
	}
	if _, err := rb.EnsureMember(ctx, backend.DesiredMember{UserName: "mallory@x.io"}); err != nil {
		t.Fatalf("EnsureMember with bind granted: %v", err)
	}
	if !o.access(t, "mallory@x.io", nil) {
		t.Fatal("mallory@x.io has no access after a permitted EnsureMember")
	}

	// The operator never gets more than it was given: a role outside resourceNames fails.
	wider := o.cfg.DeepCopy()
	wider.Spec.Backend.Kubernetes.ClusterRoles = []string{"cluster-admin"}
	_, err = k8sbackend.New(restricted, wider).EnsureMember(ctx, backend.DesiredMember{UserName: "mallory@x.io"})
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, `not allowed to bind ClusterRole "cluster-admin"`)
	t.Cleanup(func() { _ = k8sbackend.New(admin, wider).RemoveAll(context.Background()) })
	if sar(t, "mallory@x.io", nil, authorizationv1.ResourceAttributes{Verb: "delete", Resource: "namespaces"}) {
		t.Fatal("mallory@x.io became cluster-admin")
	}

	// A role that does not exist is named as such, not as a permissions problem.
	gone := o.cfg.DeepCopy()
	gone.Spec.Backend.Kubernetes.ClusterRoles = []string{"no-such-cluster-role"}
	gone.Spec.Backend.Kubernetes.Roles = nil
	_, err = k8sbackend.New(restricted, gone).EnsureMember(ctx, backend.DesiredMember{UserName: "mallory@x.io"})
	wantPermanent(t, err, k8sbackend.ReasonRoleNotFound, `ClusterRole "no-such-cluster-role" does not exist`)
}

func TestClassifiesCancellation(t *testing.T) {
	o := newOrg(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := o.b.ListMembers(ctx)
	if !errors.Is(err, context.Canceled) || backend.ClassOf(err) != backend.Transient {
		t.Fatalf("ListMembers with a cancelled context = %v (class %v), want a Transient wrapping context.Canceled", err, backend.ClassOf(err))
	}
}

// TestThroughALabelLimitedCache reads bindings the way the manager does, from a cache
// limited by CacheByObject: the backend sees its own bindings and the cache holds no
// others.
func TestThroughALabelLimitedCache(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	for _, u := range []string{"p@x.io", "q@x.io"} {
		if _, err := o.b.EnsureMember(ctx, backend.DesiredMember{UserName: u}); err != nil {
			t.Fatal(err)
		}
	}
	c := startedCache(t, clientgoscheme.Scheme, func(ctx context.Context, c cache.Cache) error {
		for _, obj := range []client.Object{&rbacv1.ClusterRoleBinding{}, &rbacv1.RoleBinding{}} {
			if _, err := c.GetInformer(ctx, obj); err != nil {
				return err
			}
		}
		return nil
	})
	cached, err := client.New(restCfg, client.Options{Scheme: clientgoscheme.Scheme, Cache: &client.CacheOptions{Reader: c}})
	if err != nil {
		t.Fatal(err)
	}
	var crbs rbacv1.ClusterRoleBindingList
	if err := cached.List(ctx, &crbs); err != nil {
		t.Fatal(err)
	}
	for _, b := range crbs.Items {
		if b.Labels[k8sbackend.LabelConfigNamespace] == "" {
			t.Fatalf("the limited cache holds foreign binding %s", b.Name)
		}
	}
	list, err := k8sbackend.New(cached, o.cfg).ListMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].UserName != "p@x.io" || list[1].UserName != "q@x.io" || list[0].State != backend.StateMember {
		t.Fatalf("ListMembers through the cache = %+v, want p@x.io and q@x.io as members", list)
	}
}

// BenchmarkEnsureMember measures provisioning one new member (two roles) and the
// idempotent re-ensure of an existing one, against the envtest API server, in both grant
// layouts (the Webhook layout also dry-runs each real binding before its ledger write).
func BenchmarkEnsureMember(b *testing.B) {
	for _, l := range []scimv1.GrantLayout{scimv1.GrantLayoutBindings, scimv1.GrantLayoutWebhook} {
		b.Run(string(l), func(b *testing.B) { benchmarkEnsureMember(b, l) })
	}
}

func benchmarkEnsureMember(b *testing.B, l scimv1.GrantLayout) {
	ctx := context.Background()
	ns := newName("bench-ns")
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}
	cfg := &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: ns},
		Spec: scimv1.ScimConfigSpec{Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{
			GrantLayout:  l,
			ClusterRoles: []string{"view"},
			Roles:        []scimv1.NamespacedRole{{Namespace: ns, Kind: "ClusterRole", Name: "edit"}},
		}}},
	}
	kb := k8sbackend.New(admin, cfg)
	defer func() { _ = kb.RemoveAll(context.Background()) }()
	b.Run("new", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := kb.EnsureMember(ctx, backend.DesiredMember{UserName: fmt.Sprintf("n%d@x.io", i)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("existing", func(b *testing.B) {
		if _, err := kb.EnsureMember(ctx, backend.DesiredMember{UserName: "same@x.io"}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := kb.EnsureMember(ctx, backend.DesiredMember{UserName: "same@x.io"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// startedCache is a cache as the manager builds it (index.NewCache with cachepolicy.Cache:
// bindings limited by CacheByObject, grants interned), with setup run on it before it
// starts (indexes, informers); it stops with the test.
func startedCache(t *testing.T, scheme *runtime.Scheme, setup func(context.Context, cache.Cache) error) cache.Cache {
	t.Helper()
	ctx := t.Context()
	opts := cachepolicy.Cache()
	opts.Scheme = scheme
	c, err := index.NewCache(restCfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(ctx, c); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() { _ = c.Start(cctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	return c
}
