package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigsyaml "sigs.k8s.io/yaml"
)

// WebhookAuthorizerName is the name of the scim-operator authorizer in the API server's
// AuthorizationConfiguration (it appears in the API server's authorization metrics).
const WebhookAuthorizerName = "scim-operator"

// AuthorizationWebhook is the manager's authorization webhook as an API server started here
// calls it, after RBAC (docs/authorization-webhook.md).
type AuthorizationWebhook struct {
	// URL is the webhook's address: "https://127.0.0.1:<port>/authorize" for a manager
	// started with --authorization-webhook-bind-address=127.0.0.1:<port>.
	URL string
	// CAFile is the PEM certificate of the CA that signed the webhook's serving certificate.
	CAFile string
	// Dir is where the AuthorizationConfiguration and the webhook's kubeconfig are written.
	Dir string
	// Node puts the Node authorizer first (a cluster with kubelets; envtest has none).
	Node bool
}

// AuthorizationConfig is the AuthorizationConfiguration the API server runs the webhook
// with (config/samples/authorization-config.yaml is the same for a real cluster): RBAC
// first, then the webhook, which is called only for users outside "system:", never caches
// an answer (a cached allow would outlive a deprovisioning, a cached "no" would delay a
// grant) and, when it cannot be reached, gives no opinion (the webhook layout's grants
// then fail closed; RBAC's stand).
func AuthorizationConfig(kubeconfigFile string, node bool) *apiserverv1.AuthorizationConfiguration {
	var authorizers []apiserverv1.AuthorizerConfiguration
	if node {
		authorizers = append(authorizers, apiserverv1.AuthorizerConfiguration{Type: "Node", Name: "node"})
	}
	authorizers = append(authorizers,
		apiserverv1.AuthorizerConfiguration{Type: "RBAC", Name: "rbac"},
		apiserverv1.AuthorizerConfiguration{Type: "Webhook", Name: WebhookAuthorizerName, Webhook: &apiserverv1.WebhookConfiguration{
			// the TTLs are required even when nothing is cached
			AuthorizedTTL:                            metav1.Duration{Duration: time.Second},
			CacheAuthorizedRequests:                  ptr.To(false),
			UnauthorizedTTL:                          metav1.Duration{Duration: time.Second},
			CacheUnauthorizedRequests:                ptr.To(false),
			Timeout:                                  metav1.Duration{Duration: 3 * time.Second},
			SubjectAccessReviewVersion:               "v1",
			MatchConditionSubjectAccessReviewVersion: "v1",
			FailurePolicy:                            "NoOpinion",
			ConnectionInfo: apiserverv1.WebhookConnectionInfo{
				Type:           "KubeConfigFile",
				KubeConfigFile: ptr.To(kubeconfigFile),
			},
			MatchConditions: []apiserverv1.WebhookMatchCondition{
				{Expression: "!request.user.startsWith('system:')"},
			},
		}},
	)
	c := &apiserverv1.AuthorizationConfiguration{Authorizers: authorizers}
	c.APIVersion, c.Kind = apiserverv1.SchemeGroupVersion.String(), "AuthorizationConfiguration"
	return c
}

// WebhookKubeconfig is the kubeconfig through which the API server reaches the webhook:
// its URL, and the CA to verify it with.
func WebhookKubeconfig(url, caFile string) *clientcmdapi.Config {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["scim-operator"] = &clientcmdapi.Cluster{Server: url, CertificateAuthority: caFile}
	kc.AuthInfos["kube-apiserver"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["scim-operator"] = &clientcmdapi.Context{Cluster: "scim-operator", AuthInfo: "kube-apiserver"}
	kc.CurrentContext = "scim-operator"
	return kc
}

// UseAuthorizationWebhook makes env's API server authorize with AuthorizationConfig calling
// w: it writes the configuration and the webhook's kubeconfig into w.Dir and passes
// --authorization-config instead of envtest's default --authorization-mode (the two
// exclude each other). Call it before Start.
func UseAuthorizationWebhook(env *envtest.Environment, w AuthorizationWebhook) error {
	if err := os.MkdirAll(w.Dir, 0o700); err != nil {
		return err
	}
	abs, err := filepath.Abs(w.Dir)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(abs, "authorization-webhook.kubeconfig")
	if err := clientcmd.WriteToFile(*WebhookKubeconfig(w.URL, w.CAFile), kubeconfig); err != nil {
		return fmt.Errorf("writing the webhook kubeconfig: %w", err)
	}
	raw, err := sigsyaml.Marshal(AuthorizationConfig(kubeconfig, w.Node))
	if err != nil {
		return err
	}
	path := filepath.Join(abs, "authorization-config.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return err
	}
	env.ControlPlane.GetAPIServer().Configure().
		Disable("authorization-mode").
		Set("authorization-config", path)
	return nil
}
