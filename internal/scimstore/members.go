package scimstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/index"
	"github.com/scim-operator/scim-operator/internal/membership"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// Membership changes are marked, committed and finished (package membership): this file
// holds the three steps and the readers' view.

// GroupMembers lists the members of a group as readers see them (membership.In), from the
// cache: the labelled members and those carrying a mark of the group's last two changes.
//
// Each index is read in its own List, so the reads are snapshots at different moments,
// and a member settled in between (one write: its mark gone, its label there, by the
// operator's finisher or another server) is in neither if the labels are read first.
// So the marks are read first and the labels last (groupMembersOrder): a member still
// marked is kept as marked, one settled before is labelled in the later read; the first
// copy read of a member is the one judged.
func (s *Store) GroupMembers(ctx context.Context, sc Scope, g *scimv1.OrgGroup) ([]scimv1.OrgMember, error) {
	return s.groupMembersFrom(ctx, sc, g, func(list *scimv1.OrgMemberList, key groupMemberKey) error {
		field, value := key.indexed()
		return s.Client.List(ctx, list, client.InNamespace(sc.ns()), client.MatchingFields{field: value})
	})
}

// groupMembersLive is GroupMembers read from the API server.
func (s *Store) groupMembersLive(ctx context.Context, sc Scope, g *scimv1.OrgGroup) ([]scimv1.OrgMember, error) {
	return s.groupMembersFrom(ctx, sc, g, func(list *scimv1.OrgMemberList, key groupMemberKey) error {
		return s.APIReader.List(ctx, list, client.InNamespace(sc.ns()), client.HasLabels{key.label()})
	})
}

// groupMemberKey is one read of a group's members: those marked by a change, or (change
// empty) those labelled with the group.
type groupMemberKey struct{ group, change string }

// indexed is the key as the cache indexes it: index.Change by the change's id, or
// index.Group by the group's name.
func (k groupMemberKey) indexed() (field, value string) {
	if k.change != "" {
		return index.Change, k.change
	}
	return index.Group, k.group
}

// label is the key as a label of the member.
func (k groupMemberKey) label() string {
	if k.change != "" {
		return membership.MarkKey(k.change)
	}
	return scimv1.LabelGroupPrefix + k.group
}

// groupMembersOrder is the order a group's members are read in: the marks of its
// changes, then its label (GroupMembers says why).
func groupMembersOrder(g *scimv1.OrgGroup) []groupMemberKey {
	var keys []groupMemberKey
	for _, id := range membership.Changes(g) {
		keys = append(keys, groupMemberKey{group: g.Name, change: id})
	}
	return append(keys, groupMemberKey{group: g.Name})
}

// groupMembersFrom reads the group's members through list, key by key in
// groupMembersOrder, judging the first copy read of each member.
func (s *Store) groupMembersFrom(ctx context.Context, sc Scope, g *scimv1.OrgGroup,
	list func(*scimv1.OrgMemberList, groupMemberKey) error) ([]scimv1.OrgMember, error) {
	seen := map[string]bool{}
	var out []scimv1.OrgMember
	for _, key := range groupMembersOrder(g) {
		var l scimv1.OrgMemberList
		if err := list(&l, key); err != nil {
			return nil, s.apiError(err, "members")
		}
		for _, m := range l.Items {
			if seen[m.Name] {
				continue
			}
			seen[m.Name] = true
			if m.Spec.ConfigName == sc.name() && m.DeletionTimestamp.IsZero() && membership.In(&m, g) {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// memberGroups is the live groups of the scope the member belongs to, as readers see it,
// sorted by name, read from the cache.
func (s *Store) memberGroups(ctx context.Context, sc Scope, m *scimv1.OrgMember) []scimv1.OrgGroup {
	return s.memberGroupsFrom(ctx, s.Client, sc, m)
}

// memberGroupsFrom is memberGroups read through r (the cache, or the API server).
func (s *Store) memberGroupsFrom(ctx context.Context, r client.Reader, sc Scope, m *scimv1.OrgMember) []scimv1.OrgGroup {
	names := membership.Groups(m.Labels)
	slices.Sort(names)
	var out []scimv1.OrgGroup
	for _, name := range names {
		var g scimv1.OrgGroup
		if err := r.Get(ctx, types.NamespacedName{Namespace: sc.ns(), Name: name}, &g); err != nil ||
			g.Spec.ConfigName != sc.name() || !g.DeletionTimestamp.IsZero() || !membership.In(m, &g) {
			continue
		}
		out = append(out, g)
	}
	return out
}

// newChangeID is a fresh membership change id (a label key's name part).
func newChangeID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// memberWorkers bounds the parallel member writes of one membership change.
const memberWorkers = 16

// each runs fn for every id, memberWorkers at a time, and stops starting new ones after
// the first error, which it returns.
func each(ids []string, fn func(id string) error) error {
	work := make(chan string)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < memberWorkers && w < len(ids); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				if err := fn(id); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		work <- id
	}
	close(work)
	wg.Wait()
	return firstErr
}

// change is a membership change of one group, as marks: the members it adds and removes.
type change struct {
	group       string
	id          string
	add, remove []string
}

func (c *change) empty() bool { return len(c.add) == 0 && len(c.remove) == 0 }

// marks makes the change of the group named group that d asks for, and marks it. A
// change that replaces the members (d.Clear) is made against the group labels as the API
// server has them (the group has no unfinished change then: labels are what readers
// see), less what they have already, unless every added member is to be marked
// (allAdded: a create, which cannot count on labels an earlier group's delete may still
// be stripping).
func (s *Store) marks(ctx context.Context, sc Scope, group string, d *scim.MemberDelta, allAdded bool) (*change, error) {
	c := &change{group: group, id: newChangeID(), add: d.Add, remove: d.Remove}
	if d.Clear {
		cur, err := s.labelledLive(ctx, sc.ns(), group, scimv1.LabelGroupPrefix)
		if err != nil {
			return nil, err
		}
		if !allAdded {
			c.add = without(d.Add, cur)
		} else {
			// a create: also every member a change of an earlier group of this name may
			// still label (its finish racing this create), marked out unless wanted
			changing, err := s.labelledLive(ctx, sc.ns(), group, scimv1.LabelChangingPrefix)
			if err != nil {
				return nil, err
			}
			cur = append(cur, without(changing, cur)...)
		}
		c.remove = without(cur, d.Add)
	}
	if c.empty() {
		return c, nil
	}
	if err := s.mark(ctx, sc, c); err != nil {
		s.dropMarks(sc.ns(), c.id)
		return nil, err
	}
	return c, nil
}

// without is ids less those in drop, in order.
func without(ids, drop []string) []string {
	gone := make(map[string]bool, len(drop))
	for _, id := range drop {
		gone[id] = true
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !gone[id] {
			out = append(out, id)
		}
	}
	return out
}

// mark writes the change's marks (step 1). Each write has its own timeout and uses ctx:
// a client that hangs up before the commit leaves marks that mean nothing.
func (s *Store) mark(ctx context.Context, sc Scope, c *change) error {
	key := membership.MarkKey(c.id)
	patch := func(id string, add bool) error {
		wctx, cancel := s.writeCtx(ctx)
		defer cancel()
		m := &scimv1.OrgMember{}
		m.Namespace, m.Name = sc.ns(), id
		p := mustJSON(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: membership.MarkValue(c.group, add),
			membership.ChangingKey(c.group): ""}}})
		err := s.Client.Patch(wctx, m, client.RawPatch(types.MergePatchType, p), client.FieldOwner(FieldOwner))
		if apierrors.IsNotFound(err) {
			if !add {
				return nil // gone: no longer a member
			}
			// deleted since the request's members were checked: unknown, as if before
			return scim.BadRequest(scim.ErrInvalidValue, "unknown member id(s): %s", id)
		}
		if err != nil {
			return s.apiError(err, userRef(id))
		}
		return nil
	}
	if err := each(c.add, func(id string) error { return patch(id, true) }); err != nil {
		return err
	}
	return each(c.remove, func(id string) error { return patch(id, false) })
}

// dropMarksWithin bounds how long the marks of a change that did not commit are retried
// out in the background.
const dropMarksWithin = 5 * time.Minute

// dropMarks takes out, in the background, the marks of a change that did not commit,
// retrying with backoff (the API server that failed the change usually fails this too,
// for a while). They mean nothing (membership.In ignores a mark the group does not
// name); this keeps members' labels tidy.
func (s *Store) dropMarks(ns, id string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), dropMarksWithin)
		defer cancel()
		key := membership.MarkKey(id)
		drop := func(ctx context.Context) (bool, error) {
			wctx, wcancel := s.writeCtx(ctx)
			var list scimv1.OrgMemberList
			err := s.APIReader.List(wctx, &list, client.InNamespace(ns), client.HasLabels{key})
			wcancel()
			if err != nil {
				return false, nil
			}
			done := true
			for i := range list.Items {
				m := &list.Items[i]
				upd := m.DeepCopy()
				delete(upd.Labels, key)
				if g, _, ok := membership.Mark(m.Labels, id); ok && !membership.MarksFor(m.Labels, g, id) {
					delete(upd.Labels, membership.ChangingKey(g))
				}
				wctx, wcancel := s.writeCtx(ctx)
				err := s.Client.Patch(wctx, upd, client.MergeFromWithOptions(m, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner))
				wcancel()
				if err != nil && !apierrors.IsNotFound(err) {
					done = false // (a conflict: listed again next time)
				}
			}
			return done, nil
		}
		if err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.2,
			Steps: 1000, Cap: 5 * time.Second}, drop); err != nil {
			s.Log.Info("could not take out the marks of a membership change that did not commit; they mean nothing",
				"namespace", ns, "change", id)
		}
	}()
}

// labelledLive lists, from the API server, the members of the namespace that carry the
// label prefix+group (the group label, or the changing label).
func (s *Store) labelledLive(ctx context.Context, ns, group, prefix string) ([]string, error) {
	wctx, cancel := s.writeCtx(ctx)
	defer cancel()
	var list scimv1.OrgMemberList
	if err := s.APIReader.List(wctx, &list, client.InNamespace(ns), client.HasLabels{prefix + group}); err != nil {
		return nil, s.apiError(err, "members")
	}
	out := make([]string, 0, len(list.Items))
	for _, m := range list.Items {
		out = append(out, m.Name)
	}
	return out, nil
}

// Finish carries out the unfinished membership change id of the group named group (step
// 3): every member that still carries a mark of it gets its group label set or removed,
// and loses the mark, in one write made against the version that carries the mark; then
// the group says the change is done. It is idempotent and safe to run from several places
// at once; an error leaves the rest for the next run.
func (s *Store) Finish(ctx context.Context, ns, group, id string) error {
	wctx, cancel := s.writeCtx(ctx)
	var list scimv1.OrgMemberList
	err := s.APIReader.List(wctx, &list, client.InNamespace(ns), client.HasLabels{membership.MarkKey(id)})
	cancel()
	if err != nil {
		return s.apiError(err, "members")
	}
	byName := make(map[string]*scimv1.OrgMember, len(list.Items))
	names := make([]string, 0, len(list.Items))
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
		names = append(names, list.Items[i].Name)
	}
	// The marks count only while the group names the change: a group deleted (or deleted
	// and created again) since has its marks removed without their labels.
	wctx, cancel = s.writeCtx(ctx)
	var g scimv1.OrgGroup
	gerr := s.APIReader.Get(wctx, types.NamespacedName{Namespace: ns, Name: group}, &g)
	cancel()
	if gerr != nil && !apierrors.IsNotFound(gerr) {
		return s.apiError(gerr, groupRef(group))
	}
	apply := gerr == nil && namesChange(&g, id)
	if err := each(names, func(name string) error { return s.settle(ctx, byName[name], group, id, apply) }); err != nil {
		return err
	}
	// the group says done, unless it has moved on (or is gone)
	for try := 0; ; try++ {
		wctx, cancel := s.writeCtx(ctx)
		var g scimv1.OrgGroup
		err := s.APIReader.Get(wctx, types.NamespacedName{Namespace: ns, Name: group}, &g)
		if err == nil && membership.Unfinished(&g) == id {
			done := g.DeepCopy()
			done.Annotations[scimv1.AnnotationMembersChange] = membership.Finished(id)
			err = s.Client.Patch(wctx, done, client.MergeFromWithOptions(&g, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner))
		}
		cancel()
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err) && try < 5:
			continue
		}
		return s.apiError(err, groupRef(group))
	}
}

// namesChange tells whether g, read from the API server, is live and its last change is
// id: only then do the marks of id count.
func namesChange(g *scimv1.OrgGroup, id string) bool {
	last, _ := membership.LastChange(g)
	return g.DeletionTimestamp.IsZero() && last == id
}

// settle moves one member's mark of change id (of the group named group) to its group
// label (Finish), or only removes the mark unless apply. Each write is made at the
// member's version read before the group was last looked at (Finish reads the members,
// then the group): a member written since (a group created again under the name marks
// it) is read again, then the group looked at again, so a change of a deleted group never
// labels a member for the group that replaced it.
func (s *Store) settle(ctx context.Context, m *scimv1.OrgMember, group, id string, apply bool) error {
	key := membership.MarkKey(id)
	for try := 0; ; try++ {
		if _, has := m.Labels[key]; !has {
			return nil // settled by someone else
		}
		mg, add, ok := membership.Mark(m.Labels, id)
		upd := m.DeepCopy()
		delete(upd.Labels, key)
		if ok && !membership.MarksFor(m.Labels, mg, id) {
			delete(upd.Labels, membership.ChangingKey(mg))
		}
		if ok && apply && mg == group {
			if label := scimv1.LabelGroupPrefix + mg; add {
				upd.Labels[label] = ""
			} else {
				delete(upd.Labels, label)
			}
		}
		wctx, cancel := s.writeCtx(ctx)
		err := s.Client.Patch(wctx, upd, client.MergeFromWithOptions(m, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner))
		cancel()
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case !apierrors.IsConflict(err) || try >= 10:
			return s.apiError(err, userRef(m.Name))
		}
		// changed since: read again, then look at the group again (in that order)
		wctx, cancel = s.writeCtx(ctx)
		var live scimv1.OrgMember
		err = s.APIReader.Get(wctx, client.ObjectKeyFromObject(m), &live)
		if err == nil {
			var g scimv1.OrgGroup
			gerr := s.APIReader.Get(wctx, types.NamespacedName{Namespace: m.Namespace, Name: group}, &g)
			switch {
			case gerr == nil:
				apply = namesChange(&g, id)
			case apierrors.IsNotFound(gerr):
				apply = false
			default:
				err = gerr
			}
		}
		cancel()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return s.apiError(err, userRef(m.Name))
		}
		m = &live
	}
}

// finishAfterCommit finishes a change the caller just committed, on a context the client
// hanging up does not cancel. The change is all there for readers already: a failure only
// leaves the rest to the finisher, so it is logged, not answered.
func (s *Store) finishAfterCommit(ctx context.Context, sc Scope, c *change) {
	if err := s.Finish(context.WithoutCancel(ctx), sc.ns(), c.group, c.id); err != nil {
		s.Log.Info("a membership change is committed and will be finished later", "namespace", sc.ns(),
			"group", c.group, "change", c.id, "error", err.Error())
	}
}

// waitView waits (bounded) until the cache shows the change to readers: each member it
// touches in or out of g (g at the version that committed it). It tells whether it did.
func (s *Store) waitView(ctx context.Context, sc Scope, g *scimv1.OrgGroup, c *change) bool {
	if !s.waitCache(ctx, g, g.ResourceVersion) {
		return false
	}
	if c == nil || c.empty() {
		return true
	}
	limit := s.CacheWait
	if limit <= 0 {
		limit = 3 * time.Second
	}
	limit += time.Duration(len(c.add)+len(c.remove)) * time.Millisecond
	want := make(map[string]bool, len(c.add)+len(c.remove))
	for _, id := range c.remove {
		want[id] = false
	}
	for _, id := range c.add {
		want[id] = true
	}
	return wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, limit, true, func(ctx context.Context) (bool, error) {
		for id, in := range want {
			var m scimv1.OrgMember
			err := s.Client.Get(ctx, types.NamespacedName{Namespace: sc.ns(), Name: id}, &m)
			if apierrors.IsNotFound(err) && !in {
				delete(want, id) // gone: no longer a member
				continue
			}
			if err != nil || membership.In(&m, g) != in {
				return false, nil
			}
			delete(want, id) // seen: not read again
		}
		return true, nil
	}) == nil
}

// Finisher finishes the membership changes whose writer stopped before it was done (a
// failed write, a lost API server, a crash): every OrgGroup whose last change is
// unfinished, at start and whenever one is committed. It runs on the leader.
type Finisher struct {
	Store  *Store
	Client client.Client
}

// Reconcile finishes the group's unfinished change, if it has one.
func (f *Finisher) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var g scimv1.OrgGroup
	if err := f.Client.Get(ctx, req.NamespacedName, &g); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	id := membership.Unfinished(&g)
	if id == "" {
		return ctrl.Result{}, nil
	}
	if err := f.Store.Finish(ctx, g.Namespace, g.Name, id); err != nil {
		var se *scim.Error
		if errors.As(err, &se) {
			return ctrl.Result{}, errors.New(se.Detail)
		}
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// SetupWithManager runs the finisher in mgr.
func (f *Finisher) SetupWithManager(mgr ctrl.Manager) error {
	unfinished := predicate.NewPredicateFuncs(func(o client.Object) bool {
		g, ok := o.(*scimv1.OrgGroup)
		return ok && membership.Unfinished(g) != ""
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("membership-finisher").
		For(&scimv1.OrgGroup{}, builder.WithPredicates(unfinished)).
		WithOptions(controller.Options{RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](
			100*time.Millisecond, 30*time.Second)}).
		Complete(f)
}
