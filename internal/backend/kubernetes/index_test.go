package kubernetes_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

// listRecorder counts the lists that reach the cache with and without a field selector.
type listRecorder struct {
	client.Client
	indexed, scanned *int
}

func (r listRecorder) List(ctx context.Context, l client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	if o.FieldSelector != nil {
		*r.indexed++
	} else {
		*r.scanned++
	}
	return r.Client.List(ctx, l, opts...)
}

// TestGrantIndex: a backend built WithGrantIndex over a cache with SetupIndex finds a
// member's grants through the index (not by testing every grant the cache holds) and
// answers what the same backend answers without it.
func TestGrantIndex(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	users := []string{"ann@x.io", "ben@x.io", "cy@x.io"}
	for i, u := range users {
		owner := backend.Owner{Kind: "OrgMember", UID: fmt.Sprintf("uid-%d", i)}
		if _, err := o.b.EnsureMember(ctx, backend.DesiredMember{UserName: u, Owner: owner}); err != nil {
			t.Fatal(err)
		}
	}
	c := startedCache(t, admin.Scheme(), func(ctx context.Context, c cache.Cache) error { return k8sbackend.SetupIndex(ctx, c) })
	cached, err := client.New(restCfg, client.Options{Scheme: admin.Scheme(), Cache: &client.CacheOptions{Reader: c}})
	if err != nil {
		t.Fatal(err)
	}
	var indexed, scanned int
	ib := k8sbackend.New(listRecorder{cached, &indexed, &scanned}, o.cfg, k8sbackend.WithGrantIndex())
	plain := k8sbackend.New(cached, o.cfg)
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range append(users, "nobody@x.io") {
		for {
			got, err := ib.ObserveMember(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			want, err := plain.ObserveMember(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(got, want) && (got.State == backend.StateMember || u == "nobody@x.io") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: with the index %+v, without %+v", u, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if scanned != 0 || indexed == 0 {
		t.Errorf("lookups of members: %d through the index, %d scanning every grant", indexed, scanned)
	}
	// an owner's grants, found by its UID: EnsureOwnerAbsent removes exactly them
	if err := ib.EnsureOwnerAbsent(ctx, backend.Owner{Kind: "OrgMember", UID: "uid-1"}, ""); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := k8sbackend.New(admin, o.cfg).ObserveMember(ctx, "ben@x.io")
		if err != nil {
			t.Fatal(err)
		}
		if m.State == backend.StateAbsent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ben@x.io's grants outlived EnsureOwnerAbsent through the index: %+v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, u := range []string{"ann@x.io", "cy@x.io"} {
		if m, err := k8sbackend.New(admin, o.cfg).ObserveMember(ctx, u); err != nil || m.State != backend.StateMember {
			t.Errorf("%s lost access with another owner's grants: %+v %v", u, m, err)
		}
	}
	if scanned != 0 {
		t.Errorf("%d lists scanned every grant", scanned)
	}
}

// TestCheckRefusesTheWebhookLayoutWithoutAWebhook: a manager that serves no authorization
// webhook refuses a Webhook-layout config in Check (its OrgGrants would give nobody
// access), and accepts it when it serves one; the Bindings layout needs none.
func TestCheckRefusesTheWebhookLayoutWithoutAWebhook(t *testing.T) {
	ctx := t.Context()
	o := newOrg(t, nil)
	webhookCfg := withLayout(o.cfg, scimv1.GrantLayoutWebhook)
	err := k8sbackend.New(admin, webhookCfg, k8sbackend.WithAuthorizationWebhook(false)).Check(ctx)
	if backend.ClassOf(err) != backend.Permanent || backend.ReasonOf(err) != k8sbackend.ReasonNoAuthorizationWebhook {
		t.Fatalf("Webhook layout, no webhook served: Check = %v, want Permanent %s", err, k8sbackend.ReasonNoAuthorizationWebhook)
	}
	if err := k8sbackend.New(admin, webhookCfg, k8sbackend.WithAuthorizationWebhook(true)).Check(ctx); err != nil {
		t.Fatalf("Webhook layout, webhook served: Check = %v", err)
	}
	bindingsCfg := withLayout(o.cfg, scimv1.GrantLayoutBindings)
	if err := k8sbackend.New(admin, bindingsCfg, k8sbackend.WithAuthorizationWebhook(false)).Check(ctx); err != nil {
		t.Fatalf("Bindings layout, no webhook served: Check = %v", err)
	}
}
