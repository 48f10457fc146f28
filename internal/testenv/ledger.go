package testenv

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// LedgerRole is the ClusterRole every ledger RoleBinding of the Webhook grant layout
// refers to: no rules (config/rbac/grant_ledger_role.yaml ships the same object).
func LedgerRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: scimv1.GrantLedgerClusterRole}}
}

// InstallLedgerRole creates the ledger ClusterRole, as the install does, when it is
// missing.
func InstallLedgerRole(ctx context.Context, c client.Client) error {
	if err := c.Create(ctx, LedgerRole()); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("the grant ledger ClusterRole %s: %w", scimv1.GrantLedgerClusterRole, err)
	}
	return nil
}

func installLedgerRole(cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		return err
	}
	return InstallLedgerRole(context.Background(), c)
}
