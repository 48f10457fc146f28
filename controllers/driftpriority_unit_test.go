package controllers

import (
	"context"
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
	"github.com/scim-operator/scim-operator/internal/metrics"
)

// listedBackend lists the organization as list; other calls are not made.
type listedBackend struct {
	backend.Backend
	list []backend.Member
}

func (b listedBackend) ListMembers(context.Context) ([]backend.Member, error) { return b.list, nil }

// Review 93 F2: a revocation a drift pass finds (a deactivated member added back by hand, a
// former identity still in the organization) goes ahead of the queue: behind another
// tenant's full sync it would wait for all of it. Behind a fresh revocation from SCIM
// (review 94 F2: another tenant's deactivation must not wait behind a pass that found
// many). What the pass finds missing (an Active member removed by hand) is queued as
// before. The pass counts both kinds as differing (review 94 F1).
func TestDriftFoundRevocationsGoFirst(t *testing.T) {
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme"},
		Spec: scimv1.ScimConfigSpec{Organization: "acme"}}
	cfg.Spec.Backend.DockerHub = &scimv1.DockerHubBackend{DefaultRole: "member"}
	member := func(name, user string, phase scimv1.MemberPhase, active bool) *scimv1.OrgMember {
		m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name),
			Labels: map[string]string{scimv1.LabelConfig: "acme"}},
			Spec:   scimv1.OrgMemberSpec{ConfigName: "acme", UserName: user, Active: active},
			Status: scimv1.OrgMemberStatus{Phase: phase, Origin: scimv1.OriginProvisioned}}
		return m
	}
	listed := func(user string) backend.Member {
		return backend.Member{UserName: user, Email: user, BackendID: user, Role: "member", State: backend.StateMember}
	}
	renamed := member("renamed", "cat@x.io", scimv1.PhaseActive, true)
	renamed.Status.GrantedIdentities = []string{"cat.old@x.io", "cat@x.io"}
	objs := []*scimv1.OrgMember{
		member("removed", "ann@x.io", scimv1.PhaseActive, true),       // removed by hand: re-added
		member("readded", "ben@x.io", scimv1.PhaseDeactivated, false), // deactivated, added back by hand
		renamed, // its former name still in the organization
	}
	c := withShippedIndexes(t, fake.NewClientBuilder().WithScheme(unitScheme(t))).WithObjects(cfg).
		WithStatusSubresource(&scimv1.OrgMember{}, &scimv1.ScimConfig{})
	for _, m := range objs {
		c = c.WithObjects(m)
	}
	q := priorityqueue.New[reconcile.Request]("drift-test")
	defer q.ShutDown()
	d := &DriftQueue{}
	d.q = q
	r := &DriftReconciler{Client: c.Build(), Backends: oneBackend{listedBackend{list: []backend.Member{
		listed("ben@x.io"), listed("cat.old@x.io"), listed("cat@x.io")}}}, Queue: d, Clock: clock.RealClock{}}
	if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "acme"}}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(metrics.DriftDiffering.WithLabelValues("ns", "acme")); n != 3 {
		t.Errorf("scim_operator_drift_differing %v, want 3", n)
	}
	// another tenant's deactivation from SCIM, after the pass
	if !addAt(q, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "other", Name: "deactivated"}}, RevocationPriority) {
		t.Fatal("not a priority queue")
	}
	got := map[string]int{}
	var order []string
	for q.Len() > 0 {
		item, p, _ := q.GetWithPriority()
		got[item.Name] = p
		order = append(order, item.Name)
		q.Done(item)
	}
	want := map[string]int{"deactivated": RevocationPriority, "readded": LaterRevocationPriority, "renamed": LaterRevocationPriority, "removed": 0}
	if !maps.Equal(got, want) || order[0] != "deactivated" || order[3] != "removed" {
		t.Errorf("out of the queue %v (in the order %v), want the priorities %v: SCIM's revocation, then the pass's, then the rest", got, order, want)
	}
}
