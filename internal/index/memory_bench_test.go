package index

import (
	"fmt"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// benchField is one index of the benchmark's objects.
type benchField struct {
	field string
	scope Scope
	fn    client.IndexerFunc
}

// benchGrantLabels is the kubernetes backend's GrantIndex function (grantIndexKeys) on the
// labels the benchmark's OrgGrants carry: the key shapes are what costs memory.
func benchGrantLabels(o client.Object) []string {
	l := o.GetLabels()
	pre := l["scim.operator.dev/config-namespace"] + "/" + l["scim.operator.dev/config"] + "/"
	return []string{pre + "scim.operator.dev/owner-uid=" + l["scim.operator.dev/owner-uid"],
		pre + "scim.operator.dev/member=" + l["scim.operator.dev/member"]}
}

// benchObjects are n members of one config, each with a userName, an externalId and a
// backend id, or n OrgGrants (one role), each with its owner's UID, its member and its
// subject: the near-unique values of make bench's organizations.
func benchObjects(kind string, n int) ([]client.Object, []benchField) {
	objs := make([]client.Object, 0, n)
	for i := range n {
		user := fmt.Sprintf("user%06d@example.com", i)
		name := fmt.Sprintf("acme-user%06d-example-com-%05x", i, i*7919%0xfffff)
		switch kind {
		case "OrgMember":
			objs = append(objs, &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
				Spec:   scimv1.OrgMemberSpec{ConfigName: "acme", UserName: user, ExternalID: fmt.Sprintf("ext-%08d", i)},
				Status: scimv1.OrgMemberStatus{BackendID: fmt.Sprintf("user%06d", i)}})
		default:
			objs = append(objs, &scimv1.OrgGrant{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "g-" + name,
				Labels: map[string]string{"scim.operator.dev/config-namespace": "bench", "scim.operator.dev/config": "acme",
					"scim.operator.dev/owner-uid": fmt.Sprintf("6f1c2d3e-%04x-4000-8000-%012x", i%0xffff, i),
					"scim.operator.dev/member":    name}},
				Spec: scimv1.OrgGrantSpec{Subject: scimv1.OrgGrantSubject{Kind: scimv1.GrantSubjectUser, Name: user},
					Role: scimv1.OrgGrantRole{Kind: "ClusterRole", Name: "view"}}})
		}
	}
	if kind == "OrgMember" {
		return objs, []benchField{{UserName, InNamespace, MemberUserName}, {ExternalID, InNamespace, MemberExternalID},
			{BackendID, InNamespace, MemberBackendID}}
	}
	return objs, []benchField{{"index.grantLabels", InNamespace, benchGrantLabels}, {GrantSubject, AllNamespaces, GrantSubjectOf}}
}

// liveHeap is the live heap after a collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIndexMemory measures what the near-unique indexes of 100,000 objects hold in
// the heap beyond the informer's store of those objects: client-go's indexer with Field's
// IndexFunc (a set of object keys per value) against the compact keyMaps (Compact). It
// reports bytes per index value (B/value) and per object (B/object); the time is not the
// point. Run:
//
//	go test ./internal/index -run '^$' -bench BenchmarkIndexMemory -benchtime 1x
func BenchmarkIndexMemory(b *testing.B) {
	const n = 100_000
	for _, kind := range []string{"OrgMember", "OrgGrant"} {
		for _, impl := range []string{"client-go", "compact"} {
			b.Run(kind+"/"+impl, func(b *testing.B) {
				objs, fields := benchObjects(kind, n)
				values := 0
				for _, o := range objs {
					for _, f := range fields {
						values += len(f.fn(o))
					}
				}
				for range b.N {
					// the store alone: the baseline
					plain := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{})
					for _, o := range objs {
						if err := plain.Add(o); err != nil {
							b.Fatal(err)
						}
					}
					before := liveHeap()
					var kept any
					switch impl {
					case "client-go":
						indexers := toolscache.Indexers{}
						for _, f := range fields {
							indexers[fieldIndexName(f.field)] = indexFunc(f.field, f.scope, f.fn)
						}
						// the same store with the indexes: plain's items map is counted in
						// before, so plain goes and this one is measured against it
						idx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, indexers)
						for _, o := range objs {
							if err := idx.Add(o); err != nil {
								b.Fatal(err)
							}
						}
						plain = nil
						kept = idx
					default:
						var ixs []*compactIndex
						for _, f := range fields {
							ix := &compactIndex{field: f.field, scope: f.scope, fn: f.fn, keys: newKeyMap(), store: plain}
							for _, o := range objs {
								ix.update(nil, o)
							}
							ixs = append(ixs, ix)
						}
						kept = ixs
					}
					after := liveHeap()
					runtime.KeepAlive(kept)
					runtime.KeepAlive(plain)
					grown := float64(after) - float64(before)
					b.ReportMetric(grown/float64(values), "B/value")
					b.ReportMetric(grown/float64(n), "B/object")
				}
				runtime.KeepAlive(objs)
			})
		}
	}
}
