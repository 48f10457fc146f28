package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/metrics"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/token"
)

// secretRefIndex indexes ScimConfigs by the names of the Secrets they reference.
const secretRefIndex = "index.secretRefs"

// ScimConfigReconciler keeps a ScimConfig's token, backend check and status current.
type ScimConfigReconciler struct {
	client.Client
	// APIReader reads Secrets, which the manager caches as metadata only.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	// Backends gives the backend of a config (for the connectivity check).
	Backends backend.Provider
	Clock    clock.PassiveClock

	// StatusInterval is how often the backend is re-checked and the members recounted
	// (DefaultStatusInterval when zero).
	StatusInterval time.Duration
	// Rechecks are requests from the member and group controllers to check a config's
	// backend now.
	Rechecks *Rechecks

	// streaks are the configs' runs of transiently failed backend checks, by UID.
	streakMu sync.Mutex
	streaks  map[types.UID]*failStreak

	// warnedRotation is the rotate-token value already answered with
	// CannotRotateExternalToken, by config UID: a reconcile that runs before the cache has
	// its own status.lastRotation write does not warn twice.
	warnedRotation sync.Map
}

// FinalizerGrants holds a ScimConfig until its deletion policy has been applied to every
// grant of its members and groups (docs/access-invariant.md, "Deleting a ScimConfig").
const FinalizerGrants = "scim.operator.dev/grants"

// holdConfig adds FinalizerGrants to a live config that lacks it. The member and group
// controllers call it before they grant anything, so a config deleted before its own
// controller ever saw it still applies its deletion policy to every grant.
func holdConfig(ctx context.Context, c client.Client, cfg *scimv1.ScimConfig) error {
	if controllerutil.ContainsFinalizer(cfg, FinalizerGrants) || !cfg.DeletionTimestamp.IsZero() {
		return nil
	}
	orig := cfg.DeepCopy()
	controllerutil.AddFinalizer(cfg, FinalizerGrants)
	return c.Patch(ctx, cfg, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}

// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs/status,verbs=patch
// +kubebuilder:rbac:groups=scim.operator.dev,resources=scimconfigs/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile follows the project's one shape: get, deferred status patch that summarizes
// Ready, then small ordered steps.
func (r *ScimConfigReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	log := logf.FromContext(ctx)
	cfg := &scimv1.ScimConfig{}
	if err := r.Get(ctx, req.NamespacedName, cfg); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetConfig(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cfg.DeletionTimestamp.IsZero() {
		r.warnedRotation.Delete(cfg.UID)
		return r.reconcileDelete(ctx, cfg)
	}
	if err := holdConfig(ctx, r.Client, cfg); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := cfg.DeepCopy()
	ctx, later := withAfterStatus(ctx)
	defer func() {
		r.summarize(cfg)
		// The status is written only over the config this pass read: a merge patch replaces
		// the conditions list whole, and a pass that read a config older than the stored one
		// (the cache without our previous status write yet, or another controller's status
		// write in between) decided from stale conditions (a BackendReady it did not see is
		// "never checked": Unknown over a newer True).
		err := r.Status().Patch(ctx, cfg, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		switch {
		case apierrors.IsConflict(err):
			// Run the whole pass again on a newer read (its steps are idempotent). The
			// conflict replaces the steps' error rather than joining it: a TerminalError
			// (a token Secret we do not own) would otherwise keep the pass from ever running
			// again, and its condition from ever being written.
			log.V(1).Info("status write conflicted: the pass read an old config, running it again", "stepError", fmt.Sprint(retErr))
			res, retErr = ctrl.Result{}, err
		case err != nil && !apierrors.IsNotFound(err):
			retErr = errors.Join(retErr, err)
		case err == nil:
			later.tell()
		}
	}()

	cfg.Status.BasePath = naming.BasePath(cfg.Namespace, cfg.Name)
	steps := []func(context.Context, *scimv1.ScimConfig) (ctrl.Result, error){
		r.reconcileToken,
		r.reconcilePaused,
		r.reconcileBackend,
		r.reconcileSweep,
	}
	for _, step := range steps {
		r, err := step(ctx, cfg)
		res = lowestRequeue(res, r)
		if err != nil {
			log.V(1).Info("step failed", "error", err.Error())
			return res, err
		}
	}
	return res, nil
}

// summarize sets Ready from the other conditions.
func (r *ScimConfigReconciler) summarize(cfg *scimv1.ScimConfig) {
	cfg.Status.ObservedGeneration = cfg.Generation
	ready := metav1.Condition{Type: scimv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready",
		Message: "SCIM endpoint serving at " + cfg.Status.BasePath, ObservedGeneration: cfg.Generation}
	for _, t := range []string{scimv1.ConditionTokenReady, scimv1.ConditionBackendReady} {
		c := meta.FindStatusCondition(cfg.Status.Conditions, t)
		if c != nil && c.Status != metav1.ConditionTrue {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, c.Reason, c.Message
			break
		}
		if c == nil && t == scimv1.ConditionTokenReady {
			ready.Status, ready.Reason, ready.Message = metav1.ConditionUnknown, "Progressing", "token not checked yet"
		}
	}
	if ready.Status == metav1.ConditionTrue && !cfg.IsEnabled() {
		ready.Reason, ready.Message = "Disabled", "SCIM provisioning is disabled: the endpoint answers 403 and nothing syncs"
	}
	meta.SetStatusCondition(&cfg.Status.Conditions, ready)
}

func (r *ScimConfigReconciler) setCondition(cfg *scimv1.ScimConfig, t string, s metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&cfg.Status.Conditions, metav1.Condition{
		Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: cfg.Generation,
	})
}

func (r *ScimConfigReconciler) reconcilePaused(_ context.Context, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	if cfg.IsEnabled() {
		meta.RemoveStatusCondition(&cfg.Status.Conditions, scimv1.ConditionPaused)
	} else {
		r.setCondition(cfg, scimv1.ConditionPaused, metav1.ConditionTrue, "Disabled",
			"spec.enabled is false: the SCIM endpoint refuses requests and members are left as they are")
	}
	return ctrl.Result{}, nil
}

// ReasonCannotRotateExternalToken is the Warning event of a rotate-token annotation on a
// config whose token comes from spec.tokenSecretRef.
const ReasonCannotRotateExternalToken = "CannotRotateExternalToken"

// reconcileToken checks a referenced token, or generates, rotates and expires the
// generated one.
func (r *ScimConfigReconciler) reconcileToken(ctx context.Context, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	if ref := cfg.Spec.TokenSecretRef; ref != nil {
		cfg.Status.TokenSecretName = ref.Name
		// The rotate-token annotation rotates only a generated token: say so, once per value
		// (status.lastRotation records the value answered), rather than nothing.
		if want := cfg.Annotations[scimv1.AnnotationRotateToken]; want != "" && want != cfg.Status.LastRotation {
			if prev, ok := r.warnedRotation.Load(cfg.UID); ok && prev == want {
				cfg.Status.LastRotation = want // answered; the cache is behind our status write
			}
		}
		if want := cfg.Annotations[scimv1.AnnotationRotateToken]; want != "" && want != cfg.Status.LastRotation {
			r.warnedRotation.Store(cfg.UID, want)
			r.Recorder.Eventf(cfg, nil, corev1.EventTypeWarning, ReasonCannotRotateExternalToken, "Rotate",
				"the %s annotation changed to %q, but the token comes from spec.tokenSecretRef (Secret %q, key %q): the operator never writes that Secret; rotate by updating it",
				scimv1.AnnotationRotateToken, want, ref.Name, ref.Key)
			cfg.Status.LastRotation = want
		}
		var s corev1.Secret
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: cfg.Namespace, Name: ref.Name}, &s)
		switch {
		case apierrors.IsNotFound(err):
			r.setCondition(cfg, scimv1.ConditionTokenReady, metav1.ConditionFalse, "SecretNotFound",
				fmt.Sprintf("token Secret %q not found in namespace %q", ref.Name, cfg.Namespace))
			return ctrl.Result{}, nil // the Secret watch brings us back
		case err != nil:
			return ctrl.Result{}, err
		}
		if len(s.Data[ref.Key]) == 0 {
			r.setCondition(cfg, scimv1.ConditionTokenReady, metav1.ConditionFalse, "SecretKeyMissing",
				fmt.Sprintf("token Secret %q has no key %q", ref.Name, ref.Key))
			return ctrl.Result{}, nil
		}
		r.setCondition(cfg, scimv1.ConditionTokenReady, metav1.ConditionTrue, "SecretFound",
			fmt.Sprintf("bearer token read from Secret %q key %q", ref.Name, ref.Key))
		return ctrl.Result{}, nil
	}
	return r.reconcileGeneratedToken(ctx, cfg)
}

func (r *ScimConfigReconciler) reconcileGeneratedToken(ctx context.Context, cfg *scimv1.ScimConfig) (ctrl.Result, error) {
	now := r.Clock.Now()
	name := naming.TokenSecretName(cfg.Name)
	cfg.Status.TokenSecretName = name
	s := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: cfg.Namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		tok, err := token.Generate()
		if err != nil {
			return ctrl.Result{}, err
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: cfg.Namespace, Name: name,
				Labels: map[string]string{naming.LabelTokenFor: cfg.Name},
				Annotations: map[string]string{
					naming.AnnotationRotatedFor: cfg.Annotations[scimv1.AnnotationRotateToken],
					naming.AnnotationRotatedAt:  now.UTC().Format(time.RFC3339),
				}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{naming.TokenKey: []byte(tok)},
		}
		if err := controllerutil.SetControllerReference(cfg, s, r.Scheme); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
		cfg.Status.LastRotation = cfg.Annotations[scimv1.AnnotationRotateToken]
		r.Recorder.Eventf(cfg, nil, corev1.EventTypeNormal, "TokenGenerated", "Generate",
			"generated a bearer token into Secret %s", name)
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if !metav1.IsControlledBy(s, cfg) {
		r.setCondition(cfg, scimv1.ConditionTokenReady, metav1.ConditionFalse, "SecretNotOwned",
			fmt.Sprintf("Secret %q exists and is not owned by this ScimConfig; set spec.tokenSecretRef to use it", name))
		return ctrl.Result{}, reconcile.TerminalError(fmt.Errorf("token Secret %s is not owned by ScimConfig %s", name, cfg.Name))
	}

	var res ctrl.Result
	orig := s.DeepCopy()
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	// Someone emptied the generated Secret: make a new token rather than serve none.
	if len(s.Data[naming.TokenKey]) == 0 {
		tok, err := token.Generate()
		if err != nil {
			return ctrl.Result{}, err
		}
		s.Data[naming.TokenKey] = []byte(tok)
		s.Annotations[naming.AnnotationRotatedAt] = now.UTC().Format(time.RFC3339)
		if err := r.Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
		r.Recorder.Eventf(cfg, nil, corev1.EventTypeWarning, "TokenRegenerated", "Generate",
			"Secret %s had no key %q: generated a new bearer token", name, naming.TokenKey)
		orig = s.DeepCopy()
	}
	// The rotation marker lives on the Secret, which is read uncached: a reconcile that
	// sees a stale ScimConfig status must not rotate a second time for one request.
	if want := cfg.Annotations[scimv1.AnnotationRotateToken]; want != "" && want != s.Annotations[naming.AnnotationRotatedFor] {
		tok, err := token.Generate()
		if err != nil {
			return ctrl.Result{}, err
		}
		grace := time.Duration(0)
		if cfg.Spec.TokenGracePeriod != nil {
			grace = cfg.Spec.TokenGracePeriod.Duration
		}
		if grace > 0 {
			s.Data[naming.PreviousTokenKey] = s.Data[naming.TokenKey]
			s.Annotations[naming.AnnotationPreviousTokenExpires] = now.Add(grace).UTC().Format(time.RFC3339)
		} else {
			delete(s.Data, naming.PreviousTokenKey)
			delete(s.Annotations, naming.AnnotationPreviousTokenExpires)
		}
		s.Data[naming.TokenKey] = []byte(tok)
		s.Annotations[naming.AnnotationRotatedFor] = want
		s.Annotations[naming.AnnotationRotatedAt] = now.UTC().Format(time.RFC3339)
		if err := r.Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, err
		}
		cfg.Status.LastRotation = want
		r.Recorder.Eventf(cfg, nil, corev1.EventTypeNormal, "TokenRotated", "Rotate",
			"rotated the bearer token in Secret %s; the previous token stays valid for %s", name, grace)
		orig = s.DeepCopy()
	} else if want != "" {
		cfg.Status.LastRotation = want
	}
	// The Secret says when its token was made: a pass whose status write conflicted (and
	// is run again) does not lose it. A Secret from before the annotation keeps the status.
	if at, err := time.Parse(time.RFC3339, s.Annotations[naming.AnnotationRotatedAt]); err == nil {
		cfg.Status.TokenRotatedAt = &metav1.Time{Time: at}
	}
	// Expire the previous token once its grace period is over.
	if exp, ok := s.Annotations[naming.AnnotationPreviousTokenExpires]; ok {
		t, perr := time.Parse(time.RFC3339, exp)
		if perr != nil || !now.Before(t) {
			delete(s.Data, naming.PreviousTokenKey)
			delete(s.Annotations, naming.AnnotationPreviousTokenExpires)
			if err := r.Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
				return ctrl.Result{}, err
			}
		} else {
			res.RequeueAfter = t.Sub(now) + time.Second
		}
	}
	r.setCondition(cfg, scimv1.ConditionTokenReady, metav1.ConditionTrue, "TokenGenerated",
		fmt.Sprintf("bearer token in Secret %q key %q", name, naming.TokenKey))
	return res, nil
}

// lowestRequeue keeps the earliest requested requeue of two results.
func lowestRequeue(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter == 0 || (b.RequeueAfter > 0 && b.RequeueAfter < a.RequeueAfter) {
		a.RequeueAfter = b.RequeueAfter
	}
	return a
}

// SetupWithManager watches ScimConfigs (spec changes and the rotate/reconcile
// annotations), their generated token Secrets and the Secrets they reference, all Secrets
// as metadata only.
func (r *ScimConfigReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &scimv1.ScimConfig{}, secretRefIndex,
		func(o client.Object) []string { return referencedSecrets(o.(*scimv1.ScimConfig)) }); err != nil {
		return err
	}
	b := newController(mgr, "scimconfig", retryLimiter()).
		For(&scimv1.ScimConfig{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}, builder.OnlyMetadata).
		Watches(&metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}},
			handler.EnqueueRequestsFromMapFunc(r.configsForSecret), builder.OnlyMetadata)
	if r.Rechecks != nil {
		b = b.WatchesRawSource(r.Rechecks.source())
	}
	return b.Complete(r)
}

func referencedSecrets(cfg *scimv1.ScimConfig) []string {
	var out []string
	if ref := cfg.Spec.TokenSecretRef; ref != nil {
		out = append(out, ref.Name)
	}
	if dh := cfg.Spec.Backend.DockerHub; dh != nil {
		out = append(out, dh.AccessTokenSecretRef.Name)
	}
	return out
}

func (r *ScimConfigReconciler) configsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list scimv1.ScimConfigList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{secretRefIndex: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, c := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&c)})
	}
	return reqs
}

// afterStatus holds what a pass tells once its status write lands: the events that report
// a condition's change. A pass whose write conflicts is run again on a newer read and
// decides them again, so they are told once per change, not once per attempt.
type afterStatus struct{ fns []func() }

type afterStatusKey struct{}

func withAfterStatus(ctx context.Context) (context.Context, *afterStatus) {
	a := &afterStatus{}
	return context.WithValue(ctx, afterStatusKey{}, a), a
}

// tellAfterStatus runs f once the pass's status is written (at once outside a pass).
func tellAfterStatus(ctx context.Context, f func()) {
	if a, ok := ctx.Value(afterStatusKey{}).(*afterStatus); ok {
		a.fns = append(a.fns, f)
		return
	}
	f()
}

func (a *afterStatus) tell() {
	for _, f := range a.fns {
		f()
	}
	a.fns = nil
}
