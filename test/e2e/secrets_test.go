package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/devenv"
)

// Secrets stay secret: from before the manager starts until it has stopped, a recorder
// keeps every version of every ScimConfig, OrgMember, OrgGroup and Event the API server
// shows (status and all), and every value of every Secret in the suite's namespaces: the
// generated SCIM tokens (each rotation's too) and the Docker Hub access tokens. After
// the suite (AfterSuite, when the manager has stopped and written its last line) no
// token may appear in the manager's log, in any recorded object or in any Event: not as
// it is, nor base64-encoded.

// recorder watches the cluster for the whole e2e run.
type recorder struct {
	mu      sync.Mutex
	objects []recorded        // every version of every watched object but Secrets
	secrets map[string]string // secret value -> where it was seen (never printed)
	// tokenSecret is the JSON of a generated token Secret: the control that shows the
	// search finds a token where one is
	tokenSecret []byte
	stop        context.CancelFunc
}

type recorded struct {
	what string // kind namespace/name@resourceVersion
	raw  []byte
}

var rec *recorder

// extraSecret adds a token the suite saw outside any Secret (a JWT Docker Hub issued).
func extraSecret(value, where string) {
	if rec == nil || len(value) < minSecretLen {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.secrets[value] = where
}

// minSecretLen: shorter values (a Secret's "true", a key name) would match by chance.
const minSecretLen = 8

func startRecorder() *recorder {
	r := &recorder{secrets: map[string]string{}}
	c, err := cache.New(cluster.Config, cache.Options{Scheme: devenv.Scheme})
	Expect(err).NotTo(HaveOccurred())
	add := func(obj any) {
		o, ok := obj.(client.Object)
		if !ok {
			return
		}
		if s, ok := obj.(*corev1.Secret); ok {
			if !strings.HasPrefix(s.Namespace, "e2e-") {
				return
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(s.Data["token"]) >= minSecretLen && strings.HasSuffix(s.Name, "-scim-token") {
				r.tokenSecret, _ = json.Marshal(s)
			}
			for k, v := range s.Data {
				if len(v) >= minSecretLen {
					r.secrets[string(v)] = "Secret " + s.Namespace + "/" + s.Name + " key " + k
				}
			}
			return
		}
		raw, _ := json.Marshal(o)
		kind := fmt.Sprintf("%T", o)[1:]
		r.mu.Lock()
		defer r.mu.Unlock()
		r.objects = append(r.objects, recorded{
			what: fmt.Sprintf("%s %s/%s@%s", kind, o.GetNamespace(), o.GetName(), o.GetResourceVersion()), raw: raw})
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
	}
	for _, obj := range []client.Object{&scimv1.ScimConfig{}, &scimv1.OrgMember{}, &scimv1.OrgGroup{}, &corev1.Event{}, &corev1.Secret{}} {
		inf, err := c.GetInformer(ctx, obj)
		Expect(err).NotTo(HaveOccurred())
		_, err = inf.AddEventHandler(handler)
		Expect(err).NotTo(HaveOccurred())
	}
	rctx, stop := context.WithCancel(ctx)
	r.stop = stop
	go func() {
		defer GinkgoRecover()
		Expect(c.Start(rctx)).To(Succeed())
	}()
	Expect(c.WaitForCacheSync(rctx)).To(BeTrue())
	return r
}

// forms are the ways a secret could be written down: as it is, and base64-encoded (a
// Secret's data, or a dumped Authorization: Basic header).
func forms(secret string) []string {
	b := []byte(secret)
	return []string{secret, base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
}

// redact names a secret in a failure message without printing it.
func redact(secret string) string { return fmt.Sprintf("%.4s… (%d characters)", secret, len(secret)) }

// leaks lists the secrets found in text, by where each came from.
func (r *recorder) leaks(text []byte) []string {
	var out []string
	for s, from := range r.secrets {
		for _, f := range forms(s) {
			if bytes.Contains(text, []byte(f)) {
				out = append(out, redact(s)+" from "+from)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// redactAll replaces every form of every secret in text, to show where a leak was.
func (r *recorder) redactAll(text []byte) []byte {
	for s := range r.secrets {
		for _, f := range forms(s) {
			text = bytes.ReplaceAll(text, []byte(f), []byte("<"+redact(s)+">"))
		}
	}
	return text
}

// checkNoSecretsLeaked is the AfterSuite half: the manager has stopped.
func checkNoSecretsLeaked(logPath string) {
	By("stopping the recorder and reading the last of every kind")
	var final []recorded
	for _, list := range []client.ObjectList{&scimv1.ScimConfigList{}, &scimv1.OrgMemberList{}, &scimv1.OrgGroupList{}, &corev1.EventList{}} {
		Expect(cluster.Client.List(ctx, list)).To(Succeed())
		raw, err := json.Marshal(list)
		Expect(err).NotTo(HaveOccurred())
		final = append(final, recorded{what: strings.TrimPrefix(fmt.Sprintf("%T", list), "*") + " (the last)", raw: raw})
	}
	rec.stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()

	By("checking that the check can fail: the tokens are known and found where they belong")
	generated := 0
	for _, from := range rec.secrets {
		if strings.Contains(from, "-scim-token key") {
			generated++
		}
	}
	if generated == 0 {
		GinkgoWriter.Println("no ScimConfig generated a token in this run: no token to look for")
		return
	}
	Expect(rec.leaks(rec.tokenSecret)).NotTo(BeEmpty(), "a token Secret's own JSON holds its token (base64): the search finds it")

	By("reading every line the manager logged")
	logs, err := os.ReadFile(logPath)
	Expect(err).NotTo(HaveOccurred())
	lines := bytes.Count(logs, []byte("\n"))
	Expect(lines).To(BeNumerically(">", 10), "the manager logged")
	var found []string
	for i, line := range bytes.Split(logs, []byte("\n")) {
		if l := rec.leaks(line); len(l) > 0 {
			found = append(found, fmt.Sprintf("manager log line %d: %s\n\t%.600s", i+1, strings.Join(l, ", "), rec.redactAll(line)))
		}
	}

	By("reading every recorded status, object and Event")
	kinds := map[string]int{}
	for _, o := range append(rec.objects, final...) {
		kind, _, _ := strings.Cut(o.what, " ")
		kinds[kind]++
		if l := rec.leaks(o.raw); len(l) > 0 {
			found = append(found, fmt.Sprintf("%s: %s\n\t%.600s", o.what, strings.Join(l, ", "), rec.redactAll(o.raw)))
		}
	}
	Expect(kinds["v1alpha1.ScimConfig"]).To(BeNumerically(">", 0), "recorded ScimConfig versions: %v", kinds)
	GinkgoWriter.Printf("searched %d tokens in %d log lines and %d object versions %v\n", len(rec.secrets), lines, len(rec.objects), kinds)
	Expect(found).To(BeEmpty(), "tokens written where they must not be")
}
