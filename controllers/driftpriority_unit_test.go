package controllers

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/backend"
)

// listedBackend lists the organization as list; other calls are not made.
type listedBackend struct {
	backend.Backend
	list []backend.Member
}

func (b listedBackend) ListMembers(context.Context) ([]backend.Member, error) { return b.list, nil }

// Review 93 F2: a revocation a drift pass finds (a deactivated member added back by hand, a
// former identity still in the organization) goes ahead of the queue, as a revocation
// from SCIM does: behind another tenant's full sync it would wait for all of it. What the
// pass finds missing (an Active member removed by hand) is queued as before.
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
	got := map[string]int{}
	var order []string
	for q.Len() > 0 {
		item, p, _ := q.GetWithPriority()
		got[item.Name] = p
		order = append(order, item.Name)
		q.Done(item)
	}
	want := map[string]int{"readded": RevocationPriority, "renamed": RevocationPriority, "removed": 0}
	if len(got) != len(want) || got["readded"] != want["readded"] || got["renamed"] != want["renamed"] || got["removed"] != want["removed"] ||
		slices.Index(order, "removed") != 2 {
		t.Errorf("the pass queued %v (in the order %v), want the priorities %v, revocations first", got, order, want)
	}
}
