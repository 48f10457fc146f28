package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/backend/dockerhub"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/plan"
)

func planCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "plan CONFIG",
		Short: "Dry run: what a full resync of a ScimConfig would change in its backend",
		Long: `Plans every OrgMember of the ScimConfig with the controllers' own planner
(internal/plan) against what the backend shows now, and prints one line per change a
full resync would make, then a summary. Nothing is changed.

kubernetes backend: the config's bindings are listed once with your kubeconfig (you need
list on clusterrolebindings and on rolebindings in all namespaces); the plan also lists
the bindings whose owner is gone, which the config's sweep deletes.

dockerhub backend: the organization is read with the organization access token, which
plan reads from the Secret spec.backend.dockerhub.accessTokenSecretRef names, with your
own credentials (you need get on that Secret). Only read calls are made: the token
exchange, the members list, the invitations list, and each OrgGroup's team and its members.
OrgGroups are planned with the OrgGroup controller's planner: the team created, members
added and removed. A renamed group's cleanup of its former team, and a group's deletion,
are noted, not planned.

OrgGroups on kubernetes: a group's team is its Group grant (every configured role bound
to the Group its displayName names, by bindings labelled with the group's UID); plan
reports the roles missing from it (grant), or bound to a former Group name (move).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			return runPlan(cmd.Context(), c, ns, args[0], cmd.OutOrStdout())
		},
	}
}

// planner collects the lines of one plan.
type planner struct {
	cfg   *scimv1.ScimConfig
	lines []string
	// counts of changes by verb, and of members by outcome
	verbs                         map[string]int
	unchanged, leftAlone, waiting int
	notes                         []string
	// claimed are the unowned bindings a member takes over (by object words).
	claimed map[string]bool
	// teamOps are the team membership changes reported (verb|id|team, the team as the
	// backend names it: teamKey).
	teamOps map[string]bool
	teamKey plan.TeamKey
}

func (p *planner) add(verb, format string, args ...any) {
	p.lines = append(p.lines, verb+" "+fmt.Sprintf(format, args...))
	p.verbs[verb]++
}

func runPlan(ctx context.Context, c client.Client, ns, name string, out io.Writer) error {
	cfg := &scimv1.ScimConfig{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cfg); err != nil {
		return err
	}
	var all scimv1.OrgMemberList
	if err := c.List(ctx, &all, client.InNamespace(ns)); err != nil {
		return err
	}
	var members []*scimv1.OrgMember
	for i := range all.Items {
		if all.Items[i].Spec.ConfigName == cfg.Name {
			members = append(members, &all.Items[i])
		}
	}
	sort.Slice(members, func(i, j int) bool {
		return strings.ToLower(members[i].Spec.UserName) < strings.ToLower(members[j].Spec.UserName)
	})
	var groups scimv1.OrgGroupList
	if err := c.List(ctx, &groups, client.InNamespace(ns)); err != nil {
		return err
	}
	typ := cfg.Spec.Backend.Type
	if typ == "" {
		typ = scimv1.BackendKubernetes
	}
	p := &planner{cfg: cfg, verbs: map[string]int{}, claimed: map[string]bool{}, teamOps: map[string]bool{}}
	fmt.Fprintf(out, "Dry run of a full resync of ScimConfig %s/%s (%s backend, organization %s); nothing is changed.\n",
		cfg.Namespace, cfg.Name, typ, cfg.Spec.Organization)

	switch {
	case !cfg.DeletionTimestamp.IsZero():
		pol := policies(cfg)
		what := "removes every grant its members and groups own"
		if !cfg.IsEnabled() || pol.Deletion == scimv1.DeletionOrphan {
			what = "leaves every grant in place, marked orphaned"
		}
		_, err := fmt.Fprintf(out, "ScimConfig %s is being deleted: its members no longer act, and its finalizer %s (deletion policy %s%s).\n",
			cfg.Name, what, pol.Deletion, disabledWords(cfg))
		return err
	case !cfg.IsEnabled():
		p.notes = append(p.notes, fmt.Sprintf("ScimConfig %s is disabled: a resync changes nothing in the backend (disabling SCIM never deprovisions anyone)", cfg.Name))
	case plan.BackendNotReady(cfg):
		c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionBackendReady)
		p.notes = append(p.notes, fmt.Sprintf("ScimConfig %s's backend is not ready (BackendReady=False %s: %s): members wait, only removals are tried",
			cfg.Name, c.Reason, short(c.Message)))
	}

	var err error
	switch typ {
	case scimv1.BackendKubernetes:
		err = p.kubernetes(ctx, c, members, groups.Items)
	case scimv1.BackendDockerHub:
		err = p.dockerHub(ctx, c, members, groups.Items)
	default:
		err = fmt.Errorf("ScimConfig %s: backend type %q is not one plan knows (kubernetes, dockerhub)", cfg.Name, typ)
	}
	if err != nil {
		return err
	}
	for _, n := range p.notes {
		fmt.Fprintln(out, n+".")
	}
	for _, l := range p.lines {
		fmt.Fprintln(out, l)
	}
	_, err = fmt.Fprintln(out, p.summary(len(members)))
	return err
}

func disabledWords(cfg *scimv1.ScimConfig) string {
	if !cfg.IsEnabled() {
		return ", and the config is disabled"
	}
	return ""
}

// verbOrder is the order the summary counts changes in.
var verbOrder = []string{"grant", "move", "claim", "relabel", "relayout", "invite", "create", "change", "add", "remove", "cancel", "orphan", "sweep"}

func (p *planner) summary(members int) string {
	n := 0
	var parts []string
	for _, v := range verbOrder {
		if c := p.verbs[v]; c > 0 {
			n += c
			parts = append(parts, fmt.Sprintf("%d %s", c, v))
		}
	}
	s := "No changes"
	if n > 0 {
		s = fmt.Sprintf("%d %s (%s)", n, plural(n, "change", "changes"), strings.Join(parts, ", "))
	}
	return fmt.Sprintf("%s; %d %s: %d unchanged, %d left alone (Preexisting), %d waiting, %d changed.",
		s, members, plural(members, "member", "members"), p.unchanged, p.leftAlone, p.waiting,
		members-p.unchanged-p.leftAlone-p.waiting)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// planMember runs the planner for one member and the backend's step handlers; it counts
// the member's outcome.
func (p *planner) planMember(in plan.MemberInput, do func(plan.Step, plan.MemberPlan)) {
	pl := plan.Member(in)
	switch {
	case pl.Wait != plan.WaitNone:
		p.waiting++
		return
	case in.Origin == scimv1.OriginPreexisting || pl.Origin == scimv1.OriginPreexisting:
		p.leftAlone++
		return
	}
	before := len(p.lines)
	for _, s := range pl.Steps {
		do(s, pl)
	}
	if len(p.lines) == before {
		p.unchanged++
	}
}

// because says why a member gets access, from the plan's story.
func because(m *scimv1.OrgMember, in plan.MemberInput, pl plan.MemberPlan) string {
	why := ""
	switch pl.Story {
	case plan.StoryProvision:
		why = "provision"
	case plan.StoryRepair:
		why = "repair"
	case plan.StoryReactivate:
		why = "reactivated"
	case plan.StoryRenamed:
		why = "renamed"
	case plan.StoryAdopt:
		why = "adopted"
	case plan.StoryRoleChange:
		why = "role change"
	default:
		why = "repair"
	}
	if !in.Active {
		why = "deactivated, policy Keep keeps its access"
	}
	return fmt.Sprintf("member %s: %s", m.Name, why)
}

// removal says why a member's access goes.
func removal(m *scimv1.OrgMember, in plan.MemberInput) string {
	if in.Deleting {
		return fmt.Sprintf("member %s deleted, deletion policy Remove", m.Name)
	}
	return fmt.Sprintf("member %s deactivated, policy Remove", m.Name)
}

// ---------------------------------------------------------------------------------------
// kubernetes

func (p *planner) kubernetes(ctx context.Context, c client.Client, members []*scimv1.OrgMember, groups []scimv1.OrgGroup) error {
	gs, err := listGrants(ctx, c, configSelector(p.cfg))
	if err != nil {
		return fmt.Errorf("plan reads the config's bindings with your kubeconfig: %w", err)
	}
	// The backend's read methods see the bindings through the snapshot, which refuses
	// every write.
	b := k8sbackend.New(&snapshot{grants: gs}, p.cfg)
	roles := configuredRoles(p.cfg)
	for _, m := range members {
		in := memberInput(m, p.cfg, true, nil)
		var obs backend.Member
		if plan.NeedsObservation(in) {
			if obs, err = b.ObserveMember(ctx, m.Spec.UserName); err != nil {
				return fmt.Errorf("observing %s: %w", m.Spec.UserName, err)
			}
		}
		in = observed(in, m, obs)
		p.planMember(in, func(s plan.Step, pl plan.MemberPlan) {
			switch s {
			case plan.StepEnsure:
				p.kubeEnsure(m, in, pl, gs, roles)
			case plan.StepRemove:
				for _, g := range ownedBy(gs, m, true) {
					p.add("remove", "%s from %s (%s; %s)", g.role(), g.subject(), removal(m, in), g.object())
				}
			case plan.StepOrphan:
				for _, g := range ownedBy(gs, m, false) {
					p.add("orphan", "%s of %s (member %s deleted, deletion policy Orphan: left in place, marked orphaned; %s)",
						g.role(), g.subject(), m.Name, g.object())
				}
			}
		})
	}

	orphans := 0
	for _, g := range gs {
		if _, ok := g.orphaned(); ok && !p.claimed[g.object()] {
			orphans++
		}
	}
	if orphans > 0 {
		p.notes = append(p.notes, fmt.Sprintf("%d orphaned %s stay%s (a policy left them; a member of the same user claims them)",
			orphans, plural(orphans, "binding", "bindings"), plural(orphans, "s", "")))
	}
	if err := p.kubeGroups(ctx, b, gs, roles, groups); err != nil {
		return err
	}

	// The sweep (the ScimConfig controller) deletes owned bindings whose owner is gone; it
	// does not run while the config is disabled or its backend not ready.
	if !p.cfg.IsEnabled() || plan.BackendNotReady(p.cfg) {
		return nil
	}
	live := map[string]bool{}
	for _, m := range members {
		live[string(m.UID)] = true
	}
	for i := range groups {
		if groups[i].Spec.ConfigName == p.cfg.Name {
			live[string(groups[i].UID)] = true
		}
	}
	for _, g := range gs {
		if o := g.owner(); o != "" && !live[o] {
			kind := g.Labels[k8sbackend.LabelOwnerKind]
			if kind == "" {
				kind = "owner"
			}
			p.add("sweep", "%s: %s to %s (owner gone: %s %s no longer exists)", g.object(), g.role(), g.subject(), kind, o)
		}
	}
	return nil
}

// kubeGroups plans the config's live OrgGroups with plan.Group as the OrgGroup controller
// does on kubernetes (labelled grants, no user teams): the group's team is its Group
// grant, observed with the backend's own ObserveTeamOwned on the snapshot; when it is
// not whole, each configured role the group's bindings do not grant to its Group is
// reported (moved when the group's binding names another Group: a renamed group).
func (p *planner) kubeGroups(ctx context.Context, b *k8sbackend.Backend, gs []grant, roles []configuredRole, groups []scimv1.OrgGroup) error {
	var mine []scimv1.OrgGroup
	for i := range groups {
		if groups[i].Spec.ConfigName == p.cfg.Name {
			mine = append(mine, groups[i])
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Name < mine[j].Name })
	for i := range mine {
		g := &mine[i]
		if !g.DeletionTimestamp.IsZero() {
			p.notes = append(p.notes, fmt.Sprintf("OrgGroup %s is being deleted: what its deletion does to its Group bindings is not planned", g.Name))
			continue
		}
		in := plan.GroupInput{Config: plan.ConfigStateOf(p.cfg), Policies: p.cfg.Spec.Policies, Labelled: true, NoUserTeams: true,
			Team: plan.TeamName(g.Spec.DisplayName), TeamCreated: g.Status.TeamCreated}
		in.Former = plan.FormerTeam(g.Status.Team, in.Team, plan.TeamKeyOf(b))
		if plan.NeedsGroupObservation(in) {
			t, err := b.ObserveTeamOwned(ctx, backend.Owner{Kind: "OrgGroup", UID: string(g.UID)}, in.Team)
			if err != nil {
				return fmt.Errorf("observing the Group bindings of OrgGroup %s: %w", g.Name, err)
			}
			in.Observed = t
		}
		gp := plan.Group(in)
		if gp.Wait != plan.WaitNone || !gp.Has(plan.GroupEnsureTeam) {
			continue
		}
		var own []grant
		for _, x := range gs {
			if x.owner() == string(g.UID) {
				own = append(own, x)
			}
		}
		for _, r := range roles {
			var held, other *grant
			for j := range own {
				x := &own[j]
				if !r.heldBy(*x) {
					continue
				}
				if len(x.Subjects) == 1 && x.Subjects[0].Kind == rbacv1.GroupKind && x.Subjects[0].Name == in.Team {
					held = x
				} else if other == nil {
					other = x
				}
			}
			switch {
			case held != nil && held.ledger() != webhookLayout(p.cfg):
				p.add("relayout", "%s of group %s (OrgGroup %s: grantLayout %s; %s)", r.words(), in.Team, g.Name, layoutOf(p.cfg), held.object())
			case held != nil:
			case other != nil:
				p.add("move", "%s from %s to group %s (OrgGroup %s: renamed; %s)", r.words(), other.subject(), in.Team, g.Name, other.object())
			default:
				p.add("grant", "%s to group %s (OrgGroup %s: its team)", r.words(), in.Team, g.Name)
			}
		}
	}
	return nil
}

// ownedBy are the member's grants among gs: those labelled with its UID, and, with
// unowned, the bindings of its userName no owner holds (EnsureOwnerAbsent removes both;
// OrphanOwner marks the first).
func ownedBy(gs []grant, m *scimv1.OrgMember, unowned bool) []grant {
	h := k8sbackend.MemberHash(m.Spec.UserName)
	var out []grant
	for _, g := range gs {
		if g.owner() == string(m.UID) || (unowned && g.owner() == "" && g.Labels[k8sbackend.LabelMember] == h) {
			out = append(out, g)
		}
	}
	return out
}

// kubeEnsure is what the backend's EnsureMember would write for the member: every
// configured role bound to its userName by a binding labelled with its UID, and the
// member's other bindings (and the unowned ones of its userName) deleted. Bindings are
// matched by owner, namespace and role rather than by name, so this reports changes of
// access and ownership, not a binding renamed with the same access.
func (p *planner) kubeEnsure(m *scimv1.OrgMember, in plan.MemberInput, pl plan.MemberPlan, gs []grant, roles []configuredRole) {
	uid, u := string(m.UID), m.Spec.UserName
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(u)), "system:") {
		p.notes = append(p.notes, fmt.Sprintf("member %s: user %s is refused, Kubernetes reserves the system: prefix (the member stays Failed)", m.Name, u))
		return
	}
	h := k8sbackend.MemberHash(u)
	var have []grant
	for _, g := range gs {
		if g.Labels[k8sbackend.LabelMember] == h || g.owner() == uid {
			have = append(have, g)
		}
	}
	used := make([]bool, len(have))
	pick := func(ok func(grant) bool) int {
		for i, g := range have {
			if !used[i] && ok(g) {
				used[i] = true
				return i
			}
		}
		return -1
	}
	why := because(m, in, pl)
	for _, r := range roles {
		if i := pick(func(g grant) bool { return g.owner() == uid && r.heldBy(g) }); i >= 0 {
			g := have[i]
			_, orphan := g.orphaned()
			switch {
			case g.user() != u:
				p.add("move", "%s from %s to user %s (%s; %s)", r.words(), g.subject(), u, why, g.object())
			case g.ledger() != webhookLayout(p.cfg):
				p.add("relayout", "%s of user %s (member %s: grantLayout %s; %s)", r.words(), u, m.Name, layoutOf(p.cfg), g.object())
			case orphan || g.Labels[k8sbackend.LabelMember] != h || g.Labels[k8sbackend.LabelOwnerKind] != "OrgMember":
				p.add("relabel", "%s of user %s (%s: its labels are incomplete; %s)", r.words(), u, m.Name, g.object())
			}
			continue
		}
		if i := pick(func(g grant) bool { return g.owner() == "" && r.heldBy(g) }); i >= 0 {
			g := have[i]
			from := "an unowned"
			if reason, ok := g.orphaned(); ok {
				from = "an orphaned (" + reason + ")"
			}
			p.claimed[g.object()] = true
			p.add("claim", "%s of user %s (%s: replaces %s %s with its own)", r.words(), u, why, from, g.object())
			continue
		}
		p.add("grant", "%s to user %s (%s)", r.words(), u, why)
	}
	for i, g := range have {
		if used[i] || (g.owner() != "" && g.owner() != uid) {
			continue // another owner's binding: the sweep decides about it
		}
		reason := "a second binding of the same role"
		if !configured(roles, g) {
			reason = "role no longer in ScimConfig " + p.cfg.Name
		}
		p.add("remove", "%s from %s (member %s: %s; %s)", g.role(), g.subject(), m.Name, reason, g.object())
	}
}

func configured(roles []configuredRole, g grant) bool {
	for _, r := range roles {
		if r.heldBy(g) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------
// dockerhub

// hub is the organization as one listing shows it: members and pending invitations.
type hub struct{ all []backend.Member }

// find returns who the backend's own lookup finds under ids (the userName, the email or a
// recorded identity): members by Docker ID or email, then invitations by invitee, each
// case-insensitively, in the order of ids (as dockerhub.Backend's observe does).
func (h hub) find(ids ...string) (members, invites []backend.Member) {
	seen := map[string]bool{}
	var want []string
	for _, id := range ids {
		if id = strings.TrimSpace(id); id != "" && !seen[strings.ToLower(id)] {
			seen[strings.ToLower(id)] = true
			want = append(want, id)
		}
	}
	got := map[string]bool{}
	for _, id := range want {
		for _, x := range h.all {
			if x.State == backend.StateMember && !got[strings.ToLower(x.BackendID)] &&
				(strings.EqualFold(x.BackendID, id) || (x.Email != "" && strings.EqualFold(x.Email, id))) {
				got[strings.ToLower(x.BackendID)] = true
				members = append(members, x)
			}
		}
	}
	for _, x := range h.all {
		if x.State != backend.StateInvited {
			continue
		}
		for _, id := range want {
			if strings.EqualFold(x.UserName, id) {
				invites = append(invites, x)
				break
			}
		}
	}
	return members, invites
}

// observe is dockerhub.Backend.ObserveMemberWithEmail answered from the listing, asked as
// the member controller asks it: under plan.LookupIdentities (the userName, the email and
// the Docker ID the member accepted under). The backend searches the Docker ID only when
// the others find no member; a member found under them comes first here too, so the
// answer is the same.
func (h hub) observe(m *scimv1.OrgMember) backend.Member {
	userName := m.Spec.UserName
	members, invites := h.find(plan.LookupIdentities(m, false)...)
	switch {
	case len(members) > 0:
		x := members[0]
		x.UserName = userName
		return x
	case len(invites) > 0:
		x := invites[0]
		x.UserName = userName
		return x
	}
	return backend.Member{UserName: userName, State: backend.StateAbsent}
}

// dockerHubBackend reads the organization token with the user's credentials and returns
// the backend; plan calls only its ListMembers.
func dockerHubBackend(ctx context.Context, c client.Client, cfg *scimv1.ScimConfig) (*dockerhub.Backend, error) {
	dh := cfg.Spec.Backend.DockerHub
	if dh == nil {
		return nil, fmt.Errorf("ScimConfig %s has no spec.backend.dockerhub", cfg.Name)
	}
	ref := dh.AccessTokenSecretRef
	var s corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: cfg.Namespace, Name: ref.Name}, &s)
	switch {
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("plan on a dockerhub ScimConfig needs the organization access token: you may not read Secret %s/%s "+
			"(spec.backend.dockerhub.accessTokenSecretRef); ask for get on it, or run plan as someone who has it: %w", cfg.Namespace, ref.Name, err)
	case err != nil:
		return nil, fmt.Errorf("reading the organization access token from Secret %s/%s: %w", cfg.Namespace, ref.Name, err)
	case len(s.Data[ref.Key]) == 0:
		return nil, fmt.Errorf("Secret %s/%s has no key %q (spec.backend.dockerhub.accessTokenSecretRef): no organization access token to read with",
			cfg.Namespace, ref.Name, ref.Key)
	}
	rpm := int(dh.RequestsPerMinute)
	if rpm <= 0 {
		rpm = dockerhub.DefaultRequestsPerMinute
	}
	return dockerhub.New(dockerhub.Options{BaseURL: dh.BaseURL, Org: cfg.Spec.Organization, AccessToken: string(s.Data[ref.Key]),
		DefaultRole: dh.DefaultRole, Limiter: dockerhub.SharedLimiter(cfg.Spec.Organization, rpm), Log: logr.Discard()})
}

// readHub lists the organization once, read-only, as plan and explain observe it; it
// returns the backend too, for plan's read-only team observations.
func readHub(ctx context.Context, c client.Client, cfg *scimv1.ScimConfig) (hub, *dockerhub.Backend, error) {
	b, err := dockerHubBackend(ctx, c, cfg)
	if err != nil {
		return hub{}, nil, err
	}
	all, err := b.ListMembers(ctx)
	if err != nil {
		return hub{}, nil, fmt.Errorf("reading organization %s: %w", cfg.Spec.Organization, err)
	}
	return hub{all: all}, b, nil
}

func (p *planner) dockerHub(ctx context.Context, c client.Client, members []*scimv1.OrgMember, groups []scimv1.OrgGroup) error {
	if !p.cfg.IsEnabled() {
		// Nothing would change: the organization is not read (and its token not used).
		for range members {
			p.waiting++
		}
		return nil
	}
	h, b, err := readHub(ctx, c, p.cfg)
	if err != nil {
		return err
	}
	p.teamKey = plan.TeamKeyOf(b)
	all := h.all
	org := p.cfg.Spec.Organization
	defaultRole := "member"
	if dh := p.cfg.Spec.Backend.DockerHub; dh.DefaultRole != "" {
		defaultRole = dh.DefaultRole
	}
	accounted := map[string]bool{}
	for _, m := range members {
		for _, id := range append(removedIdentities(m), m.Status.BackendID) {
			ms, is := h.find(id)
			for _, x := range append(ms, is...) {
				accounted[personKey(x)] = true
			}
		}
		in := memberInput(m, p.cfg, false, p.teamKey)
		obs := h.observe(m)
		in = observed(in, m, obs)
		removeFound := func(why string, ids ...string) {
			ms, is := h.find(ids...)
			for _, x := range ms {
				p.add("remove", "Docker ID %s from organization %s (%s)", x.BackendID, org, why)
			}
			for _, x := range is {
				p.add("cancel", "the invitation of %s to organization %s (%s)", x.UserName, org, why)
			}
		}
		p.planMember(in, func(s plan.Step, pl plan.MemberPlan) {
			switch s {
			case plan.StepEnsure:
				role := in.WantRole
				if role == "" {
					role = defaultRole
				}
				switch obs.State {
				case backend.StateMember:
					if obs.Role != role {
						p.add("change", "the role of Docker ID %s in organization %s from %s to %s (%s)", obs.BackendID, org, obs.Role, role, because(m, in, pl))
					}
				case backend.StateAbsent:
					p.add("invite", "%s to organization %s as %s (%s)", inviteeFor(m), org, role, because(m, in, pl))
				}
			case plan.StepRemoveStale:
				removeFound(fmt.Sprintf("member %s: a former identity", m.Name), in.Stale...)
			case plan.StepLeaveTeam:
				// The member controller takes the member out of its former hinted team
				// unless one of its groups maps to that team; the backend changes only
				// when the listing shows the member in it.
				if obs.State == backend.StateMember && plan.InTeam(obs.Teams, p.teamKey.Name(in.FormerTeam)) && !groupKeeps(m, groups, in.FormerTeam, p.teamKey) {
					p.team("remove", obs.BackendID, in.FormerTeam, "Docker ID %s from team %s (member %s: its former team hint)", obs.BackendID, in.FormerTeam, m.Name)
				}
			case plan.StepJoinTeam:
				// As the member controller: an invitee has no Docker ID to add yet, and a
				// member already in the team is left as it is.
				if obs.State == backend.StateMember && obs.BackendID != "" && !plan.InTeam(obs.Teams, in.Team) {
					p.team("add", obs.BackendID, in.Team, "Docker ID %s to team %s (member %s: its team hint)", obs.BackendID, in.Team, m.Name)
				}
			case plan.StepRemove:
				removeFound(removal(m, in), removedIdentities(m)...)
			}
		})
	}
	others := 0
	for _, x := range all {
		if !accounted[personKey(x)] {
			others++
		}
	}
	if others > 0 {
		p.notes = append(p.notes, fmt.Sprintf("%d other %s in organization %s %s no OrgMember of this config (foreign or orphaned): left alone",
			others, plural(others, "person", "people"), org, plural(others, "is", "are")))
	}
	return p.dockerHubGroups(ctx, b, members, groups)
}

// dockerHubGroups plans the config's live OrgGroups with plan.Group, from the inputs the
// OrgGroup controller builds (the team observed read-only, the wanted and removable ids
// from the OrgMembers), and reports team creations and team membership changes.
func (p *planner) dockerHubGroups(ctx context.Context, b *dockerhub.Backend, members []*scimv1.OrgMember, groups []scimv1.OrgGroup) error {
	var mine []scimv1.OrgGroup
	for i := range groups {
		if groups[i].Spec.ConfigName == p.cfg.Name {
			mine = append(mine, groups[i])
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Name < mine[j].Name })
	key := p.teamKey
	all := make([]scimv1.OrgMember, 0, len(members))
	for _, m := range members {
		all = append(all, *m)
	}
	for i := range mine {
		g := &mine[i]
		if !g.DeletionTimestamp.IsZero() {
			p.notes = append(p.notes, fmt.Sprintf("OrgGroup %s is being deleted: what its deletion does to team %s is not planned", g.Name, dash(g.Status.Team)))
			continue
		}
		in := plan.GroupInput{Config: plan.ConfigStateOf(p.cfg), Policies: p.cfg.Spec.Policies,
			Team: key.Name(plan.TeamName(g.Spec.DisplayName)), TeamCreated: g.Status.TeamCreated}
		in.Former = plan.FormerTeam(g.Status.Team, in.Team, key)
		var owner *scimv1.OrgGroup
		if in.Config == plan.ConfigEnabled {
			owner = plan.TeamOwner(g, mine, key)
			in.Conflict = owner != nil
		}
		if plan.NeedsGroupObservation(in) {
			t, err := b.ObserveTeam(ctx, in.Team)
			if err != nil {
				return fmt.Errorf("observing team %s of OrgGroup %s: %w", in.Team, g.Name, err)
			}
			in.Observed = t
			var of []scimv1.OrgMember
			for j := range all {
				if _, ok := all[j].Labels[scimv1.LabelGroupPrefix+g.Name]; ok && all[j].DeletionTimestamp.IsZero() {
					of = append(of, all[j])
				}
			}
			in.Want = plan.WantedIDs(of)
			in.Removable, in.Hinted = plan.ManagedIDs(all, p.cfg, in.Team, key)
		}
		gp := plan.Group(in)
		if gp.Wait != plan.WaitNone {
			continue
		}
		if gp.Has(plan.GroupLeaveFormer) {
			p.notes = append(p.notes, fmt.Sprintf("OrgGroup %s was renamed from team %s: the cleanup of its former team is not planned", g.Name, in.Former))
		}
		if gp.Conflict {
			p.notes = append(p.notes, fmt.Sprintf("OrgGroup %s waits: team %s is synced by OrgGroup %s, created earlier", g.Name, in.Team, owner.Name))
			continue
		}
		if gp.Has(plan.GroupEnsureTeam) {
			p.add("create", "team %s (OrgGroup %s)", in.Team, g.Name)
		}
		for _, id := range gp.Add {
			p.team("add", id, in.Team, "Docker ID %s to team %s (OrgGroup %s: a member of the group)", id, in.Team, g.Name)
		}
		for _, id := range gp.Remove {
			p.team("remove", id, in.Team, "Docker ID %s from team %s (OrgGroup %s: not a member of the group)", id, in.Team, g.Name)
		}
	}
	return nil
}

// team adds a team membership change once: a member's team hint and a group of the same
// team may both make it.
func (p *planner) team(verb, id, team, format string, args ...any) {
	key := verb + "|" + strings.ToLower(id) + "|" + strings.ToLower(p.teamKey.Name(team))
	if p.teamOps[key] {
		return
	}
	p.teamOps[key] = true
	p.add(verb, format, args...)
}

// groupKeeps tells whether one of the member's live OrgGroups maps to team: the member
// controller then leaves the member in it when a former hint named it.
func groupKeeps(m *scimv1.OrgMember, groups []scimv1.OrgGroup, team string, key plan.TeamKey) bool {
	mine := map[string]bool{}
	for _, name := range index.GroupsOf(m.Labels) {
		mine[name] = true
	}
	for i := range groups {
		g := &groups[i]
		if mine[g.Name] && g.DeletionTimestamp.IsZero() && key.Same(plan.TeamName(g.Spec.DisplayName), team) {
			return true
		}
	}
	return false
}

// personKey identifies an entry of the organization's listing.
func personKey(x backend.Member) string {
	if x.State == backend.StateInvited {
		return "invite:" + x.InviteID
	}
	return "member:" + strings.ToLower(x.BackendID)
}

// layoutOf is the config's grant layout; webhookLayout tells whether it is Webhook: the
// backend's next ensure moves a grant of the other layout to it.
func layoutOf(cfg *scimv1.ScimConfig) scimv1.GrantLayout { return cfg.Spec.Backend.Kubernetes.Layout() }

func webhookLayout(cfg *scimv1.ScimConfig) bool { return layoutOf(cfg) == scimv1.GrantLayoutWebhook }
