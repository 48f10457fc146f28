package scimserver_test

import (
	"context"
	"sync"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/scim"
	"github.com/scim-operator/scim-operator/internal/scimstore"
)

// Adversarial review of issue 10 (one-write SCIM creates), helper review9. Each spec is an
// interleaving of a claimless create (write the member, then read the claim) with a
// fault the issue-9 guarantees say is handled.

// aroundCreate is a client whose first OrgMember Create (once armed) runs before before it
// is sent, then, when send, sends it, and answers answer (nil: what the API server said).
type aroundCreate struct {
	client.Client
	mu     sync.Mutex
	armed  bool
	before func()
	send   bool
	answer func() error
}

func (a *aroundCreate) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if _, ok := obj.(*scimv1.OrgMember); !ok {
		return a.Client.Create(ctx, obj, opts...)
	}
	a.mu.Lock()
	armed := a.armed
	a.armed = false
	a.mu.Unlock()
	if !armed {
		return a.Client.Create(ctx, obj, opts...)
	}
	if a.before != nil {
		a.before()
	}
	if a.send {
		if err := a.Client.Create(ctx, obj, opts...); err != nil {
			return err
		}
	}
	if a.answer != nil {
		return a.answer()
	}
	return nil
}

// failingReads is an API reader whose first Get of the given kind fails with a 503 (the
// API server going away for a moment): a transient read fault.
type failingReads struct {
	client.Reader
	kind   func(client.Object) bool
	mu     sync.Mutex
	failed bool
}

func (f *failingReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	f.mu.Lock()
	fail := f.kind(obj) && !f.failed
	if fail {
		f.failed = true
	}
	f.mu.Unlock()
	if fail {
		return apierrors.NewServiceUnavailable("injected: the API server is going away")
	}
	return f.Reader.Get(ctx, key, obj, opts...)
}

func isMember(o client.Object) bool { _, ok := o.(*scimv1.OrgMember); return ok }
func isClaim(o client.Object) bool  { _, ok := o.(*scimv1.OrgNameClaim); return ok }

var _ = Describe("review9: a claimless create whose write's outcome is unknown (issue 10)", func() {
	var c *scimClient
	var sc scimstore.Scope
	BeforeEach(func() {
		c = newEnv().config("review9", "review9-token")
		sc = scopeOf(c)
	})

	// Before issue 10 the create claimed first, so the rename below found the claim and
	// lost whatever became of the create's answer. Now the create's member holds the name
	// only if the create reads the claim after its write; when the write times out (it
	// committed) and the read of the member that follows fails too, nothing judges the
	// member, and a rename that claimed and read the derived object name before the
	// create's commit has won as well: two users with one userName, for good.
	It("leaves no second user of a userName when its create timed out after committing and the read after it failed", func() {
		id := userID(c, "ra@example.com")
		var renameErr error
		wrapped := &aroundCreate{Client: mgrClient, armed: true, send: true, answer: timeoutErr}
		wrapped.before = func() {
			// a rename to the same userName runs whole before the create reaches the API
			// server: it claims, finds nothing under the derived object name, writes
			_, renameErr = plain().PatchUser(context.Background(), sc, id, replaceOp("userName", "rb@example.com"), "")
		}
		st := &scimstore.Store{Client: wrapped, APIReader: &failingReads{Reader: mgrReader, kind: isMember}, Log: logr.Discard()}
		_, err := st.CreateUser(context.Background(), sc, scim.Resource{"userName": "rb@example.com"})
		Expect(err).To(HaveOccurred(), "the IdP was told the create failed")
		if renameErr == nil { // (before issue 10 the rename lost to the create's claim)
			Expect(liveMember(c, id).Spec.UserName).To(Equal("rb@example.com"), "the rename won")
			Eventually(gone(derivedKey(c, "rb@example.com"))).Should(BeTrue(),
				"the create's member, committed after the rename won, carries its userName too: a duplicate nothing removes")
		}
		Eventually(func() int { return filterCount(c, "Users", "userName", "rb@example.com") }).Should(Equal(1))
	})

	// The unknown-outcome path judges whatever member it finds under the derived object
	// name, and deletes it when the judgment fails: it cannot tell its own member from one
	// that a concurrent create of the same userName (the IdP's retry of a request it hung
	// up on) wrote, won and answered 201 for.
	It("does not delete a user another request created and answered 201 for", func() {
		var retried scim.Resource
		var retryErr error
		wrapped := &aroundCreate{Client: mgrClient, armed: true, send: false,
			answer: func() error { return apierrors.NewInternalError(context.DeadlineExceeded) }}
		wrapped.before = func() {
			// this create never reaches etcd; the IdP's retry of it lands and wins
			retried, retryErr = plain().CreateUser(context.Background(), sc, scim.Resource{"userName": "rc@example.com"})
		}
		// the judgment's read of the claim fails for a moment
		st := &scimstore.Store{Client: wrapped, APIReader: &failingReads{Reader: mgrReader, kind: isClaim}, Log: logr.Discard()}
		_, err := st.CreateUser(context.Background(), sc, scim.Resource{"userName": "rc@example.com"})
		Expect(err).To(HaveOccurred())
		Expect(retryErr).NotTo(HaveOccurred(), "the retry was answered 201")
		m := liveMember(c, str(retried["id"]))
		Expect(m.DeletionTimestamp.IsZero()).To(BeTrue(), "the user answered 201 to the IdP's retry was deleted by the first request")
	})
})

// Review 10, F5: a create whose answer was lost (a timeout) may commit after the store's
// first read of its member found nothing. A rename to the same userName that claimed and
// read the derived object name before that commit has won; the late member must still be
// judged, and lose.
var _ = Describe("review10: a claimless create that commits after its judgment found nothing (issue 10)", func() {
	It("judges the member again, and deletes it when a rename won the userName meanwhile", func() {
		c := newEnv().config("review10", "review10-token")
		sc := scopeOf(c)
		id := userID(c, "la@example.com")
		_, err := plain().PatchUser(context.Background(), sc, id, replaceOp("userName", "lb@example.com"), "")
		Expect(err).NotTo(HaveOccurred(), "the rename wins: nothing under the derived object name yet")
		var late *scimv1.OrgMember
		// (the store's cache has not shown the rename yet: only the claim tells)
		wrapped := &aroundCreate{Client: &noMembersListed{Client: mgrClient}, armed: true, send: false, answer: timeoutErr}
		st := &scimstore.Store{Client: wrapped, APIReader: mgrReader, Log: logr.Discard()}
		_, err = st.CreateUser(context.Background(), sc, scim.Resource{"userName": "lb@example.com"})
		Expect(err).To(MatchError(ContainSubstring("unavailable")), "the IdP was told the create failed (503), not 409")
		// the lost write commits now, after the store's read found nothing
		key := derivedKey(c, "lb@example.com")
		late = &scimv1.OrgMember{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{scimv1.LabelConfig: c.config}},
			Spec: scimv1.OrgMemberSpec{ConfigName: c.config, UserName: "lb@example.com", Active: true}}
		Expect(k8s.Create(context.Background(), late)).To(Succeed())
		Eventually(gone(key), "30s").Should(BeTrue(), "the late member carries the userName the rename won: a duplicate")
		Expect(liveMember(c, id).Spec.UserName).To(Equal("lb@example.com"))
	})
})
