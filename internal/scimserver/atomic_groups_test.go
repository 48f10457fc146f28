package scimserver_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// failNth is a client whose nth label patch of an OrgMember fails (a definite refusal of
// the API server), as a membership change cut half-way by an API server failure.
type failNth struct {
	client.Client
	mu      sync.Mutex
	patches int
	n       int
}

func (f *failNth) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*scimv1.OrgMember); ok {
		f.mu.Lock()
		f.patches++
		fail := f.patches == f.n
		f.mu.Unlock()
		if fail {
			return apierrors.NewInternalError(errors.New("injected: the label patch failed"))
		}
	}
	return f.Client.Patch(ctx, obj, patch, opts...)
}

var _ = Describe("group claims after a failed create (issue 9, defect 3)", func() {
	It("frees the displayName of a group whose create was taken back, so the IdP's retry succeeds", func() {
		c := newEnv().config("undo", "undo-token")
		var members []any
		for i := range 3 {
			members = append(members, map[string]any{"value": userID(c, fmt.Sprintf("u%d@example.com", i))})
		}
		var cfg scimv1.ScimConfig
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: c.config}, &cfg)).To(Succeed())
		st := &scimstore.Store{Client: &failNth{Client: mgrClient, n: 2}, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.CreateGroup(context.Background(), scimstore.Scope{Config: &cfg}, map[string]any{"displayName": "undone", "members": members})
		Expect(err).To(HaveOccurred())
		// (the cache follows the undo's delete)
		Eventually(func() int { return filterCount(c, "Groups", "displayName", "undone") }).Should(Equal(0))
		r := c.do("POST", "/Groups", map[string]any{"displayName": "undone", "members": members})
		Expect(r.code).To(Equal(201), "%s", r)
	})
})

var _ = Describe("group delete and a client that hangs up (issue 9, defect 3)", func() {
	It("deletes the whole group, never leaving it live and emptied", func() {
		c := newEnv().config("gone", "gone-token")
		var ids []string
		var members []any
		for i := range 8 {
			id := userID(c, fmt.Sprintf("d%d@example.com", i))
			ids = append(ids, id)
			members = append(members, map[string]any{"value": id})
		}
		sort.Strings(ids)
		r := c.do("POST", "/Groups", map[string]any{"displayName": "doomed", "members": members})
		Expect(r.code).To(Equal(201), "%s", r)
		gid := str(r.body["id"])
		Expect(labelled(c.ns, gid)).To(Equal(ids))

		var cfg scimv1.ScimConfig
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: c.config}, &cfg)).To(Succeed())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st := &scimstore.Store{Client: &disconnecting{Client: mgrClient, after: 3, cancel: cancel}, APIReader: mgrReader, Log: logr.Discard()}
		_ = st.DeleteGroup(ctx, scimstore.Scope{Config: &cfg}, gid, "")
		var g scimv1.OrgGroup
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: gid}, &g)
		if apierrors.IsNotFound(err) || (err == nil && !g.DeletionTimestamp.IsZero()) {
			return // gone (or going)
		}
		Expect(err).NotTo(HaveOccurred())
		Expect(labelled(c.ns, gid)).To(Equal(ids), "the group is live and lost members")
	})
})
