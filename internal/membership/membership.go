// Package membership is the one rule by which an OrgMember belongs to an OrgGroup, as every
// reader sees it while membership changes are written.
//
// Membership lives on the members (the group.scim.operator.dev/<group> label), so a change
// of N members is N writes, and the API server can fail, or the writer can die, between
// any two. A change is therefore written in three steps:
//
//  1. mark: each member the change touches gets a change label
//     change.scim.operator.dev/<id> = "add.<group>" or "remove.<group>". A mark means
//     nothing yet: a change that stops here is absent.
//  2. commit: one write of the group names the change (scim.operator.dev/members-change:
//     <id>), together with the rest of the change (its members revision, its spec, or its
//     creation). From this write on the change is all there: readers apply every member's
//     mark of the named change over its group label.
//  3. finish: each marked member gets its group label set or removed and loses its mark
//     in one write (only while it still carries the mark), then the group says "<id> done".
//     A writer that dies here leaves the rest to whoever finishes next: the next change of
//     the group, or the operator's finisher, which runs every unfinished change.
//
// One change of a group is unfinished at a time: a writer finishes the last one before it
// marks its own, and its commit is made against the group version it read (optimistic
// lock), so two changes never interleave. The group also names the change before its
// last, for readers whose member cache lags its group cache. No object holds every member
// id: the group holds two change ids, each member its own labels.
package membership

import (
	"strings"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// Operations of a mark.
const (
	Add    = "add"
	Remove = "remove"
)

// doneSuffix ends the members-change annotation of a finished change.
const doneSuffix = " done"

// LastChange is the id of the group's last membership change and whether it is finished.
func LastChange(g *scimv1.OrgGroup) (id string, done bool) {
	v := g.Annotations[scimv1.AnnotationMembersChange]
	id, done = strings.CutSuffix(v, doneSuffix)
	return id, done
}

// Changes is the ids of the group's last change and of the one before it ("" when none),
// whose marks readers apply (In).
func Changes(g *scimv1.OrgGroup) []string {
	var out []string
	if id, _ := LastChange(g); id != "" {
		out = append(out, id)
	}
	if prev := g.Annotations[scimv1.AnnotationMembersChangePrevious]; prev != "" {
		out = append(out, prev)
	}
	return out
}

// Unfinished is the id of the group's membership change that still has marks to finish,
// or "".
func Unfinished(g *scimv1.OrgGroup) string {
	if id, done := LastChange(g); !done {
		return id
	}
	return ""
}

// Finished is the members-change annotation value of change id once finished.
func Finished(id string) string { return id + doneSuffix }

// MarkKey is the label key of a member's mark of change id.
func MarkKey(id string) string { return scimv1.LabelChangePrefix + id }

// MarkValue is the value of a mark that adds (add) or removes a member of group.
func MarkValue(group string, add bool) string {
	if add {
		return Add + "." + group
	}
	return Remove + "." + group
}

// Mark is a member's mark of change id: the group it changes and whether it adds the
// member. ok is false when the member carries no (well-formed) mark of the change.
func Mark(labels map[string]string, id string) (group string, add, ok bool) {
	v, has := labels[MarkKey(id)]
	if !has || id == "" {
		return "", false, false
	}
	op, group, found := strings.Cut(v, ".")
	if !found || group == "" || (op != Add && op != Remove) {
		return "", false, false
	}
	return group, op == Add, true
}

// ChangingKey is the label key that says a member carries a mark for group.
func ChangingKey(group string) string { return scimv1.LabelChangingPrefix + group }

// MarksFor tells whether the labels carry a mark for group other than the one of change
// except.
func MarksFor(labels map[string]string, group, except string) bool {
	for k, v := range labels {
		id, ok := strings.CutPrefix(k, scimv1.LabelChangePrefix)
		if !ok || id == except {
			continue
		}
		if _, g, _ := strings.Cut(v, "."); g == group {
			return true
		}
	}
	return false
}

// Labelled tells whether the member carries the group label of the group named group.
func Labelled(labels map[string]string, group string) bool {
	_, in := labels[scimv1.LabelGroupPrefix+group]
	return in
}

// In tells whether the member belongs to the group as readers see it: the group's last
// change, where the member carries a mark of it, decides; otherwise the change before it
// does (finished, but a member cache may not show its finish yet); otherwise the group
// label. (A finished change's marks are gone, so its labels decide; a mark of a change
// the group does not name is a change that never committed, and means nothing.)
func In(m *scimv1.OrgMember, g *scimv1.OrgGroup) bool {
	for _, id := range Changes(g) {
		if group, add, ok := Mark(m.Labels, id); ok && group == g.Name {
			return add
		}
	}
	return Labelled(m.Labels, g.Name)
}

// Groups is the names of the groups the member's labels may place it in: its group
// labels and the groups its marks change. In decides, with each group.
func Groups(labels map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for k, v := range labels {
		var g string
		if name, ok := strings.CutPrefix(k, scimv1.LabelGroupPrefix); ok {
			g = name
		} else if _, ok := strings.CutPrefix(k, scimv1.LabelChangePrefix); ok {
			_, g, _ = strings.Cut(v, ".")
		}
		if g != "" && !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out
}
