package scimserver_test

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// afterPatch is a client whose first Patch of an OrgMember or OrgGroup (once armed) runs
// hook once it has committed, and answers what hook answers: another writer's request
// landing between a rename's patch and its release of the old name (hook returns nil), or
// an API server that committed the patch but answered an error (hook returns it).
type afterPatch struct {
	client.Client
	mu   sync.Mutex
	hook func() error
}

func (a *afterPatch) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	switch obj.(type) {
	case *scimv1.OrgMember, *scimv1.OrgGroup:
	default:
		return a.Client.Patch(ctx, obj, patch, opts...)
	}
	if err := a.Client.Patch(ctx, obj, patch, opts...); err != nil {
		return err
	}
	a.mu.Lock()
	hook := a.hook
	a.hook = nil
	a.mu.Unlock()
	if hook == nil {
		return nil
	}
	return hook()
}

// afterCreate is afterPatch for an OrgMember's or OrgGroup's Create.
type afterCreate struct {
	client.Client
	mu   sync.Mutex
	hook func() error
}

func (a *afterCreate) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	switch obj.(type) {
	case *scimv1.OrgMember, *scimv1.OrgGroup:
	default:
		return a.Client.Create(ctx, obj, opts...)
	}
	if err := a.Client.Create(ctx, obj, opts...); err != nil {
		return err
	}
	a.mu.Lock()
	hook := a.hook
	a.hook = nil
	a.mu.Unlock()
	if hook == nil {
		return nil
	}
	return hook()
}

func timeoutErr() error {
	return apierrors.NewTimeoutError("the API server committed the write but timed out answering", 1)
}

func scopeOf(c *scimClient) scimstore.Scope {
	GinkgoHelper()
	var cfg scimv1.ScimConfig
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: c.config}, &cfg)).To(Succeed())
	return scimstore.Scope{Config: &cfg}
}

// hasClaim tells whether the OrgNameClaim of name (of kind) exists, read from the API server.
func hasClaim(c *scimClient, kind scimv1.NameClaimKind, name string) bool {
	GinkgoHelper()
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: naming.ClaimName(string(kind), c.config, name)}, &scimv1.OrgNameClaim{})
	if apierrors.IsNotFound(err) {
		return false
	}
	Expect(err).NotTo(HaveOccurred())
	return true
}

func liveMember(c *scimClient, id string) scimv1.OrgMember {
	GinkgoHelper()
	var m scimv1.OrgMember
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: id}, &m)).To(Succeed())
	return m
}

func liveGroup(c *scimClient, id string) scimv1.OrgGroup {
	GinkgoHelper()
	var g scimv1.OrgGroup
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: id}, &g)).To(Succeed())
	return g
}

// plain is the shipped store over the manager's client: a second writer beside the one a
// spec wraps.
func plain() *scimstore.Store {
	return &scimstore.Store{Client: mgrClient, APIReader: mgrReader, Log: logr.Discard(), Indexes: index.Of(mgrCache)}
}

// derivedKey is the object name a create of userName writes its user under.
func derivedKey(c *scimClient, userName string) types.NamespacedName {
	return types.NamespacedName{Namespace: c.ns, Name: naming.MemberName(c.config, userName)}
}

// gone tells (for Eventually) whether the OrgMember key is gone or being deleted.
func gone(key types.NamespacedName) func() bool {
	return func() bool {
		var m scimv1.OrgMember
		err := k8s.Get(context.Background(), key, &m)
		return apierrors.IsNotFound(err) || err == nil && !m.DeletionTimestamp.IsZero()
	}
}

func replaceOp(path, v string) []scim.PatchOp {
	b, _ := json.Marshal(v)
	return []scim.PatchOp{{Op: "replace", Path: path, Value: b}}
}

var _ = Describe("rename claims (issue 9, defect 2)", func() {
	var c *scimClient
	var sc scimstore.Scope
	BeforeEach(func() {
		c = newEnv().config("claims", "claims-token")
		sc = scopeOf(c)
	})

	It("keeps the claim of a userName that a rename back renewed while the first rename released it", func() {
		id := userID(c, "ra@example.com")
		wrapped := &afterPatch{Client: mgrClient}
		wrapped.hook = func() error {
			defer GinkgoRecover()
			// a second request sees the member at its new name (once the cache does) and
			// renames it back before the first one releases the old name
			Eventually(func() string {
				var m scimv1.OrgMember
				_ = mgrClient.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: id}, &m)
				return m.Spec.UserName
			}).Should(Equal("rb@example.com"))
			_, err := plain().PatchUser(context.Background(), sc, id, replaceOp("userName", "ra@example.com"), "")
			Expect(err).NotTo(HaveOccurred())
			return nil
		}
		st := &scimstore.Store{Client: wrapped, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.PatchUser(context.Background(), sc, id, replaceOp("userName", "rb@example.com"), "")
		Expect(err).NotTo(HaveOccurred())
		m := liveMember(c, id)
		Expect(m.Spec.UserName).To(Equal("ra@example.com"))
		Expect(hasClaim(c, scimv1.NameClaimUser, m.Spec.UserName)).To(BeTrue(), "the userName the user carries has no claim")
		Expect(createUser(c, "ra@example.com")).To(Equal(409))
	})

	It("keeps the claim of a displayName that a rename back renewed while the first rename released it", func() {
		r := c.do("POST", "/Groups", map[string]any{"displayName": "ga"})
		Expect(r.code).To(Equal(201), "%s", r)
		id := str(r.body["id"])
		wrapped := &afterPatch{Client: mgrClient}
		wrapped.hook = func() error {
			defer GinkgoRecover()
			Eventually(func() string {
				var g scimv1.OrgGroup
				_ = mgrClient.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: id}, &g)
				return g.Spec.DisplayName
			}).Should(Equal("gb"))
			_, err := plain().PatchGroup(context.Background(), sc, id, replaceOp("displayName", "ga"), "", false)
			Expect(err).NotTo(HaveOccurred())
			return nil
		}
		st := &scimstore.Store{Client: wrapped, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.PatchGroup(context.Background(), sc, id, replaceOp("displayName", "gb"), "", false)
		Expect(err).NotTo(HaveOccurred())
		g := liveGroup(c, id)
		Expect(g.Spec.DisplayName).To(Equal("ga"))
		Expect(hasClaim(c, scimv1.NameClaimGroup, g.Spec.DisplayName)).To(BeTrue(), "the displayName the group carries has no claim")
		Expect(c.do("POST", "/Groups", map[string]any{"displayName": "ga"}).code).To(Equal(409))
	})

	It("keeps the claim of the userName a rename committed though the API server answered a timeout", func() {
		id := userID(c, "ta@example.com")
		st := &scimstore.Store{Client: &afterPatch{Client: mgrClient, hook: timeoutErr}, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.PatchUser(context.Background(), sc, id, replaceOp("userName", "tb@example.com"), "")
		Expect(err).To(HaveOccurred())
		m := liveMember(c, id)
		Expect(hasClaim(c, scimv1.NameClaimUser, m.Spec.UserName)).To(BeTrue(), "the userName the user carries (%s) has no claim", m.Spec.UserName)
	})

	It("keeps the claim of the displayName a rename committed though the API server answered a timeout", func() {
		r := c.do("POST", "/Groups", map[string]any{"displayName": "gta"})
		Expect(r.code).To(Equal(201), "%s", r)
		id := str(r.body["id"])
		st := &scimstore.Store{Client: &afterPatch{Client: mgrClient, hook: timeoutErr}, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.PatchGroup(context.Background(), sc, id, replaceOp("displayName", "gtb"), "", false)
		Expect(err).To(HaveOccurred())
		g := liveGroup(c, id)
		Expect(hasClaim(c, scimv1.NameClaimGroup, g.Spec.DisplayName)).To(BeTrue(), "the displayName the group carries (%s) has no claim", g.Spec.DisplayName)
	})

	It("keeps the userName of a user whose create committed though the API server answered a timeout", func() {
		st := &scimstore.Store{Client: &afterCreate{Client: mgrClient, hook: timeoutErr}, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.CreateUser(context.Background(), sc, scim.Resource{"userName": "tc@example.com"})
		Expect(err).To(HaveOccurred())
		Eventually(func() int { return filterCount(c, "Users", "userName", "tc@example.com") }).Should(Equal(1))
		// it holds its name by its object name (issue 10: a create writes no claim)
		Expect(createUser(c, "tc@example.com")).To(Equal(409))
		Expect(renameUser(c, userID(c, "td@example.com"), "tc@example.com")).To(Equal(409))
		Expect(filterCount(c, "Users", "userName", "tc@example.com")).To(Equal(1))
	})
})

var _ = Describe("a name claim and a client that hangs up after the create (issue 9, defect 2)", func() {
	It("binds the claim to the new group all the same, so it goes with it; the new user keeps its name without one", func() {
		c := newEnv().config("hangup", "hangup-token")
		member := userID(c, "member@example.com")
		for _, kind := range []scimv1.NameClaimKind{scimv1.NameClaimUser, scimv1.NameClaimGroup} {
			ctx, cancel := context.WithCancel(context.Background())
			hung := &afterCreate{Client: mgrClient, hook: func() error { cancel(); return nil }}
			st := &scimstore.Store{Client: hung, APIReader: mgrReader, Log: logr.Discard()}
			var id, name string
			if kind == scimv1.NameClaimUser {
				name = "hangup@example.com"
				r, _ := st.CreateUser(ctx, scopeOf(c), map[string]any{"userName": name})
				if r != nil {
					id = str(r["id"])
				}
			} else {
				name = "hung up"
				r, _ := st.CreateGroup(ctx, scopeOf(c), map[string]any{"displayName": name, "members": []any{map[string]any{"value": member}}})
				if r != nil {
					id = str(r["id"])
				}
			}
			cancel()
			if id == "" { // the store answered the cancellation: find what it created
				Eventually(func() int {
					return filterCount(c, map[scimv1.NameClaimKind]string{scimv1.NameClaimUser: "Users", scimv1.NameClaimGroup: "Groups"}[kind],
						map[scimv1.NameClaimKind]string{scimv1.NameClaimUser: "userName", scimv1.NameClaimGroup: "displayName"}[kind], name)
				}).Should(Equal(1), "%s: the created object stays", kind)
			}
			if kind == scimv1.NameClaimUser {
				// created under its derived object name, it holds its name without a claim:
				// nothing is left to collect, and the name is still refused to others
				Expect(hasClaim(c, kind, name)).To(BeFalse())
				Expect(renameUser(c, member, name)).To(Equal(409))
				continue
			}
			var claim scimv1.OrgNameClaim
			Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: c.ns, Name: naming.ClaimName(string(kind), c.config, name)}, &claim)).To(Succeed())
			Expect(claim.Spec.HolderUID).NotTo(BeEmpty(), "%s: the claim is bound to its holder", kind)
			Expect(claim.OwnerReferences).To(HaveLen(1), "%s: owned by its holder, so it is collected with it", kind)
		}
	})
})

// noMembersListed is a client whose cache lists no OrgMember: a replica whose cache has
// not shown a new user yet.
type noMembersListed struct{ client.Client }

func (n *noMembersListed) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if _, ok := list.(*scimv1.OrgMemberList); ok {
		return nil
	}
	return n.Client.List(ctx, list, opts...)
}

// beforePatch is a client whose first Patch of an OrgMember (once armed) runs hook before
// it is sent: another writer's request landing between a rename's claim and its write.
type beforePatch struct {
	client.Client
	mu   sync.Mutex
	hook func()
}

func (b *beforePatch) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*scimv1.OrgMember); ok {
		b.mu.Lock()
		hook := b.hook
		b.hook = nil
		b.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	return b.Client.Patch(ctx, obj, patch, opts...)
}

// A create under the derived object name writes no claim: it writes its member, then reads
// the name's claim; a rename claims, then reads the derived object name (issue 10: one
// write per create). These specs put the create in each gap of the rename.
var _ = Describe("a create without a claim against a rename to its userName (issue 10)", func() {
	var c *scimClient
	var sc scimstore.Scope
	BeforeEach(func() {
		c = newEnv().config("claimless", "claimless-token")
		sc = scopeOf(c)
	})
	derived := func(userName string) types.NamespacedName { return derivedKey(c, userName) }

	It("loses to a rename that committed first, and deletes the member it wrote", func() {
		id := userID(c, "la@example.com")
		var createErr error
		wrapped := &afterPatch{Client: mgrClient}
		wrapped.hook = func() error {
			// the rename has claimed the name, found no user under its derived object name
			// and written itself; the create comes now
			_, createErr = plain().CreateUser(context.Background(), sc, scim.Resource{"userName": "lb@example.com"})
			return nil
		}
		st := &scimstore.Store{Client: wrapped, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.PatchUser(context.Background(), sc, id, replaceOp("userName", "lb@example.com"), "")
		Expect(err).NotTo(HaveOccurred())
		Expect(createErr).To(MatchError(ContainSubstring("already exists")))
		Expect(gone(derived("lb@example.com"))()).To(BeTrue(), "the losing create's member is deleted")
		Eventually(func() int { return filterCount(c, "Users", "userName", "lb@example.com") }).Should(Equal(1))
		Expect(liveMember(c, id).Spec.UserName).To(Equal("lb@example.com"))
	})

	It("waits for a rename in flight and loses when the rename writes its user", func() {
		id := userID(c, "wa@example.com")
		// the controllers are done writing the user (a status write in between would make
		// the rename's write conflict, and its retry find the new user in the cache)
		Eventually(func() scimv1.MemberPhase { return liveMember(c, id).Status.Phase }).ShouldNot(BeEmpty())
		Eventually(func() bool {
			before := liveMember(c, id).ResourceVersion
			time.Sleep(300 * time.Millisecond)
			return liveMember(c, id).ResourceVersion == before
		}).Should(BeTrue())
		created := make(chan error, 1)
		wrapped := &beforePatch{Client: mgrClient}
		wrapped.hook = func() {
			defer GinkgoRecover()
			// the rename has claimed the name and found no user under its derived object
			// name, but not written itself yet: the create writes its member now
			go func() {
				_, err := plain().CreateUser(context.Background(), sc, scim.Resource{"userName": "wb@example.com"})
				created <- err
			}()
			Eventually(func() error {
				return k8s.Get(context.Background(), derived("wb@example.com"), &scimv1.OrgMember{})
			}).Should(Succeed())
			Consistently(created, "100ms").ShouldNot(Receive(), "the create waits while the claim's holder does not carry the name")
		}
		st := &scimstore.Store{Client: wrapped, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.PatchUser(context.Background(), sc, id, replaceOp("userName", "wb@example.com"), "")
		Expect(err).NotTo(HaveOccurred())
		var createErr error
		Eventually(created).Should(Receive(&createErr))
		Expect(createErr).To(MatchError(ContainSubstring("already exists")))
		Eventually(gone(derived("wb@example.com"))).Should(BeTrue(), "the losing create's member is deleted")
		Eventually(func() int { return filterCount(c, "Users", "userName", "wb@example.com") }).Should(Equal(1))
	})

	It("refuses a rename to the userName of a user created without a claim, though the cache has not shown the user yet", func() {
		id := userID(c, "ya@example.com")
		r, err := plain().CreateUser(context.Background(), sc, scim.Resource{"userName": "yb@example.com"})
		Expect(err).NotTo(HaveOccurred())
		// the rename's replica has not seen the new user in its cache: only the read of
		// the derived object name after its claim finds it
		lagging := &scimstore.Store{Client: &noMembersListed{Client: mgrClient}, APIReader: mgrReader, Log: logr.Discard()}
		_, err = lagging.PatchUser(context.Background(), sc, id, replaceOp("userName", "yb@example.com"), "")
		Expect(err).To(MatchError(ContainSubstring("already exists")))
		Expect(hasClaim(c, scimv1.NameClaimUser, "yb@example.com")).To(BeFalse(), "the rename released the claim it took")
		Expect(liveMember(c, str(r["id"])).Spec.UserName).To(Equal("yb@example.com"))
		Expect(liveMember(c, id).Spec.UserName).To(Equal("ya@example.com"))
	})
})

// noRelease is a client whose OrgMember patches fail (so a group create fails at its
// members' marks) and whose claim deletes fail too (so the failed create cannot release
// its displayName): a create that died before its object, as far as its claim shows.
type noRelease struct{ client.Client }

func (n *noRelease) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	if _, ok := obj.(*scimv1.OrgMember); ok {
		return apierrors.NewServiceUnavailable("injected: the API server is going away")
	}
	return n.Client.Patch(ctx, obj, patch, opts...)
}

func (n *noRelease) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	if _, ok := obj.(*scimv1.OrgNameClaim); ok {
		return apierrors.NewServiceUnavailable("injected: the API server is going away")
	}
	return n.Client.Delete(ctx, obj, opts...)
}

var _ = Describe("a claim left by a create that died before its object (issue 9, defect 2)", func() {
	It("does not refuse the IdP's retry of the same create for the claim's grace", func() {
		c := newEnv().config("leftclaim", "leftclaim-token")
		member := userID(c, "left@example.com")
		st := &scimstore.Store{Client: &noRelease{Client: mgrClient}, APIReader: mgrReader, Log: logr.Discard()}
		_, err := st.CreateGroup(context.Background(), scopeOf(c), map[string]any{"displayName": "left behind",
			"members": []any{map[string]any{"value": member}}})
		Expect(err).To(HaveOccurred())
		Expect(hasClaim(c, scimv1.NameClaimGroup, "left behind")).To(BeTrue(), "the claim could not be released")
		// the retry: the same create, so the same object name, which the API server
		// gives to one create only; the claim is not held against it
		r := c.do("POST", "/Groups", map[string]any{"displayName": "left behind", "members": []any{map[string]any{"value": member}}})
		Expect(r.code).To(Equal(201), "%s", r)
		Expect(filterCount(c, "Groups", "displayName", "left behind")).To(Equal(1))
	})
})
