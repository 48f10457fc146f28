package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientevents "k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// checkOnly is a backend whose Check answers err; the reconciler calls nothing else of a
// backend that keeps no owner ledger.
type checkOnly struct {
	backend.Backend
	err error
}

func (b *checkOnly) Check(context.Context) error { return b.err }

type oneBackend struct{ b backend.Backend }

func (p oneBackend) For(context.Context, *scimv1.ScimConfig) (backend.Backend, error) {
	return p.b, nil
}

// laggingCache is a fake API server behind a cache that can lag: while lag is set, a
// ScimConfig is read as it was just before the reconciler's last status write (what the
// informer holds until that write's watch event arrives).
type laggingCache struct {
	client.WithWatch
	lag     bool
	before  *scimv1.ScimConfig // the config just before the last status write
	writers []func()           // run before the next status write: another controller's write
}

func newLaggingCache(t *testing.T, objs ...client.Object) *laggingCache {
	t.Helper()
	lc := &laggingCache{}
	lc.WithWatch = withShippedIndexes(t, fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(objs...)).
		WithStatusSubresource(&scimv1.ScimConfig{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if cfg, ok := obj.(*scimv1.ScimConfig); ok && lc.lag && lc.before != nil {
					lc.before.DeepCopyInto(cfg)
					return nil
				}
				return c.Get(ctx, key, obj, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				if _, ok := obj.(*scimv1.ScimConfig); ok {
					writers := lc.writers
					lc.writers = nil
					for _, w := range writers {
						w()
					}
					before := &scimv1.ScimConfig{}
					if err := c.Get(ctx, client.ObjectKeyFromObject(obj), before); err != nil {
						return err
					}
					lc.before = before
				}
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	return lc
}

func (lc *laggingCache) condition(t *testing.T, cfg *scimv1.ScimConfig, typ string) string {
	t.Helper()
	lc.lag = false
	got := &scimv1.ScimConfig{}
	if err := lc.Get(context.Background(), client.ObjectKeyFromObject(cfg), got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, typ); c != nil {
		return string(c.Status) + "/" + c.Reason
	}
	return ""
}

func raceConfig() *scimv1.ScimConfig {
	return &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "acme", UID: "acme-uid"},
		Spec: scimv1.ScimConfigSpec{Organization: "acme", Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes}}}
}

func raceReconciler(lc *laggingCache, b backend.Backend) *ScimConfigReconciler {
	return &ScimConfigReconciler{Client: lc, APIReader: lc, Scheme: lc.Scheme(),
		Recorder: clientevents.NewFakeRecorder(100), Backends: oneBackend{b},
		Clock: clocktesting.NewFakePassiveClock(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))}
}

// The CI flake of the envtest spec "retries a transient failure per member: a flaky
// backend does not pause its config": a reconcile that runs before the cache has the
// config's own status write (a Secret event, a member's recheck request, queued during the
// previous pass) sees no BackendReady at all. When the backend's check then fails
// transiently, it takes the config for one never checked (BackendReady=Unknown), and the
// status merge patch, whose conditions list replaces the stored one whole, overwrote the
// stored True/Connected with Unknown/BackendUnavailable; every later check failed
// transiently too, so it stayed Unknown.
func TestStaleReconcileDoesNotOverwriteNewerBackendReady(t *testing.T) {
	cfg := raceConfig()
	lc := newLaggingCache(t, cfg)
	b := &checkOnly{}
	r := raceReconciler(lc, b)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cfg)}

	if _, err := r.Reconcile(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := lc.condition(t, cfg, scimv1.ConditionBackendReady); got != "True/Connected" {
		t.Fatalf("first pass: BackendReady %s, want True/Connected", got)
	}

	// The backend turns flaky, and the next reconcile reads the config from a cache that
	// does not have the first pass's status write yet.
	b.err = backend.NewTransient("BackendUnavailable", errors.New("503 Service Unavailable"))
	lc.lag = true
	_, err := r.Reconcile(context.Background(), req)
	if err == nil {
		t.Fatal("a stale pass whose check failed returned no error: it is not retried")
	}
	if got := lc.condition(t, cfg, scimv1.ConditionBackendReady); got != "True/Connected" {
		t.Fatalf("after a pass on a stale config: BackendReady %s, want True/Connected (a status written from a stale read replaced a newer one)", got)
	}

	// The retry, on a cache that caught up, keeps True: one failed check is not an outage.
	if _, err := r.Reconcile(context.Background(), req); err == nil {
		t.Fatal("a failed check returned no error: it is not retried")
	}
	if got := lc.condition(t, cfg, scimv1.ConditionBackendReady); got != "True/Connected" {
		t.Fatalf("after the retry: BackendReady %s, want True/Connected", got)
	}
}

// The first try at the fix above (an optimistic lock on the status patch) broke the
// envtest spec "refuses to take over a Secret it does not own": the token step ends that
// pass with a TerminalError, and the drift controller writes status.lastFullSyncTime of a
// new config at the same moment. The lock's Conflict was joined to the TerminalError, so
// the controller neither retried nor wrote TokenReady=False/SecretNotOwned, ever.
func TestStatusConflictAfterTerminalErrorIsRetried(t *testing.T) {
	cfg := raceConfig()
	taken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: naming.TokenSecretName("acme")},
		Data: map[string][]byte{"token": []byte("someone-elses")}}
	lc := newLaggingCache(t, cfg, taken)
	r := raceReconciler(lc, &checkOnly{})
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cfg)}

	// the drift pass's status write lands between this pass's read and its status write
	lc.writers = append(lc.writers, lc.driftWrite(t, cfg))
	res, err := r.Reconcile(context.Background(), req)
	if got := lc.condition(t, cfg, scimv1.ConditionTokenReady); got != "False/SecretNotOwned" {
		// the status was not written: the pass must be run again
		if err == nil && res.RequeueAfter == 0 {
			t.Fatalf("status not written (TokenReady %q) and the pass is not retried", got)
		}
		if errors.Is(err, reconcile.TerminalError(nil)) {
			t.Fatalf("status not written (TokenReady %q) and the pass ended with a terminal error, never retried: %v", got, err)
		}
		if _, err := r.Reconcile(context.Background(), req); !errors.Is(err, reconcile.TerminalError(nil)) {
			t.Fatalf("the retry: %v, want the terminal SecretNotOwned error", err)
		}
	}
	if got := lc.condition(t, cfg, scimv1.ConditionTokenReady); got != "False/SecretNotOwned" {
		t.Fatalf("TokenReady %s, want False/SecretNotOwned", got)
	}
	got := &corev1.Secret{}
	if err := lc.Get(context.Background(), client.ObjectKeyFromObject(taken), got); err != nil {
		t.Fatal(err)
	}
	if string(got.Data["token"]) != "someone-elses" || metav1.GetControllerOf(got) != nil {
		t.Fatal("the Secret it does not own was changed")
	}
}

// driftWrite is the drift controller's status write of lastFullSyncTime, landing between a
// pass's read and its own status write.
func (lc *laggingCache) driftWrite(t *testing.T, cfg *scimv1.ScimConfig) func() {
	return func() {
		got := &scimv1.ScimConfig{}
		if err := lc.WithWatch.Get(context.Background(), client.ObjectKeyFromObject(cfg), got); err != nil {
			t.Fatal(err)
		}
		orig := got.DeepCopy()
		got.Status.LastFullSyncTime = &metav1.Time{Time: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
		if err := lc.WithWatch.Status().Patch(context.Background(), got, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
	}
}

// A pass whose status write conflicts is run again, and its status is computed anew: what
// only the pass that generated or rotated the token knew (when) must not be lost with the
// conflicted write. The drift controller writes a new config's status at about the moment
// its first pass generates the token, so this is the common case, not a corner.
func TestTokenRotatedAtSurvivesAConflictedStatusWrite(t *testing.T) {
	cfg := raceConfig()
	cfg.Spec.TokenGracePeriod = &metav1.Duration{Duration: time.Hour}
	lc := newLaggingCache(t, cfg)
	r := raceReconciler(lc, &checkOnly{})
	clk := r.Clock.(*clocktesting.FakePassiveClock)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(cfg)}
	rotatedAt := func() time.Time {
		got := &scimv1.ScimConfig{}
		if err := lc.WithWatch.Get(context.Background(), client.ObjectKeyFromObject(cfg), got); err != nil {
			t.Fatal(err)
		}
		if got.Status.TokenRotatedAt == nil {
			return time.Time{}
		}
		return got.Status.TokenRotatedAt.UTC()
	}
	pass := func() {
		t.Helper()
		for range 3 { // a conflicted pass is retried
			if _, err := r.Reconcile(context.Background(), req); err == nil {
				return
			}
		}
		t.Fatal("three passes in a row failed")
	}

	generated := clk.Now()
	lc.writers = append(lc.writers, lc.driftWrite(t, cfg))
	pass()
	if got := rotatedAt(); !got.Equal(generated) {
		t.Fatalf("after the token was generated: status.tokenRotatedAt %v, want %v", got, generated)
	}

	clk.SetTime(generated.Add(time.Minute))
	updated := &scimv1.ScimConfig{}
	if err := lc.Get(context.Background(), client.ObjectKeyFromObject(cfg), updated); err != nil {
		t.Fatal(err)
	}
	updated.Annotations = map[string]string{scimv1.AnnotationRotateToken: "now"}
	if err := lc.Update(context.Background(), updated); err != nil {
		t.Fatal(err)
	}
	lc.writers = append(lc.writers, lc.driftWrite(t, cfg))
	pass()
	if got := rotatedAt(); !got.Equal(clk.Now()) {
		t.Fatalf("after a rotation: status.tokenRotatedAt %v, want %v", got, clk.Now())
	}
}
