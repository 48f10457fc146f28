package devenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/testenv"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// HubSample is the dockerhub sample ScimConfig that `make run DOCKERHUB=1` points at the
// Docker Hub emulator.
const HubSample = "config/samples/scim_v1alpha1_scimconfig_dockerhub.yaml"

// HubResyncInterval is the dev copy's spec.resyncInterval: the shortest allowed, so that
// an invitation accepted in the emulator shows in the cluster within a minute by itself.
const HubResyncInterval = "1m"

// HubInspectCommand shows the emulator's organization (members, pending invitations,
// teams) with the variables `make run` writes to .dev/env.
const HubInspectCommand = `curl -sS -H "Authorization: Bearer $HUB_TOKEN" "$HUB_URL/_emulator/org"`

// Hub is the Docker Hub emulator of `make run DOCKERHUB=1` and the ScimConfig that uses it.
type Hub struct {
	Emulator *hubemu.Emulator
	// URL is the emulator's base URL, "http://127.0.0.1:<port>".
	URL string
	// Org is the emulator's organization, the sample's spec.organization.
	Org string
	// AccessToken is the organization access token (dckr_oat_...) the emulator accepts,
	// in the Secret the sample's accessTokenSecretRef names.
	AccessToken string
	// Config is the sample ScimConfig, pointed at the emulator.
	Config types.NamespacedName
}

// StartHub starts a Docker Hub emulator on loopback (a free port on 127.0.0.1, with its
// /_emulator/ endpoints) for the organization of HubSample, creates the access-token
// Secret the sample names with a fresh token the emulator accepts, and applies the sample
// in ns with spec.backend.dockerhub.baseURL set to the emulator (the field that exists for
// this: the manager needs no flag) and spec.resyncInterval set to HubResyncInterval.
// Stop ends the emulator.
func StartHub(ctx context.Context, c client.Client, ns string) (*Hub, error) {
	return StartHubWith(ctx, c, ns, HubOptions{})
}

// HubOptions change what StartHub sets up; the zero value is make run's.
type HubOptions struct {
	// RateLimit is the emulator's requests per minute (0: unlimited; Docker Hub's
	// documented limit for these endpoints is 180, test/dockerhub's default in the suites).
	RateLimit int
	// ResyncInterval is the sample's spec.resyncInterval ("" for HubResyncInterval).
	ResyncInterval string
	// Adoption is the sample's spec.policies.adoption ("" leaves the sample's, the default
	// Ignore: people already in the organization are Preexisting, and SCIM never changes
	// them, nor invites them back when they are removed by hand).
	Adoption scimv1.AdoptionPolicy
}

// maxRequestsPerMinute is the CRD's bound on spec.backend.dockerhub.requestsPerMinute.
const maxRequestsPerMinute = 6000

// pointAt points the sample ScimConfig at the emulator's url with the options.
func pointAt(cfg *unstructured.Unstructured, url string, o HubOptions) error {
	if err := unstructured.SetNestedField(cfg.Object, url, "spec", "backend", "dockerhub", "baseURL"); err != nil {
		return err
	}
	if err := unstructured.SetNestedField(cfg.Object, o.ResyncInterval, "spec", "resyncInterval"); err != nil {
		return err
	}
	if o.RateLimit > maxRequestsPerMinute {
		return fmt.Errorf("a rate limit of %d requests a minute: a ScimConfig allows at most %d", o.RateLimit, maxRequestsPerMinute)
	}
	if o.RateLimit > 0 {
		// the manager's budget is the emulator's limit: a bench at -hub-rate 600 measures
		// passes at 600 a minute, and one at 60 does not meet 429s from a manager held
		// to the CRD's default 180
		if err := unstructured.SetNestedField(cfg.Object, int64(o.RateLimit), "spec", "backend", "dockerhub", "requestsPerMinute"); err != nil {
			return err
		}
	}
	if o.Adoption != "" {
		return unstructured.SetNestedField(cfg.Object, string(o.Adoption), "spec", "policies", "adoption")
	}
	return nil
}

// StartHubWith is StartHub with options (make bench runs the emulator at Docker Hub's rate
// limit).
func StartHubWith(ctx context.Context, c client.Client, ns string, o HubOptions) (*Hub, error) {
	if o.ResyncInterval == "" {
		o.ResyncInterval = HubResyncInterval
	}
	objs, err := InNamespace(c, filepath.Join(testenv.RepoRoot(), HubSample), ns)
	if err != nil {
		return nil, err
	}
	var cfg *unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == "ScimConfig" {
			if cfg != nil {
				return nil, fmt.Errorf("%s has more than one ScimConfig", HubSample)
			}
			cfg = u
		}
	}
	if cfg == nil {
		return nil, fmt.Errorf("%s has no ScimConfig", HubSample)
	}
	org, _, _ := unstructured.NestedString(cfg.Object, "spec", "organization")
	typ, _, _ := unstructured.NestedString(cfg.Object, "spec", "backend", "type")
	secret, _, _ := unstructured.NestedString(cfg.Object, "spec", "backend", "dockerhub", "accessTokenSecretRef", "name")
	key, _, _ := unstructured.NestedString(cfg.Object, "spec", "backend", "dockerhub", "accessTokenSecretRef", "key")
	if typ != "dockerhub" || org == "" || secret == "" || key == "" {
		return nil, fmt.Errorf("%s: want a dockerhub ScimConfig with an organization and an accessTokenSecretRef, got type %q, organization %q, secret %q key %q",
			HubSample, typ, org, secret, key)
	}

	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	tok := "dckr_oat_" + hex.EncodeToString(b)
	emu := hubemu.New(hubemu.Options{Org: org, Tokens: map[string]hubemu.TokenSpec{tok: {}}, DevEndpoints: true, RateLimit: o.RateLimit}).Start()
	h := &Hub{Emulator: emu, URL: emu.URL(), Org: org, AccessToken: tok,
		Config: types.NamespacedName{Namespace: cfg.GetNamespace(), Name: cfg.GetName()}}
	fail := func(err error) (*Hub, error) {
		h.Stop()
		return nil, err
	}

	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: cfg.GetNamespace(), Name: secret},
		Data:       map[string][]byte{key: []byte(tok)},
	}
	if err := c.Patch(ctx, s, client.Apply, client.FieldOwner("scim-devloop"), client.ForceOwnership); err != nil {
		return fail(fmt.Errorf("apply Secret %s: %w", secret, err))
	}
	if err := pointAt(cfg, h.URL, o); err != nil {
		return fail(err)
	}
	for _, u := range objs {
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("scim-devloop"), client.ForceOwnership); err != nil {
			return fail(fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err))
		}
	}
	return h, nil
}

// InspectCommand is HubInspectCommand with the values in place of the variables.
func (h *Hub) InspectCommand() string {
	return fmt.Sprintf(`curl -sS -H "Authorization: Bearer %s" "%s/_emulator/org"`, h.AccessToken, h.URL)
}

// Stop ends the emulator: its port closes and its organization is gone.
func (h *Hub) Stop() { h.Emulator.Close() }
