package scimstore

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
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
