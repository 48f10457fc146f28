package controllers

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// A Docker Hub deletion hands its person over to another member of the userName only when
// that member answers for every identity the deleted one granted (review 10, F1): an
// invitation the deleted member sent to its own primary email, or a person the other
// member never recorded, would otherwise outlive every member that wants it.
func TestSameUserNameHandsOverOnlyWhatTheOtherRecords(t *testing.T) {
	member := func(name string, granted ...string) *scimv1.OrgMember {
		return &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, UID: k8stypes.UID("uid-" + name)},
			Spec:   scimv1.OrgMemberSpec{ConfigName: "hub", UserName: "Pat@example.com", Active: true},
			Status: scimv1.OrgMemberStatus{Origin: scimv1.OriginProvisioned, GrantedIdentities: granted}}
	}
	for _, tc := range []struct {
		name           string
		deleted, other *scimv1.OrgMember
		want           string
	}{
		{"the other records the person", member("w", "pat@example.com"), member("x", "pat@example.com"), "x"},
		{"the deleted one recorded nothing: its userName", member("w"), member("x", "pat@example.com"), "x"},
		{"the other has not recorded the person yet", member("w", "pat@example.com"), member("x", "bob@example.com"), ""},
		{"the deleted one also invited its own email", member("w", "pat@example.com", "pat.w@example.com"), member("x", "pat@example.com"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(tc.deleted, tc.other).WithStatusSubresource(&scimv1.OrgMember{})
			r := &OrgMemberReconciler{Client: withShippedIndexes(t, b).Build()}
			got, err := r.sameUserName(context.Background(), tc.deleted, false)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("handed over to %q, want %q", got, tc.want)
			}
		})
	}
}
