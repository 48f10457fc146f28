package cachepolicy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
)

// member i of config acme as the controllers leave it: Active in the kubernetes backend,
// in group eng, with managedFields.
func member(i int) *scimv1.OrgMember {
	user := fmt.Sprintf("user%06d@example.com", i)
	at := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, i%60, 0, time.UTC))
	ready := "member of organization acme"
	return &scimv1.OrgMember{
		TypeMeta: metav1.TypeMeta{APIVersion: scimv1.GroupVersion.String(), Kind: "OrgMember"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: fmt.Sprintf("u-%032x", i),
			UID:             types.UID(fmt.Sprintf("6f1c2d3e-%04x-4000-8000-%012x", i%0xffff, i)),
			ResourceVersion: fmt.Sprint(1000 + i), Generation: 1, CreationTimestamp: at,
			Labels:      map[string]string{scimv1.LabelConfig: "acme", scimv1.LabelGroupPrefix + "g-eng": ""},
			Annotations: map[string]string{scimv1.AnnotationLastModified: at.UTC().Format(time.RFC3339Nano)},
			Finalizers:  []string{scimv1.FinalizerDeprovision},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "scim-operator", Operation: metav1.ManagedFieldsOperationApply,
				APIVersion: scimv1.GroupVersion.String(), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}},
		},
		Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: user, ExternalID: fmt.Sprintf("00u%08d", i), Active: true,
			DisplayName: fmt.Sprintf("User %d", i), Title: "Engineer", Locale: "en-GB",
			Name:       &scimv1.Name{GivenName: "User", FamilyName: fmt.Sprint(i)},
			Emails:     []scimv1.MultiValue{{Value: user, Type: "work", Primary: true}},
			Enterprise: &scimv1.EnterpriseUser{Department: "R&D", Organization: "Acme"},
			Docker:     &scimv1.DockerUser{Role: "member", Team: "eng"}},
		Status: scimv1.OrgMemberStatus{Phase: scimv1.PhaseActive, Origin: scimv1.MemberOrigin("Provisioned"), BackendID: user,
			GrantedIdentities: []string{user}, Message: ready, ObservedGeneration: 1, LastSyncTime: &at,
			Conditions: []metav1.Condition{
				{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Active", Message: ready, ObservedGeneration: 1, LastTransitionTime: at},
				{Type: "Synced", Status: metav1.ConditionTrue, Reason: "Synced", Message: "the backend matches the spec", ObservedGeneration: 1, LastTransitionTime: at},
			}},
	}
}

// grant i: member i's OrgGrant in the Webhook layout, as the kubernetes backend writes it,
// with managedFields.
func grant(i int) *scimv1.OrgGrant {
	m := member(i)
	return &scimv1.OrgGrant{
		TypeMeta: metav1.TypeMeta{APIVersion: scimv1.GroupVersion.String(), Kind: "OrgGrant"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-a", Name: fmt.Sprintf("scim-u-%032x", i),
			UID: types.UID(fmt.Sprintf("7a1c2d3e-%04x-4000-8000-%012x", i%0xffff, i)), ResourceVersion: fmt.Sprint(2000 + i),
			Generation: 1, CreationTimestamp: m.CreationTimestamp,
			Labels: map[string]string{scimv1.LabelConfig: "acme", k8sbackend.LabelConfigNamespace: "tenant-a",
				k8sbackend.LabelMember: fmt.Sprintf("%032x", i*7919), k8sbackend.LabelOwnerKind: "OrgMember",
				k8sbackend.LabelOwnerUID: string(m.UID)},
			Annotations:   map[string]string{k8sbackend.AnnotationUserName: m.Spec.UserName},
			ManagedFields: m.ManagedFields,
		},
		Spec: scimv1.OrgGrantSpec{Subject: scimv1.OrgGrantSubject{Kind: scimv1.GrantSubjectUser, Name: m.Spec.UserName},
			Role: scimv1.OrgGrantRole{Kind: scimv1.GrantRoleClusterRole, Name: "view"}},
	}
}

// decoded is o through JSON and the scheme's decoder, as a watch delivers it: every string
// its own allocation.
func decoded(t testing.TB, o k8sruntime.Object) k8sruntime.Object {
	raw, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, raw)
}

var codecs = func() serializer.CodecFactory {
	s := k8sruntime.NewScheme()
	if err := scimv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return serializer.NewCodecFactory(s)
}()

func decode(t testing.TB, raw []byte) k8sruntime.Object {
	o, _, err := codecs.UniversalDeserializer().Decode(raw, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func same(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// size is how many strings the table holds.
func (t *interner) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := len(t.cur)
	for k := range t.old {
		if _, both := t.cur[k]; !both {
			n++
		}
	}
	return n
}

// The transform changes no value: a member and a grant with every field it touches come
// out equal to the stripped original (managedFields gone, nothing else).
func TestTransformKeepsEveryValue(t *testing.T) {
	tr := newInterner(maxInterned).transform()
	m := member(7)
	m.Spec.PhoneNumbers = []scimv1.MultiValue{{Value: "+44 20 7946 0000", Type: "work"}}
	m.Spec.Emails = append(m.Spec.Emails, scimv1.MultiValue{Value: "user7@home.example", Type: "home"})
	m.Spec.Enterprise.Division, m.Spec.Enterprise.CostCenter = "Tools", "42"
	m.Spec.Docker.Org, m.Status.HintedTeam = "acme", "eng"
	m.Spec.UserType, m.Spec.PreferredLanguage, m.Spec.Timezone = "Employee", "en", "Europe/London"
	m.Status.GrantedIdentities = append(m.Status.GrantedIdentities, "user7@home.example")
	for _, o := range []k8sruntime.Object{m, grant(7)} {
		in := decoded(t, o)
		want := in.DeepCopyObject()
		want.(metav1.Object).SetManagedFields(nil)
		got, err := tr(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%T changed:\n got %+v\nwant %+v", o, got, want)
		}
	}
	// anything else passes through as stripping leaves it
	var other scimv1.OrgGroup
	other.ManagedFields = m.ManagedFields
	if got, err := tr(&other); err != nil || got != &other || other.ManagedFields != nil {
		t.Errorf("an OrgGroup: %v, %v", got, err)
	}
}

// Two members decoded apart share the strings members repeat; within each, what equals
// the userName shares its bytes; a grant's annotated userName shares its subject's.
func TestTransformSharesRepeatedStrings(t *testing.T) {
	ms, gs := sharedPairs(t, true)
	pairs := pairsOf(t, ms, gs)
	for what, p := range pairs {
		if p[0] != p[1] {
			t.Fatalf("%s: %q and %q differ (the fixture is wrong)", what, p[0], p[1])
		}
		if !same(p[0], p[1]) {
			t.Errorf("%s: %q is held twice", what, p[0])
		}
	}
	// the control: as decoded, each of them was held twice
	ms, gs = sharedPairs(t, false)
	for what, p := range pairsOf(t, ms, gs) {
		if same(p[0], p[1]) {
			t.Errorf("%s: shared before the transform; the check above proves nothing", what)
		}
	}
}

// sharedPairs are members 0 and 1 and their grants, decoded apart, transformed or not.
func sharedPairs(t *testing.T, transform bool) ([2]*scimv1.OrgMember, [2]*scimv1.OrgGrant) {
	tr := newInterner(maxInterned).transform()
	var ms [2]*scimv1.OrgMember
	var gs [2]*scimv1.OrgGrant
	for i := range ms {
		var o [2]any = [2]any{decoded(t, member(i)), decoded(t, grant(i))}
		if transform {
			for j := range o {
				var err error
				if o[j], err = tr(o[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
		ms[i], gs[i] = o[0].(*scimv1.OrgMember), o[1].(*scimv1.OrgGrant)
	}
	return ms, gs
}

// pairsOf are the pairs of strings the transform makes one: across the two members (and
// grants), and within member 0 (and grant 0).
func pairsOf(t *testing.T, ms [2]*scimv1.OrgMember, gs [2]*scimv1.OrgGrant) map[string][2]string {
	key := func(m map[string]string, k string) string {
		for have := range m {
			if have == k {
				return have
			}
		}
		t.Fatalf("no key %s in %v", k, m)
		return ""
	}
	a, b := ms[0], ms[1]
	return map[string][2]string{
		"namespace":                 {a.Namespace, b.Namespace},
		"config label key":          {key(a.Labels, scimv1.LabelConfig), key(b.Labels, scimv1.LabelConfig)},
		"config label value":        {a.Labels[scimv1.LabelConfig], b.Labels[scimv1.LabelConfig]},
		"group label key":           {key(a.Labels, scimv1.LabelGroupPrefix+"g-eng"), key(b.Labels, scimv1.LabelGroupPrefix+"g-eng")},
		"annotation key":            {key(a.Annotations, scimv1.AnnotationLastModified), key(b.Annotations, scimv1.AnnotationLastModified)},
		"finalizer":                 {a.Finalizers[0], b.Finalizers[0]},
		"configName":                {a.Spec.ConfigName, b.Spec.ConfigName},
		"title":                     {a.Spec.Title, b.Spec.Title},
		"email type":                {a.Spec.Emails[0].Type, b.Spec.Emails[0].Type},
		"department":                {a.Spec.Enterprise.Department, b.Spec.Enterprise.Department},
		"docker team":               {a.Spec.Docker.Team, b.Spec.Docker.Team},
		"phase":                     {string(a.Status.Phase), string(b.Status.Phase)},
		"status message":            {a.Status.Message, b.Status.Message},
		"condition type":            {a.Status.Conditions[1].Type, b.Status.Conditions[1].Type},
		"condition reason":          {a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason},
		"condition status":          {string(a.Status.Conditions[0].Status), string(b.Status.Conditions[0].Status)},
		"condition message":         {a.Status.Conditions[1].Message, b.Status.Conditions[1].Message},
		"Ready's message":           {a.Status.Conditions[0].Message, a.Status.Message},
		"grant config-namespace":    {gs[0].Labels[k8sbackend.LabelConfigNamespace], gs[1].Labels[k8sbackend.LabelConfigNamespace]},
		"grant owner-kind":          {gs[0].Labels[k8sbackend.LabelOwnerKind], gs[1].Labels[k8sbackend.LabelOwnerKind]},
		"grant owner-uid key":       {key(gs[0].Labels, k8sbackend.LabelOwnerUID), key(gs[1].Labels, k8sbackend.LabelOwnerUID)},
		"grant role":                {gs[0].Spec.Role.Name, gs[1].Spec.Role.Name},
		"grant subject kind":        {string(gs[0].Spec.Subject.Kind), string(gs[1].Spec.Subject.Kind)},
		"backendID, userName":       {a.Status.BackendID, a.Spec.UserName},
		"granted identity":          {a.Status.GrantedIdentities[0], a.Spec.UserName},
		"email value, userName":     {a.Spec.Emails[0].Value, a.Spec.UserName},
		"grant's userName, subject": {gs[0].Annotations[k8sbackend.AnnotationUserName], gs[0].Spec.Subject.Name},
	}
}

// Values that are always each object's own (uids, userNames, timestamps, member hashes,
// change ids) stay out of the table: a thousand members and grants intern no more strings than
// one of each does.
func TestTransformInternsNoOwnValues(t *testing.T) {
	in := newInterner(maxInterned)
	tr := in.transform()
	one := 0
	for i := range 1000 {
		m := member(i)
		m.Labels[scimv1.LabelChangePrefix+fmt.Sprintf("c%08d", i)] = "add.g-eng" // a change in flight
		if _, err := tr(decoded(t, m)); err != nil {
			t.Fatal(err)
		}
		if _, err := tr(decoded(t, grant(i))); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			one = in.size()
		}
	}
	if n := in.size(); n != one {
		t.Errorf("1000 members and grants interned %d strings, one of each %d: own values fill the table", n, one)
	}
}

// The table keeps two generations: a full one becomes the previous one; what is found
// there moves back and stays shared, what came once ages out; long strings pass through.
func TestInternerAgesOutWhatCameOnce(t *testing.T) {
	in := newInterner(2)
	fresh := func(s string) string { return string([]byte(s)) }
	ann, ben := in.shared(fresh("ann")), in.shared(fresh("ben"))
	in.shared(fresh("cat")) // the current generation was full: ann and ben are the previous one
	if got := in.shared(fresh("ann")); !same(got, ann) {
		t.Error("a string of the previous generation was not shared")
	}
	in.shared(fresh("dan")) // full again (cat, ann): ben, not seen since, ages out
	if got := in.shared(fresh("ben")); same(got, ben) {
		t.Error("a string seen once two generations ago is still held")
	}
	if !same(in.shared(fresh("ann")), ann) {
		t.Error("a string that kept coming back is no longer shared")
	}
	if in.size() > 4 {
		t.Errorf("the table holds %d strings, more than two generations of 2", in.size())
	}
	long := fresh(string(make([]byte, maxInternedLen+1)))
	if big := newInterner(10); !same(big.shared(long), long) || big.size() != 0 {
		t.Error("a string longer than maxInternedLen was interned")
	}
}

// However many values that come once the table has seen (an IdP's titles, error messages,
// groups since deleted), members of a config that comes later still share its strings.
func TestTransformSharesAfterManyValuesThatCameOnce(t *testing.T) {
	tr := newInterner(maxInterned).transform()
	for i := range 3 * maxInterned {
		m := member(i)
		m.Spec.Title = fmt.Sprintf("title %d", i)
		m.Status.Message = fmt.Sprintf("could not add user%06d: refused", i)
		m.Labels[scimv1.LabelGroupPrefix+fmt.Sprintf("g-%d", i)] = ""
		if _, err := tr(m); err != nil {
			t.Fatal(err)
		}
	}
	var late [2]*scimv1.OrgMember
	for i := range late {
		m := member(i)
		m.Namespace, m.Spec.ConfigName, m.Labels[scimv1.LabelConfig] = "tenant-late", "late", "late"
		o, err := tr(decoded(t, m))
		if err != nil {
			t.Fatal(err)
		}
		late[i] = o.(*scimv1.OrgMember)
	}
	a, b := late[0], late[1]
	if !same(a.Namespace, b.Namespace) || !same(a.Spec.ConfigName, b.Spec.ConfigName) ||
		!same(a.Labels[scimv1.LabelConfig], b.Labels[scimv1.LabelConfig]) {
		t.Error("after many values that came once, a new config's members hold their own copies")
	}
}

// The transform may meet an object twice (client-go transforms a list's objects when its
// watch list ends and again when they replace the store's): the second pass changes
// nothing and interns nothing more.
func TestTransformTwiceIsOnce(t *testing.T) {
	in := newInterner(maxInterned)
	tr := in.transform()
	for _, o := range []k8sruntime.Object{member(3), grant(3)} {
		once, err := tr(decoded(t, o))
		if err != nil {
			t.Fatal(err)
		}
		want, n := once.(k8sruntime.Object).DeepCopyObject(), in.size()
		twice, err := tr(once)
		if err != nil || !reflect.DeepEqual(twice, want) || in.size() != n {
			t.Errorf("%T transformed twice: %v, %d strings interned after %d, equal %v", o, err, in.size(), n, reflect.DeepEqual(twice, want))
		}
	}
}

// BenchmarkCachedMember measures what one member and its grant (member and grant above, as
// the controllers leave them) hold in the heap as the cache keeps them: decoded as a watch
// delivers them, their type cleared as the cache's decoder does, then transformed, with
// managedFields stripped only (stripped) or with the shipped transform (shipped); and their
// metadata alone, as a metadata-only informer would hold it, stripped (metadata) and with
// the shipped interning of it (metadata-interned): the floor of any cache that keeps an
// object per member and per grant; and the member alone, shipped and as metadata
// (shipped-member, metadata-interned-member), the floor of a layout with no grant object.
// It reports bytes per member (the pair, or the member alone: B/member); the time is not
// the point. The informer's store keys and the indexes come on top. Run:
//
//	go test ./internal/cachepolicy -run '^$' -bench BenchmarkCachedMember -benchtime 1x
func BenchmarkCachedMember(b *testing.B) {
	const n = 20_000
	raws := make([][2][]byte, n)
	for i := range raws {
		for j, o := range []k8sruntime.Object{member(i), grant(i)} {
			raw, err := json.Marshal(o)
			if err != nil {
				b.Fatal(err)
			}
			raws[i][j] = raw
		}
	}
	for _, variant := range []string{"stripped", "shipped", "metadata", "metadata-interned", "shipped-member", "metadata-interned-member"} {
		// a -member variant keeps the member alone: the floor of a layout without a grant
		// object per member (the webhook answering from the member itself)
		name, alone := strings.CutSuffix(variant, "-member")
		b.Run(variant, func(b *testing.B) {
			for range b.N {
				in := newInterner(maxInterned)
				tr := stripManagedFields
				if name == "shipped" {
					tr = in.transform()
				}
				kept := make([]any, 0, 2*n)
				before := liveHeap()
				for _, r := range raws {
					for j, raw := range r {
						if alone && j == 1 {
							continue
						}
						var o k8sruntime.Object
						if strings.HasPrefix(name, "metadata") {
							var pm metav1.PartialObjectMetadata
							if err := json.Unmarshal(raw, &pm); err != nil {
								b.Fatal(err)
							}
							o = &pm
						} else {
							o = decode(b, raw)
						}
						o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
						out, err := tr(o)
						if err != nil {
							b.Fatal(err)
						}
						if pm, ok := out.(*metav1.PartialObjectMetadata); ok && name == "metadata-interned" {
							if j == 0 {
								in.meta(&pm.ObjectMeta, scimv1.LabelConfig)
							} else {
								in.meta(&pm.ObjectMeta, scimv1.LabelConfig, k8sbackend.LabelConfigNamespace, k8sbackend.LabelOwnerKind)
							}
						}
						kept = append(kept, out)
					}
				}
				after := liveHeap()
				b.ReportMetric(float64(after-before)/n, "B/member")
				runtime.KeepAlive(kept)
			}
		})
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// The shipped cache options carry the transform for members and grants, and strip
// managedFields from everything else.
func TestCacheInternsMembersAndGrants(t *testing.T) {
	opts := Cache()
	found := 0
	for obj, bo := range opts.ByObject {
		var objs [2]k8sruntime.Object
		switch obj.(type) {
		case *scimv1.OrgMember:
			objs = [2]k8sruntime.Object{member(1), member(2)}
		case *scimv1.OrgGrant:
			objs = [2]k8sruntime.Object{grant(1), grant(2)}
		default:
			continue
		}
		found++
		if bo.Transform == nil {
			t.Fatalf("%T: no transform", obj)
		}
		a, err := bo.Transform(decoded(t, objs[0]))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := bo.Transform(decoded(t, objs[1]))
		am, bm := a.(metav1.Object), b.(metav1.Object)
		if am.GetManagedFields() != nil || !same(am.GetNamespace(), bm.GetNamespace()) {
			t.Errorf("%T: managedFields %v, namespace shared %v", obj, am.GetManagedFields(), same(am.GetNamespace(), bm.GetNamespace()))
		}
	}
	if found != 2 {
		t.Errorf("the cache options name %d of OrgMember and OrgGrant", found)
	}
	if opts.DefaultTransform == nil {
		t.Error("no default transform: managedFields are cached")
	}
}
