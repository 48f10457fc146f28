package e2e

// A control plane of a spec's own, for the fault specs that stop the API server or run
// managers with leader election (faults_apiserver_test.go, faults_leader_test.go): the
// suite's shared control plane cannot be restarted, and its manager runs the controllers
// without leader election.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

// ownPlane is kube-apiserver and etcd on loopback whose data and certificate directories
// are kept, so that stop and start bring back the same cluster at the same address.
type ownPlane struct {
	env           *envtest.Environment
	cluster       *devenv.Cluster
	mgrKubeconfig string
}

func startOwnPlane() *ownPlane {
	dir := GinkgoT().TempDir()
	env := testenv.New()
	env.ControlPlaneStartTimeout = 2 * time.Minute // two shared cores: a start can be slow
	// kube-apiserver may take a minute to drain on SIGTERM; past this it gets SIGKILL, as a
	// crashed API server would (stop below and the cleanup accept that).
	env.ControlPlaneStopTimeout = 5 * time.Second
	// Directories of our own: envtest then neither deletes them on stop nor makes new ones
	// on start (the API server keeps its serving and service-account keys, etcd its data).
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(dir, "etcd")}
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: filepath.Join(dir, "apiserver")}
	for _, d := range []string{env.ControlPlane.Etcd.DataDir, env.ControlPlane.APIServer.CertDir} {
		Expect(os.MkdirAll(d, 0o700)).To(Succeed())
	}
	cfg, err := testenv.Start(env)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(stopped(env.Stop())).To(Succeed()) })
	admin, err := env.ControlPlane.AddUser(envtest.User{Name: "fault-admin", Groups: []string{"system:masters"}}, nil)
	Expect(err).NotTo(HaveOccurred())
	kc, err := admin.KubeConfig()
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, "kubeconfig")
	Expect(os.WriteFile(path, kc, 0o600)).To(Succeed())
	c, err := client.New(cfg, client.Options{Scheme: devenv.Scheme})
	Expect(err).NotTo(HaveOccurred())
	p := &ownPlane{env: env, cluster: &devenv.Cluster{Kubeconfig: path, Config: cfg, Client: c, Local: true}}
	p.mgrKubeconfig, err = devenv.ManagerKubeconfig(ctx, p.cluster, "scim-operator-system", dir)
	Expect(err).NotTo(HaveOccurred())
	return p
}

// stop ends kube-apiserver, then etcd, and waits until the API server's port refuses
// connections; start brings back etcd, then kube-apiserver, on the same ports with the
// same data.
func (p *ownPlane) stop() error {
	if err := stopped(p.env.ControlPlane.APIServer.Stop()); err != nil {
		return err
	}
	if err := stopped(p.env.ControlPlane.Etcd.Stop()); err != nil {
		return err
	}
	addr := p.env.ControlPlane.APIServer.SecureServing.ListenAddr.HostPort()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		c.Close()
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver still accepts connections on %s", addr)
}

// stopped accepts envtest's error for a process that had to be killed after its stop
// timeout: it is stopped all the same.
func stopped(err error) error {
	if err != nil && strings.Contains(err.Error(), "timeout waiting for process") && !strings.Contains(err.Error(), "unable to kill") {
		return nil
	}
	return err
}

func (p *ownPlane) start() error {
	if err := p.env.ControlPlane.Etcd.Start(); err != nil {
		return err
	}
	return p.env.ControlPlane.APIServer.Start()
}

func (p *ownPlane) namespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "faults-"}}
	Expect(p.cluster.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// startManager runs a manager process against this plane, logging into the suite's
// manager log (so the search for tokens covers it) with prefix on each line.
func (p *ownPlane) startManager(prefix string, watch []string, args ...string) (*devenv.Manager, *lineWriter) {
	w := &lineWriter{prefix: prefix, out: logFile, watch: watch}
	m, err := devenv.StartManager(ctx, binPath, p.mgrKubeconfig, w, certs, append(append([]string{}, managerArgs...), args...)...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(m.Stop)
	return m, w
}

// lineWriter copies a process's output line by line with a prefix, and remembers which
// of the watched texts some line contained.
type lineWriter struct {
	prefix string
	out    io.Writer
	watch  []string

	mu   sync.Mutex
	buf  []byte
	seen map[string]bool
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i+1])
		w.buf = w.buf[i+1:]
		for _, t := range w.watch {
			if strings.Contains(line, t) {
				if w.seen == nil {
					w.seen = map[string]bool{}
				}
				w.seen[t] = true
			}
		}
		if _, err := io.WriteString(w.out, w.prefix+line); err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// logged tells whether some line so far contained the watched text s.
func (w *lineWriter) logged(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[s]
}
