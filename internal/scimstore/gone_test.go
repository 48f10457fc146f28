package scimstore

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// goneOnPatch is a client whose OrgMember patches answer NotFound: each member is deleted
// between the request's check of its members and their marks.
type goneOnPatch struct{ client.Client }

func (g goneOnPatch) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	if m, ok := o.(*scimv1.OrgMember); ok {
		return apierrors.NewNotFound(scimv1.GroupVersion.WithResource("orgmembers").GroupResource(), m.Name)
	}
	return g.Client.Patch(ctx, o, p, opts...)
}

// TestGroupWithAMemberDeletedMeanwhile: a member deleted between the check of a group
// request's members and its mark is an unknown member, as if it had been gone before the
// check (400 invalidValue), not a 404 of the group request.
func TestGroupWithAMemberDeletedMeanwhile(t *testing.T) {
	e, ids := review3Start(t, "gone-member", 1)
	st := &Store{Client: goneOnPatch{e.mgr.GetClient()}, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}
	_, err := st.CreateGroup(e.ctx, e.sc, scim.Resource{"displayName": "Gone", "members": groupValues(ids)})
	var se *scim.Error
	if !errors.As(err, &se) || se.Status != 400 || se.ScimType != scim.ErrInvalidValue {
		t.Fatalf("create with a member deleted meanwhile: %v, want 400 invalidValue", err)
	}
}

// claimUpdateConflict is a client whose OrgNameClaim updates answer Conflict: another
// writer changed the claim the request holds (it took the name over).
type claimUpdateConflict struct{ client.Client }

func (c claimUpdateConflict) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	if cl, ok := o.(*scimv1.OrgNameClaim); ok {
		return apierrors.NewConflict(scimv1.GroupVersion.WithResource("orgnameclaims").GroupResource(), cl.Name, errors.New("changed"))
	}
	return c.Client.Update(ctx, o, opts...)
}

// TestCreateWhoseMovedClaimIsTakenAnswers409: a create whose derived name is held by a
// renamed group moves its claim to the next name; when another writer changed the claim
// meanwhile, the name is contested: 409 uniqueness, not the 412 of a write's precondition
// (a create has none).
func TestCreateWhoseMovedClaimIsTakenAnswers409(t *testing.T) {
	e, _ := review3Start(t, "moved-claim", 0)
	r, err := e.s.CreateGroup(e.ctx, e.sc, scim.Resource{"displayName": "Eng"})
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte(`"Ops"`)
	if _, err := e.s.PatchGroup(e.ctx, e.sc, r["id"].(string), []scim.PatchOp{{Op: "replace", Path: "displayName", Value: raw}}, "", false); err != nil {
		t.Fatal(err)
	}
	st := &Store{Client: claimUpdateConflict{e.mgr.GetClient()}, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}
	_, err = st.CreateGroup(e.ctx, e.sc, scim.Resource{"displayName": "Eng"})
	var se *scim.Error
	if !errors.As(err, &se) || se.Status != 409 || se.ScimType != scim.ErrUniqueness {
		t.Fatalf("create whose moved claim was changed meanwhile: %v, want 409 uniqueness", err)
	}
}
