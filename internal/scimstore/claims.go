package scimstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// Name claims make a userName (or a group's displayName) unique per ScimConfig through the
// API server, for creates and renames alike. Every writer that gives an OrgGroup a
// displayName, and every writer that gives an OrgMember a userName except a create under
// the userName's derived object name (see "A user's name is held in one of two ways"
// below), first creates the OrgNameClaim whose object name is derived from the
// ScimConfig and the name's NameKey (naming.ClaimName): two writers of one name race for
// one object, on one replica or several, and the API server lets exactly one win
// (AlreadyExists: taken). A rename claims the new name, updates its holder, then releases
// the old claim.
//
// A claim names its holder (name, and UID once the holder exists) and is owner-referenced
// to it, so the garbage collector removes it with the holder. Nothing depends on that: a
// claim found in the way is judged live, against its holder read from the API server, and
// is stale when the holder is gone (or is another object by now), or when the holder has
// not carried the name for claimGrace since the claim was acquired (a create or rename
// that died half-way, or a release that failed). A stale claim is taken over with an
// update conditional on its resourceVersion, so two writers taking one over cannot both
// win. The claims are read only from the API server (never cached: no informer watches
// them).
//
// Members and groups written before claims existed, and raw ones made with kubectl, hold
// their names without a claim: the cache check that precedes every claim (userNameTaken,
// displayNameTaken) still refuses their names, and a member among them under its
// userName's derived object name is also found live by every claim writer (derivedHolder).

// claimGrace is how long a claim whose holder does not carry its name yet (a create or a
// rename in flight) is left to the writer that took it before another may take it over.
// It exceeds any write timeout, so a writer still working is never overtaken.
const claimGrace = time.Minute

// holderRef names the object a claim is for; uid is empty while it is being created.
type holderRef struct {
	name string
	uid  types.UID
}

func claimKind(kind scimv1.NameClaimKind) string {
	if kind == scimv1.NameClaimGroup {
		return "OrgGroup"
	}
	return "OrgMember"
}

// annotationAcquired records when a claim was last (re)acquired, to the nanosecond:
// spec.acquiredAt has whole seconds, and a renewal must change the claim (a new
// resourceVersion) so that a release conditional on the version read before it fails.
const annotationAcquired = "scim.operator.dev/acquired"

func setHolder(c *scimv1.OrgNameClaim, h holderRef) {
	c.Spec.Holder, c.Spec.HolderUID = h.name, h.uid
	now := time.Now()
	c.Spec.AcquiredAt = metav1.NewTime(now)
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[annotationAcquired] = now.UTC().Format(time.RFC3339Nano)
	c.OwnerReferences = nil
	if h.uid != "" {
		c.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: scimv1.GroupVersion.String(), Kind: claimKind(c.Spec.Kind), Name: h.name, UID: h.uid,
		}}
	}
}

// holderState reads a claim's holder from the API server: whether it exists, its UID,
// whether it carries the claimed name key under the claim's ScimConfig, and whether it is
// being deleted.
func (s *Store) holderState(ctx context.Context, c *scimv1.OrgNameClaim, key string) (exists bool, uid types.UID, carries, deleting bool, err error) {
	k := types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.Holder}
	var obj client.Object
	var name, config string
	if c.Spec.Kind == scimv1.NameClaimGroup {
		var g scimv1.OrgGroup
		err, obj = s.APIReader.Get(ctx, k, &g), &g
		name, config = g.Spec.DisplayName, g.Spec.ConfigName
	} else {
		var m scimv1.OrgMember
		err, obj = s.APIReader.Get(ctx, k, &m), &m
		name, config = m.Spec.UserName, m.Spec.ConfigName
	}
	if apierrors.IsNotFound(err) {
		return false, "", false, false, nil
	}
	if err != nil {
		return false, "", false, false, err
	}
	return true, obj.GetUID(), config == c.Spec.ConfigName && naming.NameKey(name) == key,
		obj.GetDeletionTimestamp() != nil, nil
}

// claimHeld tells whether another holder than h holds c now (and whether that holder is
// being deleted). A claim of h itself is not held against it.
func (s *Store) claimHeld(ctx context.Context, c *scimv1.OrgNameClaim, key string, h holderRef) (held, deleting bool, err error) {
	if h.uid != "" && c.Spec.HolderUID == h.uid {
		return false, false, nil
	}
	exists, uid, carries, deleting, err := s.holderState(ctx, c, key)
	if err != nil {
		return false, false, err
	}
	if c.Spec.HolderUID != "" && (!exists || uid != c.Spec.HolderUID) {
		return false, false, nil // its holder is gone
	}
	if !exists && c.Spec.HolderUID == "" && h.uid == "" && c.Spec.Holder == h.name {
		// A create of this name under the same object name, not made (yet): the API
		// server gives that object to one create only, so it decides between the two. A
		// create that died before its object (its claim could not be released: the API
		// server was going away) does not refuse the IdP's retry for the grace.
		return false, false, nil
	}
	if exists && carries {
		return true, deleting, nil
	}
	// the holder does not carry the name (yet): a create or a rename in flight, for a while
	return time.Since(c.Spec.AcquiredAt.Time) < claimGrace, false, nil
}

// claim takes the name (of kind) of the scope for h. It answers the claim, now h's, or
// taken (409 uniqueness) when another holds the name, or 503 when that holder is being
// deleted. A claim h already holds is renewed (conditionally), so a writer taking it over
// as stale at the same time cannot also win.
func (s *Store) claim(ctx context.Context, sc Scope, kind scimv1.NameClaimKind, name string, h holderRef, taken func() error, deletingErr func() error) (*scimv1.OrgNameClaim, error) {
	key := naming.NameKey(name)
	objName := naming.ClaimName(string(kind), sc.name(), name)
	for try := 0; try < 5; try++ {
		c := &scimv1.OrgNameClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: sc.ns(), Name: objName, Labels: map[string]string{scimv1.LabelConfig: sc.name()}},
			Spec:       scimv1.OrgNameClaimSpec{ConfigName: sc.name(), Kind: kind},
		}
		setHolder(c, h)
		err := s.Client.Create(ctx, c, client.FieldOwner(FieldOwner))
		if err == nil {
			return c, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, s.apiError(err, "the name claim")
		}
		cur := &scimv1.OrgNameClaim{}
		if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(c), cur); err != nil {
			if apierrors.IsNotFound(err) {
				continue // released in between
			}
			return nil, s.apiError(err, "the name claim")
		}
		held, deleting, err := s.claimHeld(ctx, cur, key, h)
		if err != nil {
			return nil, s.apiError(err, "the name claim")
		}
		if held {
			if deleting {
				return nil, deletingErr()
			}
			return nil, taken()
		}
		// ours, or stale: take it (again), on the condition that nobody else did since
		setHolder(cur, h)
		err = s.Client.Update(ctx, cur, client.FieldOwner(FieldOwner))
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, s.apiError(err, "the name claim")
		}
		return cur, nil
	}
	return nil, taken()
}

// bindClaim records the UID of a holder created under claim c (owner reference included,
// for the garbage collector). A failure is only logged: the claim is judged by its holder's
// name until then.
func (s *Store) bindClaim(ctx context.Context, c *scimv1.OrgNameClaim, h holderRef) {
	if c == nil {
		return
	}
	// the holder exists: binding it is part of the write that made it, whether or not the
	// client is still there (an unbound claim is not collected with its holder)
	ctx, cancel := s.writeCtx(context.WithoutCancel(ctx))
	defer cancel()
	for try := 0; try < 3; try++ {
		if c.Spec.Holder != h.name || c.Spec.HolderUID != "" && c.Spec.HolderUID != h.uid {
			return // taken over meanwhile (cannot happen within claimGrace)
		}
		setHolder(c, h)
		err := s.Client.Update(ctx, c, client.FieldOwner(FieldOwner))
		if err == nil || apierrors.IsNotFound(err) {
			return
		}
		if !apierrors.IsConflict(err) {
			s.Log.Error(err, "could not record the holder of a name claim", "namespace", c.Namespace, "claim", c.Name, "holder", h.name)
			return
		}
		fresh := &scimv1.OrgNameClaim{}
		if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(c), fresh); err != nil {
			return
		}
		c = fresh
	}
}

// moveClaim points claim c, held by the holder being created, at another object name (the
// derived one was held by an object renamed since).
func (s *Store) moveClaim(ctx context.Context, c *scimv1.OrgNameClaim, to string) error {
	setHolder(c, holderRef{name: to})
	return s.Client.Update(ctx, c, client.FieldOwner(FieldOwner))
}

// moveClaimError is what a create answers when moving its claim failed: another writer
// changed the claim meanwhile (it took the name over), which contests the name (taken: 409
// uniqueness; a create has no precondition for a 412 to speak of), or removed it (503: try
// again), or an API server error.
func (s *Store) moveClaimError(err error, taken func() error) error {
	switch {
	case apierrors.IsConflict(err):
		return taken()
	case apierrors.IsNotFound(err):
		// released meanwhile (taken for stale): the name is probably free, so the IdP
		// retries rather than matching a group by name that is not there
		return &scim.Error{Status: 503, RetryAfter: 1, Detail: "the name claim was released meanwhile, retry"}
	}
	return s.apiError(err, "the name claim")
}

// claimVersion answers the resourceVersion of the claim of name (of kind) when h holds it,
// read from the API server, or "" (no claim, another's, or unreadable). A rename reads it
// before its write and releases the old name with it as precondition (release): a writer
// that renewed the claim in between (a rename back to that name) keeps it.
func (s *Store) claimVersion(ctx context.Context, sc Scope, kind scimv1.NameClaimKind, name string, h holderRef) string {
	c := &scimv1.OrgNameClaim{}
	key := types.NamespacedName{Namespace: sc.ns(), Name: naming.ClaimName(string(kind), sc.name(), name)}
	if err := s.APIReader.Get(ctx, key, c); err != nil {
		return ""
	}
	if !holds(c, h) {
		return ""
	}
	return c.ResourceVersion
}

func holds(c *scimv1.OrgNameClaim, h holderRef) bool {
	return c.Spec.Holder == h.name && (c.Spec.HolderUID == "" || h.uid == "" || c.Spec.HolderUID == h.uid)
}

// release deletes the claim of name (of kind) when h holds it. With rv (the version the
// caller read or wrote), only that version is deleted: a claim renewed since stays. Best
// effort: a claim left behind is stale once its holder has not carried its name for
// claimGrace.
func (s *Store) release(ctx context.Context, sc Scope, kind scimv1.NameClaimKind, name string, h holderRef, rv string) {
	c := &scimv1.OrgNameClaim{}
	key := types.NamespacedName{Namespace: sc.ns(), Name: naming.ClaimName(string(kind), sc.name(), name)}
	if rv == "" {
		if err := s.APIReader.Get(ctx, key, c); err != nil {
			if !apierrors.IsNotFound(err) {
				s.Log.Error(err, "could not release a name claim", "namespace", key.Namespace, "claim", key.Name)
			}
			return
		}
		if !holds(c, h) {
			return
		}
		rv = c.ResourceVersion
	} else {
		c.Namespace, c.Name = key.Namespace, key.Name
	}
	del := func(ctx context.Context) error {
		err := s.Client.Delete(ctx, c, client.Preconditions(metav1.Preconditions{ResourceVersion: &rv}))
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		return nil
	}
	err := del(ctx)
	if err == nil {
		return
	}
	// An API server that failed the write that made this release needed usually fails
	// the release too. Until the claim goes stale, it refuses the IdP's retry of the
	// name while no object answers it: retried in the background, with backoff, for
	// that long (the version precondition keeps a renewed claim).
	s.retryInBackground(ctx, del, "could not release a name claim; it goes stale after its grace", "namespace", key.Namespace, "claim", key.Name,
		"grace", claimGrace)
}

// tryThenRetry runs do once now, bounded by the write timeout whether or not the client is
// still there, and when it fails, again in the background (retryInBackground).
func (s *Store) tryThenRetry(ctx context.Context, do func(context.Context) error, msg string, keysAndValues ...any) bool {
	wctx, cancel := s.writeCtx(context.WithoutCancel(ctx))
	err := do(wctx)
	cancel()
	if err != nil {
		s.retryInBackground(ctx, do, msg, keysAndValues...)
	}
	return err == nil
}

// retryInBackground retries do, a write that failed once, in the background with backoff
// for claimGrace, and logs msg (with keysAndValues) when it never succeeds (unless its last
// error was errNotWritten: nothing was there to act on).
func (s *Store) retryInBackground(ctx context.Context, do func(context.Context) error, msg string, keysAndValues ...any) {
	go func() {
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), claimGrace)
		defer cancel()
		var last error
		err := wait.ExponentialBackoffWithContext(bg, wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 100, Cap: 5 * time.Second},
			func(ctx context.Context) (bool, error) {
				wctx, cancel := s.writeCtx(ctx)
				defer cancel()
				last = do(wctx)
				return last == nil, nil
			})
		if err != nil && !errors.Is(last, errNotWritten) {
			s.Log.Error(err, msg, keysAndValues...)
		}
	}()
}

// settleRenameClaims releases, once a rename's write is done, the names its writer claimed
// and the object does not carry: every claimed name but the one kept, and the old name's
// claim (at oldRV, the version read before the write, so a rename back that renewed it
// meanwhile keeps it) unless it is kept. The name kept is written when the write
// succeeded, the old one when it failed, and the one a live read of the object shows when
// the write's outcome is unknown (unsure: a timeout, a 5xx: it may have committed); when
// that read fails too, nothing is released (the claims' grace takes over).
func settleRenameClaims[T interface {
	client.Object
	*scimv1.OrgMember | *scimv1.OrgGroup
}](s *Store, ctx context.Context, sc Scope, kind scimv1.NameClaimKind, from T, old, written string, unsure bool,
	nameOf func(T) string, claimed map[string]string, oldRV string) {
	keep := old
	switch {
	case written != "":
		keep = written
	case unsure:
		live := from.DeepCopyObject().(T)
		rctx, cancel := s.writeCtx(ctx)
		err := s.APIReader.Get(rctx, client.ObjectKeyFromObject(from), live)
		cancel()
		if err != nil || live.GetUID() != from.GetUID() {
			return
		}
		keep = nameOf(live)
	}
	h := holderRef{name: from.GetName(), uid: from.GetUID()}
	for n, rv := range claimed {
		if naming.NameKey(n) != naming.NameKey(keep) {
			s.release(ctx, sc, kind, n, h, rv)
		}
	}
	if oldRV != "" && naming.NameKey(keep) != naming.NameKey(old) {
		s.release(ctx, sc, kind, old, h, oldRV)
	}
}

// A user's name is held in one of two ways. A user created under the object name derived
// from its userName (attempt 0 of memberName) holds it by that object alone, without a
// claim: the API server gives the object name to one create only, and a create costs one
// write. Every other holder (a user renamed to the name, or created under another object
// name because the derived one was taken by a user renamed since) holds a claim. The two
// ways meet at a rule of write-then-read, so that of two racing writers at least one sees
// the other:
//   - a claimless create writes its member, then reads the name's claim live
//     (claimlessVerdict): a claim in flight (its holder does not carry the name yet) is
//     waited for, a claim whose holder carries the name makes the create lose (its member
//     is deleted again, dropLoser), and anything else leaves the name to the create;
//   - a claim writer claims, then reads live the member under the name's derived object
//     name (derivedHolder), and yields to one that carries the name.
// Exactly one wins: when the claim writer's read missed the member, the member was
// written after it, so the create's read sees the claim, and waits until the claim
// writer has either won (its holder carries the name: the create loses) or yielded (the
// claim is released: the create wins).

// verdict is what a claimless create reads in its name's claim.
type verdict int

const (
	nameFree     verdict = iota // no claim, a stale one, or one naming the create's own object
	nameHeld                    // held by another holder that carries the name
	nameDeleting                // held by another holder that carries it and is being deleted
	nameInFlight                // a rename or create holding the claim has not written its holder yet
)

// claimlessVerdict reads, from the API server, the claim of name (of kind) for h, a holder
// that exists and holds the name by its object name.
func (s *Store) claimlessVerdict(ctx context.Context, sc Scope, kind scimv1.NameClaimKind, name string, h holderRef) (verdict, error) {
	c := &scimv1.OrgNameClaim{}
	key := types.NamespacedName{Namespace: sc.ns(), Name: naming.ClaimName(string(kind), sc.name(), name)}
	if err := s.APIReader.Get(ctx, key, c); err != nil {
		if apierrors.IsNotFound(err) {
			return nameFree, nil
		}
		return nameFree, err
	}
	if c.Spec.Holder == h.name && (c.Spec.HolderUID == "" || c.Spec.HolderUID == h.uid) {
		// its own (a claim left by an earlier create of this object name: the object under
		// that name is h now)
		return nameFree, nil
	}
	exists, uid, carries, deleting, err := s.holderState(ctx, c, naming.NameKey(name))
	switch {
	case err != nil:
		return nameFree, err
	case c.Spec.HolderUID != "" && (!exists || uid != c.Spec.HolderUID):
		return nameFree, nil // its holder is gone
	case exists && carries && deleting:
		return nameDeleting, nil
	case exists && carries:
		return nameHeld, nil
	case time.Since(c.Spec.AcquiredAt.Time) < claimGrace:
		return nameInFlight, nil
	}
	return nameFree, nil // stale
}

// settleClaimless waits until the claim of m's userName says whether m, just written
// under its derived object name without a claim, keeps the name: nil when it does, else
// the error to answer (409 taken, 503 being deleted, or 503 when no verdict came within
// ctx). The caller deletes a member that does not keep it (dropLoser).
func (s *Store) settleClaimless(ctx context.Context, sc Scope, m *scimv1.OrgMember) error {
	h := holderRef{name: m.Name, uid: m.UID}
	wait := 5 * time.Millisecond
	for {
		v, err := s.claimlessVerdict(ctx, sc, scimv1.NameClaimUser, m.Spec.UserName, h)
		if err != nil {
			return s.apiError(err, "the name claim")
		}
		switch v {
		case nameFree:
			return nil
		case nameHeld:
			return conflictUserName(m.Spec.UserName)
		case nameDeleting:
			return stillDeleting("a user with userName %q", m.Spec.UserName)
		}
		select {
		case <-ctx.Done():
			return &scim.Error{Status: 503, RetryAfter: 1, Detail: fmt.Sprintf("a concurrent write of userName %q has not finished; retry", m.Spec.UserName)}
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// dropLoser deletes m, a member a create wrote and lost (its userName is another's), on
// the condition that it is still that object at the version read, carrying that userName:
// a member the IdP renamed since (it may have found it by a filter) is not deleted for a
// name it no longer carries. The create answers an error, so the member must go: a failed
// delete is retried in the background, with backoff, for a while. It tells whether it
// deleted m (false: left to the background, or no longer the loser).
func (s *Store) dropLoser(ctx context.Context, m *scimv1.OrgMember) bool {
	key := naming.NameKey(m.Spec.UserName)
	cur := m.DeepCopy()
	deleted := false
	del := func(ctx context.Context) error {
		for try := 0; try < 5; try++ {
			err := s.Client.Delete(ctx, cur, client.Preconditions(metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}))
			if err == nil || apierrors.IsNotFound(err) {
				deleted = true
				return nil
			}
			if !apierrors.IsConflict(err) {
				return err
			}
			// changed since (a controller's write, or the IdP's): still the loser?
			live := &scimv1.OrgMember{}
			if err := s.APIReader.Get(ctx, client.ObjectKeyFromObject(cur), live); err != nil {
				return client.IgnoreNotFound(err)
			}
			if live.UID != m.UID || naming.NameKey(live.Spec.UserName) != key || !live.DeletionTimestamp.IsZero() {
				return nil
			}
			cur = live
		}
		return errors.New("the user kept changing")
	}
	first := s.tryThenRetry(ctx, del, "could not delete a user whose create lost its userName to a concurrent write; it holds a duplicate userName",
		"namespace", m.Namespace, "member", m.Name)
	return first && deleted
}

// derivedHolder is the claim writer's read (after its claim is written): the member under
// the object name derived from userName, read live, when it carries userName in the scope
// and is not except. It answers the error to give: 409 taken, 503 being deleted, or nil.
func (s *Store) derivedHolder(ctx context.Context, sc Scope, userName, except string) error {
	name := memberName(sc.name(), userName, 0)
	if name == except {
		return nil
	}
	var m scimv1.OrgMember
	err := s.APIReader.Get(ctx, types.NamespacedName{Namespace: sc.ns(), Name: name}, &m)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return s.apiError(err, userRef(name))
	case !carries(&m, sc, userName):
		return nil
	case !m.DeletionTimestamp.IsZero():
		return stillDeleting("a user with userName %q", userName)
	}
	return conflictUserName(userName)
}
