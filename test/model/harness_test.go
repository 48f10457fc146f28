package model

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/manager"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/test/access"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

const (
	schemaUser   = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup  = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaPatch  = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaDocker = "urn:ietf:params:scim:schemas:extension:docker:2.0:User"
	scimToken    = "model-test-token-0123456789abcdef"
	probeUser    = "model-probe"
)

// system is the code under test: one API server, the manager built by manager.New (real
// SCIM HTTP on a loopback port, the real backend registry), restartable.
type system struct {
	rest     *rest.Config
	c        client.Client // uncached, for the test's own reads and writes
	scimAddr string
	webhook  webhookServing // the authorization webhook the API server calls
	httpc    *http.Client
	mgr      ctrl.Manager
	cancel   context.CancelFunc
	done     chan error
	nsN      int
}

func (s *system) start() error {
	mgr, err := manager.New(s.rest, manager.Options{
		MetricsAddr:                  "0",
		ProbeAddr:                    "0",
		ScimAddr:                     s.scimAddr,
		ScimInsecureHTTP:             true, // loopback, and this suite is about access, not TLS
		SkipControllerNameValidation: true,
		// the API server asks it about every user RBAC denies (the Webhook grant layout)
		AuthorizationWebhookAddr:    s.webhook.addr,
		AuthorizationWebhookCertDir: s.webhook.certDir,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.mgr, s.cancel, s.done = mgr, cancel, make(chan error, 1)
	go func() { s.done <- mgr.Start(ctx) }()
	// ready when the SCIM listener and the authorization webhook's answer (both start once
	// the cache has synced): a review before would get no opinion from the webhook
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.httpc.Get("http://" + s.scimAddr + "/scim/v2/")
		if err == nil {
			_ = resp.Body.Close()
			if c, err := net.DialTimeout("tcp", s.webhook.addr, time.Second); err == nil {
				_ = c.Close()
				return nil
			}
		}
		select {
		case err := <-s.done:
			return fmt.Errorf("manager exited while starting: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("the SCIM listener did not answer within 60s")
}

func (s *system) stop() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	select {
	case err := <-s.done:
		s.cancel = nil
		return err
	case <-time.After(60 * time.Second):
		return errors.New("the manager did not stop within 60s")
	}
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// settleOpts bound the wait for the backend to match the model.
type settleOpts struct {
	max   time.Duration // give up after this long
	min   time.Duration // never give up before this long...
	quiet time.Duration // ...unless the backend has not changed for this long either
}

// run is one sequence against the system: a fresh namespace, config and (dockerhub)
// emulator.
type run struct {
	sys    *system
	be     string
	ns     string
	cfg    string
	roles  [2]string // kubernetes: the ClusterRole and the Role (in ns) of the live config
	emu    *hubemu.Emulator
	emus   []*hubemu.Emulator
	uid    map[int]string
	gid    map[int]string
	m      *model
	settle settleOpts
	logf   func(string, ...any)
}

func (s *system) newRun(ctx context.Context, be string, so settleOpts, logf func(string, ...any)) (*run, error) {
	s.nsN++
	r := &run{sys: s, be: be, ns: fmt.Sprintf("mdl-%s-%d", be[:4], s.nsN), uid: map[int]string{}, gid: map[int]string{},
		m: newModel(be), settle: so, logf: logf}
	r.m.webhook = be == kube && seqWebhook
	if err := s.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.ns}}); err != nil {
		return nil, err
	}
	if err := s.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "scim-token"},
		StringData: map[string]string{"token": scimToken}}); err != nil {
		return nil, err
	}
	return r, r.newConfig(ctx)
}

// newConfig creates the live ScimConfig (after a deleted one, a fresh one with new roles
// or a new emulator).
func (r *run) newConfig(ctx context.Context) error {
	c := r.sys.c
	r.cfg = fmt.Sprintf("cfg-%d", r.m.cfgN)
	cfg := &scimv1.ScimConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.cfg},
		Spec: scimv1.ScimConfigSpec{
			Organization:   "acme",
			TokenSecretRef: &scimv1.SecretKeyRef{Name: "scim-token", Key: "token"},
		},
	}
	switch r.be {
	case kube:
		base := r.ns + "-" + r.cfg
		r.roles = [2]string{"model-" + base, "model-" + r.cfg}
		if err := c.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: r.roles[0]},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"},
				ResourceNames: []string{r.roles[0]}}}}); err != nil {
			return err
		}
		if err := c.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.roles[1]},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"},
				ResourceNames: []string{r.roles[1]}}}}); err != nil {
			return err
		}
		layout := scimv1.GrantLayoutBindings
		if r.m.webhook {
			layout = scimv1.GrantLayoutWebhook
		}
		cfg.Spec.Backend = scimv1.BackendSpec{Type: scimv1.BackendKubernetes, Kubernetes: &scimv1.KubernetesBackend{
			GrantLayout:  layout,
			ClusterRoles: []string{r.roles[0]},
			Roles:        []scimv1.NamespacedRole{{Namespace: r.ns, Kind: "Role", Name: r.roles[1]}},
		}}
	case hub:
		org := fmt.Sprintf("%s-%d", r.ns, r.m.cfgN)
		r.emu = hubemu.New(hubemu.Options{Org: org, RateLimit: 0}).Start()
		r.emus = append(r.emus, r.emu)
		secret := "hub-" + r.cfg
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: secret},
			StringData: map[string]string{"token": hubemu.DefaultToken}}); err != nil {
			return err
		}
		cfg.Spec.Organization = org
		cfg.Spec.Backend = scimv1.BackendSpec{Type: scimv1.BackendDockerHub, DockerHub: &scimv1.DockerHubBackend{
			BaseURL:              r.emu.URL(),
			AccessTokenSecretRef: scimv1.SecretKeyRef{Name: secret, Key: "token"},
			DefaultRole:          "member",
			RequestsPerMinute:    6000,
		}}
	}
	if err := c.Create(ctx, cfg); err != nil {
		return err
	}
	// ready when its SCIM endpoint answers
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _, err := r.scim(ctx, http.MethodGet, "/Users?count=1", nil)
		if err == nil && st == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the SCIM endpoint of %s/%s did not answer 200 within 30s (last: %d %v)", r.ns, r.cfg, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// close leaves nothing running: the config is disabled (its members stop), emulators stop.
func (r *run) close(ctx context.Context) {
	var cfg scimv1.ScimConfig
	if err := r.sys.c.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: r.cfg}, &cfg); err == nil {
		orig := cfg.DeepCopy()
		f := false
		cfg.Spec.Enabled = &f
		_ = r.sys.c.Patch(ctx, &cfg, client.MergeFrom(orig))
	}
	for _, e := range r.emus {
		e.Close()
	}
}

// ---- SCIM over HTTP ----

func (r *run) scim(ctx context.Context, method, path string, body any) (int, map[string]any, error) {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	url := "http://" + r.sys.scimAddr + naming.BasePath(r.ns, r.cfg) + path
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(raw))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+scimToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := r.sys.httpc.Do(req)
		if err != nil {
			if time.Now().Before(deadline) {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			return 0, nil, err
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond) // as an IdP does: retry later
			continue
		}
		out := map[string]any{}
		_ = json.Unmarshal(b, &out)
		if resp.StatusCode >= 300 {
			out["_body"] = string(b)
		}
		return resp.StatusCode, out, nil
	}
}

func userBody(name, email, team string, active bool) map[string]any {
	b := map[string]any{"schemas": []string{schemaUser}, "userName": name, "active": active}
	if email != "" {
		b["emails"] = []any{map[string]any{"value": email, "primary": true, "type": "work"}}
	}
	if team != "" {
		b["schemas"] = []string{schemaUser, schemaDocker}
		b[schemaDocker] = map[string]any{"dockerTeam": team}
	}
	return b
}

func patch(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{schemaPatch}, "Operations": ops}
}

// exec runs one operation on the system and returns an error when the system answered
// other than the model expects.
func (r *run) exec(ctx context.Context, op Op, want outcome) error {
	switch op.Kind {
	case opCreateUser, opPutUser, opRename, opDeactivate, opReactivate, opEmail, opTeam, opDeleteUser,
		opCreateGroup, opRenameGroup, opGroupAdd, opGroupRemove, opDeleteGroup:
		return r.execSCIM(ctx, op, want)
	case opKubectlDelete:
		var obj client.Object
		if op.U >= 0 {
			obj = &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.uid[op.U]}}
		} else {
			obj = &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.gid[op.G]}}
		}
		if err := r.sys.c.Delete(ctx, obj); err != nil {
			return fmt.Errorf("kubectl delete: %w", err)
		}
		r.waitGone(ctx, obj)
		return nil
	case opPolicy, opEnable:
		var cfg scimv1.ScimConfig
		if err := r.sys.c.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: r.cfg}, &cfg); err != nil {
			return err
		}
		orig := cfg.DeepCopy()
		if op.Kind == opPolicy {
			cfg.Spec.Policies.Deletion = scimv1.DeletionPolicy(op.Deletion)
			cfg.Spec.Policies.Deactivation = scimv1.DeactivationPolicy(op.Deact)
		} else {
			v := op.Active
			cfg.Spec.Enabled = &v
		}
		if err := r.sys.c.Patch(ctx, &cfg, client.MergeFrom(orig)); err != nil {
			return err
		}
		r.waitConfigSeen(ctx, cfg.Generation)
		if op.Kind == opEnable && op.Active {
			r.waitAllResumed(ctx)
		}
		return nil
	case opDriftRemove:
		return r.driftRemove(ctx, op)
	case opDriftForeign:
		return r.driftForeign(ctx, op)
	case opAccept:
		if err := r.emu.AcceptInvite(op.Name, op.Email); err != nil {
			r.logf("    (accept: %v)", err)
		}
		return nil
	case opRestart:
		if err := r.sys.stop(); err != nil {
			return fmt.Errorf("stopping the manager: %w", err)
		}
		if err := r.sys.start(); err != nil {
			return fmt.Errorf("starting the manager again: %w", err)
		}
		return nil
	case opDeleteConfig:
		cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.cfg}}
		if err := r.sys.c.Delete(ctx, cfg); err != nil {
			return err
		}
		r.waitGone(ctx, cfg)
		return nil
	case opCheck:
		return nil
	}
	return fmt.Errorf("unknown op %s", op.Kind)
}

func (r *run) execSCIM(ctx context.Context, op Op, want outcome) error {
	var method, path string
	var body any
	switch op.Kind {
	case opCreateUser:
		method, path, body = http.MethodPost, "/Users", userBody(op.Name, op.Email, op.Team, true)
	case opPutUser:
		method, path, body = http.MethodPut, "/Users/"+r.uid[op.U], userBody(op.Name, op.Email, op.Team, op.Active)
	case opRename:
		method, path, body = http.MethodPatch, "/Users/"+r.uid[op.U],
			patch(map[string]any{"op": "replace", "path": "userName", "value": op.Name})
	case opDeactivate, opReactivate:
		method, path, body = http.MethodPatch, "/Users/"+r.uid[op.U],
			patch(map[string]any{"op": "replace", "path": "active", "value": op.Kind == opReactivate})
	case opEmail:
		o := map[string]any{"op": "remove", "path": "emails"}
		if op.Email != "" {
			o = map[string]any{"op": "replace", "path": "emails",
				"value": []any{map[string]any{"value": op.Email, "primary": true, "type": "work"}}}
		}
		method, path, body = http.MethodPatch, "/Users/"+r.uid[op.U], patch(o)
	case opTeam:
		o := map[string]any{"op": "remove", "path": schemaDocker + ":dockerTeam"}
		if op.Team != "" {
			o = map[string]any{"op": "replace", "path": schemaDocker + ":dockerTeam", "value": op.Team}
		}
		method, path, body = http.MethodPatch, "/Users/"+r.uid[op.U], patch(o)
	case opDeleteUser:
		method, path = http.MethodDelete, "/Users/"+r.uid[op.U]
	case opCreateGroup:
		members := []any{}
		for _, h := range op.Members {
			members = append(members, map[string]any{"value": r.uid[h]})
		}
		method, path, body = http.MethodPost, "/Groups",
			map[string]any{"schemas": []string{schemaGroup}, "displayName": op.Name, "members": members}
	case opRenameGroup:
		method, path, body = http.MethodPatch, "/Groups/"+r.gid[op.G],
			patch(map[string]any{"op": "replace", "path": "displayName", "value": op.Name})
	case opGroupAdd:
		method, path, body = http.MethodPatch, "/Groups/"+r.gid[op.G],
			patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": r.uid[op.U]}}})
	case opGroupRemove:
		method, path, body = http.MethodPatch, "/Groups/"+r.gid[op.G],
			patch(map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, r.uid[op.U])})
	case opDeleteGroup:
		method, path = http.MethodDelete, "/Groups/"+r.gid[op.G]
	}
	st, res, err := r.scim(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if st != want.status {
		return fmt.Errorf("%s %s answered %d, the model expects %d: %v", method, path, st, want.status, res["_body"])
	}
	if st >= 300 {
		return nil
	}
	switch op.Kind {
	case opCreateUser:
		id, _ := res["id"].(string)
		r.uid[op.U] = id
		r.waitMember(ctx, id)
	case opCreateGroup:
		id, _ := res["id"].(string)
		r.gid[op.G] = id
		r.waitGroup(ctx, id)
	case opPutUser, opRename, opDeactivate, opReactivate, opEmail, opTeam:
		r.waitMember(ctx, r.uid[op.U])
	case opRenameGroup:
		r.waitGroup(ctx, r.gid[op.G])
	case opDeleteUser:
		r.waitGone(ctx, &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.uid[op.U]}})
	case opDeleteGroup:
		r.waitGone(ctx, &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.gid[op.G]}})
	}
	return nil
}

// ---- quiescence: the controllers have processed the last operation ----

// quiesceTimeout bounds each wait: a controller that never gets there is not failed here,
// the settle check that follows judges what it did.
const quiesceTimeout = 15 * time.Second

func poll(ctx context.Context, d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// processed tells whether an object's controller has handled its current generation:
// synced, paused, waiting for its config, or failed for good.
func processed(gen, obsGen int64, conds []metav1.Condition, phase scimv1.MemberPhase) bool {
	c := meta.FindStatusCondition(conds, scimv1.ConditionSynced)
	if obsGen != gen || c == nil || c.ObservedGeneration != gen {
		return false
	}
	switch {
	case c.Status == metav1.ConditionTrue:
		return true
	case c.Reason == "Paused" || c.Reason == "ConfigNotFound" || c.Reason == "TeamConflict":
		return true
	case phase == scimv1.PhaseFailed:
		return true
	}
	return false
}

func (r *run) waitMember(ctx context.Context, id string) {
	ok := poll(ctx, quiesceTimeout, func() bool {
		var m scimv1.OrgMember
		if err := r.sys.c.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: id}, &m); err != nil {
			return apierrors.IsNotFound(err)
		}
		return processed(m.Generation, m.Status.ObservedGeneration, m.Status.Conditions, m.Status.Phase)
	})
	if !ok {
		r.logf("    (OrgMember %s not processed within %s)", id, quiesceTimeout)
	}
}

func (r *run) waitGroup(ctx context.Context, id string) {
	ok := poll(ctx, quiesceTimeout, func() bool {
		var g scimv1.OrgGroup
		if err := r.sys.c.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: id}, &g); err != nil {
			return apierrors.IsNotFound(err)
		}
		return processed(g.Generation, g.Status.ObservedGeneration, g.Status.Conditions, "")
	})
	if !ok {
		r.logf("    (OrgGroup %s not processed within %s)", id, quiesceTimeout)
	}
}

func (r *run) waitGone(ctx context.Context, obj client.Object) {
	ok := poll(ctx, 30*time.Second, func() bool {
		err := r.sys.c.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
		return apierrors.IsNotFound(err)
	})
	if !ok {
		r.logf("    (%T %s still there after 30s)", obj, obj.GetName())
	}
}

// waitConfigSeen waits until the manager's cache shows the config's generation, so that
// the next operation is handled under the new spec.
func (r *run) waitConfigSeen(ctx context.Context, gen int64) {
	poll(ctx, quiesceTimeout, func() bool {
		var cfg scimv1.ScimConfig
		err := r.sys.mgr.GetClient().Get(ctx, types.NamespacedName{Namespace: r.ns, Name: r.cfg}, &cfg)
		return err == nil && cfg.Generation >= gen
	})
}

// waitAllResumed waits until the members and groups of an enabled config are no longer
// paused: members are observed (origins decided) before the next operation.
func (r *run) waitAllResumed(ctx context.Context) {
	ok := poll(ctx, quiesceTimeout, func() bool {
		var ml scimv1.OrgMemberList
		var gl scimv1.OrgGroupList
		if r.sys.c.List(ctx, &ml, client.InNamespace(r.ns)) != nil || r.sys.c.List(ctx, &gl, client.InNamespace(r.ns)) != nil {
			return false
		}
		for _, m := range ml.Items {
			if c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced); m.Spec.ConfigName == r.cfg &&
				(c == nil || c.Reason == "Paused") {
				return false
			}
		}
		for _, g := range gl.Items {
			if c := meta.FindStatusCondition(g.Status.Conditions, scimv1.ConditionSynced); g.Spec.ConfigName == r.cfg &&
				(c == nil || c.Reason == "Paused") {
				return false
			}
		}
		return true
	})
	if !ok {
		r.logf("    (members still paused %s after enabling)", quiesceTimeout)
	}
}

// ---- drift made by hand ----

func scimLabelled(l map[string]string) bool {
	_, a := l[scimv1.LabelConfig]
	_, b := l["scim.operator.dev/config-namespace"]
	return a || b
}

func (r *run) driftRemove(ctx context.Context, op Op) error {
	c := r.sys.c
	if r.be == kube {
		match := func(ref rbacv1.RoleRef, subj []rbacv1.Subject, l map[string]string) bool {
			if !scimLabelled(l) {
				return false
			}
			for _, s := range subj {
				if s.Kind == op.SubjKind && s.Name == op.Name {
					return true
				}
			}
			return false
		}
		roles := []access.Role{{Kind: "ClusterRole", Name: r.roles[0]}, {Kind: "Role", Namespace: r.ns, Name: r.roles[1]}}
		if op.Role == 0 {
			var l rbacv1.ClusterRoleBindingList
			if err := c.List(ctx, &l); err != nil {
				return err
			}
			for i := range l.Items {
				b := &l.Items[i]
				if b.RoleRef.Kind == "ClusterRole" && b.RoleRef.Name == r.roles[0] && match(b.RoleRef, b.Subjects, b.Labels) {
					if err := c.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
						return err
					}
				}
			}
		}
		// RoleBindings of the role in its namespace
		var l rbacv1.RoleBindingList
		if err := c.List(ctx, &l, client.InNamespace(r.ns)); err != nil {
			return err
		}
		for i := range l.Items {
			b := &l.Items[i]
			g := access.Role{Kind: b.RoleRef.Kind, Namespace: b.Namespace, Name: b.RoleRef.Name}
			if g == roles[op.Role] && match(b.RoleRef, b.Subjects, b.Labels) {
				if err := c.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
					return err
				}
			}
		}
		// the Webhook layout's OrgGrants (in the config's namespace, r.ns) of either role
		var ogs scimv1.OrgGrantList
		if err := c.List(ctx, &ogs, client.InNamespace(r.ns)); err != nil {
			return err
		}
		for i := range ogs.Items {
			b := &ogs.Items[i]
			g, _ := access.LedgerGrant(b)
			if g == roles[op.Role] && scimLabelled(b.Labels) &&
				string(b.Spec.Subject.Kind) == op.SubjKind && b.Spec.Subject.Name == op.Name {
				if err := c.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
					return err
				}
			}
		}
		return nil
	}
	kind, id, _ := strings.Cut(op.Name, ":")
	if kind == "member" {
		for _, mv := range r.emu.Members() {
			if fold(mv.Username) == id {
				r.emu.RemoveMember(mv.Username)
			}
		}
		return nil
	}
	for _, inv := range r.emu.Invites() {
		if fold(inv.Invitee) == id {
			r.emu.ExpireInvite(inv.ID)
		}
	}
	return nil
}

func (r *run) driftForeign(ctx context.Context, op Op) error {
	if r.be == hub {
		r.emu.AddMember(op.Name, op.Email, "member")
		return nil
	}
	r.sys.nsN++
	name := fmt.Sprintf("hand-%d", r.sys.nsN)
	subj := []rbacv1.Subject{{Kind: op.SubjKind, APIGroup: rbacv1.GroupName, Name: op.Name}}
	if op.Role == 0 {
		return r.sys.c.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.roles[0]},
			Subjects: subj})
	}
	return r.sys.c.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.roles[1]},
		Subjects: subj})
}

// ---- settle and check ----

func (r *run) requestReconcile(ctx context.Context) {
	var cfg scimv1.ScimConfig
	if err := r.sys.c.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: r.cfg}, &cfg); err != nil {
		return
	}
	orig := cfg.DeepCopy()
	if cfg.Annotations == nil {
		cfg.Annotations = map[string]string{}
	}
	cfg.Annotations[scimv1.AnnotationReconcile] = time.Now().UTC().Format(time.RFC3339Nano)
	_ = r.sys.c.Patch(ctx, &cfg, client.MergeFrom(orig))
}

// check settles the config (a reconcile-requested annotation, repeated) and waits until
// the backend holds exactly the identities the model expects. It gives up after
// settle.max, or once settle.min has passed and the backend has not changed for
// settle.quiet while it was asked to reconcile again and again.
func (r *run) check(ctx context.Context) error {
	start := time.Now()
	r.requestReconcile(ctx)
	lastReq := time.Now()
	var last string
	stable := time.Now()
	for {
		diff, state := r.diff(ctx)
		if diff == "" {
			return nil
		}
		if state != last {
			last, stable = state, time.Now()
		}
		el := time.Since(start)
		if el > r.settle.max || (el > r.settle.min && time.Since(stable) > r.settle.quiet) {
			return fmt.Errorf("after %s the backend does not hold what the model expects:\n%s\nmodel:\n%s\nobjects:\n%s",
				el.Round(time.Second), diff, r.m.describe(), r.objects(ctx))
		}
		if time.Since(lastReq) > 3*time.Second {
			r.requestReconcile(ctx)
			lastReq = time.Now()
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// diff compares the backend with the model: "" when they match; state is a fingerprint of
// what was observed (to tell a backend that still changes from one at rest).
func (r *run) diff(ctx context.Context) (diff, state string) {
	if r.be == hub {
		got := map[string]bool{}
		for _, mv := range r.emu.Members() {
			got["member:"+fold(mv.Username)] = true
		}
		for _, inv := range r.emu.Invites() {
			got["invite:"+fold(inv.Invitee)] = true
		}
		d := access.Diff(r.m.hubPeople(), got)
		if d != "" {
			d = "dockerhub members and invitations:\n" + d
		}
		return d, access.Keys(got)
	}
	got, err := r.bindings(ctx)
	if err != nil {
		return "listing bindings: " + err.Error(), "error"
	}
	want := r.m.kubeGrants()
	if d := access.Diff(want, got); d != "" {
		return "bindings of the config's roles (role/kind/subject):\n" + d, access.Keys(got)
	}
	// the API server's authorizer agrees, for every identity the test ever uses
	var wrong []string
	users := map[string]bool{probeUser: true}
	for _, u := range append(append([]string{}, userNamePool...), foreignUsers...) {
		users[u] = true
	}
	groups := map[string]bool{}
	for _, g := range append(append([]string{}, foreignGroups...), teamHintPool...) {
		groups[g] = true
	}
	for _, g := range groupNamePool {
		groups[teamName(g)] = true
	}
	// In either layout: the API server authorizes with RBAC, then the manager's webhook
	// (TestMain), so the Bindings layout's RoleBindings and the Webhook layout's OrgGrants
	// must both give exactly the access the model wants, and a Bindings config must get
	// nothing more from the webhook.
	for role := 0; role < 2; role++ {
		for u := range users {
			if allowed, err := r.sar(ctx, role, u, nil); err != nil {
				return "SubjectAccessReview: " + err.Error(), "error"
			} else if allowed != want[access.Grant(role, "User", u)] {
				wrong = append(wrong, fmt.Sprintf("role%d User %q allowed=%v", role, u, allowed))
			}
		}
		for g := range groups {
			if allowed, err := r.sar(ctx, role, probeUser, []string{g}); err != nil {
				return "SubjectAccessReview: " + err.Error(), "error"
			} else if allowed != want[access.Grant(role, "Group", g)] {
				wrong = append(wrong, fmt.Sprintf("role%d Group %q allowed=%v", role, g, allowed))
			}
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		return "SubjectAccessReview disagrees with the model: " + strings.Join(wrong, "; "), access.Keys(got) + strings.Join(wrong, ";")
	}
	return "", access.Keys(got)
}

// bindings lists the grants of the live config's roles: every ClusterRoleBinding and
// RoleBinding in the cluster whose roleRef is one of them, whoever made it.
func (r *run) bindings(ctx context.Context) (map[string]bool, error) {
	return access.KubeHolders(ctx, r.sys.c, []access.Role{
		{Kind: "ClusterRole", Name: r.roles[0]}, {Kind: "Role", Namespace: r.ns, Name: r.roles[1]}})
}

func (r *run) sar(ctx context.Context, role int, user string, groups []string) (bool, error) {
	ra := authzv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Name: r.roles[role], Namespace: "default"}
	if role == 1 {
		ra.Namespace = r.ns
	}
	return access.Allowed(ctx, r.sys.c, user, groups, ra)
}

// objects describes the namespace's members and groups, for failure reports.
func (r *run) objects(ctx context.Context) string {
	var b strings.Builder
	var ml scimv1.OrgMemberList
	if err := r.sys.c.List(ctx, &ml, client.InNamespace(r.ns)); err == nil {
		for _, m := range ml.Items {
			c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced)
			reason := ""
			if c != nil {
				reason = c.Reason
			}
			fmt.Fprintf(&b, "  OrgMember %s config=%s userName=%q active=%v phase=%s origin=%s backendID=%q synced=%s %q\n",
				m.Name, m.Spec.ConfigName, m.Spec.UserName, m.Spec.Active, m.Status.Phase, m.Status.Origin, m.Status.BackendID,
				reason, m.Status.Message)
		}
	}
	var gl scimv1.OrgGroupList
	if err := r.sys.c.List(ctx, &gl, client.InNamespace(r.ns)); err == nil {
		for _, g := range gl.Items {
			fmt.Fprintf(&b, "  OrgGroup %s config=%s displayName=%q team=%q\n", g.Name, g.Spec.ConfigName, g.Spec.DisplayName, g.Status.Team)
		}
	}
	if r.be == hub {
		for _, mv := range r.emu.Members() {
			fmt.Fprintf(&b, "  hub member %q email=%q\n", mv.Username, mv.Email)
		}
		for _, inv := range r.emu.Invites() {
			fmt.Fprintf(&b, "  hub invite %q\n", inv.Invitee)
		}
	}
	return b.String()
}
