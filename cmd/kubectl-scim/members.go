package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// now is the plugin's clock (tests fix it).
var now = time.Now

// phases are the OrgMember phases, in lifecycle order.
var phases = []scimv1.MemberPhase{scimv1.PhasePending, scimv1.PhaseInvited, scimv1.PhaseActive,
	scimv1.PhaseDeactivated, scimv1.PhaseRemoved, scimv1.PhaseFailed}

// phaseOf is the member's phase, Pending before the controller wrote one.
func phaseOf(m *scimv1.OrgMember) scimv1.MemberPhase {
	if m.Status.Phase == "" {
		return scimv1.PhasePending
	}
	return m.Status.Phase
}

// parsePhases reads --phase: one phase or a comma-separated list, in any case.
func parsePhases(s string) (map[scimv1.MemberPhase]bool, error) {
	if s == "" {
		return nil, nil
	}
	out := map[scimv1.MemberPhase]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		found := false
		for _, p := range phases {
			if strings.EqualFold(part, string(p)) {
				out[p], found = true, true
			}
		}
		if !found {
			names := make([]string, len(phases))
			for i, p := range phases {
				names[i] = string(p)
			}
			return nil, fmt.Errorf("unknown phase %q: use %s", part, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// age is how long ago t was, the way kubectl prints ages ("never" for no time).
func age(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return duration.HumanDuration(now().Sub(t.Time)) + " ago"
}

// stamp is t in UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func membersCmd(e *env) *cobra.Command {
	var config, phase string
	var all bool
	cmd := &cobra.Command{
		Use:   "members [--config NAME] [--phase PHASE[,PHASE]] [-A]",
		Short: "OrgMembers with their phase, why they are there, and when they last matched the backend",
		Long: `Lists OrgMembers: their user, config, active flag, phase (Pending, Invited, Active,
Deactivated, Removed, Failed), origin, the reason of their Synced condition (Synced,
Preexisting, BackendNotReady, Paused, ConfigNotFound, RateLimited, or the backend's
refusal), and when they last matched the backend. "kubectl scim explain USER" tells why.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			want, err := parsePhases(phase)
			if err != nil {
				return err
			}
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			members, err := listMembers(cmd.Context(), c, ns, all, config)
			if err != nil {
				return err
			}
			var rows []*scimv1.OrgMember
			for _, m := range members {
				if want == nil || want[phaseOf(m)] {
					rows = append(rows, m)
				}
			}
			sort.Slice(rows, func(i, j int) bool {
				a, b := rows[i], rows[j]
				if a.Namespace != b.Namespace {
					return a.Namespace < b.Namespace
				}
				if a.Spec.ConfigName != b.Spec.ConfigName {
					return a.Spec.ConfigName < b.Spec.ConfigName
				}
				return strings.ToLower(a.Spec.UserName) < strings.ToLower(b.Spec.UserName)
			})
			out := cmd.OutOrStdout()
			if len(rows) == 0 {
				where := "in namespace " + ns
				if all {
					where = "in any namespace"
				}
				_, err := fmt.Fprintf(out, "No OrgMembers %s%s.\n", where, filterWords(config, phase))
				return err
			}
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			if all {
				fmt.Fprint(w, "NAMESPACE\t")
			}
			fmt.Fprintln(w, "USER\tCONFIG\tACTIVE\tPHASE\tORIGIN\tREASON\tLAST SYNC\tNAME")
			for _, m := range rows {
				if all {
					fmt.Fprintf(w, "%s\t", m.Namespace)
				}
				reason := "-"
				if s := meta.FindStatusCondition(m.Status.Conditions, scimv1.ConditionSynced); s != nil {
					reason = s.Reason
				}
				if !m.DeletionTimestamp.IsZero() {
					reason += " (deleting)"
				}
				fmt.Fprintf(w, "%s\t%s\t%t\t%s\t%s\t%s\t%s\t%s\n", m.Spec.UserName, m.Spec.ConfigName, m.Spec.Active,
					phaseOf(m), dash(string(m.Status.Origin)), reason, age(m.Status.LastSyncTime), m.Name)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "only the members of this ScimConfig")
	cmd.Flags().StringVar(&phase, "phase", "", "only members in this phase (Pending, Invited, Active, Deactivated, Removed, Failed; comma-separated for several)")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "members of every namespace")
	return cmd
}

func filterWords(config, phase string) string {
	var w []string
	if config != "" {
		w = append(w, "of ScimConfig "+config)
	}
	if phase != "" {
		w = append(w, "in phase "+phase)
	}
	if len(w) == 0 {
		return ""
	}
	return " " + strings.Join(w, " ")
}

// listMembers lists the OrgMembers of namespace ns (every namespace with all), of config
// when it is set.
func listMembers(ctx context.Context, c client.Client, ns string, all bool, config string) ([]*scimv1.OrgMember, error) {
	var opts []client.ListOption
	if !all {
		opts = append(opts, client.InNamespace(ns))
	}
	var list scimv1.OrgMemberList
	if err := c.List(ctx, &list, opts...); err != nil {
		return nil, err
	}
	var out []*scimv1.OrgMember
	for i := range list.Items {
		if m := &list.Items[i]; config == "" || m.Spec.ConfigName == config {
			out = append(out, m)
		}
	}
	return out, nil
}
