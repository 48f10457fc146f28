package scimstore

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/naming"
)

// The shipped cache (issue 10, memory): each member index is keyed for lookups in the
// member's namespace only (every lookup in the code names one), checked on the cache the
// manager builds (cachepolicy.Cache and index.Setup, as startCache does).
func TestShippedCacheIndexesMembersInNamespaceOnly(t *testing.T) {
	ctx, direct, mgr := startCache(t, false)
	nsA := uniqueNamespace(ctx, t, direct, "cachemem-a")
	nsB := uniqueNamespace(ctx, t, direct, "cachemem-b")
	for _, ns := range []string{nsA, nsB} {
		for _, u := range []string{"ann@example.com", "ben@example.com"} {
			m := &scimv1.OrgMember{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: naming.MemberName("acme", u),
					Labels: map[string]string{scimv1.LabelConfig: "acme"}, Finalizers: []string{scimv1.FinalizerDeprovision}},
				Spec: scimv1.OrgMemberSpec{ConfigName: "acme", UserName: u, Active: true},
			}
			if err := direct.Create(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	cached := mgr.GetClient()
	key := index.Key("acme", naming.NameKey("ann@example.com"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var in scimv1.OrgMemberList
		if err := cached.List(ctx, &in, client.InNamespace(nsA), client.MatchingFields{index.UserName: key}); err != nil {
			t.Fatal(err)
		}
		var all scimv1.OrgMemberList
		if err := cached.List(ctx, &all, client.InNamespace(nsA), client.MatchingFields{index.Config: "acme"}); err != nil {
			t.Fatal(err)
		}
		if len(in.Items) == 1 && in.Items[0].Namespace == nsA && len(all.Items) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in %s the userName index finds %d members and the config index %d; want 1 and 2", nsA, len(in.Items), len(all.Items))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// the second key controller-runtime would add for a lookup across namespaces is not kept
	var across scimv1.OrgMemberList
	if err := cached.List(ctx, &across, client.MatchingFields{index.UserName: key}); err != nil {
		t.Fatal(err)
	}
	if len(across.Items) != 0 {
		t.Errorf("a userName lookup across namespaces found %d members: the index keeps both keys per value", len(across.Items))
	}
}
