package kubernetes_test

// The Webhook layout's bind check (issue 10, the full sync): the dry-run of the real
// binding as the tenant's ServiceAccount that precedes every OrgGrant write stands for
// the role's next grants for k8sbackend.BindCheckReuse, and no longer; and a grant the
// reader does not show yet is created, with an apply where it exists after all.

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// checkCounter is the ServiceAccount's client, counting its dry-run applies (the bind
// checks: the Webhook layout writes nothing else as the ServiceAccount).
type checkCounter struct {
	client.Client
	dryRuns atomic.Int32
	// during, when set, runs while a dry-run is on its way (after it was sent); answered,
	// when set, after the API server answered it and before the caller sees the answer
	during, answered func()
}

func (c *checkCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	dry := len((&client.ApplyOptions{}).ApplyOptions(opts).DryRun) > 0
	if dry {
		c.dryRuns.Add(1)
		if c.during != nil {
			c.during()
		}
	}
	err := c.Client.Apply(ctx, obj, opts...)
	if dry && c.answered != nil {
		c.answered()
	}
	return err
}

// webhookTenant is a tenant's Webhook-layout config granting its own Role, and its backend
// writing as the tenant's ServiceAccount through a counting client, on clock clk.
func webhookTenant(t *testing.T, clk *clocktesting.FakePassiveClock, more ...scimv1.NamespacedRole) (*tenant, *scimv1.ScimConfig, *k8sbackend.Backend, *checkCounter) {
	t.Helper()
	tn := newTenant(t)
	roles := append([]scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}, more...)
	for i := range roles {
		if roles[i].Namespace == "" {
			roles[i].Namespace = tn.ns
		}
	}
	cfg := tn.config(scimv1.KubernetesBackend{GrantLayout: scimv1.GrantLayoutWebhook, Roles: roles})
	w, err := adminImpersonator().For(cfg.Namespace, tn.sa)
	if err != nil {
		t.Fatal(err)
	}
	counted := &checkCounter{Client: w}
	t.Cleanup(func() {
		if err := k8sbackend.New(admin, cfg).RemoveAll(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := testenv.RBACSynced(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	b := k8sbackend.New(admin, cfg, k8sbackend.ActAs(tn.sa, counted), k8sbackend.WithLiveReader(admin), k8sbackend.WithClock(clk))
	return tn, cfg, b, counted
}

// grantNew ensures user as a new member (an owner of its own) of b's organization.
func grantNew(ctx context.Context, b *k8sbackend.Backend, user string) error {
	_, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: user, Owner: owner(newName("uid"))})
	return err
}

func grantsOf(t *testing.T, cfg *scimv1.ScimConfig) int {
	t.Helper()
	n := 0
	for _, g := range configBindings(t, cfg) {
		if strings.HasPrefix(g, "OrgGrant ") {
			n++
		}
	}
	return n
}

// TestBindCheckStandsForABurst: ten members granted within the reuse window cost one bind
// check; the first grant after the window sends another.
func TestBindCheckStandsForABurst(t *testing.T) {
	ctx := t.Context()
	clk := clocktesting.NewFakePassiveClock(time.Now())
	_, cfg, b, counted := webhookTenant(t, clk)
	for i := range 10 {
		if err := grantNew(ctx, b, newName("burst")+"@example.com"); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		clk.SetTime(clk.Now().Add(k8sbackend.BindCheckReuse / 20))
	}
	if n := counted.dryRuns.Load(); n != 1 {
		t.Fatalf("%d bind checks for 10 grants within %s, want 1", n, k8sbackend.BindCheckReuse)
	}
	if n := grantsOf(t, cfg); n != 10 {
		t.Fatalf("%d OrgGrants, want 10", n)
	}
	// a grant the reader did not show was created, not applied
	var grants scimv1.OrgGrantList
	if err := admin.List(ctx, &grants, client.InNamespace(cfg.Namespace)); err != nil {
		t.Fatal(err)
	}
	for _, g := range grants.Items {
		if len(g.ManagedFields) != 1 || g.ManagedFields[0].Manager != k8sbackend.DefaultFieldOwner ||
			g.ManagedFields[0].Operation != metav1.ManagedFieldsOperationUpdate {
			t.Fatalf("OrgGrant %s managed by %+v, want one create (Update) by %s", g.Name, g.ManagedFields, k8sbackend.DefaultFieldOwner)
		}
	}
	clk.SetTime(clk.Now().Add(k8sbackend.BindCheckReuse))
	if err := grantNew(ctx, b, "late@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := counted.dryRuns.Load(); n != 2 {
		t.Fatalf("%d bind checks after the window passed, want 2", n)
	}
}

// TestBindCheckLapses: once the window has passed, a ServiceAccount that lost the right to
// bind the role gets no new grant of it; a refused check is not remembered, so the grant
// comes as soon as the right is back.
func TestBindCheckLapses(t *testing.T) {
	ctx := t.Context()
	clk := clocktesting.NewFakePassiveClock(time.Now())
	tn, cfg, b, _ := webhookTenant(t, clk)
	if err := grantNew(ctx, b, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	revokeBinder(t, tn)
	clk.SetTime(clk.Now().Add(k8sbackend.BindCheckReuse))
	err := grantNew(ctx, b, "bob@example.com")
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, "team-reader")
	if n := grantsOf(t, cfg); n != 1 {
		t.Fatalf("%d OrgGrants after a refused check, want alice's 1", n)
	}

	create(t, tn.binder())
	if err := testenv.RBACSynced(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if err := grantNew(ctx, b, "bob@example.com"); err != nil {
		t.Fatalf("the right is back, the clock has not moved: %v", err)
	}
}

// laggingReader shows no grants: a cache that has not seen them yet.
type laggingReader struct{ client.Client }

func (l laggingReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := l.Client.List(ctx, list, opts...); err != nil {
		return err
	}
	return meta.SetList(list, nil)
}

// TestGrantWrittenBehindALaggingReader: a grant the reader does not show is created; where
// it exists after all, the write is an apply, which sets what changed (the subject's case).
func TestGrantWrittenBehindALaggingReader(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	o.ensure(t, "uid-lag", "lag@x.io")
	behind := k8sbackend.New(laggingReader{admin}, o.cfg)
	if _, err := behind.EnsureMember(ctx, backend.DesiredMember{UserName: "Lag@x.io", Owner: owner("uid-lag")}); err != nil {
		t.Fatalf("EnsureMember behind a reader that does not show the grant: %v", err)
	}
	grants := o.bindings(t)
	if len(grants) != 2 {
		t.Fatalf("%d grants, want one per role (2)", len(grants))
	}
	for _, g := range grants {
		if s := subjectOf(g); s != "Lag@x.io" {
			t.Errorf("%T %s names %q, want the subject as sent last", g, g.GetName(), s)
		}
	}
}

// subjectOf is the one subject a grant names.
func subjectOf(o client.Object) string {
	switch g := o.(type) {
	case *rbacv1.ClusterRoleBinding:
		return g.Subjects[0].Name
	case *rbacv1.RoleBinding:
		return g.Subjects[0].Name
	case *scimv1.OrgGrant:
		return g.Spec.Subject.Name
	}
	return ""
}

// revokeBinder takes the tenant ServiceAccount's rights away (its scim-binder RoleBinding).
func revokeBinder(t *testing.T, tn *tenant) {
	t.Helper()
	if err := admin.Delete(t.Context(), tn.binder()); err != nil {
		t.Fatal(err)
	}
	if err := testenv.RBACSynced(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
}

// TestBindCheckEndsWithARefusal (review 31 F2): a refused check, here in Check, ends the
// reuse of the role's allowed one at once, not when its window ends.
func TestBindCheckEndsWithARefusal(t *testing.T) {
	ctx := t.Context()
	clk := clocktesting.NewFakePassiveClock(time.Now())
	tn, cfg, b, _ := webhookTenant(t, clk)
	if err := grantNew(ctx, b, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	revokeBinder(t, tn)
	wantPermanent(t, b.Check(ctx), k8sbackend.ReasonNotAllowedToBind, "team-reader")
	err := grantNew(ctx, b, "bob@example.com")
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, "team-reader")
	if n := grantsOf(t, cfg); n != 1 {
		t.Fatalf("%d OrgGrants after Check was refused, want alice's 1", n)
	}
}

// TestBindCheckIsPerRole (review 31 F5): an allowed check of the Role team-reader does not
// stand for the ClusterRole of the same name bound in the same namespace, which the
// ServiceAccount may not bind: nothing is granted.
func TestBindCheckIsPerRole(t *testing.T) {
	ctx := t.Context()
	create(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "team-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}}})
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "team-reader"}})
	})
	clk := clocktesting.NewFakePassiveClock(time.Now())
	_, cfg, b, counted := webhookTenant(t, clk, scimv1.NamespacedRole{Kind: "ClusterRole", Name: "team-reader"})
	err := grantNew(ctx, b, "mallory@example.com")
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, `ClusterRole "team-reader"`)
	if n := grantsOf(t, cfg); n != 0 {
		t.Fatalf("%d OrgGrants, want none", n)
	}
	if n := counted.dryRuns.Load(); n != 2 {
		t.Fatalf("%d bind checks, want one per role (2)", n)
	}
}

// TestBindCheckAgesFromItsSending (review 31 F5): a check's age counts from when it was
// sent, not from its answer: the RBAC state it saw is at least that old.
func TestBindCheckAgesFromItsSending(t *testing.T) {
	ctx := t.Context()
	start := time.Now()
	clk := clocktesting.NewFakePassiveClock(start)
	_, _, b, counted := webhookTenant(t, clk)
	counted.during = func() { clk.SetTime(clk.Now().Add(k8sbackend.BindCheckReuse / 2)) }
	if err := grantNew(ctx, b, "first@example.com"); err != nil {
		t.Fatal(err)
	}
	counted.during = nil
	clk.SetTime(start.Add(k8sbackend.BindCheckReuse))
	if err := grantNew(ctx, b, "second@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := counted.dryRuns.Load(); n != 2 {
		t.Fatalf("%d bind checks, want 2: the first was sent %s before the second grant", n, k8sbackend.BindCheckReuse)
	}
}

// TestBindCheckUnderConcurrentGrants: grants of one role made at once by many workers are
// all written, each after a check or within an allowed one's window.
func TestBindCheckUnderConcurrentGrants(t *testing.T) {
	ctx := t.Context()
	clk := clocktesting.NewFakePassiveClock(time.Now())
	_, cfg, b, counted := webhookTenant(t, clk)
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			err := grantNew(ctx, b, newName("many")+"@example.com")
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := grantsOf(t, cfg); got != n {
		t.Fatalf("%d OrgGrants, want %d", got, n)
	}
	if c := counted.dryRuns.Load(); c < 1 || c > n {
		t.Fatalf("%d bind checks for %d grants", c, n)
	}
}

// TestBindCheckAllowedBeforeARefusalIsNotKept: a check the API server allowed, whose
// answer arrives after another worker's check of the role was refused, stands for no
// later grant.
func TestBindCheckAllowedBeforeARefusalIsNotKept(t *testing.T) {
	ctx := t.Context()
	clk := clocktesting.NewFakePassiveClock(time.Now())
	tn, cfg, b, counted := webhookTenant(t, clk)
	allowed, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	counted.answered = func() {
		if calls.Add(1) == 1 { // the first check only: allowed, and held back
			close(allowed)
			<-release
		}
	}
	first := make(chan error, 1)
	go func() {
		err := grantNew(ctx, b, "alice@example.com")
		first <- err
	}()
	<-allowed
	revokeBinder(t, tn)
	clk.SetTime(clk.Now().Add(time.Millisecond))
	err := grantNew(ctx, b, "bob@example.com")
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, "team-reader")
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("alice, allowed before the rights went: %v", err)
	}
	clk.SetTime(clk.Now().Add(time.Millisecond))
	err = grantNew(ctx, b, "carol@example.com")
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, "team-reader")
	if n := grantsOf(t, cfg); n != 1 {
		t.Fatalf("%d OrgGrants, want alice's 1", n)
	}
}
