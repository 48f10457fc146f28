package kubernetes_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	k8sbackend "github.com/scim-operator/scim-operator/internal/backend/kubernetes"
	"github.com/scim-operator/scim-operator/internal/index"
)

// The OrgGrant indexes through a cache built as the manager builds it (index.NewCache,
// SetupIndex, index.SetupGrants) answer, at every step, exactly what a label selector (the
// GrantIndex: owner UID, member) or a scan of the subjects (GrantSubject) answers: grants
// sharing an owner, a member and a subject (two roles), an owner and a subject changed, a
// delete and a re-create under the same name with another owner.
func TestCompactGrantIndexesAgreeWithSelectors(t *testing.T) {
	ctx := t.Context()
	ns, cfg := newName("grant-index"), newName("acme")
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	c := startedCache(t, admin.Scheme(), func(ctx context.Context, c cache.Cache) error {
		if err := k8sbackend.SetupIndex(ctx, c); err != nil {
			return err
		}
		return index.SetupGrants(ctx, c)
	})
	ic := index.Of(c)
	// unique names: GrantSubject lookups span namespaces
	ann, ben, devs := newName("ann")+"@x.io", newName("ben")+"@x.io", newName("devs")
	owners := []string{newName("uid"), newName("uid"), newName("uid"), newName("uid")}
	grant := func(name, owner, member string, kind scimv1.GrantSubjectKind, subject, role string) *scimv1.OrgGrant {
		return &scimv1.OrgGrant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			k8sbackend.LabelConfigNamespace: ns, k8sbackend.LabelConfig: cfg,
			k8sbackend.LabelOwnerUID: owner, k8sbackend.LabelMember: member}},
			Spec: scimv1.OrgGrantSpec{Subject: scimv1.OrgGrantSubject{Kind: kind, Name: subject},
				Role: scimv1.OrgGrantRole{Kind: scimv1.GrantRoleClusterRole, Name: role}}}
	}
	names := func(l *scimv1.OrgGrantList) []string {
		out := []string{}
		for _, g := range l.Items {
			out = append(out, g.Namespace+"/"+g.Name)
		}
		slices.Sort(out)
		return out
	}
	agree := func(step string) {
		t.Helper()
		for label, values := range map[string][]string{k8sbackend.LabelOwnerUID: owners, k8sbackend.LabelMember: {"ann", "ben"}} {
			for _, v := range values {
				sel := client.MatchingLabels{k8sbackend.LabelConfigNamespace: ns, k8sbackend.LabelConfig: cfg, label: v}
				var want, got scimv1.OrgGrantList
				if err := c.List(ctx, &want, client.InNamespace(ns), sel); err != nil {
					t.Fatal(err)
				}
				if err := c.List(ctx, &got, client.InNamespace(ns), sel,
					client.MatchingFields{k8sbackend.GrantIndex: ns + "/" + cfg + "/" + label + "=" + v}); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(names(&got), names(&want)) {
					t.Errorf("%s: %s=%s: GrantIndex %v, label selector %v", step, label, v, names(&got), names(&want))
				}
			}
		}
		var all scimv1.OrgGrantList
		if err := c.List(ctx, &all); err != nil {
			t.Fatal(err)
		}
		for _, s := range []scimv1.OrgGrantSubject{{Kind: "User", Name: ann}, {Kind: "User", Name: ben}, {Kind: "Group", Name: devs}} {
			want := []string{}
			for _, g := range all.Items {
				if g.Spec.Subject == s {
					want = append(want, g.Namespace+"/"+g.Name)
				}
			}
			slices.Sort(want)
			var got scimv1.OrgGrantList
			if err := c.List(ctx, &got, client.MatchingFields{index.GrantSubject: index.GrantSubjectKey(string(s.Kind), s.Name)}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(&got), want) {
				t.Errorf("%s: subject %s/%s: GrantSubject %v, scan %v", step, s.Kind, s.Name, names(&got), want)
			}
		}
	}
	// settle waits until the cache and its indexes show g as the API server has it (gone:
	// not at all), then checks every lookup
	settle := func(step string, g *scimv1.OrgGrant, gone bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // bounds a broken cache; not a speed assertion
		for {
			var cached scimv1.OrgGrant
			err := c.Get(ctx, client.ObjectKeyFromObject(g), &cached)
			if gone && err != nil && ic.Shows(g, true) || !gone && err == nil && cached.ResourceVersion == g.ResourceVersion && ic.Shows(&cached, false) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the cache never showed it", step)
			}
			time.Sleep(20 * time.Millisecond)
		}
		agree(step)
	}
	write := func(step string, g *scimv1.OrgGrant, do func(context.Context, client.Object, ...client.CreateOption) error) {
		t.Helper()
		if err := do(ctx, g); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		settle(step, g, false)
	}
	g1 := grant("g1", owners[0], "ann", "User", ann, "view")
	write("create g1", g1, admin.Create)
	g2 := grant("g2", owners[0], "ann", "User", ann, "edit")
	write("g2 shares g1's owner, member and subject", g2, admin.Create)
	g3 := grant("g3", owners[1], "ben", "User", ben, "view")
	write("create g3", g3, admin.Create)
	g3.Labels[k8sbackend.LabelOwnerUID] = owners[2]
	g3.Spec.Subject = scimv1.OrgGrantSubject{Kind: "Group", Name: devs}
	if err := admin.Update(ctx, g3); err != nil {
		t.Fatal(err)
	}
	settle("g3's owner and subject change", g3, false)
	if err := admin.Delete(ctx, g1); err != nil {
		t.Fatal(err)
	}
	settle("delete g1", g1, true)
	write("re-create g1 with another owner", grant("g1", owners[3], "ann", "User", ann, "view"), admin.Create)
}
