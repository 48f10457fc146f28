package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/controllers"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/backend/dockerhub"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/plan"
)

func explainCmd(e *env) *cobra.Command {
	var config string
	var all bool
	var events int
	cmd := &cobra.Command{
		Use:   "explain USER",
		Short: "Why a member is in or out: conditions, events, backend identities, grants, one sentence",
		Long: `Explains one OrgMember, found by userName (case-insensitively) or by its SCIM id (the
OrgMember's name): its conditions, its last events, the identities the backend knows it
by (status.backendID, inviteID, grantedIdentities, origin, deprovisioned), the grants it
holds (kubernetes backend: the bindings labelled with its UID; Docker Hub: the identities
it recorded, and the member as the organization shows it now, read-only, with its role and
teams), its OrgGroups, and one sentence saying why it is, or is not, in.

On Docker Hub the organization is read with the organization access token from the
Secret spec.backend.dockerhub.accessTokenSecretRef names (you need get on it), as plan
does; when it cannot be read, the verdict falls back to the member's status.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			members, err := listMembers(cmd.Context(), c, ns, all, config)
			if err != nil {
				return err
			}
			var found []*scimv1.OrgMember
			for _, m := range members {
				if m.Name == args[0] || strings.EqualFold(m.Spec.UserName, strings.TrimSpace(args[0])) {
					found = append(found, m)
				}
			}
			if len(found) == 0 {
				where := "in namespace " + ns
				if all {
					where = "in any namespace"
				}
				return fmt.Errorf("no OrgMember %s%s has userName or name %q (kubectl scim members lists them)", where, filterWords(config, ""), args[0])
			}
			sort.Slice(found, func(i, j int) bool {
				if found[i].Namespace != found[j].Namespace {
					return found[i].Namespace < found[j].Namespace
				}
				return found[i].Spec.ConfigName < found[j].Spec.ConfigName
			})
			for i, m := range found {
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				if err := explain(cmd.Context(), c, m, events, cmd.OutOrStdout()); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "only a member of this ScimConfig")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "look in every namespace")
	cmd.Flags().IntVar(&events, "events", 10, "how many of the last events to show")
	return cmd
}

// facts are what the verdict is decided from.
type facts struct {
	m   *scimv1.OrgMember
	cfg *scimv1.ScimConfig // nil: not found, or being deleted
	// kube: the config's backend labels its grants (kubernetes); held and missing are known.
	kube bool
	// held are the bindings the member owns whose subject is its current userName.
	held []grant
	// missing are the configured roles none of held grants.
	missing []configuredRole
	// former are the bindings the member owns that still name another user (a rename the
	// controller has not caught up with).
	former []grant
	// deactivated is when the last Deactivated event happened (nil: none found).
	deactivated *time.Time
	// obs is the member as the Docker Hub organization shows it now (nil: not read).
	obs *backend.Member
}

func explain(ctx context.Context, c client.Client, m *scimv1.OrgMember, nEvents int, out io.Writer) error {
	f := facts{m: m}
	cfg := &scimv1.ScimConfig{}
	switch err := c.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: m.Spec.ConfigName}, cfg); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading ScimConfig %s/%s: %w", m.Namespace, m.Spec.ConfigName, err)
	case cfg.DeletionTimestamp.IsZero():
		f.cfg = cfg
	}
	backendType := "ScimConfig not found"
	if f.cfg != nil {
		backendType = string(scimv1.BackendKubernetes) + " backend"
		if t := f.cfg.Spec.Backend.Type; t != "" {
			backendType = string(t) + " backend"
		}
	}
	// The grants are listed by owner UID whatever the config says: a member of a config
	// that is gone may still own bindings.
	isKube := f.cfg == nil || f.cfg.Spec.Backend.Type != scimv1.BackendDockerHub
	var owned []grant
	var grantErr error
	if isKube {
		owned, grantErr = listGrants(ctx, c, ownerSelector(string(m.UID)))
		f.kube = f.cfg != nil && grantErr == nil
		for _, g := range owned {
			_, orphan := g.orphaned()
			switch {
			case orphan:
			case g.user() == m.Spec.UserName:
				f.held = append(f.held, g)
			case g.user() != "":
				f.former = append(f.former, g)
			}
		}
		if f.cfg != nil {
			for _, r := range configuredRoles(f.cfg) {
				if !containsRole(f.held, r) {
					f.missing = append(f.missing, r)
				}
			}
		}
	}
	// Docker Hub: the member observed in the organization, read-only, as plan observes it.
	var (
		obsErr error
		key    plan.TeamKey // how the backend names teams, once it is read
	)
	readOrg := !isKube && f.cfg != nil && !plan.BackendNotReady(f.cfg)
	if readOrg {
		var h hub
		var b *dockerhub.Backend
		if h, b, obsErr = readHub(ctx, c, f.cfg); obsErr == nil {
			obs := h.observe(m)
			f.obs = &obs
			key = plan.TeamKeyOf(b)
		}
	}
	evs, evErr := memberEvents(ctx, c, m)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Reason == controllers.EventDeactivated {
			t := eventTime(&evs[i])
			f.deactivated = &t
			break
		}
	}

	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "OrgMember:\t%s/%s (ScimConfig %s, %s)\n", m.Namespace, m.Name, m.Spec.ConfigName, backendType)
	fmt.Fprintf(w, "User:\t%s (active=%t)\n", m.Spec.UserName, m.Spec.Active)
	fmt.Fprintf(w, "Phase:\t%s\n", phaseOf(m))
	fmt.Fprintf(w, "Last sync:\t%s\n", syncWords(m.Status.LastSyncTime))
	if msg := m.Status.Message; msg != "" {
		fmt.Fprintf(w, "Message:\t%s\n", msg)
	}
	if !m.DeletionTimestamp.IsZero() {
		fmt.Fprintf(w, "Deleting:\tsince %s (finalizers: %s)\n", stamp(m.DeletionTimestamp.Time), strings.Join(m.Finalizers, ", "))
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out, "Conditions:")
	if len(m.Status.Conditions) == 0 {
		fmt.Fprintln(out, "  none yet: no controller has looked at this member")
	} else {
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  TYPE\tSTATUS\tREASON\tSINCE\tMESSAGE")
		for _, cond := range m.Status.Conditions {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", cond.Type, cond.Status, cond.Reason, age(&cond.LastTransitionTime), cond.Message)
		}
		w.Flush()
	}

	fmt.Fprintln(out, "Backend identity:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "  origin:\t%s\n", dash(string(m.Status.Origin)))
	fmt.Fprintf(w, "  backendID:\t%s\n", dash(m.Status.BackendID))
	fmt.Fprintf(w, "  inviteID:\t%s\n", dash(m.Status.InviteID))
	fmt.Fprintf(w, "  grantedIdentities:\t%s\n", dash(strings.Join(m.Status.GrantedIdentities, ", ")))
	fmt.Fprintf(w, "  deprovisioned:\t%t\n", m.Status.Deprovisioned)
	w.Flush()

	if isKube {
		fmt.Fprintf(out, "Grants (bindings labelled %s=%s):\n", k8sbackend.LabelOwnerUID, m.UID)
		switch {
		case grantErr != nil:
			fmt.Fprintf(out, "  cannot list them: %v\n", grantErr)
		case len(owned) == 0:
			fmt.Fprintln(out, "  none")
		default:
			w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, g := range owned {
				note := ""
				if why, ok := g.orphaned(); ok {
					note = "  (orphaned: " + why + ")"
				}
				fmt.Fprintf(w, "  %s\t%s\tto %s%s\n", g.object(), g.role(), g.subject(), note)
			}
			w.Flush()
		}
	} else {
		fmt.Fprintln(out, "Grants (Docker Hub keeps no labels; the identities this member was granted access under):")
		if len(m.Status.GrantedIdentities) == 0 {
			fmt.Fprintln(out, "  none recorded")
		}
		for _, id := range m.Status.GrantedIdentities {
			fmt.Fprintf(out, "  %s\n", id)
		}
		if readOrg {
			fmt.Fprintf(out, "Organization %s (read now from the backend):\n", f.cfg.Spec.Organization)
			writeObserved(out, f.obs, obsErr)
		}
	}
	if err := writeGroups(ctx, c, m, key, out); err != nil {
		return err
	}

	fmt.Fprintf(out, "Events (last %d):\n", nEvents)
	switch {
	case evErr != nil:
		fmt.Fprintf(out, "  cannot list them: %v\n", evErr)
	case len(evs) == 0:
		fmt.Fprintln(out, "  none (events expire after an hour by default)")
	default:
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		first := max(0, len(evs)-nEvents)
		for i := first; i < len(evs); i++ {
			ev := &evs[i]
			t := metav1.NewTime(eventTime(ev))
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", age(&t), ev.Type, ev.Reason, ev.Note)
		}
		w.Flush()
	}
	_, err := fmt.Fprintf(out, "Why: %s.\n", why(f))
	return err
}

// writeObserved prints the member as the organization shows it.
func writeObserved(out io.Writer, obs *backend.Member, err error) {
	if err != nil {
		fmt.Fprintf(out, "  cannot read it: %v\n", err)
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	switch obs.State {
	case backend.StateMember:
		fmt.Fprintf(w, "  state:\tmember\n")
		fmt.Fprintf(w, "  Docker ID:\t%s\n", dash(obs.BackendID))
		fmt.Fprintf(w, "  role:\t%s\n", dash(obs.Role))
		fmt.Fprintf(w, "  teams:\t%s\n", dash(strings.Join(obs.Teams, ", ")))
	case backend.StateInvited:
		fmt.Fprintf(w, "  state:\tinvited\n")
		fmt.Fprintf(w, "  invitation:\t%s\n", dash(obs.InviteID))
		fmt.Fprintf(w, "  role:\t%s\n", dash(obs.Role))
	default:
		fmt.Fprintf(w, "  state:\tabsent (neither a member nor invited)\n")
	}
	w.Flush()
}

// writeGroups lists the member's OrgGroups (its group labels), on any backend, each with
// its team as the backend names it (key; nil when the backend was not read).
func writeGroups(ctx context.Context, c client.Client, m *scimv1.OrgMember, key plan.TeamKey, out io.Writer) error {
	names := index.GroupsOf(m.Labels)
	sort.Strings(names)
	fmt.Fprintf(out, "OrgGroups (labels %s<name>):\n", scimv1.LabelGroupPrefix)
	if len(names) == 0 {
		fmt.Fprintln(out, "  none")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, name := range names {
		g := &scimv1.OrgGroup{}
		switch err := c.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: name}, g); {
		case apierrors.IsNotFound(err):
			fmt.Fprintf(w, "  %s\t(no such OrgGroup)\n", name)
		case err != nil:
			fmt.Fprintf(w, "  %s\t(cannot read it: %v)\n", name, err)
		default:
			note := ""
			if g.Spec.ConfigName != m.Spec.ConfigName {
				note = ", of ScimConfig " + g.Spec.ConfigName
			}
			if !g.DeletionTimestamp.IsZero() {
				note += ", being deleted"
			}
			fmt.Fprintf(w, "  %s\t%s (team %s%s)\n", name, g.Spec.DisplayName, key.Name(plan.TeamName(g.Spec.DisplayName)), note)
		}
	}
	return w.Flush()
}

func syncWords(t *metav1.Time) string {
	if t == nil {
		return "never"
	}
	return stamp(t.Time) + " (" + age(t) + ")"
}

func containsRole(gs []grant, r configuredRole) bool {
	for _, g := range gs {
		if r.heldBy(g) {
			return true
		}
	}
	return false
}

// memberEvents are the events.k8s.io events about m, oldest first.
func memberEvents(ctx context.Context, c client.Reader, m *scimv1.OrgMember) ([]eventsv1.Event, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(m.Namespace),
		client.MatchingFields{"regarding.uid": string(m.UID)}); err != nil {
		return nil, err
	}
	evs := list.Items
	sort.SliceStable(evs, func(i, j int) bool { return eventTime(&evs[i]).Before(eventTime(&evs[j])) })
	return evs, nil
}

// eventTime is when an event last happened.
func eventTime(ev *eventsv1.Event) time.Time {
	t := ev.EventTime.Time
	if ev.Series != nil && ev.Series.LastObservedTime.After(t) {
		t = ev.Series.LastObservedTime.Time
	}
	if ev.DeprecatedLastTimestamp.After(t) {
		t = ev.DeprecatedLastTimestamp.Time
	}
	return t
}

// why is the one sentence: is the member in, and why (or why not).
func why(f facts) string {
	m, cfg := f.m, f.cfg
	u := m.Spec.UserName
	in, access := f.access()
	pol := scimv1.LifecyclePolicies{}
	if cfg != nil {
		pol = policies(cfg)
	}
	switch {
	case !m.DeletionTimestamp.IsZero():
		return u + " is on its way out: " + f.deletionWords(pol)
	case cfg == nil:
		s := fmt.Sprintf("%s is not managed: ScimConfig %s does not exist or is being deleted, so nothing is synced", u, m.Spec.ConfigName)
		if len(f.held) > 0 {
			s += fmt.Sprintf(", and %s still", grantsWords(f.held))
		}
		return s
	case m.Status.Origin == scimv1.OriginPreexisting:
		return u + " is left alone: Preexisting, adoption is off"
	case !cfg.IsEnabled() && in:
		return fmt.Sprintf("%s is in, frozen: ScimConfig %s is disabled, so SCIM changes nothing (%s)", u, cfg.Name, access)
	case !cfg.IsEnabled():
		return fmt.Sprintf("%s is out, frozen: ScimConfig %s is disabled, so SCIM changes nothing (phase %s)", u, cfg.Name, phaseOf(m))
	case phaseOf(m) == scimv1.PhaseFailed && in:
		return fmt.Sprintf("%s is in, but its last sync failed (%s)", u, syncedWords(m))
	case phaseOf(m) == scimv1.PhaseFailed:
		return fmt.Sprintf("%s is not in: the backend refused it (Failed, %s)", u, syncedWords(m))
	case !m.Spec.Active:
		return f.inactiveWords(pol, in, access)
	}
	if c := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionBackendReady); c != nil && c.Status == metav1.ConditionFalse {
		ready := fmt.Sprintf("the backend is not ready (ScimConfig %s BackendReady=False %s: %s)", cfg.Name, c.Reason, short(c.Message))
		if in {
			return fmt.Sprintf("%s is in, but syncing waits: %s", u, ready)
		}
		return fmt.Sprintf("%s is not in yet: %s", u, ready)
	}
	synced := meta.IsStatusConditionTrue(m.Status.Conditions, scimv1.ConditionSynced)
	switch {
	case in && f.kube && len(f.missing) > 0:
		return fmt.Sprintf("%s is in, partly: %s, but %s %s missing (%s)", u, access, rolesWords(f.missing),
			isAre(len(f.missing)), syncedWords(m))
	case in && synced:
		return fmt.Sprintf("%s is in: active, Synced, %s", u, access)
	case in:
		return fmt.Sprintf("%s is in, but its last sync did not complete (%s)", u, syncedWords(m))
	case phaseOf(m) == scimv1.PhaseInvited:
		id := ""
		if m.Status.InviteID != "" {
			id = " (invitation " + m.Status.InviteID + ")"
		}
		return fmt.Sprintf("%s is not in yet: invited to organization %s%s, waiting for the person to accept", u, cfg.Spec.Organization, id)
	case f.kube && len(f.former) > 0:
		return fmt.Sprintf("%s is not in under this name yet: its %s to its former name %s, which the next resync moves to this name",
			u, grantsWords(f.former), f.former[0].user())
	case f.obs != nil && phaseOf(m) == scimv1.PhaseActive:
		return fmt.Sprintf("%s is out, though it should be in: organization %s has no member %s (removed outside SCIM?), which the next resync repairs",
			u, cfg.Spec.Organization, u)
	case f.kube && phaseOf(m) == scimv1.PhaseActive:
		return fmt.Sprintf("%s is out, though it should be in: no binding grants it %s (removed outside SCIM?), which the next resync repairs",
			u, rolesWords(f.missing))
	}
	return fmt.Sprintf("%s is not in yet: phase %s, %s", u, phaseOf(m), syncedWords(m))
}

// access tells whether the member holds access now, and in which words.
func (f facts) access() (bool, string) {
	if f.kube || (f.cfg == nil && len(f.held) > 0) {
		return len(f.held) > 0, grantsWords(f.held)
	}
	m := f.m
	if f.cfg == nil {
		return false, ""
	}
	if f.obs != nil {
		// Docker Hub, read now: a member is in, whatever the status says.
		if f.obs.State != backend.StateMember {
			return false, ""
		}
		return true, fmt.Sprintf("Docker ID %s is a member of organization %s", dash(f.obs.BackendID), f.cfg.Spec.Organization)
	}
	// Docker Hub unread: what the member's status says the organization held at the last sync.
	id := m.Status.BackendID
	if id == "" {
		id = m.Spec.UserName
	}
	p := phaseOf(m)
	switch {
	case m.Status.Origin == "" || m.Status.Deprovisioned:
		return false, ""
	case p == scimv1.PhaseActive,
		p == scimv1.PhaseDeactivated && policies(f.cfg).Deactivation == scimv1.DeactivationKeep,
		p == scimv1.PhaseFailed && m.Status.BackendID != "":
		return true, fmt.Sprintf("Docker ID %s is a member of organization %s", id, f.cfg.Spec.Organization)
	}
	return false, ""
}

func (f facts) deletionWords(pol scimv1.LifecyclePolicies) string {
	m := f.m
	switch {
	case f.cfg == nil:
		return fmt.Sprintf("the OrgMember is being deleted and ScimConfig %s is gone, whose own deletion decided its access", m.Spec.ConfigName)
	case !f.cfg.IsEnabled():
		return fmt.Sprintf("the OrgMember is being deleted while ScimConfig %s is disabled, so its access is left in place", f.cfg.Name)
	case m.Status.Origin == "" && f.cfg.Spec.Backend.Type == scimv1.BackendKubernetes:
		// (the origin is written with the outcome there: plan.MemberPlan.OriginKeptByGrants)
		return "the OrgMember is being deleted before SCIM recorded its outcome; whatever carries its UID is removed (left in place, orphaned, under deletion policy Orphan)"
	case m.Status.Origin == "":
		return "the OrgMember is being deleted, and SCIM never granted it anything"
	case m.Status.Origin == scimv1.OriginPreexisting:
		return "the OrgMember is being deleted; it existed before SCIM and adoption is off, so nothing is removed"
	case pol.Deletion == scimv1.DeletionOrphan:
		return "the OrgMember is being deleted under deletion policy Orphan, so its access is left in place, marked orphaned"
	}
	if in, access := f.access(); in {
		return "the OrgMember is being deleted under deletion policy Remove, which has still to take away: " + access
	}
	return "the OrgMember is being deleted under deletion policy Remove, and it holds nothing any more"
}

func (f facts) inactiveWords(pol scimv1.LifecyclePolicies, in bool, access string) string {
	m := f.m
	u := m.Spec.UserName
	switch {
	case m.Status.Origin == "" && !in:
		return u + " is out: inactive, and it was never provisioned"
	case pol.Deactivation == scimv1.DeactivationKeep && !m.Status.Deprovisioned && in:
		return fmt.Sprintf("%s is in: deactivated, access kept under policy Keep, %s", u, access)
	case pol.Deactivation == scimv1.DeactivationKeep && !m.Status.Deprovisioned:
		return fmt.Sprintf("%s is out: deactivated under policy Keep, which keeps access, but it holds none (%s)", u, syncedWords(m))
	case in:
		return fmt.Sprintf("%s is still in: deactivated, but its access is not removed yet (%s)", u, syncedWords(m))
	}
	when := ""
	switch {
	case f.deactivated != nil:
		when = " at " + stamp(*f.deactivated)
	case m.Status.LastSyncTime != nil:
		when = " (last synced " + stamp(m.Status.LastSyncTime.Time) + ")"
	}
	s := u + " is out: deactivated under policy Remove" + when
	if pol.Deactivation == scimv1.DeactivationKeep {
		s += "; the policy is Keep now, which does not give access back"
	}
	return s
}

// grantsWords: "2 bindings grant ClusterRole view and Role apps/deployer".
func grantsWords(gs []grant) string {
	var roles []string
	for _, g := range gs {
		roles = append(roles, g.role())
	}
	verb := "bindings grant"
	if len(gs) == 1 {
		verb = "binding grants"
	}
	return fmt.Sprintf("%d %s %s", len(gs), verb, and(roles))
}

func rolesWords(rs []configuredRole) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.words())
	}
	return and(out)
}

func and(list []string) string {
	switch len(list) {
	case 0:
		return "nothing"
	case 1:
		return list[0]
	}
	return strings.Join(list[:len(list)-1], ", ") + " and " + list[len(list)-1]
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// syncedWords: "Synced=False RateLimited: ..." or "not synced yet".
func syncedWords(m *scimv1.OrgMember) string {
	c := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced)
	if c == nil {
		return "not synced yet"
	}
	return fmt.Sprintf("Synced=%s %s: %s", c.Status, c.Reason, short(c.Message))
}

// short keeps a message to one readable clause.
func short(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), ".")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
