// Command devloop is `make run`: it brings the product up locally and prints what an IdP
// or curl needs.
//
//  1. the current kubeconfig's cluster when one answers, else kube-apiserver and etcd on
//     loopback (hack/controlplane.sh builds them, or finds them cached, only then);
//  2. the CRDs;
//  3. the sample ScimConfig (config/samples, kubernetes backend) in namespace "default";
//  4. a local CA (.dev/scim-ca.crt, kept across runs) and a serving certificate for
//     127.0.0.1, ::1 and localhost signed by it (.dev/scim-tls);
//  5. the manager binary, as a child process, serving SCIM over HTTPS with that
//     certificate, as an installed manager does;
//  6. the SCIM base URL and token, printed and written to .dev/env, with a curl command
//     that trusts the CA.
//
// With --dockerhub (`make run DOCKERHUB=1`) it also starts the project's Docker Hub
// emulator (test/dockerhub) on 127.0.0.1 before the manager, and applies the second sample
// (config/samples/scim_v1alpha1_scimconfig_dockerhub.yaml, its access-token Secret
// created) with spec.backend.dockerhub.baseURL pointing at the emulator; it prints that
// config's SCIM URL and token and the one command that shows the emulator's organization,
// and adds HUB_SCIM_URL, HUB_SCIM_TOKEN, HUB_URL, HUB_TOKEN and HUB_ORG to .dev/env
// (docs/try-dockerhub.md).
//
// With --authorization-webhook (`make run RUN_ARGS=--authorization-webhook`) the control
// plane is always a local one (the API server's authorization configuration is set when it
// starts), kube-apiserver authorizes with RBAC and then the manager's authorization
// webhook, and the manager serves it: ScimConfigs with grantLayout: Webhook then grant
// access locally (docs/authorization-webhook.md).
//
// Ctrl-C stops the manager, the emulator and the local control plane: nothing it started
// keeps running.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

func main() {
	local := flag.Bool("local", false, "always start a local control plane, even when a cluster is reachable")
	ns := flag.String("namespace", "default", "namespace of the sample ScimConfig")
	dir := flag.String("dir", filepath.Join(testenv.RepoRoot(), ".dev"), "where the env file, kubeconfig and logs go")
	hub := flag.Bool("dockerhub", false, "also start the Docker Hub emulator on 127.0.0.1 and a second sample ScimConfig (type dockerhub) pointing at it (make run DOCKERHUB=1)")
	authzWebhook := flag.Bool("authorization-webhook", false, "start a local control plane whose API server asks the manager's authorization webhook after RBAC (grantLayout: Webhook; implies --local)")
	bin := flag.String("manager-bin", filepath.Join(testenv.RepoRoot(), "bin", "manager"), "where the manager binary is built")
	flag.Parse()
	if err := run(options{forceLocal: *local, ns: *ns, dir: *dir, hub: *hub, bin: *bin, authzWebhook: *authzWebhook}); err != nil {
		fmt.Fprintln(os.Stderr, "devloop:", err)
		os.Exit(1)
	}
}

type options struct {
	forceLocal   bool
	ns, dir      string
	hub          bool
	bin          string
	authzWebhook bool
}

func run(o options) error {
	ns, dir := o.ns, o.dir
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	say := func(format string, a ...any) { fmt.Printf("==> "+format+"\n", a...) }

	// The kubeconfig's cluster is tried first: the control plane is built (about 10 minutes
	// the first time) only when no cluster answers.
	// the certificate comes first: the API server must know the webhook's CA when it starts
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	certs, err := devenv.LocalTLS(dir)
	if err != nil {
		return err
	}
	connector := devenv.Connector{
		ForceLocal: o.forceLocal,
		Kubeconfig: os.Getenv("KUBECONFIG"),
		Dir:        dir,
		Say:        say,
	}
	managerArgs := []string{"--default-service-account=scim-provisioner"}
	if o.authzWebhook {
		webhook, args, err := devenv.LocalAuthorizationWebhook(dir, certs)
		if err != nil {
			return err
		}
		say("--authorization-webhook: a local control plane that asks the manager's webhook (%s) after RBAC", webhook.URL)
		connector.ForceLocal = true
		connector.StartLocal = func(dir string) (*devenv.Cluster, error) {
			return devenv.StartLocalWith(dir, devenv.LocalOptions{AuthorizationWebhook: webhook})
		}
		managerArgs = append(managerArgs, args...)
	}
	cluster, err := connector.Connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cluster.Local {
			say("stopping the local control plane")
		}
		_ = cluster.Stop()
	}()

	say("installing the CRDs")
	if err := devenv.InstallCRDs(ctx, cluster.Client); err != nil {
		return err
	}
	say("applying config/samples/scim_v1alpha1_scimconfig.yaml in namespace %s", ns)
	sample := filepath.Join(testenv.RepoRoot(), "config", "samples", "scim_v1alpha1_scimconfig.yaml")
	if err := devenv.ApplyYAML(ctx, cluster.Client, sample, ns); err != nil {
		return err
	}

	var hub *devenv.Hub
	if o.hub {
		say("starting the Docker Hub emulator on 127.0.0.1; applying %s in namespace %s, pointed at it", devenv.HubSample, ns)
		if hub, err = devenv.StartHub(ctx, cluster.Client, ns); err != nil {
			return err
		}
		defer func() {
			say("stopping the Docker Hub emulator (%s)", hub.URL)
			if !cluster.Local {
				say("ScimConfig %s stays in your cluster, pointing at the stopped emulator (docs/try-dockerhub.md)", hub.Config)
			}
			hub.Stop()
		}()
	}

	say("building and starting the manager (logs: %s)", filepath.Join(dir, "manager.log"))
	bin := o.bin
	if err := devenv.BuildManager(ctx, bin); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logs, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		return err
	}
	defer logs.Close()
	// the install's lockdown: a ScimConfig that names no ServiceAccount writes its
	// bindings as scim-provisioner of its namespace, never with this admin kubeconfig
	mgr, err := devenv.StartManager(ctx, bin, cluster.Kubeconfig, logs, certs, managerArgs...)
	if err != nil {
		return err
	}
	defer func() {
		say("stopping the manager (pid %d)", mgr.PID())
		_ = mgr.Stop()
	}()

	cfg, err := devenv.WaitReady(ctx, cluster.Client, types.NamespacedName{Namespace: ns, Name: "example"}, 60*time.Second)
	if err != nil {
		return err
	}
	tok, err := devenv.Token(ctx, cluster.Client, cfg)
	if err != nil {
		return err
	}
	url := mgr.SCIMURL + cfg.Status.BasePath
	env := [][2]string{
		{"KUBECONFIG", cluster.Kubeconfig}, {"SCIM_HOST", mgr.SCIMURL}, {"SCIM_URL", url}, {"SCIM_TOKEN", tok},
		{"SCIM_CA_CERT", certs.CAFile},
	}
	var hubURL, hubTok string
	if hub != nil {
		// Ready means the manager exchanged the access token with the emulator (BackendReady).
		hubCfg, err := devenv.WaitReady(ctx, cluster.Client, hub.Config, 60*time.Second)
		if err != nil {
			return err
		}
		if hubTok, err = devenv.Token(ctx, cluster.Client, hubCfg); err != nil {
			return err
		}
		hubURL = mgr.SCIMURL + hubCfg.Status.BasePath
		env = append(env, [][2]string{{"HUB_SCIM_URL", hubURL}, {"HUB_SCIM_TOKEN", hubTok},
			{"HUB_URL", hub.URL}, {"HUB_TOKEN", hub.AccessToken}, {"HUB_ORG", hub.Org}}...)
	}
	envFile := filepath.Join(dir, "env")
	if err := devenv.WriteEnvFile(envFile, env); err != nil {
		return err
	}
	fmt.Printf(`
scim-operator is running, serving SCIM over HTTPS.

  SCIM base URL:   %s
  Bearer token:    %s
  CA certificate:  %s (made by make run; the serving certificate is for 127.0.0.1 and localhost)

  Try:    curl --cacert %s -H "Authorization: Bearer %s" "%s/Users"
  kubectl: KUBECONFIG=%s kubectl get scim

  Written to %s (KUBECONFIG, SCIM_HOST, SCIM_URL, SCIM_TOKEN, SCIM_CA_CERT): . %s
          curl --cacert "$SCIM_CA_CERT" -H "Authorization: Bearer $SCIM_TOKEN" "$SCIM_URL/Users"
`, url, tok, rel(certs.CAFile), rel(certs.CAFile), tok, url, cluster.Kubeconfig, rel(envFile), rel(envFile))
	if hub != nil {
		fmt.Printf(`
The Docker Hub emulator (organization %s) is at %s, on loopback only,
and ScimConfig %s (%s, baseURL set to the emulator) provisions into it.

  SCIM base URL:   %s
  Bearer token:    %s
  Organization:    %s
                   (members, pending invitations, teams)

  Also in %s: HUB_SCIM_URL, HUB_SCIM_TOKEN, HUB_URL, HUB_TOKEN (the emulator's access token), HUB_ORG
          %s
  Walk-through (invite, accept, team, removal): docs/try-dockerhub.md
`, hub.Org, hub.URL, hub.Config, devenv.HubSample, hubURL, hubTok, hub.InspectCommand(), rel(envFile), devenv.HubInspectCommand)
	} else {
		fmt.Println("\n  Docker Hub too, against a local emulator: make run DOCKERHUB=1 (docs/try-dockerhub.md)")
	}
	fmt.Println("  Ctrl-C stops everything this command started.")

	select {
	case <-ctx.Done():
		fmt.Println()
	case err := <-mgr.Done():
		return fmt.Errorf("the manager exited: %v (see %s)", err, logs.Name())
	}
	return nil
}

// rel is path relative to the working directory when it lies below it (".dev/env" for a
// `make run` at the repository root), so that the printed commands work as printed and
// stay short; otherwise path itself.
func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	r, err := filepath.Rel(wd, path)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return path
	}
	return r
}
