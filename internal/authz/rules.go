package authz

import (
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/component-helpers/auth/rbac/validation"
)

// RulesAllow tells whether RBAC rules allow the request of spec, as the API server's RBAC
// authorizer would judge them for a binding in scope (the caller checks the scope).
//
// The matching is k8s.io/component-helpers' validation.Covers, the API server's own
// escalation check: the request becomes the one-verb, one-resource, one-name rule it asks
// for, and the rules allow it exactly when they cover that rule. That is the RBAC
// authorizer's matching (k8s.io/kubernetes/pkg/apis/rbac/v1 evaluation_helpers.go, which is
// not importable as a module): verbs, API groups and resources with "*"; "resource/sub" and
// "*/sub"; resourceNames (a rule with names never allows a request without one); and
// nonResourceURLs with a trailing "*". rules_test.go holds a table per rule form, and the
// envtest suite asks the real RBAC authorizer the same questions.
func RulesAllow(rules []rbacv1.PolicyRule, spec authorizationv1.SubjectAccessReviewSpec) bool {
	var want rbacv1.PolicyRule
	switch {
	case spec.ResourceAttributes != nil:
		ra := spec.ResourceAttributes
		resource := ra.Resource
		if ra.Subresource != "" {
			resource += "/" + ra.Subresource
		}
		want = rbacv1.PolicyRule{Verbs: []string{ra.Verb}, APIGroups: []string{ra.Group}, Resources: []string{resource}}
		if ra.Name != "" {
			want.ResourceNames = []string{ra.Name}
		}
	case spec.NonResourceAttributes != nil:
		na := spec.NonResourceAttributes
		want = rbacv1.PolicyRule{Verbs: []string{na.Verb}, NonResourceURLs: []string{na.Path}}
	default:
		return false
	}
	ok, _ := validation.Covers(rules, []rbacv1.PolicyRule{want})
	return ok
}
