// Package manifests_test reads the install manifests under config/ and checks that the SCIM
// Service's ports say what the manager behind them serves: 443 "https" only in front of a
// container that is given a certificate, "http" only in front of one told to serve plain
// HTTP. (make build-installer renders them; these checks need no cluster and no kustomize.)
package manifests_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/scim-operator/scim-operator/internal/testenv"
)

func read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeKind decodes the document of a YAML stream with kind and name into out; strictly
// (no unknown fields) unless it is a strategic merge patch, whose $patch directives are
// no fields of the type.
func decodeKind(t *testing.T, stream []byte, kind, name string, out any) {
	t.Helper()
	for _, doc := range bytes.Split(stream, []byte("\n---")) {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == kind && meta.Metadata.Name == name {
			decode := yaml.UnmarshalStrict
			if bytes.Contains(doc, []byte("$patch")) {
				decode = func(b []byte, o any, _ ...yaml.JSONOpt) error { return yaml.Unmarshal(b, o) }
			}
			if err := decode(doc, out); err != nil {
				t.Fatalf("%s %s: %v", kind, name, err)
			}
			return
		}
	}
	t.Fatalf("no %s %s", kind, name)
}

func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if a == "--"+name {
			return "true", true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// scimServicePort returns the SCIM Service's only port and the container port it targets.
func scimServicePort(t *testing.T, svc *corev1.Service, c *corev1.Container) (corev1.ServicePort, corev1.ContainerPort) {
	t.Helper()
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("the SCIM Service has ports %v, want one", svc.Spec.Ports)
	}
	sp := svc.Spec.Ports[0]
	i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == sp.TargetPort.StrVal })
	if i < 0 {
		t.Fatalf("the Service targets port %q, which the container does not name (%v)", sp.TargetPort.String(), c.Ports)
	}
	addr, _ := flagValue(c.Args, "scim-bind-address")
	if want := ":" + strconv.Itoa(int(c.Ports[i].ContainerPort)); addr != want {
		t.Errorf("--scim-bind-address=%s, but the Service targets container port %d", addr, c.Ports[i].ContainerPort)
	}
	return sp, c.Ports[i]
}

func TestDefaultInstallServesHTTPSBehindPort443(t *testing.T) {
	stream := read(t, "config/manager/manager.yaml")
	var dep appsv1.Deployment
	decodeKind(t, stream, "Deployment", "controller-manager", &dep)
	var svc corev1.Service
	decodeKind(t, stream, "Service", "scim", &svc)
	c := dep.Spec.Template.Spec.Containers[0]

	sp, cp := scimServicePort(t, &svc, &c)
	if sp.Port != 443 || sp.Name != "https" || cp.Name != "https" || sp.AppProtocol == nil || *sp.AppProtocol != "https" {
		t.Errorf("SCIM Service port %+v -> container port %+v: want 443/https -> https", sp, cp)
	}
	if _, insecure := flagValue(c.Args, "scim-insecure-http"); insecure {
		t.Error("the default install serves plain HTTP behind a port that says https")
	}
	dir, ok := flagValue(c.Args, "scim-cert-dir")
	if !ok || dir == "" {
		t.Fatalf("no --scim-cert-dir in %v", c.Args)
	}
	mi := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
	if mi < 0 {
		t.Fatalf("--scim-cert-dir=%s is not a volume mount (%v)", dir, c.VolumeMounts)
	}
	vi := slices.IndexFunc(dep.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mi].Name })
	if vi < 0 || dep.Spec.Template.Spec.Volumes[vi].Secret == nil {
		t.Fatalf("the certificate directory %s is not a Secret volume", dir)
	}
	secret := dep.Spec.Template.Spec.Volumes[vi].Secret.SecretName

	t.Run("the cert-manager component writes the Secret the Deployment mounts", func(t *testing.T) {
		var cert struct {
			Spec struct {
				SecretName string   `json:"secretName"`
				DNSNames   []string `json:"dnsNames"`
				IssuerRef  struct {
					Name string `json:"name"`
				} `json:"issuerRef"`
			} `json:"spec"`
		}
		b := read(t, "config/components/cert-manager/certificate.yaml")
		if err := yaml.Unmarshal(b, &cert); err != nil {
			t.Fatal(err)
		}
		if cert.Spec.SecretName != secret {
			t.Errorf("the Certificate writes Secret %q, the Deployment mounts %q", cert.Spec.SecretName, secret)
		}
		var issuer struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(read(t, "config/components/cert-manager/issuer.yaml"), &issuer); err != nil {
			t.Fatal(err)
		}
		if cert.Spec.IssuerRef.Name != issuer.Metadata.Name {
			t.Errorf("the Certificate names issuer %q, the component's Issuer is %q", cert.Spec.IssuerRef.Name, issuer.Metadata.Name)
		}
	})

	t.Run("the plain-http component says http wherever it serves plain HTTP", func(t *testing.T) {
		var k struct {
			Patches []struct {
				Patch string `json:"patch"`
			} `json:"patches"`
		}
		if err := yaml.Unmarshal(read(t, "config/components/plain-http/kustomization.yaml"), &k); err != nil {
			t.Fatal(err)
		}
		var pdep appsv1.Deployment
		var psvc corev1.Service
		for _, p := range k.Patches {
			switch {
			case strings.Contains(p.Patch, "kind: Deployment"):
				decodeKind(t, []byte(p.Patch), "Deployment", "controller-manager", &pdep)
			case strings.Contains(p.Patch, "kind: Service"):
				// "$patch: replace" is the list's first item: the ports that follow are all
				decodeKind(t, []byte(strings.Replace(p.Patch, "- $patch: replace\n", "", 1)), "Service", "scim", &psvc)
			}
		}
		pc := pdep.Spec.Template.Spec.Containers[0]
		if _, ok := flagValue(pc.Args, "scim-insecure-http"); !ok {
			t.Errorf("args %v lack --scim-insecure-http", pc.Args)
		}
		if _, ok := flagValue(pc.Args, "scim-cert-dir"); ok {
			t.Errorf("args %v keep --scim-cert-dir", pc.Args)
		}
		var want []string
		for _, a := range c.Args {
			if !strings.HasPrefix(a, "--scim-cert-dir=") {
				want = append(want, a)
			}
		}
		if got := slices.DeleteFunc(slices.Clone(pc.Args), func(a string) bool { return a == "--scim-insecure-http" }); !slices.Equal(got, want) {
			t.Errorf("the component's args %v drifted from config/manager/manager.yaml's %v", pc.Args, c.Args)
		}
		sp, cp := scimServicePort(t, &psvc, &pc)
		if sp.Port != 80 || sp.Name != "http" || cp.Name != "http" || sp.AppProtocol == nil || *sp.AppProtocol != "http" {
			t.Errorf("SCIM Service port %+v -> container port %+v: want 80/http -> http", sp, cp)
		}
	})
}
