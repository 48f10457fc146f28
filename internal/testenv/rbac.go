package testenv

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// barrierNamespace holds the namespaced half of each RBAC barrier.
const barrierNamespace = "rbac-barrier"

var barriers atomic.Int64

// RBACSynced returns once the API server's RBAC authorizer has seen every RBAC write made
// before the call. The authorizer answers SubjectAccessReviews (and `kubectl auth can-i`)
// from its own informers of Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, a
// moment behind the writes; a test that writes a binding and asks at once sometimes gets
// the old answer (CI once failed that way). Each informer delivers its kind in write order,
// so the barrier writes one fresh object of each kind after the caller's writes and waits
// until the authorizer allows the barrier's user through both the ClusterRole and the Role:
// then every earlier write is visible too. The objects are deleted afterwards.
func RBACSynced(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: barrierNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("rbac barrier namespace: %w", err)
	}
	name := fmt.Sprintf("rbac-barrier-%d-%d", time.Now().UnixNano(), barriers.Add(1))
	rule := rbacv1.PolicyRule{APIGroups: []string{"barrier.scim.operator.dev"}, Resources: []string{"barriers"}, Verbs: []string{"get"}, ResourceNames: []string{name}}
	// Each path has its own user, so that only the ClusterRole path can allow the one and
	// only the Role path the other.
	clusterUser, nsUser := name+"-cluster", name+"-namespaced"
	subject := func(user string) []rbacv1.Subject {
		return []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	}
	objs := []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{rule}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: barrierNamespace}, Rules: []rbacv1.PolicyRule{rule}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subject(clusterUser),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: barrierNamespace}, Subjects: subject(nsUser),
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}},
	}
	defer func() {
		for _, o := range objs {
			_ = c.Delete(context.WithoutCancel(ctx), o)
		}
	}()
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("rbac barrier: %w", err)
		}
	}
	wait := func(user, ns string) error {
		for {
			r := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: user,
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Group: "barrier.scim.operator.dev", Resource: "barriers", Verb: "get", Name: name, Namespace: ns,
				},
			}}
			if err := c.Create(ctx, r); err != nil {
				return fmt.Errorf("rbac barrier review: %w", err)
			}
			if r.Status.Allowed {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("rbac barrier: the authorizer did not catch up: %w", ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if err := wait(clusterUser, "default"); err != nil {
		return err
	}
	return wait(nsUser, barrierNamespace)
}
