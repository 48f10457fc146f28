package helm_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/scim-operator/scim-operator/internal/devenv"
	"github.com/scim-operator/scim-operator/internal/testenv"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func nested[T any](t *testing.T, o map[string]any, path ...string) T {
	t.Helper()
	v, found, err := unstructured.NestedFieldNoCopy(o, path...)
	if err != nil || !found {
		t.Fatalf("%v: found=%v err=%v in %v", path, found, err, o)
	}
	x, ok := v.(T)
	if !ok {
		t.Fatalf("%v is %T %v, want %T", path, v, v, x)
	}
	return x
}

// consistent fails unless every reference between the rendered objects resolves: bindings
// name rendered roles and the rendered ServiceAccount in the release namespace, the
// Deployment runs as that ServiceAccount and its selector matches its pods, both Services
// select the pods and target named container ports, the SCIM certificate volume is the
// Secret the Certificate writes, and the ServiceMonitor selects the metrics Service only.
func consistent(t *testing.T, r *rendering, release, ns string) {
	t.Helper()
	byID := map[string]*unstructured.Unstructured{}
	for _, o := range r.objs {
		byID[id(o)] = o
	}
	for _, o := range r.objs {
		switch o.GetKind() {
		case "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition":
			if o.GetNamespace() != "" {
				t.Errorf("%s is cluster-scoped but has a namespace", id(o))
			}
		default:
			if o.GetNamespace() != ns {
				t.Errorf("%s is not in the release namespace %s", id(o), ns)
			}
		}
	}
	dep := find(t, r.objs, "Deployment", release+"-controller-manager")
	podLabels := nested[map[string]any](t, dep.Object, "spec", "template", "metadata", "labels")
	selects := func(sel map[string]any, labels map[string]any) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !selects(nested[map[string]any](t, dep.Object, "spec", "selector", "matchLabels"), podLabels) {
		t.Errorf("the Deployment's selector does not match its pod labels %v", podLabels)
	}
	sa := nested[string](t, dep.Object, "spec", "template", "spec", "serviceAccountName")
	if _, ok := byID["ServiceAccount "+ns+"/"+sa]; !ok {
		t.Errorf("the Deployment runs as ServiceAccount %s, which the chart does not render", sa)
	}
	for _, o := range r.objs {
		if o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding" {
			continue
		}
		ref := nested[map[string]any](t, o.Object, "roleRef")
		roleNS := ""
		if ref["kind"] == "Role" {
			roleNS = ns + "/"
		}
		if _, ok := byID[ref["kind"].(string)+" "+roleNS+ref["name"].(string)]; !ok {
			t.Errorf("%s binds %s %s, which the chart does not render", id(o), ref["kind"], ref["name"])
		}
		for _, s := range nested[[]any](t, o.Object, "subjects") {
			s := s.(map[string]any)
			if s["kind"] != "ServiceAccount" || s["namespace"] != ns || s["name"] != sa {
				t.Errorf("%s binds %v, not the manager's ServiceAccount %s/%s", id(o), s, ns, sa)
			}
		}
	}
	c := container(t, r.objs, release)
	ports := map[string]bool{}
	for _, p := range nested[[]any](t, c, "ports") {
		ports[p.(map[string]any)["name"].(string)] = true
	}
	for _, name := range []string{release + "-scim", release + "-metrics"} {
		svc := find(t, r.objs, "Service", name)
		if !selects(nested[map[string]any](t, svc.Object, "spec", "selector"), podLabels) {
			t.Errorf("Service %s does not select the manager's pods", name)
		}
		for _, p := range nested[[]any](t, svc.Object, "spec", "ports") {
			if target := p.(map[string]any)["targetPort"]; !ports[target.(string)] {
				t.Errorf("Service %s targets port %v, which the container does not name (%v)", name, target, ports)
			}
		}
	}
	for _, v := range nested[[]any](t, dep.Object, "spec", "template", "spec", "volumes") {
		v := v.(map[string]any)
		if v["name"] != "scim-tls" {
			continue
		}
		secret := nested[string](t, v, "secret", "secretName")
		for _, cert := range r.objs {
			if cert.GetKind() == "Certificate" {
				if got := nested[string](t, cert.Object, "spec", "secretName"); got != secret {
					t.Errorf("the Certificate writes Secret %s, the Deployment mounts %s", got, secret)
				}
				issuer := nested[map[string]any](t, cert.Object, "spec", "issuerRef")
				if _, ours := byID["Issuer "+ns+"/"+issuer["name"].(string)]; !ours && issuer["group"] == nil {
					t.Errorf("the Certificate names issuer %v, which the chart does not render", issuer)
				}
			}
		}
	}
	for _, sm := range r.objs {
		if sm.GetKind() != "ServiceMonitor" {
			continue
		}
		sel := nested[map[string]any](t, sm.Object, "spec", "selector", "matchLabels")
		for _, svc := range r.objs {
			if svc.GetKind() != "Service" {
				continue
			}
			labels := map[string]any{}
			for k, v := range svc.GetLabels() {
				labels[k] = v
			}
			if want := svc.GetName() == release+"-metrics"; selects(sel, labels) != want {
				t.Errorf("the ServiceMonitor's selector %v selects Service %s: %v, want %v", sel, svc.GetName(), !want, want)
			}
		}
	}
}

// impersonable returns the resourceNames of the manager ClusterRole's impersonate rule,
// and whether the rule is there.
func impersonable(t *testing.T, r *rendering, release string) ([]string, bool) {
	t.Helper()
	role := find(t, r.objs, "ClusterRole", release+"-manager-role")
	var found []string
	rules := 0
	for _, rule := range nested[[]any](t, role.Object, "rules") {
		rule := rule.(map[string]any)
		if slices.Contains(rule["verbs"].([]any), any("impersonate")) {
			rules++
			names, _ := rule["resourceNames"].([]any)
			if len(names) == 0 {
				t.Errorf("an impersonate rule without resourceNames: the manager may act as every ServiceAccount: %v", rule)
			}
			for _, n := range names {
				found = append(found, n.(string))
			}
		}
	}
	if rules > 1 {
		t.Errorf("%d impersonate rules, want at most 1", rules)
	}
	return found, rules == 1
}

// TestValues renders each value the chart documents and checks what it changes, and that
// the objects still refer to one another.
func TestValues(t *testing.T) {
	appVersion := loadChart(t).Metadata.AppVersion
	cases := []struct {
		name, values string
		release, ns  string
		check        func(t *testing.T, r *rendering, release string)
	}{
		{name: "defaults", check: func(t *testing.T, r *rendering, rel string) {
			c := container(t, r.objs, rel)
			if c["image"] != "scim-operator:"+appVersion || c["imagePullPolicy"] != "IfNotPresent" {
				t.Errorf("image %v %v, want scim-operator:%s IfNotPresent", c["image"], c["imagePullPolicy"], appVersion)
			}
			if names, _ := impersonable(t, r, rel); !slices.Equal(names, []string{"scim-provisioner"}) {
				t.Errorf("the manager may impersonate %v, want [scim-provisioner]", names)
			}
			if v, _ := flag(args(t, r.objs, rel), "default-service-account"); v != "scim-provisioner" {
				t.Errorf("--default-service-account=%q, want scim-provisioner", v)
			}
			if !strings.Contains(r.notes, "kubectl -n "+namespace+" create secret tls "+rel+"-scim-tls") {
				t.Errorf("NOTES.txt does not say how to create the TLS Secret:\n%s", r.notes)
			}
		}},
		{name: "image tag and pull policy", values: "image: {repository: registry.example.com/scim-operator, tag: v1.2.3, pullPolicy: Always}",
			check: func(t *testing.T, r *rendering, rel string) {
				c := container(t, r.objs, rel)
				if c["image"] != "registry.example.com/scim-operator:v1.2.3" || c["imagePullPolicy"] != "Always" {
					t.Errorf("image %v %v", c["image"], c["imagePullPolicy"])
				}
			}},
		{name: "image digest wins over the tag", values: "image: {repository: registry.example.com/scim-operator, tag: v1.2.3, digest: " + digest + "}",
			check: func(t *testing.T, r *rendering, rel string) {
				if c := container(t, r.objs, rel); c["image"] != "registry.example.com/scim-operator@"+digest {
					t.Errorf("image %v", c["image"])
				}
			}},
		{name: "image pull secrets", values: "imagePullSecrets: [{name: regcred}]", check: func(t *testing.T, r *rendering, rel string) {
			d := find(t, r.objs, "Deployment", rel+"-controller-manager")
			if got := nested[[]any](t, d.Object, "spec", "template", "spec", "imagePullSecrets"); !reflect.DeepEqual(got, []any{map[string]any{"name": "regcred"}}) {
				t.Errorf("imagePullSecrets %v", got)
			}
		}},
		{name: "replicas", values: "replicas: 3", check: func(t *testing.T, r *rendering, rel string) {
			d := find(t, r.objs, "Deployment", rel+"-controller-manager")
			if got := nested[int64](t, d.Object, "spec", "replicas"); got != 3 {
				t.Errorf("replicas %d, want 3", got)
			}
			if _, ok := flag(args(t, r.objs, rel), "leader-elect"); !ok {
				t.Error("several replicas without --leader-elect")
			}
		}},
		{name: "controller workers", values: "controllers: {maxConcurrentReconciles: 12}", check: func(t *testing.T, r *rendering, rel string) {
			if v, _ := flag(args(t, r.objs, rel), "max-concurrent-reconciles"); v != "12" {
				t.Errorf("--max-concurrent-reconciles=%q, want 12", v)
			}
		}},
		{name: "default controller workers: the manager's", values: "", check: func(t *testing.T, r *rendering, rel string) {
			if v, ok := flag(args(t, r.objs, rel), "max-concurrent-reconciles"); ok {
				t.Errorf("--max-concurrent-reconciles=%q by default, want the manager's own default", v)
			}
		}},
		{name: "large numbers are not printed in floating point", values: "scim: {maxBodyBytes: 4194304}", check: func(t *testing.T, r *rendering, rel string) {
			if v, _ := flag(args(t, r.objs, rel), "scim-max-body-bytes"); v != "4194304" {
				t.Errorf("--scim-max-body-bytes=%q, want 4194304", v)
			}
		}},
		{name: "own TLS Secret name", values: "tls: {secretName: my-scim-cert}", check: func(t *testing.T, r *rendering, rel string) {
			d := find(t, r.objs, "Deployment", rel+"-controller-manager")
			vols := nested[[]any](t, d.Object, "spec", "template", "spec", "volumes")
			if !strings.Contains(toJSON(t, vols), `"secretName":"my-scim-cert"`) {
				t.Errorf("volumes %v do not mount my-scim-cert", vols)
			}
		}},
		{name: "certManager with an issuer of one's own", release: "acme", ns: "idp",
			values: "tls: {source: certManager, secretName: acme-tls, certManager: {issuerRef: {name: letsencrypt, kind: ClusterIssuer}, dnsNames: [scim.example.com]}}",
			check: func(t *testing.T, r *rendering, rel string) {
				if n := kinds(r.objs)["Issuer"]; n != 0 {
					t.Errorf("%d Issuers rendered with an issuerRef given", n)
				}
				cert := find(t, r.objs, "Certificate", rel+"-scim-serving-cert")
				if got := nested[map[string]any](t, cert.Object, "spec", "issuerRef"); !reflect.DeepEqual(got,
					map[string]any{"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"}) {
					t.Errorf("issuerRef %v", got)
				}
				want := []any{rel + "-scim.idp.svc", rel + "-scim.idp.svc.cluster.local", "scim.example.com"}
				if got := nested[[]any](t, cert.Object, "spec", "dnsNames"); !reflect.DeepEqual(got, want) {
					t.Errorf("dnsNames %v, want %v", got, want)
				}
				if got := nested[string](t, cert.Object, "spec", "secretName"); got != "acme-tls" {
					t.Errorf("the Certificate writes %s, want acme-tls", got)
				}
			}},
		{name: "trusted proxies with HTTPS", values: "scim: {trustedProxies: [10.1.0.0/16]}", check: func(t *testing.T, r *rendering, rel string) {
			a := args(t, r.objs, rel)
			if v, _ := flag(a, "scim-trusted-proxies"); v != "10.1.0.0/16" {
				t.Errorf("args %v: want --scim-trusted-proxies=10.1.0.0/16", a)
			}
			if _, ok := flag(a, "scim-cert-dir"); !ok {
				t.Errorf("args %v lack --scim-cert-dir", a)
			}
		}},
		{name: "plainHTTP", values: "tls: {source: plainHTTP}\nscim: {trustedProxies: [10.1.0.0/16]}", check: func(t *testing.T, r *rendering, rel string) {
			svc := find(t, r.objs, "Service", rel+"-scim")
			if p := toJSON(t, nested[[]any](t, svc.Object, "spec", "ports")); !strings.Contains(p, `"port":80`) || strings.Contains(p, "https") {
				t.Errorf("SCIM Service ports %s, want 80/http", p)
			}
			if !strings.Contains(r.notes, "PLAIN HTTP") {
				t.Errorf("NOTES.txt does not warn of plain HTTP:\n%s", r.notes)
			}
		}},
		{name: "another default ServiceAccount and more impersonable names",
			values: "lockdown: {defaultServiceAccount: tenant-writer, impersonableServiceAccounts: [team-a-scim, tenant-writer]}",
			check: func(t *testing.T, r *rendering, rel string) {
				if names, _ := impersonable(t, r, rel); !slices.Equal(names, []string{"tenant-writer", "team-a-scim"}) {
					t.Errorf("the manager may impersonate %v, want [tenant-writer team-a-scim]", names)
				}
				if v, _ := flag(args(t, r.objs, rel), "default-service-account"); v != "tenant-writer" {
					t.Errorf("--default-service-account=%q, want tenant-writer", v)
				}
			}},
		{name: "lockdown off", values: "lockdown: {defaultServiceAccount: ''}", check: func(t *testing.T, r *rendering, rel string) {
			if names, ok := impersonable(t, r, rel); ok {
				t.Errorf("the manager may impersonate %v with no name to impersonate", names)
			}
			if _, ok := flag(args(t, r.objs, rel), "default-service-account"); ok {
				t.Error("--default-service-account is passed")
			}
			if !strings.Contains(r.notes, "WARNING: lockdown.defaultServiceAccount is empty") {
				t.Errorf("NOTES.txt does not warn:\n%s", r.notes)
			}
		}},
		{name: "no default but named ServiceAccounts", values: "lockdown: {defaultServiceAccount: '', impersonableServiceAccounts: [team-a-scim]}",
			check: func(t *testing.T, r *rendering, rel string) {
				if names, _ := impersonable(t, r, rel); !slices.Equal(names, []string{"team-a-scim"}) {
					t.Errorf("the manager may impersonate %v, want [team-a-scim]", names)
				}
			}},
		{name: "metrics without authentication", values: "metrics: {secure: false}\nmonitoring: {serviceMonitor: {enabled: true}}",
			check: func(t *testing.T, r *rendering, rel string) {
				if v, _ := flag(args(t, r.objs, rel), "metrics-secure"); v != "false" {
					t.Errorf("--metrics-secure=%q, want false", v)
				}
				svc := find(t, r.objs, "Service", rel+"-metrics")
				if p := toJSON(t, nested[[]any](t, svc.Object, "spec", "ports")); !strings.Contains(p, `"name":"http"`) {
					t.Errorf("metrics Service ports %s, want a port named http", p)
				}
				sm := find(t, r.objs, "ServiceMonitor", rel+"-metrics")
				ep := nested[[]any](t, sm.Object, "spec", "endpoints")[0].(map[string]any)
				if ep["scheme"] != "http" || ep["port"] != "http" || ep["bearerTokenFile"] != nil {
					t.Errorf("ServiceMonitor endpoint %v, want plain http without a token", ep)
				}
			}},
		{name: "SCIM Service type and annotations", values: "scim: {service: {type: LoadBalancer, annotations: {example.com/lb: internal}}}",
			check: func(t *testing.T, r *rendering, rel string) {
				svc := find(t, r.objs, "Service", rel+"-scim")
				if got := nested[string](t, svc.Object, "spec", "type"); got != "LoadBalancer" {
					t.Errorf("type %s", got)
				}
				if svc.GetAnnotations()["example.com/lb"] != "internal" {
					t.Errorf("annotations %v", svc.GetAnnotations())
				}
			}},
		{name: "monitoring labels and interval",
			values: "monitoring: {serviceMonitor: {enabled: true, labels: {release: kps}, interval: 30s}, prometheusRule: {enabled: true, labels: {release: kps}}, dashboard: {enabled: true, labels: {grafana_dashboard: '1', team: idp}}}",
			check: func(t *testing.T, r *rendering, rel string) {
				sm := find(t, r.objs, "ServiceMonitor", rel+"-metrics")
				if sm.GetLabels()["release"] != "kps" {
					t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
				}
				if ep := nested[[]any](t, sm.Object, "spec", "endpoints")[0].(map[string]any); ep["interval"] != "30s" {
					t.Errorf("endpoint %v, want interval 30s", ep)
				}
				if pr := find(t, r.objs, "PrometheusRule", rel+"-alerts"); pr.GetLabels()["release"] != "kps" {
					t.Errorf("PrometheusRule labels %v", pr.GetLabels())
				}
				if cm := find(t, r.objs, "ConfigMap", rel+"-grafana-dashboard"); cm.GetLabels()["team"] != "idp" || cm.GetLabels()["grafana_dashboard"] != "1" {
					t.Errorf("dashboard labels %v", cm.GetLabels())
				}
			}},
		{name: "scheduling and resources",
			values: "resources: {limits: {memory: 1Gi}}\npodAnnotations: {a: b}\nnodeSelector: {disk: ssd}\ntolerations: [{key: k, operator: Exists}]\naffinity: {nodeAffinity: {}}",
			check: func(t *testing.T, r *rendering, rel string) {
				d := find(t, r.objs, "Deployment", rel+"-controller-manager")
				spec := nested[map[string]any](t, d.Object, "spec", "template", "spec")
				if spec["nodeSelector"] == nil || spec["tolerations"] == nil || spec["affinity"] == nil {
					t.Errorf("pod spec lacks scheduling: %v", spec)
				}
				if got := nested[map[string]any](t, d.Object, "spec", "template", "metadata", "annotations"); got["a"] != "b" {
					t.Errorf("pod annotations %v", got)
				}
				// values files merge maps: the default requests stay, the limit is replaced
				if got := toJSON(t, container(t, r.objs, rel)["resources"]); got != `{"limits":{"cpu":"500m","memory":"1Gi"},"requests":{"cpu":"10m","memory":"64Mi"}}` {
					t.Errorf("resources %s", got)
				}
			}},
		{name: "environment", values: "env: [{name: GOMEMLIMIT, value: 900MiB}]", check: func(t *testing.T, r *rendering, rel string) {
			if got := toJSON(t, container(t, r.objs, rel)["env"]); got != `[{"name":"GOMEMLIMIT","value":"900MiB"}]` {
				t.Errorf("env %s", got)
			}
		}},
		{name: "fullnameOverride", release: "whatever", values: "fullnameOverride: scim", check: func(t *testing.T, r *rendering, rel string) {
			find(t, r.objs, "Deployment", "scim-controller-manager")
			find(t, r.objs, "ClusterRole", "scim-manager-role")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			release, ns := tc.release, tc.ns
			if release == "" {
				release = releaseName
			}
			if ns == "" {
				ns = namespace
			}
			r := render(t, release, ns, tc.values)
			prefix := fullname(release)
			if strings.Contains(tc.values, "fullnameOverride") {
				prefix = "scim"
			}
			consistent(t, r, prefix, ns)
			tc.check(t, r, prefix)
		})
	}
}

// TestInvalidValuesFailRendering: values that would install something broken, unsafe or
// not what was meant fail `helm install` with a message that names the value.
func TestInvalidValuesFailRendering(t *testing.T) {
	cases := []struct{ name, values, want string }{
		{"unknown TLS source", "tls: {source: https}", "/tls/source"},
		{"plain HTTP without trusted proxies", "tls: {source: plainHTTP}", "tls.source=plainHTTP needs scim.trustedProxies"},
		{"plain HTTP on a LoadBalancer", "tls: {source: plainHTTP}\nscim: {trustedProxies: [10.0.0.1], service: {type: LoadBalancer}}", "scim.service.type must be ClusterIP"},
		{"plain HTTP with a certificate Secret", "tls: {source: plainHTTP, secretName: x}\nscim: {trustedProxies: [10.0.0.1]}", "tls.secretName is set but tls.source=plainHTTP"},
		{"cert-manager values without cert-manager", "tls: {certManager: {issuerRef: {name: letsencrypt}}}", "tls.certManager is configured but tls.source is secret"},
		{"cert-manager DNS names without cert-manager", "tls: {source: plainHTTP, certManager: {dnsNames: [a.example.com]}}\nscim: {trustedProxies: [10.0.0.1]}", "tls.certManager is configured but tls.source is plainHTTP"},
		{"no image repository", "image: {repository: ''}", "/image/repository"},
		{"a tag as digest", "image: {digest: latest}", "/image/digest"},
		{"no replica", "replicas: 0", "/replicas"},
		{"a misspelt key", "replica: 3", "replica"},
		{"a misspelt nested key", "lockdown: {defaultServiceAcount: x}", "defaultServiceAcount"},
		{"an invalid ServiceAccount name", "lockdown: {defaultServiceAccount: Team_A}", "/lockdown/defaultServiceAccount"},
		{"an invalid impersonable name", "lockdown: {impersonableServiceAccounts: ['a b']}", "/lockdown/impersonableServiceAccounts"},
		{"a host name as trusted proxy", "scim: {trustedProxies: [proxy.example.com]}", "/scim/trustedProxies"},
		{"a negative body limit", "scim: {maxBodyBytes: -1}", "/scim/maxBodyBytes"},
		{"an environment variable without a name", "env: [{value: 900MiB}]", "/env/0"},
		{"a negative worker count", "controllers: {maxConcurrentReconciles: -1}", "/controllers/maxConcurrentReconciles"},
		{"a name too long for Services", "fullnameOverride: " + strings.Repeat("a", 56), "longer than 55 characters"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderValues(t, releaseName, namespace, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("values %q: error %v, want one that says %q", tc.values, err, tc.want)
			}
			t.Log(err)
		})
	}
}

// TestRenderedArgsAreManagerFlags: every flag the chart passes, for every value that adds
// one, is a flag of the manager binary (a misspelt flag would crash-loop the pods).
func TestRenderedArgsAreManagerFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "manager")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := devenv.BuildManager(ctx, bin); err != nil {
		t.Fatal(err)
	}
	// -help prints every flag as "  -name" and exits 0
	help, err := exec.CommandContext(ctx, bin, "-help").CombinedOutput()
	if err != nil {
		t.Fatalf("manager -help: %v\n%s", err, help)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`).FindAllStringSubmatch(string(help), -1) {
		flags[m[1]] = true
	}
	if !flags["scim-cert-dir"] {
		t.Fatalf("manager -help lists no --scim-cert-dir; the parse is wrong:\n%s", help)
	}
	for _, values := range []string{
		"",
		"tls: {source: plainHTTP}\nscim: {trustedProxies: [10.0.0.1], maxBodyBytes: 10}\nmetrics: {secure: false}",
		"tls: {source: certManager}\nlockdown: {defaultServiceAccount: x}",
	} {
		for _, a := range args(t, render(t, releaseName, namespace, values).objs, releaseName) {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !strings.HasPrefix(a, "--") || !flags[name] {
				t.Errorf("values %q: the chart passes %s, which is no flag of the manager", values, a)
			}
		}
	}
}

// TestHelmLint: `helm lint` (Helm's own linter, with its Kubernetes schema checks of the
// rendered objects) finds no warning or error, with the default values and with every
// optional object on.
func TestHelmLint(t *testing.T) {
	kube, err := chartutil.ParseKubeVersion("v" + testenv.K8sVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, values := range []string{"", "tls: {source: certManager}\nmonitoring: {serviceMonitor: {enabled: true}, prometheusRule: {enabled: true}, dashboard: {enabled: true}}"} {
		vals, err := chartutil.ReadValues([]byte(values))
		if err != nil {
			t.Fatal(err)
		}
		res := lint.AllWithKubeVersion(chartDir, vals, namespace, kube)
		for _, m := range res.Messages {
			t.Logf("values %q: %s", values, m)
			if m.Severity >= support.WarningSev {
				t.Errorf("values %q: helm lint: %s", values, m)
			}
		}
	}
}
