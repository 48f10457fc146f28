package authz_test

import (
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/scim-operator/scim-operator/internal/authz"
)

// ruleCase is one question to RulesAllow; the envtest suite asks the API server's RBAC
// authorizer the same ones (TestRulesAgreeWithRBAC), so the table states RBAC's answers.
type ruleCase struct {
	name  string
	rule  rbacv1.PolicyRule
	res   *authorizationv1.ResourceAttributes
	non   *authorizationv1.NonResourceAttributes
	allow bool
}

func res(verb, group, resource, sub, name string) *authorizationv1.ResourceAttributes {
	return &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: sub, Name: name, Namespace: "ns1"}
}

func non(verb, path string) *authorizationv1.NonResourceAttributes {
	return &authorizationv1.NonResourceAttributes{Verb: verb, Path: path}
}

func rule(verbs, groups, resources []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
}

var (
	get     = []string{"get"}
	core    = []string{""}
	podsRes = []string{"pods"}
)

var ruleCases = []ruleCase{
	// verbs
	{name: "verb exact", rule: rule(get, core, podsRes), res: res("get", "", "pods", "", ""), allow: true},
	{name: "verb other", rule: rule(get, core, podsRes), res: res("list", "", "pods", "", ""), allow: false},
	{name: "verb star", rule: rule([]string{"*"}, core, podsRes), res: res("delete", "", "pods", "", ""), allow: true},
	{name: "verb one of several", rule: rule([]string{"list", "watch", "get"}, core, podsRes), res: res("watch", "", "pods", "", ""), allow: true},
	// apiGroups
	{name: "group core", rule: rule(get, core, []string{"deployments"}), res: res("get", "apps", "deployments", "", ""), allow: false},
	{name: "group exact", rule: rule(get, []string{"apps"}, []string{"deployments"}), res: res("get", "apps", "deployments", "", ""), allow: true},
	{name: "group star", rule: rule(get, []string{"*"}, []string{"deployments"}), res: res("get", "apps", "deployments", "", ""), allow: true},
	// resources
	{name: "resource other", rule: rule(get, core, podsRes), res: res("get", "", "secrets", "", ""), allow: false},
	{name: "resource star", rule: rule(get, core, []string{"*"}), res: res("get", "", "secrets", "", ""), allow: true},
	{name: "resource star covers subresources", rule: rule(get, core, []string{"*"}), res: res("get", "", "pods", "log", ""), allow: true},
	{name: "plain resource does not cover its subresource", rule: rule(get, core, podsRes), res: res("get", "", "pods", "log", ""), allow: false},
	{name: "resource/subresource", rule: rule(get, core, []string{"pods/log"}), res: res("get", "", "pods", "log", ""), allow: true},
	{name: "resource/subresource does not cover the resource", rule: rule(get, core, []string{"pods/log"}), res: res("get", "", "pods", "", ""), allow: false},
	{name: "resource/other subresource", rule: rule(get, core, []string{"pods/log"}), res: res("get", "", "pods", "exec", ""), allow: false},
	{name: "*/subresource", rule: rule(get, []string{"*"}, []string{"*/scale"}), res: res("get", "apps", "deployments", "scale", ""), allow: true},
	{name: "*/subresource not the resource", rule: rule(get, []string{"*"}, []string{"*/scale"}), res: res("get", "apps", "deployments", "", ""), allow: false},
	{name: "*/subresource other subresource", rule: rule(get, []string{"*"}, []string{"*/scale"}), res: res("get", "apps", "deployments", "status", ""), allow: false},
	// resourceNames
	{name: "resourceName listed", rule: rbacv1.PolicyRule{Verbs: get, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"a", "b"}},
		res: res("get", "", "configmaps", "", "b"), allow: true},
	{name: "resourceName not listed", rule: rbacv1.PolicyRule{Verbs: get, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}},
		res: res("get", "", "configmaps", "", "c"), allow: false},
	{name: "resourceNames never allow a request without a name", rule: rbacv1.PolicyRule{Verbs: []string{"list"}, APIGroups: core, Resources: []string{"configmaps"}, ResourceNames: []string{"a"}},
		res: res("list", "", "configmaps", "", ""), allow: false},
	{name: "no resourceNames allow any name", rule: rule(get, core, []string{"configmaps"}), res: res("get", "", "configmaps", "", "z"), allow: true},
	// nonResourceURLs
	{name: "url exact", rule: rbacv1.PolicyRule{Verbs: get, NonResourceURLs: []string{"/healthz"}}, non: non("get", "/healthz"), allow: true},
	{name: "url other", rule: rbacv1.PolicyRule{Verbs: get, NonResourceURLs: []string{"/healthz"}}, non: non("get", "/metrics"), allow: false},
	{name: "url exact is not a prefix", rule: rbacv1.PolicyRule{Verbs: get, NonResourceURLs: []string{"/healthz"}}, non: non("get", "/healthz/etcd"), allow: false},
	{name: "url trailing star", rule: rbacv1.PolicyRule{Verbs: get, NonResourceURLs: []string{"/healthz/*"}}, non: non("get", "/healthz/etcd"), allow: true},
	{name: "url trailing star other path", rule: rbacv1.PolicyRule{Verbs: get, NonResourceURLs: []string{"/healthz/*"}}, non: non("get", "/livez/etcd"), allow: false},
	{name: "url star", rule: rbacv1.PolicyRule{Verbs: get, NonResourceURLs: []string{"*"}}, non: non("get", "/anything"), allow: true},
	{name: "url verb other", rule: rbacv1.PolicyRule{Verbs: get, NonResourceURLs: []string{"/healthz"}}, non: non("post", "/healthz"), allow: false},
	// resource rules and URL rules do not mix
	{name: "resource rule no url", rule: rule([]string{"*"}, []string{"*"}, []string{"*"}), non: non("get", "/healthz"), allow: false},
	{name: "url rule no resource", rule: rbacv1.PolicyRule{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}, res: res("get", "", "pods", "", ""), allow: false},
}

func TestRulesAllow(t *testing.T) {
	for _, c := range ruleCases {
		t.Run(c.name, func(t *testing.T) {
			spec := authorizationv1.SubjectAccessReviewSpec{User: "u", ResourceAttributes: c.res, NonResourceAttributes: c.non}
			if got := authz.RulesAllow([]rbacv1.PolicyRule{c.rule}, spec); got != c.allow {
				t.Errorf("RulesAllow(%v) = %v, want %v", c.rule, got, c.allow)
			}
		})
	}
	// any one rule of a role suffices
	spec := authorizationv1.SubjectAccessReviewSpec{User: "u", ResourceAttributes: res("get", "", "secrets", "", "")}
	two := []rbacv1.PolicyRule{rule(get, core, podsRes), rule(get, core, []string{"secrets"})}
	if !authz.RulesAllow(two, spec) {
		t.Error("the second of two rules does not allow")
	}
	if authz.RulesAllow(nil, spec) {
		t.Error("no rules allow")
	}
	if authz.RulesAllow(two, authorizationv1.SubjectAccessReviewSpec{User: "u"}) {
		t.Error("a review without attributes is allowed")
	}
}
