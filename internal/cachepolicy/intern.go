package cachepolicy

import (
	"sync"
	"unsafe"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

// interner hands out one copy of each string it is given, so that the strings every cached
// member and grant repeats (label keys, the config and namespace names, the finalizer,
// condition reasons and messages, role names) are held once instead of once per object.
// It holds at most max strings of at most internMaxLen bytes, and starts afresh when full:
// strings seen once (a failure message naming its user, a finished change's label) cannot
// keep it full for good, and a string a later object repeats gets in again at once. The
// strings already shared stay shared; they keep what they say whatever the table holds. The standard library's unique package does not fit: it keeps a canonical copy
// only while a unique.Handle to it is alive, and the cache keeps strings, not handles, so
// objects decoded on either side of a collection would not share.
type interner struct {
	mu  sync.Mutex
	m   map[string]string
	max int
}

const (
	internMax    = 4096
	internMaxLen = 128
)

var strs = &interner{m: map[string]string{}, max: internMax}

func (in *interner) str(s string) string {
	if s == "" || len(s) > internMaxLen {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if c, ok := in.m[s]; ok {
		return c
	}
	if len(in.m) >= in.max {
		in.m = make(map[string]string, in.max)
	}
	in.m[s] = s
	return s
}

// strMap interns a map's keys, and the values of the keys in values, rebuilding an entry
// only when its key is replaced by the shared copy.
func (in *interner) strMap(m map[string]string, values map[string]bool) {
	for k, v := range m {
		if values[k] {
			m[k] = in.str(v)
		}
		if nk := in.str(k); unsafe.StringData(nk) != unsafe.StringData(k) {
			v := m[k]
			delete(m, k)
			m[nk] = v
		}
	}
}

// sharedValues are the labels whose values repeat across objects (a config's names, an
// owner's kind); other values (owner UIDs, member hashes) are unique and stay as they are.
var sharedValues = map[string]bool{scimv1.LabelConfig: true, k8sbackend.LabelConfigNamespace: true,
	k8sbackend.LabelOwnerKind: true}

// internObject replaces the repeated strings of a cached object with shared copies. The
// object is unchanged by value; only where its strings are stored changes. Only the kinds
// cached by the thousand are interned (members, groups and their grants); others, such as
// the metadata of every Secret, would only churn the table.
func internObject(obj any) {
	var meta metav1.Object
	switch o := obj.(type) {
	case *scimv1.OrgMember, *scimv1.OrgGroup, *scimv1.OrgGrant, *rbacv1.ClusterRoleBinding, *rbacv1.RoleBinding:
		meta = o.(metav1.Object)
	default:
		return
	}
	meta.SetNamespace(strs.str(meta.GetNamespace()))
	strs.strMap(meta.GetLabels(), sharedValues)
	strs.strMap(meta.GetAnnotations(), nil)
	if f := meta.GetFinalizers(); f != nil {
		for i := range f {
			f[i] = strs.str(f[i])
		}
	}
	switch o := obj.(type) {
	case *scimv1.OrgMember:
		o.Spec.ConfigName = strs.str(o.Spec.ConfigName)
		o.Status.Message = strs.str(o.Status.Message)
		internConditions(o.Status.Conditions)
	case *scimv1.OrgGroup:
		o.Spec.ConfigName = strs.str(o.Spec.ConfigName)
		internConditions(o.Status.Conditions)
	case *scimv1.OrgGrant:
		o.Spec.Role.Name = strs.str(o.Spec.Role.Name)
		o.Spec.Namespace = strs.str(o.Spec.Namespace)
	}
}

func internConditions(cs []metav1.Condition) {
	for i := range cs {
		cs[i].Type = strs.str(cs[i].Type)
		cs[i].Reason = strs.str(cs[i].Reason)
		cs[i].Message = strs.str(cs[i].Message)
	}
}
