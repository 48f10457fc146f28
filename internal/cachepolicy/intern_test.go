package cachepolicy

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
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

// The table holds at most its bound of strings of at most internMaxLen bytes: a stream
// of unique values cannot grow it, and every string comes back saying what it said.
func TestInternerIsBounded(t *testing.T) {
	in := &interner{m: map[string]string{}, max: 10}
	for i := range 100 {
		s := fmt.Sprintf("value-%d", i)
		if got := in.str(s); got != s {
			t.Fatalf("str(%q) = %q", s, got)
		}
		if len(in.m) > 10 {
			t.Fatalf("the table holds %d strings, over its bound 10", len(in.m))
		}
	}
	long := strings.Repeat("x", internMaxLen+1)
	in2 := &interner{m: map[string]string{}, max: 10}
	if in2.str(long) != long || len(in2.m) != 0 {
		t.Errorf("a string over %d bytes was kept", internMaxLen)
	}
}

// Review 11: strings seen once (a failure message naming its user, a finished change's
// label) must not keep the table full for good, so that a config added later, or a
// reason first seen later, is still shared; and objects the manager caches for other
// reasons (Secrets' metadata, Roles) do not feed it at all.
func TestInternerKeepsSharingAfterOneOffsFillIt(t *testing.T) {
	saved := strs
	t.Cleanup(func() { strs = saved })
	strs = &interner{m: map[string]string{}, max: 10}
	for i := range 25 {
		m := member(fmt.Sprintf("u%d@x.io", i))
		m.Status.Message = fmt.Sprintf("could not invite u%d@x.io: refused", i)
		m.Labels[fmt.Sprintf("%s%d", scimv1.LabelChangePrefix, i)] = ""
		internObject(m)
	}
	a, b := member("ann@x.io"), member("ben@x.io")
	a.Spec.ConfigName, b.Spec.ConfigName = clone("beta"), clone("beta")
	internObject(a)
	internObject(b)
	if unsafe.StringData(a.Spec.ConfigName) != unsafe.StringData(b.Spec.ConfigName) {
		t.Errorf("a config name first seen after the table filled up is stored twice")
	}
	strs = &interner{m: map[string]string{}, max: 10}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: clone("tenant-x"), Name: "s",
		Annotations: map[string]string{clone("owner"): "x"}}}
	internObject(secret)
	if _, ok := strs.m["tenant-x"]; ok {
		t.Errorf("a Secret's namespace went into the table")
	}
}
