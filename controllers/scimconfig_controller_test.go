package controllers_test

import (
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/token"
)

func newConfig(ns, name string) *scimv1.ScimConfig {
	return &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: scimv1.ScimConfigSpec{
			Organization: "acme",
			Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes,
				// a role that exists, so the backend check passes (BackendReady)
				Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: []string{"view"}}},
		},
	}
}

func condition(ns, name, t string) func() *metav1.Condition {
	return func() *metav1.Condition {
		var c scimv1.ScimConfig
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &c); err != nil {
			return nil
		}
		return meta.FindStatusCondition(c.Status.Conditions, t)
	}
}

func conditionStatus(ns, name, t string) func() string {
	return func() string {
		if c := condition(ns, name, t)(); c != nil {
			return string(c.Status) + "/" + c.Reason
		}
		return ""
	}
}

func tokenSecret(ns, cfgName string) *corev1.Secret {
	var s corev1.Secret
	Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: naming.TokenSecretName(cfgName)}, &s)).To(Succeed())
	return &s
}

var _ = Describe("ScimConfig controller", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("generates a token into an owned Secret and reports Ready with the base path", func() {
		Expect(k8s.Create(ctx, newConfig(ns, "acme"))).To(Succeed())
		Eventually(conditionStatus(ns, "acme", scimv1.ConditionReady)).Should(Equal("True/Ready"))
		Expect(conditionStatus(ns, "acme", scimv1.ConditionTokenReady)()).To(Equal("True/TokenGenerated"))

		var c scimv1.ScimConfig
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "acme"}, &c)).To(Succeed())
		Expect(c.Status.BasePath).To(Equal("/scim/v2/" + ns + "/acme"))
		Expect(c.Status.TokenSecretName).To(Equal("acme-scim-token"))
		Expect(c.Status.ObservedGeneration).To(Equal(c.Generation))

		s := tokenSecret(ns, "acme")
		Expect(metav1.IsControlledBy(s, &c)).To(BeTrue(), "the generated Secret is owned by its config")
		tok := string(s.Data[naming.TokenKey])
		Expect(tok).To(HavePrefix("scim_"))
		Expect(len(tok)).To(BeNumerically(">=", 40))

		By("never showing the token in status or events")
		raw, _ := json.Marshal(c.Status)
		Expect(string(raw)).NotTo(ContainSubstring(tok))
		Eventually(func() []eventsv1.Event {
			var evs eventsv1.EventList
			Expect(k8s.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
			return evs.Items
		}).ShouldNot(BeEmpty())
		var evs eventsv1.EventList
		Expect(k8s.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
		for _, e := range evs.Items {
			Expect(e.Note).NotTo(ContainSubstring(tok))
		}
	})

	It("rotates the token on request, keeping the old one valid for the grace period", func() {
		c := newConfig(ns, "rot")
		c.Spec.TokenGracePeriod = &metav1.Duration{Duration: time.Hour}
		Expect(k8s.Create(ctx, c)).To(Succeed())
		Eventually(conditionStatus(ns, "rot", scimv1.ConditionTokenReady)).Should(Equal("True/TokenGenerated"))
		old := string(tokenSecret(ns, "rot").Data[naming.TokenKey])

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), c)).To(Succeed())
		c.Annotations = map[string]string{scimv1.AnnotationRotateToken: "2026-11-28T05:00:00Z"}
		Expect(k8s.Update(ctx, c)).To(Succeed())
		Eventually(func() string { return string(tokenSecret(ns, "rot").Data[naming.TokenKey]) }).ShouldNot(Equal(old))

		s := tokenSecret(ns, "rot")
		acc, err := token.FromSecret(s, naming.TokenKey)
		Expect(err).NotTo(HaveOccurred())
		now := time.Now()
		Expect(acc.Matches(s.Data[naming.TokenKey], now)).To(BeTrue(), "new token accepted")
		Expect(acc.Matches([]byte(old), now)).To(BeTrue(), "old token accepted during the grace period")
		Expect(acc.Matches([]byte(old), now.Add(2*time.Hour))).To(BeFalse(), "old token refused after it")
		Expect(acc.Matches([]byte("scim_wrong"), now)).To(BeFalse())

		By("rotating once per annotation value")
		cur := string(s.Data[naming.TokenKey])
		Eventually(func() string {
			var got scimv1.ScimConfig
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), &got)).To(Succeed())
			return got.Status.LastRotation
		}).Should(Equal("2026-11-28T05:00:00Z"))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), c)).To(Succeed())
		c.Spec.Organization = "acme-renamed" // a spec change triggers a reconcile
		Expect(k8s.Update(ctx, c)).To(Succeed())
		Eventually(func() int64 {
			var got scimv1.ScimConfig
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), &got)).To(Succeed())
			return got.Status.ObservedGeneration
		}).Should(Equal(c.Generation))
		Expect(string(tokenSecret(ns, "rot").Data[naming.TokenKey])).To(Equal(cur))
	})

	It("drops the previous token when the grace period ends, and at once without one", func() {
		c := newConfig(ns, "short")
		c.Spec.TokenGracePeriod = &metav1.Duration{Duration: 2 * time.Second}
		Expect(k8s.Create(ctx, c)).To(Succeed())
		Eventually(conditionStatus(ns, "short", scimv1.ConditionTokenReady)).Should(Equal("True/TokenGenerated"))
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), c)).To(Succeed())
		c.Annotations = map[string]string{scimv1.AnnotationRotateToken: "1"}
		Expect(k8s.Update(ctx, c)).To(Succeed())
		Eventually(func() []byte { return tokenSecret(ns, "short").Data[naming.PreviousTokenKey] }).ShouldNot(BeEmpty())
		Eventually(func() []byte { return tokenSecret(ns, "short").Data[naming.PreviousTokenKey] }, "20s").Should(BeEmpty())

		z := newConfig(ns, "nograce")
		Expect(k8s.Create(ctx, z)).To(Succeed())
		Eventually(conditionStatus(ns, "nograce", scimv1.ConditionTokenReady)).Should(Equal("True/TokenGenerated"))
		old := string(tokenSecret(ns, "nograce").Data[naming.TokenKey])
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(z), z)).To(Succeed())
		z.Annotations = map[string]string{scimv1.AnnotationRotateToken: "1"}
		Expect(k8s.Update(ctx, z)).To(Succeed())
		Eventually(func() string { return string(tokenSecret(ns, "nograce").Data[naming.TokenKey]) }).ShouldNot(Equal(old))
		Expect(tokenSecret(ns, "nograce").Data).NotTo(HaveKey(naming.PreviousTokenKey))
	})

	It("reports a missing referenced token Secret and recovers when it appears", func() {
		c := newConfig(ns, "ref")
		c.Spec.TokenSecretRef = &scimv1.SecretKeyRef{Name: "idp-token", Key: "bearer"}
		Expect(k8s.Create(ctx, c)).To(Succeed())
		Eventually(conditionStatus(ns, "ref", scimv1.ConditionReady)).Should(Equal("False/SecretNotFound"))
		Expect(condition(ns, "ref", scimv1.ConditionTokenReady)().Message).To(
			Equal(`token Secret "idp-token" not found in namespace "` + ns + `"`))

		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "idp-token"},
			Data: map[string][]byte{"other": []byte("x")}}
		Expect(k8s.Create(ctx, s)).To(Succeed())
		Eventually(conditionStatus(ns, "ref", scimv1.ConditionTokenReady)).Should(Equal("False/SecretKeyMissing"))

		s.Data["bearer"] = []byte("a-token-the-admin-chose")
		Expect(k8s.Update(ctx, s)).To(Succeed())
		Eventually(conditionStatus(ns, "ref", scimv1.ConditionReady)).Should(Equal("True/Ready"))
		var got scimv1.ScimConfig
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), &got)).To(Succeed())
		Expect(got.Status.TokenSecretName).To(Equal("idp-token"))
		raw, _ := json.Marshal(got.Status)
		Expect(strings.Contains(string(raw), "a-token-the-admin-chose")).To(BeFalse())
	})

	It("warns once per annotation value that a referenced token cannot be rotated", func() {
		c := newConfig(ns, "refrot")
		c.Spec.TokenSecretRef = &scimv1.SecretKeyRef{Name: "refrot-token", Key: "bearer"}
		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "refrot-token"},
			Data: map[string][]byte{"bearer": []byte("the-admins-token")}})).To(Succeed())
		Expect(k8s.Create(ctx, c)).To(Succeed())
		Eventually(conditionStatus(ns, "refrot", scimv1.ConditionTokenReady)).Should(Equal("True/SecretFound"))
		warnings := func() []string {
			var evs eventsv1.EventList
			Expect(k8s.List(ctx, &evs, client.InNamespace(ns))).To(Succeed())
			var out []string
			for _, e := range evs.Items {
				if e.Regarding.Name == "refrot" && e.Reason == "CannotRotateExternalToken" {
					Expect(e.Type).To(Equal(corev1.EventTypeWarning))
					Expect(e.Note).NotTo(ContainSubstring("the-admins-token"))
					n := int32(1) // a repeat of the same event is counted in its series
					if e.Series != nil {
						n = max(e.Series.Count, 1)
					}
					for range n {
						out = append(out, e.Note)
					}
				}
			}
			return out
		}
		Expect(warnings()).To(BeEmpty(), "no annotation, no warning")

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), c)).To(Succeed())
		c.Annotations = map[string]string{scimv1.AnnotationRotateToken: "first"}
		Expect(k8s.Update(ctx, c)).To(Succeed())
		Eventually(warnings).Should(HaveLen(1))
		Expect(warnings()[0]).To(ContainSubstring("spec.tokenSecretRef"))

		By("one warning per value: a spec change reconciles again without another")
		update := func(change func(*scimv1.ScimConfig)) { // retried: the controller writes status meanwhile
			Eventually(func() error {
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(c), c); err != nil {
					return err
				}
				change(c)
				return k8s.Update(ctx, c)
			}).Should(Succeed())
		}
		update(func(c *scimv1.ScimConfig) { c.Spec.Organization = "acme-renamed" })
		Eventually(func() int64 {
			var got scimv1.ScimConfig
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), &got)).To(Succeed())
			return got.Status.ObservedGeneration
		}).Should(Equal(c.Generation))
		Consistently(warnings, "2s").Should(HaveLen(1))
		Expect(string(func() []byte {
			var s corev1.Secret
			Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "refrot-token"}, &s)).To(Succeed())
			return s.Data["bearer"]
		}())).To(Equal("the-admins-token"), "the operator never writes a referenced Secret")

		update(func(c *scimv1.ScimConfig) { c.Annotations[scimv1.AnnotationRotateToken] = "second" })
		Eventually(warnings).Should(HaveLen(2))
	})

	It("says when provisioning is disabled", func() {
		c := newConfig(ns, "off")
		c.Spec.Enabled = ptr.To(false)
		Expect(k8s.Create(ctx, c)).To(Succeed())
		Eventually(conditionStatus(ns, "off", scimv1.ConditionPaused)).Should(Equal("True/Disabled"))
		Expect(conditionStatus(ns, "off", scimv1.ConditionReady)()).To(Equal("True/Disabled"))

		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(c), c)).To(Succeed())
		c.Spec.Enabled = ptr.To(true)
		Expect(k8s.Update(ctx, c)).To(Succeed())
		Eventually(condition(ns, "off", scimv1.ConditionPaused)).Should(BeNil())
		Eventually(conditionStatus(ns, "off", scimv1.ConditionReady)).Should(Equal("True/Ready"))
	})

	It("generates a new token when the generated Secret is emptied, and rotates it without panicking", func() {
		Expect(k8s.Create(ctx, newConfig(ns, "empty"))).To(Succeed())
		Eventually(conditionStatus(ns, "empty", scimv1.ConditionTokenReady)).Should(Equal("True/TokenGenerated"))
		s := tokenSecret(ns, "empty")
		old := string(s.Data[naming.TokenKey])
		s.Data = nil
		Expect(k8s.Update(ctx, s)).To(Succeed())
		Eventually(func() string { return string(tokenSecret(ns, "empty").Data[naming.TokenKey]) }).ShouldNot(Or(BeEmpty(), Equal(old)))

		c := &scimv1.ScimConfig{}
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "empty"}, c)).To(Succeed())
		s = tokenSecret(ns, "empty")
		s.Data = nil
		Expect(k8s.Update(ctx, s)).To(Succeed())
		// a merge patch, not an update: the controller writes the config's status meanwhile
		// (the emptied Secret), and an update from the copy read above would conflict
		orig := c.DeepCopy()
		c.Annotations = map[string]string{scimv1.AnnotationRotateToken: "after-empty"}
		Expect(k8s.Patch(ctx, c, client.MergeFrom(orig))).To(Succeed())
		Eventually(func() string { return tokenSecret(ns, "empty").Annotations[naming.AnnotationRotatedFor] }).Should(Equal("after-empty"))
		Expect(tokenSecret(ns, "empty").Data[naming.TokenKey]).NotTo(BeEmpty())
	})

	It("refuses to take over a Secret it does not own", func() {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.TokenSecretName("taken")},
			Data: map[string][]byte{"token": []byte("someone-elses")}}
		Expect(k8s.Create(ctx, s)).To(Succeed())
		Expect(k8s.Create(ctx, newConfig(ns, "taken"))).To(Succeed())
		Eventually(conditionStatus(ns, "taken", scimv1.ConditionTokenReady)).Should(Equal("False/SecretNotOwned"))
		Expect(string(tokenSecret(ns, "taken").Data["token"])).To(Equal("someone-elses"))
	})
})
