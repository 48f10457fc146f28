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
}

func (c *checkCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if len((&client.ApplyOptions{}).ApplyOptions(opts).DryRun) > 0 {
		c.dryRuns.Add(1)
	}
	return c.Client.Apply(ctx, obj, opts...)
}

// webhookTenant is a tenant's Webhook-layout config granting its own Role, and its backend
// writing as the tenant's ServiceAccount through a counting client, on clock clk.
func webhookTenant(t *testing.T, clk *clocktesting.FakePassiveClock) (*tenant, *scimv1.ScimConfig, *k8sbackend.Backend, *checkCounter) {
	t.Helper()
	tn := newTenant(t)
	cfg := tn.config(scimv1.KubernetesBackend{GrantLayout: scimv1.GrantLayoutWebhook,
		Roles: []scimv1.NamespacedRole{{Namespace: tn.ns, Kind: "Role", Name: "team-reader"}}})
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
		if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: newName("burst") + "@example.com", Owner: owner(newName("uid"))}); err != nil {
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
	clk.SetTime(clk.Now().Add(k8sbackend.BindCheckReuse))
	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "late@example.com", Owner: owner(newName("uid"))}); err != nil {
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
	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "alice@example.com", Owner: owner(newName("uid"))}); err != nil {
		t.Fatal(err)
	}
	binder := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scim-binder", Namespace: tn.ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "scim-binder"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: tn.sa, Namespace: tn.ns}}}
	if err := admin.Delete(ctx, binder.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	if err := testenv.RBACSynced(ctx, admin); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(k8sbackend.BindCheckReuse))
	_, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "bob@example.com", Owner: owner(newName("uid"))})
	wantPermanent(t, err, k8sbackend.ReasonNotAllowedToBind, "team-reader")
	if n := grantsOf(t, cfg); n != 1 {
		t.Fatalf("%d OrgGrants after a refused check, want alice's 1", n)
	}

	create(t, binder)
	if err := testenv.RBACSynced(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if _, err := b.EnsureMember(ctx, backend.DesiredMember{UserName: "bob@example.com", Owner: owner(newName("uid"))}); err != nil {
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
