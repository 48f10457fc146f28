package main

// The plugin's verbs against a real API server (envtest) holding a control plane with
// members in every phase: no controller runs; the statuses, bindings and events are
// written the way the controllers write them, and each verb runs in-process through
// cobra with a kubeconfig, as `kubectl scim` does.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/backend/dockerhub"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/testenv"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// pluginNow is the plugin's clock in these tests.
var pluginNow = time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	pluginNS      = "team"
	readOnlyToken = "dckr_oat_readonly"
)

// pluginWorld is the control plane the verbs run against.
type pluginWorld struct {
	t          *testing.T
	ctx        context.Context
	c          client.Client
	kubeconfig string // an admin
	viewer     string // may read everything of scim-operator's but Secrets
	emu        *hubemu.Emulator
}

func startPluginWorld(t *testing.T) *pluginWorld {
	t.Helper()
	env := testenv.New()
	cfg, err := testenv.Start(env)
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(scimv1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &pluginWorld{t: t, ctx: ctx, c: c}
	w.kubeconfig = w.user(env, "admin", []string{"system:masters"})
	w.viewer = w.user(env, "viewer", nil)
	old := now
	now = func() time.Time { return pluginNow }
	t.Cleanup(func() { now = old })
	return w
}

// user writes a kubeconfig for a user of the control plane.
func (w *pluginWorld) user(env *envtest.Environment, name string, groups []string) string {
	u, err := env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		w.t.Fatal(err)
	}
	p := filepath.Join(w.t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(p, kc, 0o600); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// run runs one verb as the admin in the test namespace; it returns stdout, and the error
// Execute returned (kubectl-scim exits non-zero on it) with stderr.
func (w *pluginWorld) run(args ...string) (string, string, error) {
	return w.runAs(w.kubeconfig, args...)
}

func (w *pluginWorld) runAs(kubeconfig string, args ...string) (string, string, error) {
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"--kubeconfig", kubeconfig, "-n", pluginNS}, args...))
	err := root.ExecuteContext(w.ctx)
	return out.String(), errOut.String(), err
}

func (w *pluginWorld) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

func ago(d time.Duration) metav1.Time { return metav1.NewTime(pluginNow.Add(-d)) }

func cond(typ string, s metav1.ConditionStatus, reason, msg string, gen int64) metav1.Condition {
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen,
		LastTransitionTime: ago(3 * time.Hour)}
}

// config creates a ScimConfig with its status.
func (w *pluginWorld) config(name string, spec scimv1.ScimConfigSpec, conds ...metav1.Condition) *scimv1.ScimConfig {
	w.t.Helper()
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: pluginNS, Name: name}, Spec: spec}
	w.must(w.c.Create(w.ctx, cfg))
	for i := range conds {
		conds[i].ObservedGeneration = cfg.Generation
	}
	cfg.Status.Conditions = conds
	w.must(w.c.Status().Update(w.ctx, cfg))
	return cfg
}

func ready(backendReady metav1.Condition) []metav1.Condition {
	return []metav1.Condition{
		cond(scimv1.ConditionReady, backendReady.Status, backendReady.Reason, backendReady.Message, 0),
		cond(scimv1.ConditionTokenReady, metav1.ConditionTrue, "TokenGenerated", "bearer token in Secret", 0),
		backendReady,
	}
}

func connected() metav1.Condition {
	return cond(scimv1.ConditionBackendReady, metav1.ConditionTrue, "Connected", "the backend answered", 0)
}

// member is an OrgMember as the SCIM server writes it and the controller left it.
type member struct {
	name, config, user string
	inactive           bool
	docker             *scimv1.DockerUser
	status             scimv1.OrgMemberStatus
	deleting           bool
}

// synced is the status of a member the controller synced lastSync ago.
func synced(phase scimv1.MemberPhase, origin scimv1.MemberOrigin, backendID, msg string) scimv1.OrgMemberStatus {
	t := ago(5 * time.Minute)
	return scimv1.OrgMemberStatus{Phase: phase, Origin: origin, BackendID: backendID, Message: msg, LastSyncTime: &t,
		Conditions: []metav1.Condition{
			cond(scimv1.ConditionReady, metav1.ConditionTrue, string(phase), msg, 1),
			cond(scimv1.ConditionSynced, metav1.ConditionTrue, "Synced", "the backend matches the spec", 1),
		}}
}

func (w *pluginWorld) member(spec member) *scimv1.OrgMember {
	w.t.Helper()
	m := &scimv1.OrgMember{
		ObjectMeta: metav1.ObjectMeta{Namespace: pluginNS, Name: spec.name, Labels: map[string]string{scimv1.LabelConfig: spec.config}},
		Spec:       scimv1.OrgMemberSpec{ConfigName: spec.config, UserName: spec.user, Active: !spec.inactive, Docker: spec.docker},
	}
	if spec.deleting {
		m.Finalizers = []string{"scim.operator.dev/deprovision"}
	}
	w.must(w.c.Create(w.ctx, m))
	if spec.status.Phase != "" || len(spec.status.Conditions) > 0 {
		m.Status = spec.status
		w.must(w.c.Status().Update(w.ctx, m))
	}
	if spec.deleting {
		w.must(w.c.Delete(w.ctx, m))
		w.must(w.c.Get(w.ctx, client.ObjectKeyFromObject(m), m))
	}
	return m
}

// binding writes a binding the way the kubernetes backend labels them: for cfg, owned by
// owner (an OrgMember's UID; "" for none), for the user subject, granting role (in ns,
// "" for a ClusterRoleBinding). extra labels are added (for example orphaned).
func (w *pluginWorld) binding(name string, cfg *scimv1.ScimConfig, owner, user, ns, kind, role string, extra map[string]string, annotations ...string) {
	w.t.Helper()
	lbl := map[string]string{
		k8sbackend.LabelConfig: cfg.Name, k8sbackend.LabelConfigNamespace: cfg.Namespace,
		k8sbackend.LabelMember: k8sbackend.MemberHash(user),
	}
	if owner != "" {
		lbl[k8sbackend.LabelOwnerUID], lbl[k8sbackend.LabelOwnerKind] = owner, "OrgMember"
	}
	for k, v := range extra {
		lbl[k] = v
	}
	om := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbl, Annotations: map[string]string{k8sbackend.AnnotationUserName: user}}
	for i := 0; i+1 < len(annotations); i += 2 {
		om.Annotations[annotations[i]] = annotations[i+1]
	}
	subj := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: role}
	if ns == "" {
		w.must(w.c.Create(w.ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: om, Subjects: subj, RoleRef: ref}))
		return
	}
	w.must(w.c.Create(w.ctx, &rbacv1.RoleBinding{ObjectMeta: om, Subjects: subj, RoleRef: ref}))
}

// orgGrant writes an OrgGrant the way the kubernetes backend does in the Webhook grant
// layout: in cfg's namespace, labelled like a binding, granting role (in ns, "" for
// cluster-wide) to the user.
func (w *pluginWorld) orgGrant(name string, cfg *scimv1.ScimConfig, owner, user, ns, kind, role string) {
	w.t.Helper()
	lbl := map[string]string{
		k8sbackend.LabelConfig: cfg.Name, k8sbackend.LabelConfigNamespace: cfg.Namespace,
		k8sbackend.LabelMember:   k8sbackend.MemberHash(user),
		k8sbackend.LabelOwnerUID: owner, k8sbackend.LabelOwnerKind: "OrgMember",
	}
	om := metav1.ObjectMeta{Name: name, Namespace: cfg.Namespace, Labels: lbl, Annotations: map[string]string{k8sbackend.AnnotationUserName: user}}
	w.must(w.c.Create(w.ctx, &scimv1.OrgGrant{ObjectMeta: om, Spec: scimv1.OrgGrantSpec{
		Subject:   scimv1.OrgGrantSubject{Kind: scimv1.GrantSubjectUser, Name: user},
		Role:      scimv1.OrgGrantRole{Kind: scimv1.GrantRoleKind(kind), Name: role},
		Namespace: ns,
	}}))
}

// grants binds acme's two roles (ClusterRole view, Role apps/deployer) to user for m.
func (w *pluginWorld) grants(prefix string, cfg *scimv1.ScimConfig, m *scimv1.OrgMember, user string) {
	w.binding(prefix+"-view", cfg, string(m.UID), user, "", "ClusterRole", "view", nil)
	w.binding(prefix+"-deployer", cfg, string(m.UID), user, "apps", "Role", "deployer", nil)
}

// event records an events.k8s.io event about m, as the member controller does.
func (w *pluginWorld) event(m *scimv1.OrgMember, when time.Duration, reason, action, note string) {
	w.t.Helper()
	ev := &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Namespace: m.Namespace, GenerateName: m.Name + "-"},
		EventTime:           metav1.NewMicroTime(pluginNow.Add(-when)),
		ReportingController: "scim-operator", ReportingInstance: "scim-operator-test",
		Action: action, Reason: reason, Type: corev1.EventTypeNormal, Note: note,
		Regarding: corev1.ObjectReference{APIVersion: scimv1.GroupVersion.String(), Kind: "OrgMember",
			Namespace: m.Namespace, Name: m.Name, UID: m.UID},
	}
	w.must(w.c.Create(w.ctx, ev))
}

func (w *pluginWorld) namespace(name string) {
	w.must(w.c.Create(w.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
}

// lastLine is the last line of out (explain's "Why:" sentence, plan's summary).
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestPlugin builds one control plane with members in every phase and runs every verb
// against it.
func TestPlugin(t *testing.T) {
	w := startPluginWorld(t)
	w.namespace(pluginNS)
	w.namespace("apps")
	w.namespace("other")

	// ---- acme: kubernetes, ClusterRole view and Role apps/deployer, policies Remove ----
	acme := w.config("acme", scimv1.ScimConfigSpec{Organization: "acme",
		Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{
			ClusterRoles: []string{"view"}, Roles: []scimv1.NamespacedRole{{Namespace: "apps", Kind: "Role", Name: "deployer"}}}}},
		ready(connected())...)

	alice := w.member(member{name: "u-alice", config: "acme", user: "alice@example.com",
		status: synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "alice@example.com", "member of organization acme")})
	w.grants("alice", acme, alice, "alice@example.com")
	w.event(alice, 2*time.Hour, "Added", "Provision", "alice@example.com added to organization acme")

	bobStatus := synced(scimv1.PhaseDeactivated, scimv1.OriginProvisioned, "bob@example.com",
		"deactivated: not in organization acme; reactivation re-adds them")
	bobStatus.Deprovisioned = true
	bob := w.member(member{name: "u-bob", config: "acme", user: "bob@example.com", inactive: true, status: bobStatus})
	w.event(bob, 3*time.Hour, "Added", "Provision", "bob@example.com added to organization acme")
	w.event(bob, time.Hour, "Deactivated", "Deactivate",
		"bob@example.com deactivated: removed from organization acme; the OrgMember is kept so a reactivation re-adds them")

	daveStatus := synced(scimv1.PhaseActive, scimv1.OriginPreexisting, "dave@example.com",
		"already in organization acme before SCIM; adoption is off, so SCIM never changes or removes them")
	daveStatus.Conditions[1].Reason = "Preexisting"
	w.member(member{name: "u-dave", config: "acme", user: "dave@example.com", status: daveStatus})

	w.member(member{name: "u-erin", config: "acme", user: "erin@example.com"}) // just created: Pending

	w.member(member{name: "u-frank", config: "acme", user: "frank@example.com", // bindings deleted by hand
		status: synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "frank@example.com", "member of organization acme")})

	gina := w.member(member{name: "u-gina", config: "acme", user: "gina@example.com", inactive: true, // not yet processed
		status: synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "gina@example.com", "member of organization acme")})
	w.grants("gina", acme, gina, "gina@example.com")

	hankMsg := `could not add the member: InvalidUser (Permanent): userName "system:hank" starts with "system:", which Kubernetes reserves for its own identities; refusing to bind roles to it`
	w.member(member{name: "u-hank", config: "acme", user: "system:hank", status: scimv1.OrgMemberStatus{
		Phase: scimv1.PhaseFailed, Origin: scimv1.OriginProvisioned, Message: hankMsg, Conditions: []metav1.Condition{
			cond(scimv1.ConditionReady, metav1.ConditionFalse, "InvalidUser", hankMsg, 1),
			cond(scimv1.ConditionSynced, metav1.ConditionFalse, "InvalidUser", hankMsg, 1)}}})

	ivan := w.member(member{name: "u-ivan", config: "acme", user: "ivan.new@example.com", // renamed at the IdP
		status: synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "ivan@example.com", "member of organization acme")})
	w.grants("ivan", acme, ivan, "ivan@example.com")

	judy := w.member(member{name: "u-judy", config: "acme", user: "judy@example.com", deleting: true,
		status: synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "judy@example.com", "member of organization acme")})
	w.grants("judy", acme, judy, "judy@example.com")

	lenaStatus := synced(scimv1.PhaseRemoved, scimv1.OriginProvisioned, "lena@example.com", "removed from organization acme")
	w.member(member{name: "u-lena", config: "acme", user: "lena@example.com", deleting: true, status: lenaStatus})

	w.member(member{name: "u-oscar", config: "acme", user: "oscar@example.com"}) // new, an orphan of his name waits
	w.binding("orphan-oscar-view", acme, "", "oscar@example.com", "", "ClusterRole", "view",
		map[string]string{k8sbackend.LabelOrphaned: "Orphaned"})
	w.binding("orphan-olaf-view", acme, "", "olaf@example.com", "", "ClusterRole", "view",
		map[string]string{k8sbackend.LabelOrphaned: "Orphaned"})

	paul := w.member(member{name: "u-paul", config: "acme", user: "paul@example.com", // acme no longer names old-role
		status: synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "paul@example.com", "member of organization acme")})
	w.grants("paul", acme, paul, "paul@example.com")
	w.binding("paul-old-role", acme, string(paul.UID), "paul@example.com", "apps", "Role", "old-role", nil)

	// a member deleted while no controller ran: its bindings are the sweep's
	w.binding("ghost-view", acme, "5ca1ab1e-0000-4000-8000-000000000000", "ghost@example.com", "", "ClusterRole", "view", nil)

	// ---- keep: deactivation Keep ----
	keep := w.config("keep", scimv1.ScimConfigSpec{Organization: "keep",
		Policies: scimv1.LifecyclePolicies{Deactivation: scimv1.DeactivationKeep},
		Backend:  scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: []string{"view"}}}},
		ready(connected())...)
	kim := w.member(member{name: "u-kim", config: "keep", user: "kim@example.com", inactive: true,
		status: synced(scimv1.PhaseDeactivated, scimv1.OriginProvisioned, "kim@example.com",
			"deactivated; access kept in organization keep (deactivation policy Keep)")})
	w.binding("kim-view", keep, string(kim.UID), "kim@example.com", "", "ClusterRole", "view", nil)

	// ---- paused: disabled ----
	f := false
	paused := w.config("paused", scimv1.ScimConfigSpec{Organization: "paused", Enabled: &f,
		Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: []string{"view"}}}},
		ready(connected())...)
	leoStatus := synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "leo@example.com", "member of organization paused")
	leoStatus.Conditions[1] = cond(scimv1.ConditionSynced, metav1.ConditionUnknown, "Paused",
		`ScimConfig "paused" is disabled: nothing is synced and the member is left as it is`, 1)
	leo := w.member(member{name: "u-leo", config: "paused", user: "leo@example.com", status: leoStatus})
	w.binding("leo-view", paused, string(leo.UID), "leo@example.com", "", "ClusterRole", "view", nil)

	// ---- hooked: grantLayout Webhook; hugo still holds a binding of the Bindings layout ----
	hooked := w.config("hooked", scimv1.ScimConfigSpec{Organization: "hooked",
		Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{
			GrantLayout: scimv1.GrantLayoutWebhook, ClusterRoles: []string{"view"}}}},
		ready(connected())...)
	hugo := w.member(member{name: "u-hugo", config: "hooked", user: "hugo@example.com",
		status: synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "hugo@example.com", "member of organization hooked")})
	w.binding("hugo-view", hooked, string(hugo.UID), "hugo@example.com", "", "ClusterRole", "view", nil)
	hazel := w.member(member{name: "u-hazel", config: "hooked", user: "hazel@example.com",
		status: synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "hazel@example.com", "member of organization hooked")})
	w.orgGrant("hazel-view", hooked, string(hazel.UID), "hazel@example.com", "", "ClusterRole", "view")

	// ---- hub: Docker Hub whose token is refused ----
	hubMsg := "dockerhub backend for organization acme-hub: InvalidCredentials (Permanent): exchanging the organization access token of acme-hub: POST /v2/auth/token: 401 Incorrect authentication credentials"
	w.config("hub", scimv1.ScimConfigSpec{Organization: "acme-hub",
		Backend: scimv1.BackendSpec{Type: scimv1.BackendDockerHub, DockerHub: &scimv1.DockerHubBackend{
			AccessTokenSecretRef: scimv1.SecretKeyRef{Name: "hub-token", Key: "token"}}}},
		ready(cond(scimv1.ConditionBackendReady, metav1.ConditionFalse, "InvalidCredentials", hubMsg, 0))...)
	w.member(member{name: "u-carol", config: "hub", user: "carol@example.com", status: scimv1.OrgMemberStatus{
		Phase: scimv1.PhasePending, Conditions: []metav1.Condition{
			cond(scimv1.ConditionReady, metav1.ConditionFalse, "BackendNotReady", `waiting for ScimConfig "hub"'s backend: `+hubMsg, 1),
			cond(scimv1.ConditionSynced, metav1.ConditionFalse, "BackendNotReady", `waiting for ScimConfig "hub"'s backend: `+hubMsg, 1)}}})

	t.Run("members", func(t *testing.T) { testMembers(t, w) })
	t.Run("explain", func(t *testing.T) { testExplain(t, w) })
	t.Run("plan kubernetes", func(t *testing.T) { testPlanKubernetes(t, w) })
	t.Run("plan dockerhub", func(t *testing.T) { testPlanDockerHub(t, w) })
	t.Run("plan dockerhub teams", func(t *testing.T) { testPlanDockerHubTeams(t, w) })
	t.Run("plan kubernetes groups", func(t *testing.T) { testPlanKubernetesGroups(t, w) })
	t.Run("rotate", func(t *testing.T) { testRotate(t, w) })
}

func testMembers(t *testing.T, w *pluginWorld) {
	out, _, err := w.run("members", "--config", "acme", "--phase", "active,Deactivated")
	if err != nil {
		t.Fatal(err)
	}
	want := `USER                  CONFIG  ACTIVE  PHASE        ORIGIN       REASON             LAST SYNC  NAME
alice@example.com     acme    true    Active       Provisioned  Synced             5m ago     u-alice
bob@example.com       acme    false   Deactivated  Provisioned  Synced             5m ago     u-bob
dave@example.com      acme    true    Active       Preexisting  Preexisting        5m ago     u-dave
frank@example.com     acme    true    Active       Provisioned  Synced             5m ago     u-frank
gina@example.com      acme    false   Active       Provisioned  Synced             5m ago     u-gina
ivan.new@example.com  acme    true    Active       Provisioned  Synced             5m ago     u-ivan
judy@example.com      acme    true    Active       Provisioned  Synced (deleting)  5m ago     u-judy
paul@example.com      acme    true    Active       Provisioned  Synced             5m ago     u-paul
`
	if out != want {
		t.Errorf("members --config acme --phase active,Deactivated:\n%s\nwant:\n%s", out, want)
	}

	// Every phase, every config, with the namespace column.
	out, _, err = w.run("members", "-A")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"team       carol@example.com     hub     true    Pending      -            BackendNotReady",
		"team       erin@example.com      acme    true    Pending      -            -",
		"team       system:hank           acme    true    Failed       Provisioned  InvalidUser",
		"team       lena@example.com      acme    true    Removed      Provisioned  Synced (deleting)",
		"team       kim@example.com       keep    false   Deactivated  Provisioned  Synced",
		"team       leo@example.com       paused  true    Active       Provisioned  Paused",
	} {
		if !strings.Contains(out, row) {
			t.Errorf("members -A lacks %q:\n%s", row, out)
		}
	}
	if !strings.HasPrefix(out, "NAMESPACE  USER") {
		t.Errorf("members -A has no NAMESPACE column:\n%s", out)
	}

	out, _, err = w.run("members", "--phase", "Invited", "--config", "acme")
	if err != nil || out != "No OrgMembers in namespace team of ScimConfig acme in phase Invited.\n" {
		t.Errorf("members with no match: %q, %v", out, err)
	}
	if _, _, err := w.run("members", "--phase", "Gone"); err == nil ||
		err.Error() != `unknown phase "Gone": use Pending, Invited, Active, Deactivated, Removed, Failed` {
		t.Errorf("members --phase Gone: %v", err)
	}
}

func testExplain(t *testing.T, w *pluginWorld) {
	cases := []struct{ user, why string }{
		{"ALICE@example.com", "alice@example.com is in: active, Synced, 2 bindings grant ClusterRole view and Role apps/deployer"},
		{"u-bob", "bob@example.com is out: deactivated under policy Remove at 2030-03-01T11:00:00Z"},
		{"dave@example.com", "dave@example.com is left alone: Preexisting, adoption is off"},
		{"erin@example.com", "erin@example.com is not in yet: phase Pending, not synced yet"},
		{"frank@example.com", "frank@example.com is out, though it should be in: no binding grants it ClusterRole view and Role apps/deployer (removed outside SCIM?), which the next resync repairs"},
		{"gina@example.com", "gina@example.com is still in: deactivated, but its access is not removed yet (Synced=True Synced: the backend matches the spec)"},
		{"system:hank", `system:hank is not in: the backend refused it (Failed, Synced=False InvalidUser: could not add the member: InvalidUser (Permanent): userName "system:hank" starts with "system:", which Kubernetes reserves for its own identities; refusing to bind roles to it)`},
		{"ivan.new@example.com", "ivan.new@example.com is not in under this name yet: its 2 bindings grant ClusterRole view and Role apps/deployer to its former name ivan@example.com, which the next resync moves to this name"},
		{"judy@example.com", "judy@example.com is on its way out: the OrgMember is being deleted under deletion policy Remove, which has still to take away: 2 bindings grant ClusterRole view and Role apps/deployer"},
		{"lena@example.com", "lena@example.com is on its way out: the OrgMember is being deleted under deletion policy Remove, and it holds nothing any more"},
		{"kim@example.com", "kim@example.com is in: deactivated, access kept under policy Keep, 1 binding grants ClusterRole view"},
		{"leo@example.com", "leo@example.com is in, frozen: ScimConfig paused is disabled, so SCIM changes nothing (1 binding grants ClusterRole view)"},
		{"carol@example.com", "carol@example.com is not in yet: the backend is not ready (ScimConfig hub BackendReady=False InvalidCredentials: dockerhub backend for organization acme-hub: InvalidCredentials (Permanent): exchanging the organization access token of acme-hub: POST /v2/auth/token: 401 Incorrect authentication credentials)"},
	}
	for _, tc := range cases {
		out, _, err := w.run("explain", tc.user)
		if err != nil {
			t.Errorf("explain %s: %v", tc.user, err)
			continue
		}
		if got, want := lastLine(out), "Why: "+tc.why+"."; got != want {
			t.Errorf("explain %s:\n got %s\nwant %s\n%s", tc.user, got, want, out)
		}
	}

	// The whole page of one member: identity, conditions, grants and events.
	out, _, err := w.run("explain", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{
		"OrgMember:  team/u-alice (ScimConfig acme, kubernetes backend)\n",
		"User:       alice@example.com (active=true)\n",
		"Phase:      Active\n",
		"Last sync:  2030-03-01T11:55:00Z (5m ago)\n",
		"  Synced  True    Synced  3h ago  the backend matches the spec\n",
		"  origin:             Provisioned\n",
		"  backendID:          alice@example.com\n",
		"  ClusterRoleBinding alice-view    ClusterRole view    to user alice@example.com\n",
		"  RoleBinding apps/alice-deployer  Role apps/deployer  to user alice@example.com\n",
		"Events (last 10):\n  120m ago  Normal  Added  alice@example.com added to organization acme\n",
		"Why: alice@example.com is in: active, Synced, 2 bindings grant ClusterRole view and Role apps/deployer.\n",
	} {
		if !strings.Contains(out, part) {
			t.Errorf("explain alice lacks %q:\n%s", part, out)
		}
	}
	out, _, err = w.run("explain", "bob@example.com", "--events", "1")
	if err != nil || !strings.Contains(out, "Events (last 1):\n  60m ago  Normal  Deactivated  bob@example.com deactivated") ||
		strings.Contains(out, "added to organization") {
		t.Errorf("explain bob --events 1 shows the last event only: %v\n%s", err, out)
	}
	if _, _, err := w.run("explain", "nobody@example.com"); err == nil ||
		!strings.Contains(err.Error(), `no OrgMember in namespace team has userName or name "nobody@example.com"`) {
		t.Errorf("explain of an unknown user: %v", err)
	}
}

func testPlanKubernetes(t *testing.T, w *pluginWorld) {
	before := bindingsOf(t, w)
	out, _, err := w.run("plan", "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := `Dry run of a full resync of ScimConfig team/acme (kubernetes backend, organization acme); nothing is changed.
member u-hank: user system:hank is refused, Kubernetes reserves the system: prefix (the member stays Failed).
1 orphaned binding stays (a policy left them; a member of the same user claims them).
grant ClusterRole view to user erin@example.com (member u-erin: provision)
grant Role apps/deployer to user erin@example.com (member u-erin: provision)
grant ClusterRole view to user frank@example.com (member u-frank: repair)
grant Role apps/deployer to user frank@example.com (member u-frank: repair)
remove ClusterRole view from user gina@example.com (member u-gina deactivated, policy Remove; ClusterRoleBinding gina-view)
remove Role apps/deployer from user gina@example.com (member u-gina deactivated, policy Remove; RoleBinding apps/gina-deployer)
move ClusterRole view from user ivan@example.com to user ivan.new@example.com (member u-ivan: renamed; ClusterRoleBinding ivan-view)
move Role apps/deployer from user ivan@example.com to user ivan.new@example.com (member u-ivan: renamed; RoleBinding apps/ivan-deployer)
remove ClusterRole view from user judy@example.com (member u-judy deleted, deletion policy Remove; ClusterRoleBinding judy-view)
remove Role apps/deployer from user judy@example.com (member u-judy deleted, deletion policy Remove; RoleBinding apps/judy-deployer)
claim ClusterRole view of user oscar@example.com (member u-oscar: provision: replaces an orphaned (Orphaned) ClusterRoleBinding orphan-oscar-view with its own)
grant Role apps/deployer to user oscar@example.com (member u-oscar: provision)
remove Role apps/old-role from user paul@example.com (member u-paul: role no longer in ScimConfig acme; RoleBinding apps/paul-old-role)
sweep ClusterRoleBinding ghost-view: ClusterRole view to user ghost@example.com (owner gone: OrgMember 5ca1ab1e-0000-4000-8000-000000000000 no longer exists)
14 changes (5 grant, 2 move, 1 claim, 5 remove, 1 sweep); 12 members: 4 unchanged, 1 left alone (Preexisting), 0 waiting, 7 changed.
`
	if out != want {
		t.Errorf("plan acme:\n%s\nwant:\n%s", out, want)
	}
	if after := bindingsOf(t, w); after != before {
		t.Errorf("plan changed the bindings:\nbefore %s\nafter  %s", before, after)
	}

	// grantLayout Webhook: a ledger grant is held, a binding of the Bindings layout moves
	out, _, err = w.run("plan", "hooked")
	if err != nil || !strings.Contains(out, "\nrelayout ClusterRole view of user hugo@example.com (member u-hugo: grantLayout Webhook; ClusterRoleBinding hugo-view)\n") ||
		lastLine(out) != "1 change (1 relayout); 2 members: 1 unchanged, 0 left alone (Preexisting), 0 waiting, 1 changed." {
		t.Errorf("plan hooked: %v\n%s", err, out)
	}
	out, _, err = w.run("explain", "hazel@example.com")
	if err != nil || !strings.Contains(out, "ClusterRole view (ledger)") || !strings.Contains(out, "OrgGrant "+pluginNS+"/hazel-view") {
		t.Errorf("explain hazel shows her ledger grant: %v\n%s", err, out)
	}

	out, _, err = w.run("plan", "keep")
	if err != nil || lastLine(out) != "No changes; 1 member: 1 unchanged, 0 left alone (Preexisting), 0 waiting, 0 changed." {
		t.Errorf("plan keep: %v\n%s", err, out)
	}
	out, _, err = w.run("plan", "paused")
	if err != nil || out != `Dry run of a full resync of ScimConfig team/paused (kubernetes backend, organization paused); nothing is changed.
ScimConfig paused is disabled: a resync changes nothing in the backend (disabling SCIM never deprovisions anyone).
No changes; 1 member: 0 unchanged, 0 left alone (Preexisting), 1 waiting, 0 changed.
` {
		t.Errorf("plan paused: %v\n%s", err, out)
	}
}

// bindingsOf is every binding of the cluster with its resourceVersion, to prove that a
// plan wrote nothing.
func bindingsOf(t *testing.T, w *pluginWorld) string {
	t.Helper()
	var crbs rbacv1.ClusterRoleBindingList
	var rbs rbacv1.RoleBindingList
	w.must(w.c.List(w.ctx, &crbs))
	w.must(w.c.List(w.ctx, &rbs))
	var b strings.Builder
	for _, o := range crbs.Items {
		b.WriteString(o.Name + "@" + o.ResourceVersion + " ")
	}
	for _, o := range rbs.Items {
		b.WriteString(o.Namespace + "/" + o.Name + "@" + o.ResourceVersion + " ")
	}
	return b.String()
}

func testPlanDockerHub(t *testing.T, w *pluginWorld) {
	emu := hubemu.New(hubemu.Options{Org: "acme-hub", Tokens: map[string]hubemu.TokenSpec{
		hubemu.DefaultToken: {}, readOnlyToken: {ReadOnly: true}}}).Start()
	t.Cleanup(emu.Close)
	// The organization as the operator and its owners left it.
	admin, err := dockerhub.New(dockerhub.Options{BaseURL: emu.URL(), Org: "acme-hub", AccessToken: hubemu.DefaultToken})
	w.must(err)
	for _, who := range []string{"mia@example.com", "rita@old.example.com"} {
		_, err := admin.EnsureMember(w.ctx, backend.DesiredMember{UserName: who, Role: "member"})
		w.must(err)
	}
	emu.AddMember("nick", "nick@example.com", "member")
	emu.AddMember("olga", "olga@example.com", "member")
	emu.AddMember("quinn", "quinn@example.com", "member")
	emu.AddMember("rita", "rita@example.com", "member")
	emu.AddMember("zed", "zed@example.com", "member") // added by hand, no OrgMember
	// accepted as Docker ID sara, whose account email then changed (review F6)
	emu.AddMember("sara", "sara@home.example", "member")
	// deactivated; its Docker ID (account email changed too) never made it into the
	// recorded identities: removeGrants removes status.backendID all the same
	emu.AddMember("tess", "tess@home.example", "member")
	var miaInvite string
	for _, inv := range emu.Invites() {
		if inv.Invitee == "mia@example.com" {
			miaInvite = inv.ID
		}
	}

	w.must(w.c.Create(w.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: pluginNS, Name: "hubok-token"},
		StringData: map[string]string{"token": readOnlyToken}}))
	w.config("hubok", scimv1.ScimConfigSpec{Organization: "acme-hub",
		Backend: scimv1.BackendSpec{Type: scimv1.BackendDockerHub, DockerHub: &scimv1.DockerHubBackend{BaseURL: emu.URL(),
			AccessTokenSecretRef: scimv1.SecretKeyRef{Name: "hubok-token", Key: "token"}, DefaultRole: "member"}}},
		ready(connected())...)
	miaStatus := synced(scimv1.PhaseInvited, scimv1.OriginProvisioned, "", "invited to organization acme-hub as member; waiting for the person to accept")
	miaStatus.InviteID = miaInvite
	miaStatus.GrantedIdentities = []string{"mia@example.com"}
	w.member(member{name: "u-mia", config: "hubok", user: "mia@example.com", status: miaStatus})
	nickStatus := synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "nick", "member of organization acme-hub as member")
	nickStatus.GrantedIdentities = []string{"nick@example.com", "nick"}
	w.member(member{name: "u-nick", config: "hubok", user: "nick@example.com", status: nickStatus,
		docker: &scimv1.DockerUser{Role: "editor", Team: "devs"}})
	olgaStatus := synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "olga", "member of organization acme-hub as member")
	olgaStatus.GrantedIdentities = []string{"olga@example.com", "olga"}
	w.member(member{name: "u-olga", config: "hubok", user: "olga@example.com", inactive: true, status: olgaStatus})
	w.member(member{name: "u-pat", config: "hubok", user: "pat@example.com"})
	w.member(member{name: "u-quinn", config: "hubok", user: "quinn@example.com"})
	ritaStatus := synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "rita", "member of organization acme-hub as member")
	ritaStatus.GrantedIdentities = []string{"rita@old.example.com", "rita@example.com", "rita"}
	w.member(member{name: "u-rita", config: "hubok", user: "rita@example.com", status: ritaStatus})
	saraStatus := synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "sara", "member of organization acme-hub as member")
	saraStatus.GrantedIdentities = []string{"sara@example.com", "sara"}
	w.member(member{name: "u-sara", config: "hubok", user: "sara@example.com", status: saraStatus})
	tessStatus := synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "tess", "member of organization acme-hub as member")
	tessStatus.GrantedIdentities = []string{"tess@example.com"}
	w.member(member{name: "u-tess", config: "hubok", user: "tess@example.com", inactive: true, status: tessStatus})

	emu.ResetLog()
	out, _, err := w.run("plan", "hubok")
	if err != nil {
		t.Fatal(err)
	}
	want := `Dry run of a full resync of ScimConfig team/hubok (dockerhub backend, organization acme-hub); nothing is changed.
2 other people in organization acme-hub are no OrgMember of this config (foreign or orphaned): left alone.
change the role of Docker ID nick in organization acme-hub from member to editor (member u-nick: role change)
add Docker ID nick to team devs (member u-nick: its team hint)
remove Docker ID olga from organization acme-hub (member u-olga deactivated, policy Remove)
invite pat@example.com to organization acme-hub as member (member u-pat: provision)
cancel the invitation of rita@old.example.com to organization acme-hub (member u-rita: a former identity)
remove Docker ID tess from organization acme-hub (member u-tess deactivated, policy Remove)
6 changes (1 invite, 1 change, 1 add, 2 remove, 1 cancel); 8 members: 2 unchanged, 1 left alone (Preexisting), 0 waiting, 5 changed.
`
	if out != want {
		t.Errorf("plan hubok:\n%s\nwant:\n%s", out, want)
	}
	// Read calls only: the token exchange, then GETs (and the token is read-only anyway).
	for _, r := range emu.Requests() {
		if r.Method != "GET" && !(r.Method == "POST" && r.Path == "/v2/auth/token") {
			t.Errorf("plan made a write: %s %s", r.Method, r.Path)
		}
	}
	if n := len(emu.Requests()); n == 0 || n > 4 {
		t.Errorf("plan made %d requests for 8 members; want one listing (token, members, invites)", n)
	}

	out, _, err = w.run("explain", "nick@example.com")
	if err != nil || lastLine(out) != "Why: nick@example.com is in: active, Synced, Docker ID nick is a member of organization acme-hub." ||
		!strings.Contains(out, "  grantedIdentities:  nick@example.com, nick\n") {
		t.Errorf("explain nick: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Organization acme-hub (read now from the backend):\n  state:      member\n  Docker ID:  nick\n  role:       member\n  teams:      -\n") {
		t.Errorf("explain nick shows no observation of the organization:\n%s", out)
	}
	// Listed under the Docker ID it accepted as only: explain finds it as the controller does.
	out, _, err = w.run("explain", "sara@example.com")
	if want := "Why: sara@example.com is in: active, Synced, Docker ID sara is a member of organization acme-hub."; err != nil || lastLine(out) != want {
		t.Errorf("explain sara: %v\n got %s\nwant %s\n%s", err, lastLine(out), want, out)
	}
	// Removed by hand on Docker Hub: explain reads the organization, not the status.
	if !emu.RemoveMember("rita") {
		t.Fatal("rita is no member")
	}
	out, _, err = w.run("explain", "rita@example.com")
	if want := "Why: rita@example.com is out, though it should be in: organization acme-hub has no member rita@example.com (removed outside SCIM?), which the next resync repairs."; err != nil || lastLine(out) != want {
		t.Errorf("explain rita removed by hand: %v\n got %s\nwant %s\n%s", err, lastLine(out), want, out)
	}
	out, _, err = w.run("explain", "u-mia")
	if want := "Why: mia@example.com is not in yet: invited to organization acme-hub (invitation " + miaInvite + "), waiting for the person to accept."; err != nil || lastLine(out) != want {
		t.Errorf("explain mia: %v\n got %s\nwant %s", err, lastLine(out), want)
	}

	// Someone who may not read the token Secret is told what plan needs.
	w.must(w.c.Create(w.ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "scim-viewer"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{scimv1.GroupVersion.Group}, Resources: []string{"*"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterrolebindings", "rolebindings"}, Verbs: []string{"list"}},
	}}))
	w.must(w.c.Create(w.ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "scim-viewer"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "scim-viewer"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "viewer"}}}))
	_, _, err = w.runAs(w.viewer, "plan", "hubok")
	if err == nil || !strings.HasPrefix(err.Error(), "plan on a dockerhub ScimConfig needs the organization access token: you may not read Secret team/hubok-token") {
		t.Errorf("plan hubok without Secret access: %v", err)
	}
	if out, _, err := w.runAs(w.viewer, "plan", "keep"); err != nil || !strings.HasPrefix(lastLine(out), "No changes") {
		t.Errorf("plan keep as a viewer: %v\n%s", err, out)
	}
}

// hubConfig starts an emulated organization and a ready ScimConfig reading it with the
// read-only token.
func hubConfig(t *testing.T, w *pluginWorld, name, org string) *hubemu.Emulator {
	t.Helper()
	emu := hubemu.New(hubemu.Options{Org: org, Tokens: map[string]hubemu.TokenSpec{
		hubemu.DefaultToken: {}, readOnlyToken: {ReadOnly: true}}}).Start()
	t.Cleanup(emu.Close)
	w.must(w.c.Create(w.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: pluginNS, Name: name + "-token"},
		StringData: map[string]string{"token": readOnlyToken}}))
	w.config(name, scimv1.ScimConfigSpec{Organization: org,
		Backend: scimv1.BackendSpec{Type: scimv1.BackendDockerHub, DockerHub: &scimv1.DockerHubBackend{BaseURL: emu.URL(),
			AccessTokenSecretRef: scimv1.SecretKeyRef{Name: name + "-token", Key: "token"}, DefaultRole: "member"}}},
		ready(connected())...)
	return emu
}

// testPlanDockerHubTeams: plan reports team hints as the member controller acts on them:
// nothing for a member already in its team, and the leave of a former hinted team.
func testPlanDockerHubTeams(t *testing.T, w *pluginWorld) {
	emu := hubConfig(t, w, "hubteams", "acme-teams")
	emu.AddMember("nick", "nick@example.com", "editor")
	emu.AddMember("vera", "vera@example.com", "member")
	emu.AddMember("sam", "sam@example.com", "member") // no OrgMember: never taken out of a team
	emu.AddTeam("devs", "nick")
	emu.AddTeam("qa", "vera", "sam")
	group := func(name, display string) {
		w.must(w.c.Create(w.ctx, &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: pluginNS, Name: name},
			Spec: scimv1.OrgGroupSpec{ConfigName: "hubteams", DisplayName: display}}))
	}
	group("g-ops", "ops")               // team ops does not exist yet; nick is its member
	group("g-ops2", "x:acme-teams:ops") // the same team at Docker Hub (review 23 F1), created later: waits
	group("g-qa", "acme-teams:qa")      // no members: vera (managed) leaves, sam (foreign) stays
	nick := synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "nick", "member of organization acme-teams as editor")
	nick.GrantedIdentities, nick.HintedTeam = []string{"nick@example.com", "nick"}, "devs"
	tnick := w.member(member{name: "t-nick", config: "hubteams", user: "nick@example.com", status: nick,
		docker: &scimv1.DockerUser{Role: "editor", Team: "devs"}})
	tnick.Labels[scimv1.LabelGroupPrefix+"g-ops"] = ""
	w.must(w.c.Update(w.ctx, tnick))
	vera := synced(scimv1.PhaseActive, scimv1.OriginProvisioned, "vera", "member of organization acme-teams as member")
	vera.GrantedIdentities, vera.HintedTeam = []string{"vera@example.com", "vera"}, "qa"
	// the hint names the organization: it is team devs, as the member controller resolves it
	w.member(member{name: "t-vera", config: "hubteams", user: "vera@example.com", status: vera,
		docker: &scimv1.DockerUser{Team: "acme-teams: devs"}})

	emu.ResetLog()
	out, _, err := w.run("plan", "hubteams")
	if err != nil {
		t.Fatal(err)
	}
	want := `Dry run of a full resync of ScimConfig team/hubteams (dockerhub backend, organization acme-teams); nothing is changed.
2 other people in organization acme-teams are no OrgMember of this config (foreign or orphaned): left alone.
OrgGroup g-ops2 waits: team ops is synced by OrgGroup g-ops, created earlier.
remove Docker ID vera from team qa (member t-vera: its former team hint)
add Docker ID vera to team devs (member t-vera: its team hint)
create team ops (OrgGroup g-ops)
add Docker ID nick to team ops (OrgGroup g-ops: a member of the group)
4 changes (1 create, 2 add, 1 remove); 2 members: 1 unchanged, 0 left alone (Preexisting), 0 waiting, 1 changed.
`
	if out != want {
		t.Errorf("plan hubteams:\n%s\nwant:\n%s", out, want)
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" && !(r.Method == "POST" && r.Path == "/v2/auth/token") {
			t.Errorf("plan made a write: %s %s", r.Method, r.Path)
		}
	}

	// explain shows the organization's view of the member, and its OrgGroups.
	var v scimv1.OrgMember
	w.must(w.c.Get(w.ctx, client.ObjectKey{Namespace: pluginNS, Name: "t-vera"}, &v))
	v.Labels[scimv1.LabelGroupPrefix+"g-gone"] = ""
	v.Labels[scimv1.LabelGroupPrefix+"g-ops2"] = ""
	w.must(w.c.Update(w.ctx, &v))
	out, _, err = w.run("explain", "vera@example.com")
	for _, part := range []string{
		"Organization acme-teams (read now from the backend):\n  state:      member\n  Docker ID:  vera\n  role:       member\n  teams:      qa\n",
		// the group's team as Docker Hub names it (review 25 F7)
		"OrgGroups (labels " + scimv1.LabelGroupPrefix + "<name>):\n  g-gone  (no such OrgGroup)\n  g-ops2  x:acme-teams:ops (team ops)\n",
		"Why: vera@example.com is in: active, Synced, Docker ID vera is a member of organization acme-teams.\n",
	} {
		if err != nil || !strings.Contains(out, part) {
			t.Errorf("explain vera lacks %q: %v\n%s", part, err, out)
		}
	}
	for _, r := range emu.Requests() {
		if r.Method != "GET" && !(r.Method == "POST" && r.Path == "/v2/auth/token") {
			t.Errorf("explain made a write: %s %s", r.Method, r.Path)
		}
	}
}

// testPlanKubernetesGroups: an OrgGroup on kubernetes is its Group grant: plan reports the
// grant missing, and nothing for a group whose bindings grant every role to its Group.
func testPlanKubernetesGroups(t *testing.T, w *pluginWorld) {
	cfg := w.config("kgroups", scimv1.ScimConfigSpec{Organization: "kgroups",
		Backend: scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: []string{"view"}}}},
		ready(connected())...)
	group := func(name, display string) *scimv1.OrgGroup {
		g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: pluginNS, Name: name},
			Spec: scimv1.OrgGroupSpec{ConfigName: "kgroups", DisplayName: display}}
		w.must(w.c.Create(w.ctx, g))
		return g
	}
	group("k-eng", "eng") // no binding yet
	ops := group("k-ops", "kgroups:ops")
	w.must(w.c.Create(w.ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scim-g-ops-view", Labels: map[string]string{
			k8sbackend.LabelConfig: cfg.Name, k8sbackend.LabelConfigNamespace: cfg.Namespace,
			k8sbackend.LabelTeam: k8sbackend.TeamHash("ops"), k8sbackend.LabelOwnerUID: string(ops.UID), k8sbackend.LabelOwnerKind: "OrgGroup"}},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "ops"}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"}}))

	before := bindingsOf(t, w)
	out, _, err := w.run("plan", "kgroups")
	if err != nil {
		t.Fatal(err)
	}
	want := `Dry run of a full resync of ScimConfig team/kgroups (kubernetes backend, organization kgroups); nothing is changed.
grant ClusterRole view to group eng (OrgGroup k-eng: its team)
1 change (1 grant); 0 members: 0 unchanged, 0 left alone (Preexisting), 0 waiting, 0 changed.
`
	if out != want {
		t.Errorf("plan kgroups:\n%s\nwant:\n%s", out, want)
	}
	if after := bindingsOf(t, w); after != before {
		t.Errorf("plan changed the bindings:\nbefore %s\nafter  %s", before, after)
	}
}

func testRotate(t *testing.T, w *pluginWorld) {
	w.config("external", scimv1.ScimConfigSpec{Organization: "external",
		TokenSecretRef: &scimv1.SecretKeyRef{Name: "idp-token", Key: "token"},
		Backend:        scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{ClusterRoles: []string{"view"}}}},
		ready(connected())...)
	_, stderr, err := w.run("rotate", "external")
	want := `cannot rotate the token of ScimConfig external: it is an external token, read from Secret idp-token key "token" (spec.tokenSecretRef), and the operator only rotates the tokens it generates; put a new token in that Secret, then give it to the IdP`
	if err == nil || err.Error() != want || !strings.Contains(stderr, "Error: "+want) {
		t.Errorf("rotate external: %v\nstderr: %s", err, stderr)
	}
	var cfg scimv1.ScimConfig
	w.must(w.c.Get(w.ctx, client.ObjectKey{Namespace: pluginNS, Name: "external"}, &cfg))
	if _, ok := cfg.Annotations[scimv1.AnnotationRotateToken]; ok {
		t.Errorf("rotate annotated a config whose token it cannot rotate: %v", cfg.Annotations)
	}

	out, _, err := w.run("rotate", "acme")
	if err != nil || !strings.HasPrefix(out, "acme annotated "+scimv1.AnnotationRotateToken+"=") {
		t.Errorf("rotate acme: %v\n%s", err, out)
	}
	w.must(w.c.Get(w.ctx, client.ObjectKey{Namespace: pluginNS, Name: "acme"}, &cfg))
	if cfg.Annotations[scimv1.AnnotationRotateToken] == "" {
		t.Errorf("rotate acme did not annotate it")
	}
}
