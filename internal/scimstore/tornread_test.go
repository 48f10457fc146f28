package scimstore

import (
	"context"
	"fmt"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/membership"
)

// settlesBetweenReads is a member cache whose contents change after its first List: the
// member named settles its mark of the change (the mark gone, the group's label there, in
// one write, as the operator's finisher or another server settles it) between a
// reader's two Lists.
type settlesBetweenReads struct {
	client.Client
	member, change, group string
	lists                 int
}

func (c *settlesBetweenReads) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	err := c.Client.List(ctx, list, opts...)
	if c.lists++; c.lists == 1 {
		var m scimv1.OrgMember
		if gerr := c.Client.Get(ctx, client.ObjectKey{Namespace: "ns", Name: c.member}, &m); gerr != nil {
			return gerr
		}
		delete(m.Labels, membership.MarkKey(c.change))
		m.Labels[scimv1.LabelGroupPrefix+c.group] = ""
		if uerr := c.Client.Update(ctx, &m); uerr != nil {
			return uerr
		}
	}
	return err
}

// Issue 9 defect 3's spec failed once: a reader's GET /Groups/{id} right after the group's
// create answered 201 showed 4 of its 5 members. Each index is its own List, so a member
// settled between the reads of the labels and of the marks was in neither. Whichever of
// the group's members settles between the reads, every member is read (the marks are read
// first).
func TestGroupMembersSurviveASettleBetweenReads(t *testing.T) {
	s := runtime.NewScheme()
	if err := scimv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	cfg := &scimv1.ScimConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "acme"}}
	const change = "0123456789abcdef"
	g := &scimv1.OrgGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "g-1",
		Annotations: map[string]string{scimv1.AnnotationMembersChange: change}}}
	names := []string{"u-1", "u-2", "u-3"}
	for _, settling := range names {
		var objs []client.Object
		for i, name := range names {
			m := &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name,
				Labels: map[string]string{membership.MarkKey(change): membership.MarkValue(g.Name, true)}}}
			m.Spec.ConfigName = cfg.Name
			m.Spec.UserName = fmt.Sprintf("p%d@example.com", i)
			objs = append(objs, m)
		}
		c := fake.NewClientBuilder().WithScheme(s).
			WithIndex(&scimv1.OrgMember{}, index.Group, func(o client.Object) []string { return index.GroupsOf(o.GetLabels()) }).
			WithIndex(&scimv1.OrgMember{}, index.Change, func(o client.Object) []string { return index.ChangesOf(o.GetLabels()) }).
			WithObjects(objs...).Build()
		st := &Store{Client: &settlesBetweenReads{Client: c, member: settling, change: change, group: g.Name}}
		got, err := st.GroupMembers(context.Background(), Scope{Config: cfg}, g)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range got {
			ids = append(ids, m.Name)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, names) {
			t.Errorf("%s settled between the reads: the group's members read %v, want %v", settling, ids, names)
		}
	}
}
