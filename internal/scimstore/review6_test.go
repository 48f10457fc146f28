package scimstore

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// TestReview6AddOfAMemberGoneLiveIs400: effectiveMembers now reads each added member from
// the API server, after checkMembers accepted it from the cache. A member deleted in that
// window (or one the replica's member cache still shows) answers the liveMember 404
// "User not found" for PATCH /Groups/{id}: a 404 of the group request, which an IdP reads
// as "the group is gone". The mark's NotFound answers 400 invalidValue (0fb9d62); this
// earlier window must too.
func TestReview6AddOfAMemberGoneLiveIs400(t *testing.T) {
	e, ids := review3Start(t, "review6-gone-add", 2)
	ctx := e.ctx
	u0, u1 := ids[0], ids[1]
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Ops", "members": groupValues([]string{u0})})
	if err != nil {
		t.Fatal(err)
	}
	gid := r["id"].(string)

	// the replica's member cache: u1 still there
	var list scimv1.OrgMemberList
	if err := e.direct.List(ctx, &list, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for i := range list.Items {
		list.Items[i].ResourceVersion = ""
		objs = append(objs, &list.Items[i])
	}
	frozen := fake.NewClientBuilder().WithScheme(e.mgr.GetScheme()).
		WithIndex(&scimv1.OrgMember{}, index.Group, func(o client.Object) []string { return index.GroupsOf(o.GetLabels()) }).
		WithIndex(&scimv1.OrgMember{}, index.Change, func(o client.Object) []string { return index.ChangesOf(o.GetLabels()) }).
		WithObjects(objs...).Build()
	lag := &Store{Client: &laggingMembers{Client: e.mgr.GetClient(), frozen: frozen}, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}

	// u1 is deleted (another replica's DELETE /Users)
	var m scimv1.OrgMember
	if err := e.direct.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: u1}, &m); err != nil {
		t.Fatal(err)
	}
	if err := e.direct.Delete(ctx, &m); err != nil {
		t.Fatal(err)
	}

	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	_, err = lag.PatchGroup(ctx, e.sc, gid, []scim.PatchOp{{Op: "add", Path: "members", Value: raw(groupValues([]string{u1}))}}, "", false)
	var se *scim.Error
	if !errors.As(err, &se) || se.Status != 400 || se.ScimType != scim.ErrInvalidValue {
		t.Fatalf("PATCH add of a member deleted meanwhile: %v, want 400 invalidValue (not a 404 of the group)", err)
	}
}
