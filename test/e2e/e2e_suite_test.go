// Package e2e drives the real manager binary the way its users do: a local control plane,
// the manager as a process, real HTTP to the SCIM endpoint and the built kubectl.
package e2e

import (
	"context"
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
	workDir string
	binPath string
	logFile *os.File
)

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

	By("recording every status, Event and Secret from now on (secrets_test.go)")
	rec = startRecorder()

	By("running the manager as a process")
	logFile, err = os.Create(filepath.Join(workDir, "manager.log"))
	Expect(err).NotTo(HaveOccurred())
	mgr, err = devenv.StartManager(ctx, binPath, cluster.Kubeconfig, logFile, managerArgs...)
	Expect(err).NotTo(HaveOccurred())
})

// managerArgs: the manager logs everything it can (V(10)), so that the search for
// tokens in its log reads every line it could ever write.
var managerArgs = []string{"--zap-log-level=10"}

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
