package scimstore

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// waitLabels waits (bounded by limit) until the cache shows the labels of a membership
// change that adds and removes members without replacing the set: it reads the changed
// members, not the group's (issue 9, defect 5: an add of a few members to a group of
// 50,000 listed all of them on every poll).
func (s *Store) waitLabels(ctx context.Context, sc Scope, group string, d *scim.MemberDelta, limit time.Duration) {
	label := scimv1.LabelGroupPrefix + group
	want := make(map[string]bool, len(d.Add)+len(d.Remove))
	for _, id := range d.Remove {
		want[id] = false
	}
	for _, id := range d.Add {
		want[id] = true
	}
	_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, limit, true, func(ctx context.Context) (bool, error) {
		for id, in := range want {
			var m scimv1.OrgMember
			err := s.Client.Get(ctx, types.NamespacedName{Namespace: sc.ns(), Name: id}, &m)
			if apierrors.IsNotFound(err) && !in {
				delete(want, id) // gone: no longer a member
				continue
			}
			if err != nil {
				return false, nil
			}
			if _, has := m.Labels[label]; has != in {
				return false, nil
			}
			delete(want, id) // seen: not read again
		}
		return true, nil
	})
}
