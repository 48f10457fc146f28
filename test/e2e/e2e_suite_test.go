// Package e2e drives the real manager binary the way its users do: a local control plane,
// the manager as a process, real HTTPS to the SCIM endpoint (a certificate signed by a CA
// of the suite's own, which the clients trust, as with curl --cacert) and the built kubectl.
package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

var (
	ctx     context.Context
	cancel  context.CancelFunc
	cluster *devenv.Cluster
	mgr     *devenv.Manager
	// mgrKubeconfig authenticates the manager with exactly config/rbac's ClusterRole, as
	// the install does: the e2e suite proves that role is enough.
	mgrKubeconfig string
	workDir       string
	binPath       string
	logFile       *os.File
	// certs is the manager's serving certificate directory and its CA; httpc trusts
	// that CA and nothing else.
	certs *devenv.TLS
	httpc *http.Client
)

// trustedProxy is the loopback address the manager believes X-Forwarded-* headers from
// (--scim-trusted-proxies); the suite's clients connect from 127.0.0.1, which it does not.
const trustedProxy = "127.0.0.2"

// managerArgs are the flags every start of the suite's manager gets besides the addresses
// and the certificate directory.
// The manager also logs everything it can (V(10)), so that the search for tokens in
// secrets_test.go covers every line it could ever write.
// It runs with the install's lockdown flag (config/manager/manager.yaml).
var managerArgs = []string{"--scim-trusted-proxies=" + trustedProxy + "/32", "--zap-log-level=10",
	"--default-service-account=scim-provisioner"}

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "e2e suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	logf.SetLogger(GinkgoLogr) // the suite's own informers (secrets_test.go) log through it
	workDir = GinkgoT().TempDir()
	pluginBin = buildPlugin(filepath.Join(workDir, "plugin-bin"))
	var err error
	By("starting kube-apiserver and etcd on loopback")
	cluster, err = devenv.StartLocal(workDir)
	Expect(err).NotTo(HaveOccurred())

	By("building the manager binary")
	binPath = filepath.Join(workDir, "manager")
	Expect(devenv.BuildManager(ctx, binPath)).To(Succeed())

	By("making a CA and a serving certificate for 127.0.0.1, as make run does")
	certs, err = devenv.LocalTLS(workDir)
	Expect(err).NotTo(HaveOccurred())
	httpc = certs.Client()

	By("giving the manager the install's ClusterRole and nothing else")
	mgrKubeconfig, err = devenv.ManagerKubeconfig(ctx, cluster, "scim-operator-system", workDir)
	Expect(err).NotTo(HaveOccurred())

	By("recording every status, Event and Secret from now on (secrets_test.go)")
	rec = startRecorder()

	By("running the manager as a process, serving SCIM over HTTPS")
	logFile, err = os.Create(filepath.Join(workDir, "manager.log"))
	Expect(err).NotTo(HaveOccurred())
	mgr, err = devenv.StartManager(ctx, binPath, mgrKubeconfig, logFile, certs, managerArgs...)
	Expect(err).NotTo(HaveOccurred())
})

// anySpecFailed makes AfterSuite print the manager's log when a spec failed.
var anySpecFailed bool

var _ = ReportAfterEach(func(r SpecReport) {
	if r.Failed() {
		anySpecFailed = true
	}
})

var _ = AfterSuite(func() {
	// The control plane stops however the checks below end.
	defer func() {
		if pluginBin != nil {
			_, _ = pluginBin() // leave no build running
		}
		if rec != nil {
			rec.stop()
		}
		if cluster != nil {
			Expect(cluster.Stop()).To(Succeed())
		}
		cancel()
	}()
	if mgr != nil {
		Expect(mgr.Stop()).To(Succeed())
	}
	if logFile != nil {
		_ = logFile.Close()
		// (CurrentSpecReport() here would be the AfterSuite node's own report, never failed.)
		if anySpecFailed || os.Getenv("E2E_SHOW_LOGS") != "" {
			b, err := os.ReadFile(logFile.Name())
			Expect(err).NotTo(HaveOccurred())
			GinkgoWriter.Printf("manager log:\n%s\n", b)
		}
		if rec != nil && cluster != nil {
			checkNoSecretsLeaked(logFile.Name())
		}
	}
})

// kubectl runs the kubectl built with the control plane (it matches the API server).
func kubectl(args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.AssetsDir(), "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustKubectl(args ...string) string {
	out, err := kubectl(args...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "kubectl %s:\n%s", strings.Join(args, " "), out)
	return out
}

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}
	Expect(cluster.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

const readyTimeout = 60 * time.Second

// sampleIn is config/samples/scim_v1alpha1_scimconfig.yaml edited for namespace ns, as its
// comment asks: the ClusterRoleBinding that lets the sample's ServiceAccount bind the
// sample role names the ServiceAccount of ns (a binding per namespace).
func sampleIn(ns string) string {
	dst := filepath.Join(GinkgoT().TempDir(), "sample.yaml")
	src := filepath.Join(testenv.RepoRoot(), "config", "samples", "scim_v1alpha1_scimconfig.yaml")
	ExpectWithOffset(1, devenv.WriteInNamespace(cluster.Client, src, ns, dst)).To(Succeed())
	return dst
}
