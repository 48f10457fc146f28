package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/authz"
	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

var (
	testEnv   *envtest.Environment
	cfg       *rest.Config
	k8s       client.Client // uncached, for assertions
	scheme    = runtime.NewScheme()
	ctx       context.Context
	cancel    context.CancelFunc
	mgrClient client.Client
	// provider gives the membership controllers their backends: an in-memory one for
	// configs a test registers, the real registry otherwise.
	provider = &testProvider{}
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(scimv1.AddToScheme(scheme))
	ctx, cancel = context.WithCancel(context.Background())

	// the API server authorizes with RBAC, then the manager's authorization webhook (the
	// Webhook grant layout), as docs/authorization-webhook.md installs it
	certs, err := devenv.LocalTLS(GinkgoT().TempDir())
	Expect(err).NotTo(HaveOccurred())
	webhookAddr, err := devenv.FreeAddr()
	Expect(err).NotTo(HaveOccurred())
	testEnv = testenv.New()
	Expect(testenv.UseAuthorizationWebhook(testEnv, testenv.AuthorizationWebhook{
		URL: "https://" + webhookAddr + authz.Path, CAFile: certs.CAFile, Dir: GinkgoT().TempDir()})).To(Succeed())
	cfg, err = testenv.Start(testEnv)
	Expect(err).NotTo(HaveOccurred(), "start envtest: run hack/controlplane.sh (make test does) to provide kube-apiserver and etcd")
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// the manager as cmd/manager builds it (manager.New: cache transforms, indexes, SCIM
	// server, controllers), with the test's backend Provider: an in-memory backend for
	// configs a test registers, the real registry (built as NewBackends builds it) for
	// every other; status recounts every 2 s so that tests see counts promptly
	opts := manager.Options{
		MetricsAddr: "0", ProbeAddr: "0", ScimAddr: "127.0.0.1:0", ScimInsecureHTTP: true,
		Backends: provider, StatusInterval: 2 * time.Second,
		AuthorizationWebhookAddr: webhookAddr, AuthorizationWebhookCertDir: certs.CertDir,
	}
	mgr, err := manager.New(cfg, opts)
	Expect(err).NotTo(HaveOccurred())
	mgrClient = mgr.GetClient()
	opts.Backends = nil
	provider.real = manager.NewBackends(mgr, opts)
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	cancel()
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})

// newNamespace creates a fresh namespace for one test.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// activeIn counts the OrgMembers of namespace ns in phase Active.
func activeIn(ns string) int {
	var l scimv1.OrgMemberList
	Expect(k8s.List(ctx, &l, client.InNamespace(ns))).To(Succeed())
	active := 0
	for _, m := range l.Items {
		if m.Status.Phase == scimv1.PhaseActive {
			active++
		}
	}
	return active
}
