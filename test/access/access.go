// Package access reads both sides of the access invariant (docs/access-invariant.md) the
// same way for every suite that checks it:
//
//	identities holding access in the backend  =  identities the policies allow
//
// The left side is read from the backend itself: every binding of a ScimConfig's roles,
// whoever wrote it (KubeHolders), or every member and pending invitation of a Docker Hub
// emulator's organization (HubHolders). test/model compares it with its own model of the
// operations it sent; test/e2e compares it with Wanted, the policies applied to the live
// ScimConfig, OrgMembers and OrgGroups, and with what its journeys did.
package access

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	hubemu "github.com/scim-operator/scim-operator/test/dockerhub"
)

// Grant names one kubernetes grant: a binding of the role-th role of a list to one
// subject ("role0/User/ann@example.com").
func Grant(role int, kind, name string) string { return fmt.Sprintf("role%d/%s/%s", role, kind, name) }

// Role is a role a ScimConfig binds: a ClusterRole bound cluster-wide (Namespace ""), or a
// Role or ClusterRole bound in Namespace by RoleBindings.
type Role struct{ Kind, Namespace, Name string }

// RolesOf lists the roles of a kubernetes ScimConfig in the order Grant numbers them: its
// clusterRoles, then its roles.
func RolesOf(cfg *scimv1.ScimConfig) []Role {
	k := cfg.Spec.Backend.Kubernetes
	if k == nil {
		return nil
	}
	var out []Role
	for _, n := range k.ClusterRoles {
		out = append(out, Role{Kind: "ClusterRole", Name: n})
	}
	for _, r := range k.Roles {
		kind := r.Kind
		if kind == "" {
			kind = "Role"
		}
		out = append(out, Role{Kind: kind, Namespace: r.Namespace, Name: r.Name})
	}
	return out
}

// KubeHolders lists the grants of roles: every subject of every ClusterRoleBinding or
// RoleBinding whose roleRef is one of them, whoever made it (the operator, a person, a
// leftover), as Grant keys; and the subject of every OrgGrant of the Webhook grant layout
// that grants one of them and that the operator's authorization webhook honours: its
// labels name a ScimConfig of the OrgGrant's namespace that exists, is not being deleted,
// has grantLayout Webhook and still lists that role at that scope
// (docs/kubernetes-backend.md). c must read ScimConfigs and OrgGrants as well as bindings.
func KubeHolders(ctx context.Context, c client.Reader, roles []Role) (map[string]bool, error) {
	got := map[string]bool{}
	var crbs rbacv1.ClusterRoleBindingList
	if err := c.List(ctx, &crbs); err != nil {
		return nil, err
	}
	var rbs rbacv1.RoleBindingList
	if err := c.List(ctx, &rbs); err != nil {
		return nil, err
	}
	for i, r := range roles {
		if r.Namespace == "" {
			for _, b := range crbs.Items {
				if b.RoleRef.Kind == r.Kind && b.RoleRef.Name == r.Name {
					for _, s := range b.Subjects {
						got[Grant(i, s.Kind, s.Name)] = true
					}
				}
			}
			continue
		}
		for _, b := range rbs.Items {
			if b.Namespace == r.Namespace && b.RoleRef.Kind == r.Kind && b.RoleRef.Name == r.Name {
				for _, s := range b.Subjects {
					got[Grant(i, s.Kind, s.Name)] = true
				}
			}
		}
	}
	var ogs scimv1.OrgGrantList
	if err := c.List(ctx, &ogs); err != nil {
		return nil, err
	}
	configs := map[string]*scimv1.ScimConfig{} // namespace/name -> the config, nil: none
	for _, b := range ogs.Items {
		g, ok := LedgerGrant(&b)
		if !ok {
			continue
		}
		key := b.Namespace + "/" + b.Labels[scimv1.LabelConfig]
		cfg, seen := configs[key]
		if !seen {
			cfg = &scimv1.ScimConfig{}
			err := c.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: b.Labels[scimv1.LabelConfig]}, cfg)
			if apierrors.IsNotFound(err) {
				cfg = nil
			} else if err != nil {
				return nil, err
			}
			configs[key] = cfg
		}
		if cfg == nil || cfg.DeletionTimestamp != nil || cfg.Spec.Backend.Type != scimv1.BackendKubernetes ||
			cfg.Spec.Backend.Kubernetes.Layout() != scimv1.GrantLayoutWebhook || !slices.Contains(RolesOf(cfg), g) {
			continue
		}
		for i, r := range roles {
			if r == g {
				got[Grant(i, string(b.Spec.Subject.Kind), b.Spec.Subject.Name)] = true
			}
		}
	}
	return got, nil
}

// LedgerGrant reads the role an OrgGrant grants, when the authorizer would read it: it
// names a ScimConfig of its own namespace and its subject is not a system: one.
func LedgerGrant(b *scimv1.OrgGrant) (Role, bool) {
	if b.Labels[scimv1.LabelConfig] == "" || b.Labels["scim.operator.dev/config-namespace"] != b.Namespace ||
		strings.HasPrefix(strings.ToLower(strings.TrimSpace(b.Spec.Subject.Name)), "system:") {
		return Role{}, false
	}
	return Role{Kind: string(b.Spec.Role.Kind), Namespace: b.Spec.Namespace, Name: b.Spec.Role.Name}, true
}

// TeamName is the team an OrgGroup's displayName names ("org:team" -> "team").
func TeamName(displayName string) string {
	name := strings.TrimSpace(displayName)
	if _, t, ok := strings.Cut(name, ":"); ok && strings.TrimSpace(t) != "" {
		return strings.TrimSpace(t)
	}
	return name
}

// wants tells whether the policies let a member hold access: a Provisioned or Adopted
// member that is active, or that was deactivated under deactivation: Keep and never
// deprovisioned since.
func wants(m *scimv1.OrgMember, cfg *scimv1.ScimConfig) bool {
	if m.DeletionTimestamp != nil {
		return false
	}
	if m.Status.Origin != scimv1.OriginProvisioned && m.Status.Origin != scimv1.OriginAdopted {
		return false
	}
	return m.Spec.Active || (cfg.Spec.Policies.Deactivation == scimv1.DeactivationKeep && !m.Status.Deprovisioned)
}

// KubeWanted is what the policies allow on the kubernetes backend, from the live objects of
// an enabled ScimConfig: every role, for the userName (as last sent) of every member the
// policies let hold access, and for the team of every OrgGroup. A disabled config's wanted
// set is frozen at the moment it was disabled, which the objects do not record: it is an
// error.
func KubeWanted(ctx context.Context, c client.Reader, cfg *scimv1.ScimConfig) (map[string]bool, error) {
	if !cfg.IsEnabled() {
		return nil, fmt.Errorf("ScimConfig %s/%s is disabled: what it wants is frozen, not derivable from its objects", cfg.Namespace, cfg.Name)
	}
	roles := RolesOf(cfg)
	want := map[string]bool{}
	var ml scimv1.OrgMemberList
	if err := c.List(ctx, &ml, client.InNamespace(cfg.Namespace)); err != nil {
		return nil, err
	}
	for i := range ml.Items {
		m := &ml.Items[i]
		if m.Spec.ConfigName != cfg.Name || !wants(m, cfg) {
			continue
		}
		for r := range roles {
			want[Grant(r, "User", m.Spec.UserName)] = true
		}
	}
	var gl scimv1.OrgGroupList
	if err := c.List(ctx, &gl, client.InNamespace(cfg.Namespace)); err != nil {
		return nil, err
	}
	for _, g := range gl.Items {
		if g.Spec.ConfigName != cfg.Name || g.DeletionTimestamp != nil {
			continue
		}
		for r := range roles {
			want[Grant(r, "Group", TeamName(g.Spec.DisplayName))] = true
		}
	}
	return want, nil
}

// HubHolders lists the people of a Docker Hub emulator's organization as
// "member:<Docker ID>" and "invite:<invitee>" (folded), leaving out the ones named in
// foreign (the organization's owner, people there before SCIM).
func HubHolders(emu *hubemu.Emulator, foreign ...string) map[string]bool {
	skip := map[string]bool{}
	for _, f := range foreign {
		skip[fold(f)] = true
	}
	got := map[string]bool{}
	for _, m := range emu.Members() {
		if !skip[fold(m.Username)] {
			got["member:"+fold(m.Username)] = true
		}
	}
	for _, inv := range emu.Invites() {
		if !skip[fold(inv.Invitee)] {
			got["invite:"+fold(inv.Invitee)] = true
		}
	}
	return got
}

// HubWanted is what the policies allow on the dockerhub backend, from the live objects of
// an enabled ScimConfig: for every member the policies let hold access, the Docker ID it
// joined under once it is Active, else the invitation to its primary email (its userName
// without one).
func HubWanted(ctx context.Context, c client.Reader, cfg *scimv1.ScimConfig) (map[string]bool, error) {
	if !cfg.IsEnabled() {
		return nil, fmt.Errorf("ScimConfig %s/%s is disabled: what it wants is frozen, not derivable from its objects", cfg.Namespace, cfg.Name)
	}
	var ml scimv1.OrgMemberList
	if err := c.List(ctx, &ml, client.InNamespace(cfg.Namespace)); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for i := range ml.Items {
		m := &ml.Items[i]
		if m.Spec.ConfigName != cfg.Name || !wants(m, cfg) {
			continue
		}
		if m.Status.Phase == scimv1.PhaseActive && m.Status.BackendID != "" {
			want["member:"+fold(m.Status.BackendID)] = true
			continue
		}
		want["invite:"+fold(PrimaryEmail(m))] = true
	}
	return want, nil
}

// PrimaryEmail is the address a Docker Hub invitation goes to: the primary email, else
// the first, else the userName.
func PrimaryEmail(m *scimv1.OrgMember) string {
	for _, e := range m.Spec.Emails {
		if e.Primary && e.Value != "" {
			return e.Value
		}
	}
	for _, e := range m.Spec.Emails {
		if e.Value != "" {
			return e.Value
		}
	}
	return m.Spec.UserName
}

func fold(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Allowed asks the API server's authorizer whether user (with groups) may do what ra
// says: a SubjectAccessReview, the question `kubectl auth can-i --as` asks.
func Allowed(ctx context.Context, c client.Client, user string, groups []string, ra authzv1.ResourceAttributes) (bool, error) {
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &ra}}
	if err := c.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// Diff compares two sets: "" when they are equal, else what is missing from got and
// what got has in excess, sorted.
func Diff(want, got map[string]bool) string {
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return ""
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return fmt.Sprintf("  missing (expected, not there): %v\n  extra (there, not expected): %v", missing, extra)
}

// Keys lists a set's members, sorted and comma-separated (a fingerprint of a state).
func Keys(m map[string]bool) string {
	l := make([]string, 0, len(m))
	for k := range m {
		l = append(l, k)
	}
	sort.Strings(l)
	return strings.Join(l, ", ")
}
