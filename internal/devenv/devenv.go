// Package devenv brings up the product locally for the dev loop (hack/devloop) and the
// end-to-end suite (test/e2e): a control plane (the current cluster, or kube-apiserver and
// etcd on loopback), the CRDs, a ScimConfig and the real manager binary as a process.
package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigsyaml "sigs.k8s.io/yaml"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/authz"
	"github.com/scim-operator/scim-operator/internal/testenv"
	"github.com/scim-operator/scim-operator/internal/token"
)

// Scheme knows the core kinds, CRDs and this project's kinds.
var Scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(Scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(Scheme))
	utilruntime.Must(scimv1.AddToScheme(Scheme))
}

// Cluster is a reachable API server with a kubeconfig file for it.
type Cluster struct {
	Kubeconfig string
	Config     *rest.Config
	Client     client.Client
	// Local is true when the control plane was started here (and Stop ends it).
	Local bool
	env   *envtest.Environment
}

// Stop ends a local control plane (kube-apiserver and etcd); it does nothing to a cluster
// that was already there.
func (c *Cluster) Stop() error {
	if c.env == nil {
		return nil
	}
	return c.env.Stop()
}

// Existing returns the cluster of a kubeconfig when it answers within a few seconds.
// kubeconfig is one file or, as KUBECONFIG may be, a list of them (merged as kubectl
// merges them); "" is the default loading rules.
func Existing(kubeconfig string) (*Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if files := kubeconfigList(kubeconfig); len(files) > 1 {
		rules.Precedence = files
	} else if len(files) == 1 {
		rules.ExplicitPath = files[0]
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = 3 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := dc.ServerVersion(); err != nil {
		return nil, fmt.Errorf("cluster not reachable: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	c, err := client.New(cfg, client.Options{Scheme: Scheme})
	if err != nil {
		return nil, err
	}
	path := kubeconfig
	if path == "" {
		path = rules.GetDefaultFilename()
	}
	return &Cluster{Kubeconfig: path, Config: cfg, Client: c}, nil
}

// kubeconfigList is the files of a KUBECONFIG-style list, empty entries dropped.
func kubeconfigList(kubeconfig string) []string {
	var files []string
	for _, f := range filepath.SplitList(kubeconfig) {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

// writeMergedKubeconfig writes the kubeconfig a list of files means (merged as kubectl
// merges them, then reduced to the current context with its credentials inlined) to
// dir/kubeconfig-merged: one file, for what takes only one (the manager's --kubeconfig).
func writeMergedKubeconfig(list, dir string) (string, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: kubeconfigList(list)}
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).RawConfig()
	if err != nil {
		return "", err
	}
	if err := clientcmdapi.MinifyConfig(&raw); err != nil {
		return "", err
	}
	if err := clientcmdapi.FlattenConfig(&raw); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "kubeconfig-merged")
	if err := clientcmd.WriteToFile(raw, path); err != nil {
		return "", err
	}
	return path, nil
}

// StartLocal starts kube-apiserver and etcd on loopback (binaries from hack/controlplane.sh),
// installs the CRDs and writes an admin kubeconfig into dir.
func StartLocal(dir string) (*Cluster, error) { return StartLocalWith(dir, LocalOptions{}) }

// LocalOptions are what StartLocalWith adds to the local control plane.
type LocalOptions struct {
	// AuthorizationWebhook makes kube-apiserver authorize with RBAC, then the manager's
	// authorization webhook (the Webhook grant layout; docs/authorization-webhook.md).
	// LocalAuthorizationWebhook prepares one and the manager's flags that go with it.
	AuthorizationWebhook *testenv.AuthorizationWebhook
	// FeatureGates is kube-apiserver's --feature-gates ("": its defaults), for make
	// bench's -apiserver-feature-gates (DetectCacheInconsistency=false keeps the API
	// server's periodic consistency checks of its watch cache out of a measurement).
	FeatureGates string
}

// LocalAuthorizationWebhook picks a loopback port for the manager's authorization webhook
// (before the API server starts, which must know it) and returns the API server's side
// (for LocalOptions; its files go to dir/apiserver-authz) and the manager's flags (for
// StartManager): the webhook listens there with the certificate of certs, whose CA the API
// server trusts.
func LocalAuthorizationWebhook(dir string, certs *TLS) (*testenv.AuthorizationWebhook, []string, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, nil, err
	}
	w := &testenv.AuthorizationWebhook{
		URL:    "https://" + addr + authz.Path,
		CAFile: certs.CAFile,
		Dir:    filepath.Join(dir, "apiserver-authz"),
	}
	return w, []string{"--authorization-webhook-bind-address=" + addr, "--authorization-webhook-cert-dir=" + certs.CertDir}, nil
}

// StartLocalWith is StartLocal with options.
func StartLocalWith(dir string, o LocalOptions) (*Cluster, error) {
	env := testenv.New()
	if o.FeatureGates != "" {
		env.ControlPlane.GetAPIServer().Configure().Set("feature-gates", o.FeatureGates)
	}
	if o.AuthorizationWebhook != nil {
		if err := testenv.UseAuthorizationWebhook(env, *o.AuthorizationWebhook); err != nil {
			return nil, err
		}
	}
	cfg, err := testenv.Start(env)
	if err != nil {
		return nil, fmt.Errorf("start the local control plane (run hack/controlplane.sh to build it): %w", err)
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "dev-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		_ = env.Stop()
		return nil, err
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		_ = env.Stop()
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: Scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Cluster{Kubeconfig: path, Config: cfg, Client: c, Local: true, env: env}, nil
}

// InstallCRDs applies config/crd/bases to the cluster (server-side apply) and waits until
// they are established.
func InstallCRDs(ctx context.Context, c client.Client) error {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no CRDs found in config/crd/bases: %v", err)
	}
	for _, f := range files {
		crd, err := ReadCRD(f)
		if err != nil {
			return err
		}
		if err := ApplyCRD(ctx, c, crd); err != nil {
			return err
		}
	}
	return nil
}

// ReadCRD reads one CustomResourceDefinition from a YAML file.
func ReadCRD(path string) (*apiextensionsv1.CustomResourceDefinition, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096).Decode(crd); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return crd, nil
}

// ApplyCRD applies crd (server-side apply) and waits until it is established.
func ApplyCRD(ctx context.Context, c client.Client, crd *apiextensionsv1.CustomResourceDefinition) error {
	crd.APIVersion, crd.Kind = "apiextensions.k8s.io/v1", "CustomResourceDefinition"
	if err := c.Patch(ctx, crd, client.Apply, client.FieldOwner("scim-devloop"), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s: %w", crd.Name, err)
	}
	if err := poll(ctx, 30*time.Second, func() (bool, error) {
		var got apiextensionsv1.CustomResourceDefinition
		if err := c.Get(ctx, types.NamespacedName{Name: crd.Name}, &got); err != nil {
			return false, nil
		}
		for _, cond := range got.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		return fmt.Errorf("CRD %s not established: %w", crd.Name, err)
	}
	return nil
}

// ApplyYAML creates or updates (server-side apply) every object of a YAML file in ns, as
// InNamespace places them.
func ApplyYAML(ctx context.Context, c client.Client, path, ns string) error {
	objs, err := InNamespace(c, path, ns)
	if err != nil {
		return err
	}
	for _, u := range objs {
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("scim-devloop"), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// WriteInNamespace writes the objects of the YAML file src, as InNamespace places them in
// ns, to dst: a file `kubectl apply -n ns -f dst` applies as the user would after editing
// the sample for that namespace.
func WriteInNamespace(c client.Client, src, ns, dst string) error {
	objs, err := InNamespace(c, src, ns)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	for _, u := range objs {
		b, err := sigsyaml.Marshal(u.Object)
		if err != nil {
			return err
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return os.WriteFile(dst, out.Bytes(), 0o600)
}

// InNamespace decodes a YAML file into its objects as they go into namespace ns, the way
// kustomize's namespace field places them: see placeInNamespace.
func InNamespace(c client.Client, path, ns string) ([]*unstructured.Unstructured, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return placeInNamespace(raw, ns, c.IsObjectNamespaced)
}

// placeInNamespace decodes raw and places its objects in ns: a namespaced object without a
// namespace goes to ns, and a binding's ServiceAccount subject that names a ServiceAccount
// of the same file follows it into ns (the sample's tenant ServiceAccount and the
// ClusterRoleBinding that lets it bind the sample role). A cluster-scoped binding whose
// subject so moved gets "-<ns>" appended to its name, so that the file applied in two
// namespaces keeps a binding for each instead of the second replacing the first.
func placeInNamespace(raw []byte, ns string, namespaced func(runtime.Object) (bool, error)) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var objs []*unstructured.Unstructured
	accounts := map[string]bool{} // ServiceAccounts of the file that go to ns
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		isNamespaced, err := namespaced(u)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		if isNamespaced && u.GetNamespace() == "" {
			u.SetNamespace(ns)
			if u.GetKind() == "ServiceAccount" && u.GetAPIVersion() == "v1" {
				accounts[u.GetName()] = true
			}
		}
		objs = append(objs, u)
	}
	for _, u := range objs {
		if u.GroupVersionKind().Group != "rbac.authorization.k8s.io" ||
			(u.GetKind() != "ClusterRoleBinding" && u.GetKind() != "RoleBinding") {
			continue
		}
		subjects, _, err := unstructured.NestedSlice(u.Object, "subjects")
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
		moved := false
		for i, s := range subjects {
			m, ok := s.(map[string]any)
			if !ok || m["kind"] != "ServiceAccount" || !accounts[fmt.Sprint(m["name"])] || m["namespace"] == ns {
				continue
			}
			m["namespace"] = ns
			subjects[i], moved = m, true
		}
		if !moved {
			continue
		}
		if err := unstructured.SetNestedSlice(u.Object, subjects, "subjects"); err != nil {
			return nil, err
		}
		if u.GetKind() == "ClusterRoleBinding" {
			u.SetName(u.GetName() + "-" + ns)
		}
	}
	return objs, nil
}

// ManagerServiceAccount is the ServiceAccount ManagerKubeconfig authenticates as: whatever
// else a caller grants the manager (the leader election Role of a spec running replicas)
// must name it.
const ManagerServiceAccount = "scim-e2e-manager"

// ManagerKubeconfig gives the manager exactly the install's rights: it creates the
// ServiceAccount ManagerServiceAccount (scim-e2e-manager) in namespace ns (created when missing), binds to it the
// ClusterRole of config/rbac/role.yaml (generated from the code's RBAC markers) under the
// name scim-e2e-manager-role, and writes to dir a kubeconfig that authenticates as it with
// a bound token. It returns the kubeconfig's path. The names are not the install's
// (scim-operator-manager-role, scim-operator-manager-rolebinding, ...), so that
// dist/install.yaml applied to the same cluster (test/e2e, install_test.go) neither
// collides with these objects nor changes the rights of a manager using them.
func ManagerKubeconfig(ctx context.Context, cluster *Cluster, ns, dir string) (string, error) {
	c := cluster.Client
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		return "", err
	}
	var role rbacv1.ClusterRole
	if err := sigsyaml.UnmarshalStrict(raw, &role); err != nil {
		return "", fmt.Errorf("config/rbac/role.yaml: %w", err)
	}
	const name = ManagerServiceAccount
	role.ObjectMeta = metav1.ObjectMeta{Name: name + "-role"}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-rolebinding"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	for _, o := range []client.Object{nsObj, &role, sa, crb} {
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return ServiceAccountKubeconfig(ctx, cluster, ns, name, filepath.Join(dir, "manager.kubeconfig"))
}

// ServiceAccountKubeconfig writes to path a kubeconfig that authenticates as the
// ServiceAccount ns/name with a bound token (TokenRequest, valid for a day): the identity a
// pod running as that ServiceAccount has, with exactly the rights RBAC gives it. It returns
// path.
func ServiceAccountKubeconfig(ctx context.Context, cluster *Cluster, ns, name, path string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(24 * 3600))}}
	if err := cluster.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("a token for ServiceAccount %s/%s: %w", ns, name, err)
	}
	cfg := cluster.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData,
		CertificateAuthority: cfg.CAFile, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name, Namespace: ns}
	kc.CurrentContext = name
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return "", err
	}
	return path, nil
}

// BuildManager compiles cmd/manager into out, with the same settings as the tests so
// that the build cache is shared.
func BuildManager(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/manager")
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/manager: %w\n%s", err, b)
	}
	return nil
}

// Manager is the manager binary running as a child process.
type Manager struct {
	cmd *exec.Cmd
	// SCIMAddr is host:port of the SCIM listener; ProbeAddr of /healthz and /readyz.
	SCIMAddr, ProbeAddr string
	// SCIMURL is the scheme and address of the SCIM listener: "https://127.0.0.1:port",
	// or "http://..." when it was started without TLS.
	SCIMURL string
	done    chan error
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartManager runs the manager binary against a kubeconfig with the SCIM listener and
// probes on loopback, and waits until it is ready. With certs it serves SCIM over HTTPS
// from certs.CertDir, as an installed manager does; with nil it is started with
// --scim-insecure-http, for a caller that is not about TLS.
func StartManager(ctx context.Context, bin, kubeconfig string, logs io.Writer, certs *TLS, extraArgs ...string) (*Manager, error) {
	scim, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	probe, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--scim-bind-address=" + scim,
		"--health-probe-bind-address=" + probe,
		"--metrics-bind-address=0",
	}
	scimURL := "https://" + scim
	if certs != nil {
		args = append(args, "--scim-cert-dir="+certs.CertDir)
	} else {
		args = append(args, "--scim-insecure-http")
		scimURL = "http://" + scim
	}
	args = append(args, extraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logs, logs
	// Its own process group, so that an interrupt of the dev loop reaches it only through
	// Stop, after which nothing it started is left running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &Manager{cmd: cmd, SCIMAddr: scim, ProbeAddr: probe, SCIMURL: scimURL, done: make(chan error, 1)}
	go func() { m.done <- cmd.Wait() }()
	err = poll(ctx, 60*time.Second, func() (bool, error) {
		select {
		case err := <-m.done:
			m.done <- err
			return false, fmt.Errorf("manager exited: %v", err)
		default:
		}
		resp, err := http.Get("http://" + probe + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		_ = m.Stop()
		return nil, err
	}
	return m, nil
}

// Done is closed-ish: it yields the process's exit error when it ends.
func (m *Manager) Done() <-chan error { return m.done }

// PID is the manager's process id.
func (m *Manager) PID() int { return m.cmd.Process.Pid }

// Kill ends the manager at once (SIGKILL), as a crash or an OOM kill would.
func (m *Manager) Kill() error {
	if m.cmd.ProcessState != nil {
		return nil
	}
	_ = m.cmd.Process.Kill()
	return ignoreSignalExit(<-m.done)
}

// Stop ends the manager (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (m *Manager) Stop() error {
	if m.cmd.ProcessState != nil {
		return nil
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		return ignoreSignalExit(err)
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		return ignoreSignalExit(<-m.done)
	}
}

func ignoreSignalExit(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil
	}
	return err
}

// WaitReady waits until a ScimConfig reports Ready=True and returns it.
func WaitReady(ctx context.Context, c client.Client, key types.NamespacedName, timeout time.Duration) (*scimv1.ScimConfig, error) {
	cfg := &scimv1.ScimConfig{}
	var last string
	err := poll(ctx, timeout, func() (bool, error) {
		if err := c.Get(ctx, key, cfg); err != nil {
			last = err.Error()
			return false, nil
		}
		cond := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionReady)
		if cond == nil {
			last = "no Ready condition yet"
			return false, nil
		}
		last = cond.Reason + ": " + cond.Message
		return cond.Status == "True" && cond.ObservedGeneration == cfg.Generation, nil
	})
	if err != nil {
		return nil, fmt.Errorf("ScimConfig %s not Ready (%s): %w", key, last, err)
	}
	return cfg, nil
}

// Token reads the bearer token a ScimConfig accepts.
func Token(ctx context.Context, c client.Client, cfg *scimv1.ScimConfig) (string, error) {
	ref, key := token.SecretRef(cfg)
	var s corev1.Secret
	if err := c.Get(ctx, ref, &s); err != nil {
		return "", err
	}
	if len(s.Data[key]) == 0 {
		return "", fmt.Errorf("secret %s has no key %q", ref, key)
	}
	return string(s.Data[key]), nil
}

// WriteEnvFile writes KEY=VALUE lines (shell-quoted) with mode 0600.
func WriteEnvFile(path string, kv [][2]string) error {
	var b bytes.Buffer
	b.WriteString("# Written by `make run` (hack/devloop). Source it: . " + path + "\n")
	for _, p := range kv {
		fmt.Fprintf(&b, "export %s=%s\n", p[0], strconv.Quote(p[1]))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

func poll(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
