package scimstore

import (
	"encoding/json"
	"errors"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
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
	lag := e.laggingMemberStore(t)

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
