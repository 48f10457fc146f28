package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientevents "k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// A reconcile retried at once (a conflict in a later step) reads the config from a cache
// that does not have its own status.lastRotation write yet: the rotate-token value it
// already answered must not be warned about again (the envtest spec "warns once per
// annotation value" failed so, two identical warnings 0.3 s apart, once drift passes
// wrote the config's status too).
func TestCannotRotateWarnsOncePerValueOnAStaleConfig(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "ext-token"},
		Data: map[string][]byte{"bearer": []byte("the-admins-token")}}
	rec := clientevents.NewFakeRecorder(10)
	r := &ScimConfigReconciler{APIReader: fake.NewClientBuilder().WithObjects(secret).Build(), Recorder: rec}
	stale := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "t", Name: "ext", UID: "ext-uid",
		Annotations: map[string]string{scimv1.AnnotationRotateToken: "first"}},
		Spec: scimv1.ScimConfigSpec{TokenSecretRef: &scimv1.SecretKeyRef{Name: "ext-token", Key: "bearer"}}}
	for range 3 { // each reconcile sees status.lastRotation "" (the cache is behind)
		if _, err := r.reconcileToken(context.Background(), stale.DeepCopy()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(rec.Events); n != 1 {
		t.Fatalf("%d warnings for one rotate-token value, want 1", n)
	}
	<-rec.Events
	stale.Annotations[scimv1.AnnotationRotateToken] = "second"
	if _, err := r.reconcileToken(context.Background(), stale.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Events); n != 1 {
		t.Fatalf("%d warnings for a new value, want 1", n)
	}
}
