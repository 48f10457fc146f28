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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/backend/registry"
	"github.com/scim-operator/scim-operator/internal/index"
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

	testEnv = testenv.New()
	var err error
	cfg, err = testenv.Start(testEnv)
	Expect(err).NotTo(HaveOccurred(), "start envtest: run hack/controlplane.sh (make test does) to provide kube-apiserver and etcd")
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		Client:  client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	Expect(err).NotTo(HaveOccurred())
	mgrClient = mgr.GetClient()
	// the registry as cmd/manager builds it (NewBackends), Docker Hub included, with the
	// connection a kubernetes backend impersonates its config's ServiceAccount through
	// (no default ServiceAccount: configs without one act as the manager, here admin)
	provider.real = registry.New(mgr.GetClient(), mgr.GetAPIReader(), registry.Options{
		DockerHub:  registry.DockerHub(ctrl.Log.WithName("dockerhub")),
		RestConfig: mgr.GetConfig(),
	})
	Expect(index.Setup(ctx, mgr.GetFieldIndexer())).To(Succeed())
	Expect(setupReconcilers(mgr)).To(Succeed())
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

// setupReconcilers wires every reconciler under test the way cmd/manager does.
func setupReconcilers(mgr ctrl.Manager) error {
	// recount members and re-check backends often, so tests see counts promptly
	return controllers.SetupWithManager(mgr, controllers.Options{Backends: provider, StatusInterval: 2 * time.Second})
}

// newNamespace creates a fresh namespace for one test.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	Expect(k8s.Create(ctx, ns)).To(Succeed())
	return ns.Name
}
