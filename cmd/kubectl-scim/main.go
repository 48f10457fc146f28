// Command kubectl-scim is the kubectl plugin for scim-operator (install it on PATH and
// run `kubectl scim ...`):
//
//	kubectl scim status            configs with their endpoint, readiness and member counts
//	kubectl scim members           members with phase, reason and last sync (--config, --phase, -A)
//	kubectl scim explain USER      why one member is in or out: conditions, events, identities, grants
//	kubectl scim plan CONFIG       dry run: what a full resync would change in the backend
//	kubectl scim token CONFIG      print the bearer token a config accepts (for the IdP)
//	kubectl scim rotate CONFIG     rotate a generated token (the old one keeps its grace period);
//	                               refuses a token from spec.tokenSecretRef
//	kubectl scim resync KIND NAME  ask for an immediate reconcile (KIND: config|member|group)
package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/token"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		os.Exit(1)
	}
}

type env struct {
	flags *genericclioptions.ConfigFlags
}

func (e *env) client() (client.Client, string, error) {
	cfg, err := e.flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	ns, _, err := e.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(scimv1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, ns, err
}

func newRoot() *cobra.Command {
	e := &env{flags: genericclioptions.NewConfigFlags(true)}
	root := &cobra.Command{Use: "kubectl-scim", Short: "Inspect and operate scim-operator", SilenceUsage: true}
	e.flags.AddFlags(root.PersistentFlags())
	root.AddCommand(statusCmd(e), tokenCmd(e), rotateCmd(e), resyncCmd(e), membersCmd(e), explainCmd(e), planCmd(e))
	return root
}

func statusCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "status", Short: "ScimConfigs with their endpoint, readiness and member counts",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			var list scimv1.ScimConfigList
			if err := c.List(cmd.Context(), &list, client.InNamespace(ns)); err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tENABLED\tBACKEND\tREADY\tREASON\tMEMBERS\tACTIVE\tINVITED\tDEACTIVATED\tFAILED\tPATH")
			for _, cfg := range list.Items {
				ready, reason := "Unknown", ""
				if cond := meta.FindStatusCondition(cfg.Status.Conditions, scimv1.ConditionReady); cond != nil {
					ready, reason = string(cond.Status), cond.Reason
				}
				var m scimv1.MemberCounts
				if cfg.Status.Members != nil {
					m = *cfg.Status.Members
				}
				fmt.Fprintf(w, "%s\t%t\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", cfg.Name, cfg.IsEnabled(),
					cfg.Spec.Backend.Type, ready, reason, m.Total, m.Active, m.Invited, m.Deactivated, m.Failed, cfg.Status.BasePath)
			}
			return w.Flush()
		},
	}
}

func tokenCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "token CONFIG", Short: "Print the bearer token a ScimConfig accepts", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			var cfg scimv1.ScimConfig
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, &cfg); err != nil {
				return err
			}
			acc, err := token.Resolve(cmd.Context(), c, &cfg)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), string(acc.Current))
			return err
		},
	}
}

func rotateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "rotate CONFIG", Short: "Rotate a generated token", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rotate(cmd, e, args[0])
		},
	}
}

func resyncCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "resync config|member|group NAME", Short: "Ask for an immediate reconcile", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var obj client.Object
			switch args[0] {
			case "config", "scimconfig":
				obj = &scimv1.ScimConfig{}
			case "member", "orgmember":
				obj = &scimv1.OrgMember{}
			case "group", "orggroup":
				obj = &scimv1.OrgGroup{}
			default:
				return fmt.Errorf("unknown kind %q: use config, member or group", args[0])
			}
			return annotate(cmd.Context(), e, obj, args[1], scimv1.AnnotationReconcile, cmd)
		},
	}
}

func annotate(ctx context.Context, e *env, obj client.Object, name, key string, cmd *cobra.Command) error {
	c, ns, err := e.client()
	if err != nil {
		return err
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return err
	}
	base := obj.DeepCopyObject().(client.Object)
	a := obj.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[key] = time.Now().UTC().Format(time.RFC3339Nano)
	obj.SetAnnotations(a)
	if err := c.Patch(ctx, obj, client.MergeFrom(base)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s annotated %s=%s\n", name, key, a[key])
	return err
}
