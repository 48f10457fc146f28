package cachepolicy

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// clone gives s its own storage, as each object decoded from a watch event has.
func clone(s string) string { return strings.Clone(s) }

func member(user string) *scimv1.OrgMember {
	return &scimv1.OrgMember{
		ObjectMeta: metav1.ObjectMeta{Namespace: clone("default"), Name: "u-" + user,
			Labels:      map[string]string{clone(scimv1.LabelConfig): clone("acme"), clone(scimv1.LabelGroupPrefix + "devs"): ""},
			Annotations: map[string]string{clone("note"): clone(user)},
			Finalizers:  []string{clone(scimv1.FinalizerDeprovision)}},
		Spec: scimv1.OrgMemberSpec{ConfigName: clone("acme"), UserName: clone(user)},
		Status: scimv1.OrgMemberStatus{Message: clone("member of organization acme"),
			Conditions: []metav1.Condition{{Type: clone("Ready"), Status: "True", Reason: clone("Active"), Message: clone("member of organization acme")}}},
	}
}

// internObject changes where a cached object's strings are stored, never what they say, and
// shares the ones every object repeats while leaving a unique value (a userName) alone.
func TestInternObjectSharesRepeatedStringsOnly(t *testing.T) {
	a, b := member("ann@x.io"), member("ben@x.io")
	want := a.DeepCopy()
	internObject(a)
	internObject(b)
	if !equality.Semantic.DeepEqual(a, want) {
		t.Fatalf("interning changed the object:\n got %+v\nwant %+v", a, want)
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	for name, pair := range map[string][2]string{
		"namespace":         {a.Namespace, b.Namespace},
		"configName":        {a.Spec.ConfigName, b.Spec.ConfigName},
		"finalizer":         {a.Finalizers[0], b.Finalizers[0]},
		"config label":      {a.Labels[scimv1.LabelConfig], b.Labels[scimv1.LabelConfig]},
		"status message":    {a.Status.Message, b.Status.Message},
		"condition reason":  {a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason},
		"condition message": {a.Status.Conditions[0].Message, b.Status.Conditions[0].Message},
	} {
		if !same(pair[0], pair[1]) {
			t.Errorf("%s: stored twice", name)
		}
	}
	for k := range a.Labels {
		for l := range b.Labels {
			if k == l && !same(k, l) {
				t.Errorf("label key %q: stored twice", k)
			}
		}
	}
	if a.Annotations["note"] != "ann@x.io" || same(a.Spec.UserName, b.Spec.UserName) {
		t.Errorf("unique values were touched")
	}
}

// The table holds at most internMax strings of at most internMaxLen bytes: a stream of
// unique values cannot grow it, and what it does not hold is returned unchanged.
func TestInternerIsBounded(t *testing.T) {
	in := &interner{m: map[string]string{}, max: 10}
	for i := range 100 {
		s := fmt.Sprintf("value-%d", i)
		if got := in.str(s); got != s {
			t.Fatalf("str(%q) = %q", s, got)
		}
	}
	if len(in.m) != 10 {
		t.Errorf("the table holds %d strings, want its bound 10", len(in.m))
	}
	long := strings.Repeat("x", internMaxLen+1)
	in2 := &interner{m: map[string]string{}, max: 10}
	if in2.str(long) != long || len(in2.m) != 0 {
		t.Errorf("a string over %d bytes was kept", internMaxLen)
	}
}
