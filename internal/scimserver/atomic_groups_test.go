package scimserver_test

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// disconnecting is the client of a request whose IdP hangs up after `after` label patches
// of a membership change: it cancels the request's context then.
type disconnecting struct {
	client.Client
	mu      sync.Mutex
	patches int
	after   int
	cancel  context.CancelFunc
}

func (d *disconnecting) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*scimv1.OrgMember); ok {
		d.mu.Lock()
		d.patches++
		if d.patches == d.after {
			d.cancel()
		}
		d.mu.Unlock()
	}
	return d.Client.Patch(ctx, obj, patch, opts...)
}

// labelled answers the ids of the OrgMembers that carry the group's label, read from the
// API server.
func labelled(ns, group string) []string {
	GinkgoHelper()
	var l scimv1.OrgMemberList
	Expect(k8s.List(context.Background(), &l, client.InNamespace(ns), client.HasLabels{scimv1.LabelGroupPrefix + group})).To(Succeed())
	ids := []string{}
	for _, m := range l.Items {
		ids = append(ids, m.Name)
	}
	sort.Strings(ids)
	return ids
}

var _ = Describe("group writes are complete or absent (issue 9, defect 3)", func() {
	It("applies the whole membership change when the client disconnects half-way", func() {
		c := newEnv().config("cut", "cut-token")
		var ids []string
		for i := range 40 { // more changes than the store writes at once
			ids = append(ids, userID(c, fmt.Sprintf("m%d@example.com", i)))
		}
		memberList := func(ids []string) []any {
			var out []any
			for _, id := range ids {
				out = append(out, map[string]any{"value": id})
			}
			return out
		}
		r := c.do("POST", "/Groups", map[string]any{"displayName": "cut", "members": memberList(ids[:20])})
		Expect(r.code).To(Equal(201), "%s", r)
		gid := str(r.body["id"])
		before := append([]string(nil), ids[:20]...)
		after := append([]string(nil), ids[20:]...)
		sort.Strings(before)
		sort.Strings(after)
		Expect(labelled(c.ns, gid)).To(Equal(before))

		var cfg scimv1.ScimConfig
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: c.config}, &cfg)).To(Succeed())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st := &scimstore.Store{Client: &disconnecting{Client: mgrClient, after: 3, cancel: cancel}, APIReader: mgrReader, Log: logr.Discard()}
		// the request may answer an error (its client is gone) or succeed; what the readers
		// see must be the membership before or after, never a mix
		_, _ = st.ReplaceGroup(ctx, scimstore.Scope{Config: &cfg}, gid,
			map[string]any{"displayName": "cut", "members": memberList(ids[20:])}, "", false)
		Expect(labelled(c.ns, gid)).To(Or(Equal(before), Equal(after)))
		// and an IdP that retries converges
		r = c.do("PUT", "/Groups/"+gid, map[string]any{"displayName": "cut", "members": memberList(ids[20:])})
		Expect(r.code).To(Equal(200), "%s", r)
		Expect(labelled(c.ns, gid)).To(Equal(after))
	})
})
