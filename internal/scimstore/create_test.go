package scimstore

import (
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// A SCIM create is one write (issue 10): the member carries the deprovision finalizer from
// the start, so the controllers need no write to add it, and no name claim is written for a
// user under its derived object name. No controller runs here: what the member carries,
// the create wrote.
func TestCreateUserIsOneWriteWithItsFinalizer(t *testing.T) {
	e, _ := review3Start(t, "create-one-write", 0)
	r, err := e.s.CreateUser(e.ctx, e.sc, scim.Resource{"userName": "one@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var m scimv1.OrgMember
	if err := e.direct.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: r["id"].(string)}, &m); err != nil {
		t.Fatal(err)
	}
	if !controllerutil.ContainsFinalizer(&m, scimv1.FinalizerDeprovision) {
		t.Errorf("the created member has finalizers %v, want %s", m.Finalizers, scimv1.FinalizerDeprovision)
	}
	if m.Name != naming.MemberName("acme", "one@example.com") {
		t.Errorf("created as %s, not under its derived object name", m.Name)
	}
	var claims scimv1.OrgNameClaimList
	if err := e.direct.List(e.ctx, &claims); err != nil {
		t.Fatal(err)
	}
	for _, c := range claims.Items {
		if c.Namespace == e.ns {
			t.Errorf("a create wrote name claim %s", c.Name)
		}
	}
}

// A losing create's member is deleted only while it is the loser: at the version judged
// or, after a conflict, at a version read again that still carries the lost userName. A
// member the IdP renamed meanwhile (it found it by a filter) keeps its new name (review 10).
func TestDropLoserSparesAMemberRenamedSince(t *testing.T) {
	e, _ := review3Start(t, "drop-loser", 0)
	mk := func(userName string) *scimv1.OrgMember {
		m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: naming.MemberName("acme", userName),
			Labels: map[string]string{scimv1.LabelConfig: "acme"}},
			Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: userName, Active: true}}
		if err := e.direct.Create(e.ctx, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	exists := func(m *scimv1.OrgMember) bool {
		var live scimv1.OrgMember
		err := e.direct.Get(e.ctx, client.ObjectKeyFromObject(m), &live)
		if apierrors.IsNotFound(err) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		return live.DeletionTimestamp.IsZero()
	}
	rename := func(m *scimv1.OrgMember, userName string) {
		live := &scimv1.OrgMember{}
		if err := e.direct.Get(e.ctx, client.ObjectKeyFromObject(m), live); err != nil {
			t.Fatal(err)
		}
		live.Spec.UserName = userName
		if err := e.direct.Update(e.ctx, live); err != nil {
			t.Fatal(err)
		}
	}

	renamed := mk("lost@example.com")
	rename(renamed, "kept@example.com") // the IdP's PATCH, after the verdict
	e.s.dropLoser(e.ctx, renamed)
	if !exists(renamed) {
		t.Error("a member renamed since its create lost was deleted for the name it no longer carries")
	}

	changed := mk("lost2@example.com")
	rename(changed, "LOST2@example.com") // another version, the same userName
	e.s.dropLoser(e.ctx, changed)
	if exists(changed) {
		t.Error("a loser written again under the same userName was not deleted")
	}
}
