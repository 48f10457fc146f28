package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// Rechecks carries "check this config's backend now" from the member and group
// controllers to the ScimConfig controller: a member that meets a problem of the whole
// connection (a revoked token, an unreachable backend) does not fail on its own; the
// config checks once, reports BackendReady=False with one event, and its members wait
// until it turns True again.
type Rechecks struct {
	ch chan event.TypedGenericEvent[*scimv1.ScimConfig]
}

// NewRechecks returns a Rechecks with room for bursts (a full buffer drops requests: one
// pending check per config is enough).
func NewRechecks() *Rechecks {
	return &Rechecks{ch: make(chan event.TypedGenericEvent[*scimv1.ScimConfig], 256)}
}

// Request asks for a check of cfg without blocking.
func (r *Rechecks) Request(_ context.Context, cfg *scimv1.ScimConfig) {
	if r == nil || cfg == nil {
		return
	}
	c := &scimv1.ScimConfig{}
	c.Namespace, c.Name = cfg.Namespace, cfg.Name
	select {
	case r.ch <- event.TypedGenericEvent[*scimv1.ScimConfig]{Object: c}:
	default:
	}
}

// source is the ScimConfig controller's source of check requests.
func (r *Rechecks) source() source.TypedSource[reconcileRequest] {
	return source.Channel(r.ch, handler.TypedEnqueueRequestsFromMapFunc(
		func(_ context.Context, c *scimv1.ScimConfig) []reconcileRequest {
			return []reconcileRequest{{NamespacedName: types.NamespacedName{Namespace: c.Namespace, Name: c.Name}}}
		}))
}

type reconcileRequest = reconcile.Request
