package scimstore

// Adversarial review 2 of issue 9 (membership protocol as it stands on main). Same harness
// as review3_test.go: a real API server, the shipped cache, no finisher controller.

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/membership"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// groupGetHook is an API reader that runs fn once, right after its first read of the
// OrgGroup named name has returned: what other writers do between that read and the
// caller's next step.
type groupGetHook struct {
	client.Reader
	name string
	once sync.Once
	fn   func()
}

func (h *groupGetHook) Get(ctx context.Context, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	err := h.Reader.Get(ctx, key, o, opts...)
	if _, ok := o.(*scimv1.OrgGroup); ok && key.Name == h.name {
		h.once.Do(h.fn)
	}
	return err
}

// commitUnfinished marks member id into group gid under a new change and commits it, as a
// writer that died before the finish leaves it. It returns the change id.
func (e *review3Env) commitUnfinished(t *testing.T, gid, member string, add bool) string {
	t.Helper()
	id := newChangeID()
	var m scimv1.OrgMember
	if err := e.direct.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: member}, &m); err != nil {
		t.Fatal(err)
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels[membership.MarkKey(id)] = membership.MarkValue(gid, add) // as Store.mark writes it
	m.Labels[membership.ChangingKey(gid)] = ""
	if err := e.direct.Update(e.ctx, &m); err != nil {
		t.Fatal(err)
	}
	var g scimv1.OrgGroup
	if err := e.direct.Get(e.ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &g); err != nil {
		t.Fatal(err)
	}
	if g.Annotations == nil {
		g.Annotations = map[string]string{}
	}
	g.Annotations[scimv1.AnnotationMembersChange] = id
	bumpMembersRevision(&g)
	if err := e.direct.Update(e.ctx, &g); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestReview4StaleFinishJoinsRecreatedGroup: Finish decides once, from one read of the
// group, whether the marks it settles are applied (apply), then writes them one by one.
// Between that read and a settle, the group is deleted and created again under the same
// displayName (Entra's delete + re-create; the same object name) without the member. The
// delete's strip stops as soon as it sees the new group (createdAgain), leaving the old
// change's mark; Finish then applies it: the member gets the group label of the NEW group,
// which never asked for it. The IdP was answered 201 with no members and the group now
// has one (and the member gets the group's access in the backend).
func TestReview4StaleFinishJoinsRecreatedGroup(t *testing.T) {
	e, ids := review3Start(t, "review4-finish", 1)
	ctx := e.ctx
	u := ids[0]
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Eng"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	gid := r["id"].(string)
	// a change adding u, committed; its writer died before the finish
	c := e.commitUnfinished(t, gid, u, true)

	var old scimv1.OrgGroup
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &old); err != nil {
		t.Fatal(err)
	}
	var recreated scim.Resource
	hook := &groupGetHook{Reader: e.mgr.GetAPIReader(), name: gid, fn: func() {
		// DELETE /Groups/{gid}: the object goes ...
		if err := e.direct.Delete(ctx, &old); err != nil {
			t.Errorf("delete: %v", err)
			return
		}
		// gone from the API server and from the cache the re-create's uniqueness check
		// reads, as DeleteGroup's own waitCache leaves it before it answers
		e.until(t, "the group is gone", func() bool {
			var g scimv1.OrgGroup
			key := types.NamespacedName{Namespace: e.ns, Name: gid}
			return apierrors.IsNotFound(e.direct.Get(ctx, key, &g)) &&
				apierrors.IsNotFound(e.mgr.GetClient().Get(ctx, key, &g))
		})
		// ... the IdP creates it again, with no members ...
		var err error
		recreated, err = e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Eng"})
		if err != nil {
			t.Errorf("re-create: %v", err)
			return
		}
		// ... and the delete's strip (slow: a large group) gets to look
		if err := e.s.stripGroup(ctx, e.sc, &old); err != nil {
			t.Errorf("strip: %v", err)
		}
	}}
	finisher := &Store{Client: e.mgr.GetClient(), APIReader: hook, Log: logr.Discard()}
	if err := finisher.Finish(ctx, e.ns, gid, c); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if t.Failed() {
		return
	}
	if recreated["id"] != gid {
		t.Fatalf("re-created under %v, the race needs %s", recreated["id"], gid)
	}
	if got := memberIDs(recreated); len(got) != 0 {
		t.Fatalf("re-created with members %v", got)
	}
	var g scimv1.OrgGroup
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &g); err != nil {
		t.Fatal(err)
	}
	var m scimv1.OrgMember
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: u}, &m); err != nil {
		t.Fatal(err)
	}
	if g.UID == old.UID {
		t.Fatal("the group was not re-created")
	}
	if membership.In(&m, &g) {
		t.Fatalf("the re-created group %s (answered 201 with no members) has member %s: a finish of the deleted group's change %s "+
			"applied its mark after the re-create (labels %v)", gid, u, c, m.Labels)
	}
}

// TestReview4LaggingReplicaDropsRemove: effectiveMembers drops from a PATCH what "would
// change nothing", judged on the replica's cache, and a PATCH that then changes nothing
// writes nothing - so no optimistic lock ever meets the lag. On a replica whose member
// cache is behind (review3: separate informers; a member backlog while the group's commit
// is one event), Entra's "remove u1" right after another replica added u1 is judged a
// no-op: answered 200, and u1 stays a member for good (deprovisioning lost; a retry is
// dropped the same way until the cache catches up, and the IdP does not retry a 200).
func TestReview4LaggingReplicaDropsRemove(t *testing.T) {
	e, ids := review3Start(t, "review4-lost", 2)
	ctx := e.ctx
	u0, u1 := ids[0], ids[1]
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Ops", "members": groupValues([]string{u0})})
	if err != nil {
		t.Fatal(err)
	}
	gid := r["id"].(string)

	// the lagging replica's member view: as the API server has the members before the add
	lag := e.laggingMemberStore(t)

	// replica A adds u1 (finished: u1 carries the label)
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	if _, err := e.s.PatchGroup(ctx, e.sc, gid, []scim.PatchOp{{Op: "add", Path: "members", Value: raw(groupValues([]string{u1}))}}, "", false); err != nil {
		t.Fatal(err)
	}
	// replica B's group informer has the add's commit
	var live scimv1.OrgGroup
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &live); err != nil {
		t.Fatal(err)
	}
	e.until(t, "the group cache shows the add", func() bool {
		var cg scimv1.OrgGroup
		err := e.mgr.GetClient().Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &cg)
		return err == nil && atLeast(cg.ResourceVersion, live.ResourceVersion)
	})

	// the IdP removes u1, on replica B
	if _, err := lag.PatchGroup(ctx, e.sc, gid, []scim.PatchOp{{Op: "remove", Path: "members", Value: raw(groupValues([]string{u1}))}}, "", false); err != nil {
		t.Fatalf("remove: %v", err)
	}
	var g scimv1.OrgGroup
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &g); err != nil {
		t.Fatal(err)
	}
	var m scimv1.OrgMember
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: u1}, &m); err != nil {
		t.Fatal(err)
	}
	if membership.In(&m, &g) {
		t.Fatalf("PATCH remove %s answered 200 and %s is still a member of %s as the API server has it (labels %v): the remove was judged a no-op on a lagging member cache",
			u1, u1, gid, m.Labels)
	}
}

// TestReview4DeleteGroupIfMatchChecksThenDeletes: DELETE /Groups/{id} with If-Match reads
// the group from the API server and compares the tag, then deletes on a UID precondition
// only. A PATCH landing between the two (another replica, the IdP's own pipelined
// request) makes the tag stale, yet the delete goes through: If-Match does not protect
// the delete (DeleteUser's is conditional on the resourceVersion that carried the tag).
func TestReview4DeleteGroupIfMatchChecksThenDeletes(t *testing.T) {
	e, _ := review3Start(t, "review4-ifmatch", 0)
	ctx := e.ctx
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Sec"})
	if err != nil {
		t.Fatal(err)
	}
	gid := r["id"].(string)
	tag := r["meta"].(map[string]any)["version"].(string)
	var g0 scimv1.OrgGroup
	if err := e.direct.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: gid}, &g0); err != nil {
		t.Fatal(err)
	}
	token := VersionOf(&g0)
	if tag != Version(token) {
		t.Fatalf("created with version %s, the object's token is %s", tag, token)
	}
	e.until(t, "the cache shows the group", func() bool {
		_, err := e.s.GetGroup(ctx, e.sc, gid, false)
		return err == nil
	})
	var patched scim.Resource
	hook := &groupGetHook{Reader: e.mgr.GetAPIReader(), name: gid, fn: func() {
		raw, _ := json.Marshal("Security")
		var err error
		patched, err = e.s.PatchGroup(ctx, e.sc, gid, []scim.PatchOp{{Op: "replace", Path: "displayName", Value: raw}}, "", false)
		if err != nil {
			t.Errorf("patch: %v", err)
		}
	}}
	del := &Store{Client: e.mgr.GetClient(), APIReader: hook, Log: logr.Discard()}
	err = del.DeleteGroup(ctx, e.sc, gid, token)
	if t.Failed() {
		return
	}
	if patched["meta"].(map[string]any)["version"] == tag {
		t.Fatal("the PATCH did not change the version")
	}
	var se *scim.Error
	if err == nil || !asSCIM(err, &se) || se.Status != 412 {
		t.Fatalf("DELETE with If-Match %s after the group moved to %v: %v, want 412", tag, patched["meta"].(map[string]any)["version"], err)
	}
}

func asSCIM(err error, se **scim.Error) bool {
	e, ok := err.(*scim.Error)
	if ok {
		*se = e
	}
	return ok
}

// laggingGroups is a replica's cache whose OrgGroup informer is behind (a group rename or
// a membership commit not delivered yet): OrgGroup reads come from a snapshot.
type laggingGroups struct {
	client.Client
	frozen client.Client
}

func (l *laggingGroups) Get(ctx context.Context, key client.ObjectKey, o client.Object, opts ...client.GetOption) error {
	if _, ok := o.(*scimv1.OrgGroup); ok {
		return l.frozen.Get(ctx, key, o, opts...)
	}
	return l.Client.Get(ctx, key, o, opts...)
}

// TestReview4LaggingReplicaRefusesCurrentUserETag: a user's version now hashes the groups
// it shows, with their displayNames, read from the group cache. updateUser's answer to a
// tag that does not match is to read the member again from the API server - but the groups
// still come from the cache. On a replica whose group informer has not delivered a rename
// (or a membership commit) yet, the tag the IdP got from the replica that made it is
// refused with 412 although it is current: the class issue 9 defect 7 fixed for group
// DELETE ("a lagging replica refuses a current ETag"), brought back for users.
func TestReview4LaggingReplicaRefusesCurrentUserETag(t *testing.T) {
	e, ids := review3Start(t, "review4-uetag", 1)
	ctx := e.ctx
	u := ids[0]
	r, err := e.s.CreateGroup(ctx, e.sc, scim.Resource{"displayName": "Eng", "members": groupValues([]string{u})})
	if err != nil {
		t.Fatal(err)
	}
	gid := r["id"].(string)

	// replica B's group view: as the API server has the groups before the rename
	var list scimv1.OrgGroupList
	if err := e.direct.List(ctx, &list, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for i := range list.Items {
		list.Items[i].ResourceVersion = ""
		objs = append(objs, &list.Items[i])
	}
	frozen := fake.NewClientBuilder().WithScheme(e.mgr.GetScheme()).WithObjects(objs...).Build()
	lag := &Store{Client: &laggingGroups{Client: e.mgr.GetClient(), frozen: frozen}, APIReader: e.mgr.GetAPIReader(), Log: logr.Discard()}

	// replica A renames the group; the IdP reads the user there
	raw, _ := json.Marshal("Ops")
	if _, err := e.s.PatchGroup(ctx, e.sc, gid, []scim.PatchOp{{Op: "replace", Path: "displayName", Value: raw}}, "", false); err != nil {
		t.Fatal(err)
	}
	var got scim.Resource
	e.until(t, "replica A shows the user in Ops", func() bool {
		got, err = e.s.GetUser(ctx, e.sc, u)
		gl, _ := got["groups"].([]any)
		return err == nil && len(gl) == 1 && gl[0].(map[string]any)["display"] == "Ops"
	})
	tag := got["meta"].(map[string]any)["version"].(string)
	token := tag[len(`W/"`) : len(tag)-1]

	// the IdP's PATCH with that (current) tag lands on replica B
	name, _ := json.Marshal("Dana")
	_, err = lag.PatchUser(ctx, e.sc, u, []scim.PatchOp{{Op: "replace", Path: "displayName", Value: name}}, token)
	if err != nil {
		t.Fatalf("PATCH /Users/%s with If-Match %s, the user's current version (as the API server has user and groups): %v", u, tag, err)
	}
}
