package authz_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/authz"
)

// BenchmarkAuthorize measures one answer of the Authorizer (from the manager's cache) and
// one SubjectAccessReview through the API server (RBAC, then the webhook over HTTPS), for
// a user holding a ledger grant and for an unrelated one (also in the config's own
// namespace, where the OrgGrants are), with AUTHZ_BENCH_N (default 5,000) other users'
// OrgGrants in the cache, and with none:
//
//	go test ./internal/authz -run '^$' -bench BenchmarkAuthorize -benchtime 2000x
func BenchmarkAuthorize(b *testing.B) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("AUTHZ_BENCH_N")); err == nil {
		n = v
	}
	fxOnce.Do(func() { fx, fxErr = start() })
	if fxErr != nil {
		b.Fatal(fxErr)
	}
	f := fx
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "authz-bench-"}}
	if err := f.direct.Create(ctx, nsObj); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.direct.Delete(ctx, nsObj) }()
	ns := nsObj.Name
	reader := unique("pod-reader")
	if err := f.direct.Create(ctx, podReader(reader)); err != nil {
		b.Fatal(err)
	}
	if err := f.direct.Create(ctx, scimConfig(ns, "org", scimv1.GrantLayoutWebhook, []string{reader})); err != nil {
		b.Fatal(err)
	}
	holder := ledger(ns, "org", rbacv1.UserKind, "holder@x.io", "ClusterRole", reader, "")
	if err := f.direct.Create(ctx, holder); err != nil {
		b.Fatal(err)
	}
	a := &authz.Authorizer{Reader: f.mgr.GetCache()}
	run := func(label string) {
		for _, c := range []struct {
			who  string
			want bool
		}{{"holder@x.io", true}, {"unrelated@x.io", false}} {
			spec := pods(c.who, []string{"system:authenticated"}, "x")
			b.Run(fmt.Sprintf("%s/cache/%s", label, c.who), func(b *testing.B) {
				for b.Loop() {
					d, err := a.Authorize(ctx, spec)
					if err != nil || d.Allowed != c.want {
						b.Fatalf("%s: %+v %v", c.who, d, err)
					}
				}
			})
			b.Run(fmt.Sprintf("%s/apiserver/%s", label, c.who), func(b *testing.B) {
				for b.Loop() {
					r := &authorizationv1.SubjectAccessReview{Spec: spec}
					if err := f.direct.Create(ctx, r); err != nil || r.Status.Allowed != c.want {
						b.Fatalf("%s: %+v %v", c.who, r.Status, err)
					}
				}
			})
		}
		// RBAC denies the unrelated user in the config's own namespace, where the ledger
		// lives: it walks that namespace's RoleBindings, so the ledger must not be any
		b.Run(fmt.Sprintf("%s/apiserver-config-namespace/unrelated@x.io", label), func(b *testing.B) {
			spec := pods("unrelated@x.io", []string{"system:authenticated"}, ns)
			for b.Loop() {
				r := &authorizationv1.SubjectAccessReview{Spec: spec}
				if err := f.direct.Create(ctx, r); err != nil || r.Status.Allowed {
					b.Fatalf("unrelated in %s: %+v %v", ns, r.Status, err)
				}
			}
		})
	}
	// the holder's grant is in the cache once it answers "allowed"
	for {
		if d, err := a.Authorize(ctx, pods("holder@x.io", nil, "x")); err == nil && d.Allowed {
			break
		}
	}
	run("0-others")
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range n {
		rb := ledger(ns, "org", rbacv1.UserKind, fmt.Sprintf("other-%d@x.io", i), "ClusterRole", reader, "")
		g.Go(func() error { return f.direct.Create(gctx, rb) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	for { // every binding in the cache
		var l scimv1.OrgGrantList
		if err := f.mgr.GetCache().List(ctx, &l, client.InNamespace(ns)); err != nil {
			b.Fatal(err)
		}
		if len(l.Items) == n+1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	run(fmt.Sprintf("%d-others", n))
}

// BenchmarkRevoke measures, through the API server, the time from an OrgGrant's
// deletion to the first SubjectAccessReview that no longer allows its user (the manager's
// cache catching up; the API server caches nothing): the deprovisioning path of the Webhook
// layout. It reports the median and the largest of b.N revocations.
//
//	go test ./internal/authz -run '^$' -bench BenchmarkRevoke -benchtime 50x
func BenchmarkRevoke(b *testing.B) {
	fxOnce.Do(func() { fx, fxErr = start() })
	if fxErr != nil {
		b.Fatal(fxErr)
	}
	f := fx
	ctx := context.Background()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "authz-revoke-"}}
	if err := f.direct.Create(ctx, nsObj); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.direct.Delete(ctx, nsObj) }()
	reader := unique("pod-reader")
	if err := f.direct.Create(ctx, podReader(reader)); err != nil {
		b.Fatal(err)
	}
	if err := f.direct.Create(ctx, scimConfig(nsObj.Name, "org", scimv1.GrantLayoutWebhook, []string{reader})); err != nil {
		b.Fatal(err)
	}
	allowedNow := func(user string) bool {
		r := &authorizationv1.SubjectAccessReview{Spec: pods(user, nil, "x")}
		if err := f.direct.Create(ctx, r); err != nil {
			b.Fatal(err)
		}
		return r.Status.Allowed
	}
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		user := fmt.Sprintf("revoked-%d@x.io", i)
		rb := ledger(nsObj.Name, "org", rbacv1.UserKind, user, "ClusterRole", reader, "")
		if err := f.direct.Create(ctx, rb); err != nil {
			b.Fatal(err)
		}
		for !allowedNow(user) {
		}
		start := time.Now()
		if err := f.direct.Delete(ctx, rb); err != nil {
			b.Fatal(err)
		}
		for allowedNow(user) {
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "ms-max")
}
