package cachepolicy

import (
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

// Members and their grants are cached by the hundred thousand, and a watch decodes every
// string of every object into its own allocation: the label and annotation keys, the
// config's name, the conditions' types, reasons and messages are the same in nearly every
// member, yet each member held its own copies. The transforms below make the cached
// objects share them (BenchmarkCachedMember: 4035 to 3366 bytes a member and its grant).
//
// Only fields whose values usually repeat across objects are interned; a value that is
// always the object's own (a uid, a userName, a timestamp) would only churn the table.
// Within one object, a string equal to another of its fields (a backend ID that is the
// userName, the grant's annotated userName that is its subject) shares that field's bytes.
//
// The table is written here rather than taken from the standard library's unique package:
// unique holds a value only while a Handle to it lives, and a cached object keeps the
// string, not the Handle, so every collection would start a new copy. The table keeps two
// generations of at most maxInterned strings of at most maxInternedLen bytes: when the
// current one is full it becomes the previous one and a new one starts, and a string found
// in the previous one moves to the current one. So what keeps repeating stays shared,
// while values that came once (an IdP's free text, an error message, a deleted group's
// label) age out instead of filling the table for good; objects keep the copies they hold.

const (
	maxInterned    = 1 << 13
	maxInternedLen = 256
)

// interner maps a string to the one copy cached objects share.
type interner struct {
	mu       sync.RWMutex
	cur, old map[string]string
	max      int
}

func newInterner(max int) *interner { return &interner{cur: map[string]string{}, max: max} }

// shared is s, as the copy every interned equal string shares.
func (t *interner) shared(s string) string {
	if s == "" || len(s) > maxInternedLen {
		return s
	}
	t.mu.RLock()
	v, ok := t.cur[s]
	t.mu.RUnlock()
	if ok {
		return v
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.cur[s]; ok {
		return v
	}
	v, ok = t.old[s]
	if !ok {
		v = strings.Clone(s) // (s may share its bytes with more than itself)
	}
	if len(t.cur) >= t.max {
		t.old, t.cur = t.cur, make(map[string]string, t.max)
	}
	t.cur[v] = v
	return v
}

// meta interns the keys of the labels and annotations, the namespace and the finalizers,
// and the values of the labels named in values. Keys are rewritten in place: assigning to
// an equal key stores the new key (Go updates string keys on assignment).
func (t *interner) meta(om *metav1.ObjectMeta, values ...string) {
	om.Namespace = t.shared(om.Namespace)
	for k, v := range om.Labels {
		if strings.HasPrefix(k, scimv1.LabelChangePrefix) {
			continue // one key per change in flight: its own
		}
		for _, name := range values {
			if k == name {
				v = t.shared(v)
				break
			}
		}
		om.Labels[t.shared(k)] = v
	}
	for k, v := range om.Annotations {
		om.Annotations[t.shared(k)] = v
	}
	for i := range om.Finalizers {
		om.Finalizers[i] = t.shared(om.Finalizers[i])
	}
}

func (t *interner) conditions(cs []metav1.Condition) {
	for i := range cs {
		c := &cs[i]
		c.Type, c.Reason, c.Message = t.shared(c.Type), t.shared(c.Reason), t.shared(c.Message)
		c.Status = metav1.ConditionStatus(t.shared(string(c.Status)))
	}
}

// member interns what members share and shares within the member what it repeats.
func (t *interner) member(m *scimv1.OrgMember) {
	t.meta(&m.ObjectMeta, scimv1.LabelConfig)
	s := &m.Spec
	s.ConfigName = t.shared(s.ConfigName)
	s.Title, s.UserType = t.shared(s.Title), t.shared(s.UserType)
	s.PreferredLanguage, s.Locale, s.Timezone = t.shared(s.PreferredLanguage), t.shared(s.Locale), t.shared(s.Timezone)
	own := func(v string) string { // one of the member's own strings equal to v, or v
		if v == s.UserName {
			return s.UserName
		}
		return v
	}
	for i := range s.Emails {
		s.Emails[i].Type, s.Emails[i].Value = t.shared(s.Emails[i].Type), own(s.Emails[i].Value)
	}
	for i := range s.PhoneNumbers {
		s.PhoneNumbers[i].Type = t.shared(s.PhoneNumbers[i].Type)
	}
	if e := s.Enterprise; e != nil {
		e.Organization, e.Division = t.shared(e.Organization), t.shared(e.Division)
		e.Department, e.CostCenter = t.shared(e.Department), t.shared(e.CostCenter)
	}
	if d := s.Docker; d != nil {
		d.Role, d.Org, d.Team = t.shared(d.Role), t.shared(d.Org), t.shared(d.Team)
	}
	st := &m.Status
	st.Phase, st.Origin = scimv1.MemberPhase(t.shared(string(st.Phase))), scimv1.MemberOrigin(t.shared(string(st.Origin)))
	st.Message, st.HintedTeam = t.shared(st.Message), t.shared(st.HintedTeam)
	st.BackendID = own(st.BackendID)
	for i := range st.GrantedIdentities {
		st.GrantedIdentities[i] = own(st.GrantedIdentities[i])
	}
	t.conditions(st.Conditions)
}

// grant interns what grants share; its annotated userName shares its subject's bytes.
func (t *interner) grant(g *scimv1.OrgGrant) {
	t.meta(&g.ObjectMeta, scimv1.LabelConfig, k8sbackend.LabelConfigNamespace, k8sbackend.LabelOwnerKind)
	if v, ok := g.Annotations[k8sbackend.AnnotationUserName]; ok && v == g.Spec.Subject.Name {
		g.Annotations[k8sbackend.AnnotationUserName] = g.Spec.Subject.Name
	}
	sp := &g.Spec
	sp.Subject.Kind = scimv1.GrantSubjectKind(t.shared(string(sp.Subject.Kind)))
	sp.Role.Kind = scimv1.GrantRoleKind(t.shared(string(sp.Role.Kind)))
	sp.Role.Name, sp.Namespace = t.shared(sp.Role.Name), t.shared(sp.Namespace)
}

// transform is the cache's transform for members and grants: managedFields stripped (as
// every cached object's), then interned by t.
func (t *interner) transform() toolscache.TransformFunc {
	return func(in any) (any, error) {
		out, err := stripManagedFields(in)
		if err != nil {
			return out, err
		}
		switch o := out.(type) {
		case *scimv1.OrgMember:
			t.member(o)
		case *scimv1.OrgGrant:
			t.grant(o)
		}
		return out, nil
	}
}
