package model

// The model: what docs/access-invariant.md says the backend holds at rest, computed from
// the operations alone (never from the system under test).
//
// The model keeps the backend's grants as physical records, each with its class:
// owned (by an OrgMember or OrgGroup handle), orphaned, or foreign. The identities holding
// access are the records' identities, so the invariant
//
//	access = wanted(live config) ∪ orphaned ∪ foreign
//
// holds by construction and is what the check compares with the real backend.
//
// Readings of the doc where it is silent (also listed in the package README comment in
// main_test.go):
//
//   - Operations are applied in sequence: the harness waits until the controllers have
//     processed each one before sending the next (see harness.quiesce), so the model may
//     treat each operation as seen on its own. Drift is repaired only when a reconcile
//     happens (at the latest on the reconcile-requested annotation of the settle step).
//   - wanted follows the live config, except that Keep never gives back what Remove took:
//     Keep -> Remove takes a deactivated member's access away; Remove -> Keep leaves it out.
//     Deletion policy applies at the time of the deletion.
//   - kubernetes: a hand-made (unlabelled) binding is foreign and never makes a member
//     Preexisting: the backend only knows the bindings it wrote, so a member with that
//     userName is Provisioned and gets its own bindings beside the foreign one.
//   - The "same identity" that takes over an orphaned grant is compared case-insensitively
//     (userNames are unique per config case-insensitively); the grant then follows the
//     member's userName as last sent (kubernetes subjects are case-sensitive).
//   - Taking over an orphan applies on the kubernetes backend, on SCIM create (a
//     re-created member or group). On dockerhub an orphan has no label: a person deleted
//     under Orphan and created again is Preexisting (adoption Ignore), like a foreign one.
//     A rename into an orphaned identity is ambiguous in the doc and is never generated.
//   - dockerhub: a person can be in an organization only once, so ownership is ambiguous
//     when a SCIM member's identity (userName or primary email) also names a foreign or
//     orphaned person, or another member's identity. The generator never creates that
//     overlap except on create (foreign there first -> Preexisting; orphan -> taken over).
//   - A ScimConfig deleted, a fresh one (new name, new roles, new emulator) continues the
//     sequence: what the deleted config left is out of the new config's scope.
//   - Group deletion under Orphan (or while disabled) while another live group maps to
//     the same team is ambiguous (who owns the grant afterwards) and is never generated.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/scim-operator/scim-operator/test/access"
)

const (
	kube = "kubernetes"
	hub  = "dockerhub"
)

// Pools: small on purpose, so that renames collide with old names and orphans.
var (
	userNamePool = []string{"ann@example.com", "Ann@example.com", "bob@example.com", "cat@example.com",
		"dan@example.com", "eve", "finn"}
	// emails never equal a userName of the pool: a member's email names only that member
	emailPool      = []string{"ann.work@example.org", "bob.work@example.org", "eve@example.org", "eve.work@example.org", "finn@example.org"}
	teamHintPool   = []string{"eng", "ops", "qa"}
	groupNamePool  = []string{"eng", "acme:eng", "ops", "acme:ops", "qa"}
	foreignUsers   = []string{"ann@example.com", "bob@example.com", "eve", "mallory@example.com"}
	foreignGroups  = []string{"eng", "ops", "qa"}
	hubForeignIDs  = []string{"ann", "bob", "eve", "finn", "mallory"}
	hubForeignMail = []string{"", "ann@example.com", "bob@example.com", "cat@example.com", "eve@example.org", "mallory@example.com"}
)

func fold(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func isEmail(s string) bool {
	at := strings.LastIndex(s, "@")
	return at > 0 && at < len(s)-1
}

// teamName is the team of a group displayName ("org:team" -> "team").
func teamName(displayName string) string {
	name := strings.TrimSpace(displayName)
	if _, t, ok := strings.Cut(name, ":"); ok && strings.TrimSpace(t) != "" {
		return strings.TrimSpace(t)
	}
	return name
}

type opKind string

const (
	opCreateUser    opKind = "create-user"
	opPutUser       opKind = "put-user"
	opRename        opKind = "patch-userName"
	opDeactivate    opKind = "patch-deactivate"
	opReactivate    opKind = "patch-reactivate"
	opEmail         opKind = "patch-email"
	opTeam          opKind = "patch-dockerTeam"
	opDeleteUser    opKind = "delete-user"
	opCreateGroup   opKind = "create-group"
	opRenameGroup   opKind = "rename-group"
	opGroupAdd      opKind = "group-add-member"
	opGroupRemove   opKind = "group-remove-member"
	opDeleteGroup   opKind = "delete-group"
	opKubectlDelete opKind = "kubectl-delete"
	opPolicy        opKind = "policy"
	opEnable        opKind = "enabled"
	opDriftRemove   opKind = "drift-remove"
	opDriftForeign  opKind = "drift-foreign"
	opAccept        opKind = "accept-invite"
	opRestart       opKind = "restart-manager"
	opDeleteConfig  opKind = "delete-config"
	opCheck         opKind = "check"
)

// Op is one operation. U and G are handles: the n-th user or group created in the
// sequence (-1: none).
type Op struct {
	Kind     opKind
	U, G     int
	Name     string // userName, displayName, binding subject, Docker ID or invitee
	Email    string // email ("" removes); dockerhub foreign member email; accepted Docker ID
	Team     string
	Active   bool
	Members  []int
	Role     int    // kubernetes role index (0: the ClusterRole, 1: the Role)
	SubjKind string // User or Group
	Deletion string // policies.deletion
	Deact    string // policies.deactivation
}

func (o Op) String() string {
	switch o.Kind {
	case opCreateUser:
		return fmt.Sprintf("%s u%d userName=%q email=%q team=%q", o.Kind, o.U, o.Name, o.Email, o.Team)
	case opPutUser:
		return fmt.Sprintf("%s u%d userName=%q email=%q team=%q active=%v", o.Kind, o.U, o.Name, o.Email, o.Team, o.Active)
	case opRename:
		return fmt.Sprintf("%s u%d -> %q", o.Kind, o.U, o.Name)
	case opEmail:
		return fmt.Sprintf("%s u%d -> %q", o.Kind, o.U, o.Email)
	case opTeam:
		return fmt.Sprintf("%s u%d -> %q", o.Kind, o.U, o.Team)
	case opDeactivate, opReactivate, opDeleteUser:
		return fmt.Sprintf("%s u%d", o.Kind, o.U)
	case opCreateGroup:
		return fmt.Sprintf("%s g%d displayName=%q members=%v", o.Kind, o.G, o.Name, o.Members)
	case opRenameGroup:
		return fmt.Sprintf("%s g%d -> %q", o.Kind, o.G, o.Name)
	case opGroupAdd, opGroupRemove:
		return fmt.Sprintf("%s g%d u%d", o.Kind, o.G, o.U)
	case opDeleteGroup:
		return fmt.Sprintf("%s g%d", o.Kind, o.G)
	case opKubectlDelete:
		if o.U >= 0 {
			return fmt.Sprintf("%s orgmember u%d", o.Kind, o.U)
		}
		return fmt.Sprintf("%s orggroup g%d", o.Kind, o.G)
	case opPolicy:
		return fmt.Sprintf("%s deletion=%s deactivation=%s", o.Kind, o.Deletion, o.Deact)
	case opEnable:
		return fmt.Sprintf("%s=%v", o.Kind, o.Active)
	case opDriftRemove:
		if o.SubjKind != "" {
			return fmt.Sprintf("%s binding role%d %s %q", o.Kind, o.Role, o.SubjKind, o.Name)
		}
		return fmt.Sprintf("%s hub %q", o.Kind, o.Name)
	case opDriftForeign:
		if o.SubjKind != "" {
			return fmt.Sprintf("%s binding role%d %s %q", o.Kind, o.Role, o.SubjKind, o.Name)
		}
		return fmt.Sprintf("%s hub member %q email=%q", o.Kind, o.Name, o.Email)
	case opAccept:
		return fmt.Sprintf("%s %q as %q", o.Kind, o.Name, o.Email)
	}
	return string(o.Kind)
}

// ---- model state ----

type muser struct {
	userName, email, team string
	active                bool
	origin                string // Provisioned | Preexisting
	kept                  bool   // deactivated while the policy was Keep, never removed since
}

// keepRestoresAccess is false, as docs/access-invariant.md decides: only a member
// deactivated while Keep was in force keeps access, and a switch to Remove takes it away
// for good (until reactivation); switching back to Keep re-invites no suspended person.
const keepRestoresAccess = false

// primary is the identity the operator looks up besides the userName: the primary email,
// else the userName.
func (u *muser) primary() string {
	if u.email != "" {
		return u.email
	}
	return u.userName
}

type mgroup struct{ displayName string }

// krec is one kubernetes grant: a binding of role to one subject.
type krec struct {
	role      int
	kind      string // User | Group
	name      string
	owner     string // "u3", "g1" or ""
	orphan    bool
	foreign   bool
	foreignID int // the hand-made binding's number
}

// hrec is one person in the Docker Hub organization: a member or a pending invitation.
type hrec struct {
	member          bool
	username, email string // member
	invitee         string // invitation
	owner           string
	orphan, foreign bool
}

func (r *hrec) key() string {
	if r.member {
		return "member:" + fold(r.username)
	}
	return "invite:" + fold(r.invitee)
}

func (r *hrec) matches(id string) bool {
	id = fold(id)
	if id == "" {
		return false
	}
	if r.member {
		return fold(r.username) == id || (r.email != "" && fold(r.email) == id)
	}
	return fold(r.invitee) == id
}

type model struct {
	be string
	// webhook: the kubernetes config has grantLayout Webhook (webhookSeed), where the CRD
	// refuses policies.deletion Orphan; the invariant is the same.
	webhook      bool
	cfgN         int // how many configs were deleted (the live one is cfgN)
	enabled      bool
	deletion     string
	deactivation string
	users        map[int]*muser
	groups       map[int]*mgroup
	nextU, nextG int
	krecs        []*krec
	hrecs        []*hrec
	foreignN     int
	// accounts are the Docker IDs the emulator has ever known: an account keeps its email
	// after its member is removed, so a foreign member never reuses one
	accounts map[string]bool
}

func newModel(be string) *model {
	m := &model{be: be, enabled: true, deletion: "Remove", deactivation: "Remove",
		users: map[int]*muser{}, groups: map[int]*mgroup{}}
	m.resetBackend()
	return m
}

func (m *model) resetBackend() {
	m.krecs = nil
	m.hrecs = nil
	m.accounts = map[string]bool{"owner": true}
	if m.be == hub {
		// the emulator's organization owner, there before SCIM
		m.hrecs = []*hrec{{member: true, username: "owner", email: "owner@org.example", foreign: true}}
	}
}

func (m *model) clone() *model {
	c := *m
	c.users = map[int]*muser{}
	for k, v := range m.users {
		u := *v
		c.users[k] = &u
	}
	c.groups = map[int]*mgroup{}
	for k, v := range m.groups {
		g := *v
		c.groups[k] = &g
	}
	c.krecs = nil
	for _, r := range m.krecs {
		x := *r
		c.krecs = append(c.krecs, &x)
	}
	c.accounts = map[string]bool{}
	for k := range m.accounts {
		c.accounts[k] = true
	}
	c.hrecs = nil
	for _, r := range m.hrecs {
		x := *r
		c.hrecs = append(c.hrecs, &x)
	}
	return &c
}

func uOwner(h int) string { return fmt.Sprintf("u%d", h) }
func gOwner(h int) string { return fmt.Sprintf("g%d", h) }

func (m *model) sortedUsers() []int {
	var hs []int
	for h := range m.users {
		hs = append(hs, h)
	}
	sort.Ints(hs)
	return hs
}

func (m *model) sortedGroups() []int {
	var hs []int
	for h := range m.groups {
		hs = append(hs, h)
	}
	sort.Ints(hs)
	return hs
}

func (m *model) userNameTaken(name string, except int) bool {
	for h, u := range m.users {
		if h != except && fold(u.userName) == fold(name) {
			return true
		}
	}
	return false
}

func (m *model) displayNameTaken(name string, except int) bool {
	for h, g := range m.groups {
		if h != except && fold(g.displayName) == fold(name) {
			return true
		}
	}
	return false
}

// outcome is what the model expects of one operation.
type outcome struct {
	valid     bool // false: the op makes no sense here (a dead handle) or is ambiguous: skip it
	status    int  // expected HTTP status of a SCIM operation (0: not a SCIM op)
	preSettle bool // settle and check before the op
	// postSettle: settle and check right after the op. Used where the controllers act on
	// their own schedule (a policy change re-reconciles every member; enabling resumes
	// them; drift is repaired on the next reconcile), so that the next operation does not
	// race with that work: e.g. a member deleted under Orphan right after a hand-deleted
	// binding of it would orphan the binding or not depending on timing.
	postSettle bool
	// configDeleted: check the deletion outcome, then call freshConfig
	configDeleted bool
}

var invalid = outcome{}

// apply applies op to the model (on success) and says what to expect. An invalid op
// leaves the model unchanged.
func (m *model) apply(op Op) outcome {
	c := m.clone()
	out := c.step(op)
	if !out.valid {
		return invalid
	}
	if c.enabled {
		c.converge()
	}
	if !c.unambiguous() {
		return invalid
	}
	*m = *c
	return out
}

func (m *model) step(op Op) outcome {
	scim := func(status int) outcome {
		if !m.enabled {
			return outcome{valid: true, status: 403}
		}
		return outcome{valid: true, status: status}
	}
	switch op.Kind {
	case opCreateUser:
		if m.be == hub && !isEmail(op.Name) && op.Email == "" {
			return invalid
		}
		if !m.enabled {
			return outcome{valid: true, status: 403}
		}
		if m.userNameTaken(op.Name, -1) {
			return outcome{valid: true, status: 409}
		}
		if _, dup := m.users[op.U]; dup {
			return invalid
		}
		u := &muser{userName: op.Name, email: op.Email, team: op.Team, active: true}
		if !m.createUser(op.U, u) {
			return invalid
		}
		return outcome{valid: true, status: 201}
	case opPutUser, opRename, opDeactivate, opReactivate, opEmail, opTeam:
		u, ok := m.users[op.U]
		if !ok {
			return invalid
		}
		next := *u
		switch op.Kind {
		case opPutUser:
			next.userName, next.email, next.team, next.active = op.Name, op.Email, op.Team, op.Active
		case opRename:
			next.userName = op.Name
		case opDeactivate:
			next.active = false
		case opReactivate:
			next.active = true
		case opEmail:
			next.email = op.Email
		case opTeam:
			next.team = op.Team
		}
		if m.be == hub && !isEmail(next.userName) && next.email == "" {
			return invalid
		}
		if !m.enabled {
			return outcome{valid: true, status: 403}
		}
		if u.active && !next.active {
			next.kept = m.deactivation == "Keep"
		}
		if fold(next.userName) != fold(u.userName) {
			if m.userNameTaken(next.userName, op.U) {
				return outcome{valid: true, status: 409}
			}
			if m.orphanedIdentity("User", next.userName) {
				return invalid // renaming into an orphaned identity: the doc does not say
			}
		}
		if m.be == hub && (fold(next.primary()) != fold(u.primary()) || fold(next.userName) != fold(u.userName)) &&
			m.orphanedIdentity("", next.userName, next.primary()) {
			return invalid
		}
		*u = next
		return outcome{valid: true, status: 200}
	case opDeleteUser:
		if _, ok := m.users[op.U]; !ok {
			return invalid
		}
		if !m.enabled {
			return outcome{valid: true, status: 403}
		}
		m.deleteUser(op.U)
		return outcome{valid: true, status: 204}
	case opCreateGroup:
		if _, dup := m.groups[op.G]; dup {
			return invalid
		}
		for _, h := range op.Members {
			if _, ok := m.users[h]; !ok {
				return invalid
			}
		}
		if !m.enabled {
			return outcome{valid: true, status: 403}
		}
		if m.displayNameTaken(op.Name, -1) {
			return outcome{valid: true, status: 409}
		}
		m.groups[op.G] = &mgroup{displayName: op.Name}
		if m.be == kube {
			m.takeOverOrphans(gOwner(op.G), "Group", teamName(op.Name))
		}
		return outcome{valid: true, status: 201}
	case opRenameGroup:
		g, ok := m.groups[op.G]
		if !ok {
			return invalid
		}
		if !m.enabled {
			return outcome{valid: true, status: 403}
		}
		if m.displayNameTaken(op.Name, op.G) {
			return outcome{valid: true, status: 409}
		}
		if teamName(op.Name) != teamName(g.displayName) && m.orphanedIdentity("Group", teamName(op.Name)) {
			return invalid
		}
		g.displayName = op.Name
		return outcome{valid: true, status: 200}
	case opGroupAdd, opGroupRemove:
		if _, ok := m.groups[op.G]; !ok {
			return invalid
		}
		if _, ok := m.users[op.U]; !ok {
			return invalid
		}
		return scim(200)
	case opDeleteGroup:
		if _, ok := m.groups[op.G]; !ok {
			return invalid
		}
		if !m.enabled {
			return outcome{valid: true, status: 403}
		}
		if !m.deleteGroup(op.G) {
			return invalid
		}
		return outcome{valid: true, status: 204}
	case opKubectlDelete:
		if op.U >= 0 {
			if _, ok := m.users[op.U]; !ok {
				return invalid
			}
			m.deleteUser(op.U)
			return outcome{valid: true}
		}
		if _, ok := m.groups[op.G]; !ok {
			return invalid
		}
		if !m.deleteGroup(op.G) {
			return invalid
		}
		return outcome{valid: true}
	case opPolicy:
		if op.Deletion == m.deletion && op.Deact == m.deactivation {
			return invalid
		}
		if m.webhook && op.Deletion == "Orphan" {
			return invalid // the CRD refuses Orphan with grantLayout Webhook
		}
		m.deletion, m.deactivation = op.Deletion, op.Deact
		if op.Deact == "Remove" && m.enabled {
			for _, u := range m.users {
				u.kept = false
			}
		}
		return outcome{valid: true, postSettle: m.enabled}
	case opEnable:
		if op.Active == m.enabled {
			return invalid
		}
		m.enabled = op.Active
		if m.enabled && m.deactivation == "Remove" {
			for _, u := range m.users {
				u.kept = false // enabled under Remove: what Keep kept is taken now
			}
		}
		// a config is disabled only once its backend matches: the frozen state is then
		// the settled one
		return outcome{valid: true, preSettle: !op.Active, postSettle: op.Active}
	case opDriftRemove:
		return m.driftRemove(op)
	case opDriftForeign:
		return m.driftForeign(op)
	case opAccept:
		if m.be != hub {
			return invalid
		}
		if m.accounts[fold(op.Email)] {
			return invalid
		}
		for _, r := range m.hrecs {
			if !r.member && fold(r.invitee) == fold(op.Name) {
				m.accounts[fold(op.Email)] = true
				r.member, r.username, r.email, r.invitee = true, op.Email, r.invitee, ""
				return outcome{valid: true}
			}
		}
		return invalid
	case opRestart:
		return outcome{valid: true}
	case opCheck:
		return outcome{valid: true, preSettle: true}
	case opDeleteConfig:
		m.deleteConfig()
		return outcome{valid: true, preSettle: true, configDeleted: true}
	}
	return invalid
}

// createUser adds a member created by SCIM (active): its origin is decided on its first
// observation, which the harness waits for.
func (m *model) createUser(h int, u *muser) bool {
	m.users[h] = u
	owner := uOwner(h)
	switch m.be {
	case kube:
		u.origin = "Provisioned"
		m.takeOverOrphans(owner, "User", u.userName)
	case hub:
		found := m.hubFound(u.userName, u.primary())
		var orphans, foreign int
		for _, r := range found {
			switch {
			case r.orphan:
				orphans++
			case r.foreign:
				foreign++
			default:
				return false // another member's person: ambiguous, never generated
			}
		}
		switch {
		case foreign > 0 && orphans > 0:
			return false
		case foreign > 0 || orphans > 0:
			// there before SCIM, adoption Ignore: left alone for good. Docker Hub has no
			// labels, so an orphan looks like anyone who was there before SCIM
			// (docs/access-invariant.md).
			u.origin = "Preexisting"
		default:
			u.origin = "Provisioned"
			for _, r := range found {
				r.orphan, r.owner = false, owner
			}
		}
	}
	return true
}

// takeOverOrphans gives the orphaned kubernetes grants of an identity to a new owner: its
// own grants replace them.
func (m *model) takeOverOrphans(owner, kind, name string) {
	out := m.krecs[:0]
	for _, r := range m.krecs {
		if r.orphan && r.kind == kind && fold(r.name) == fold(name) {
			continue
		}
		out = append(out, r)
	}
	m.krecs = out
	_ = owner
}

func (m *model) orphanedIdentity(kind string, ids ...string) bool {
	for _, id := range ids {
		if m.be == kube {
			for _, r := range m.krecs {
				if r.orphan && r.kind == kind && fold(r.name) == fold(id) {
					return true
				}
			}
			continue
		}
		for _, r := range m.hrecs {
			if (r.orphan || r.foreign) && r.matches(id) {
				return true
			}
		}
	}
	return false
}

// release lets go of an owner's grants: removed, or orphaned.
func (m *model) release(owner string, remove bool) {
	if m.be == kube {
		out := m.krecs[:0]
		for _, r := range m.krecs {
			if r.owner == owner {
				if remove {
					continue
				}
				r.owner, r.orphan = "", true
			}
			out = append(out, r)
		}
		m.krecs = out
		return
	}
	out := m.hrecs[:0]
	for _, r := range m.hrecs {
		if r.owner == owner {
			if remove {
				continue
			}
			r.owner, r.orphan = "", true
		}
		out = append(out, r)
	}
	m.hrecs = out
}

func (m *model) deleteUser(h int) {
	u := m.users[h]
	delete(m.users, h)
	if u.origin != "Provisioned" {
		return
	}
	m.release(uOwner(h), m.enabled && m.deletion == "Remove")
}

// deleteGroup deletes a group; false when that is ambiguous (see the package comment).
func (m *model) deleteGroup(h int) bool {
	g := m.groups[h]
	remove := m.enabled && m.deletion == "Remove"
	if !remove && m.be == kube {
		for o, other := range m.groups {
			if o != h && teamName(other.displayName) == teamName(g.displayName) {
				return false
			}
		}
	}
	delete(m.groups, h)
	if m.be == kube {
		m.release(gOwner(h), remove)
	}
	return true
}

// deleteConfig applies the config-deletion table, then starts a fresh config.
func (m *model) deleteConfig() {
	remove := m.enabled && m.deletion == "Remove"
	for _, h := range m.sortedUsers() {
		if m.users[h].origin == "Provisioned" {
			m.release(uOwner(h), remove)
		}
	}
	if m.be == kube {
		for _, h := range m.sortedGroups() {
			m.release(gOwner(h), remove)
		}
	}
	if m.be == kube && m.webhook {
		// The Webhook layout's grants are OrgGrants, which the authorization webhook honours
		// only while their config exists (docs/access-invariant.md, "Deleting a ScimConfig"):
		// whatever the deletion left, orphans included, stops granting with it. Hand-made
		// RBAC bindings stay. (The model kept them as orphans: a disabled Webhook config
		// deleted with a provisioned member failed every time, seed 324960047.)
		out := m.krecs[:0]
		for _, r := range m.krecs {
			if r.foreign {
				out = append(out, r)
			}
		}
		m.krecs = out
	}
	// its members and groups stay, out of any live config's reach
	m.users, m.groups = map[int]*muser{}, map[int]*mgroup{}
}

// freshConfig is the state of the config that follows a deleted one.
func (m *model) freshConfig() {
	m.cfgN++
	m.enabled, m.deletion, m.deactivation = true, "Remove", "Remove"
	m.users, m.groups = map[int]*muser{}, map[int]*mgroup{}
	m.resetBackend()
}

func (m *model) driftRemove(op Op) outcome {
	if m.be == kube {
		found, owned := false, false
		out := m.krecs[:0]
		for _, r := range m.krecs {
			if !r.foreign && r.role == op.Role && r.kind == op.SubjKind && r.name == op.Name {
				found, owned = true, owned || r.owner != ""
				continue
			}
			out = append(out, r)
		}
		m.krecs = out
		if !found {
			return invalid
		}
		return outcome{valid: true, postSettle: owned && m.enabled}
	}
	for i, r := range m.hrecs {
		if r.key() == op.Name && !(r.member && r.username == "owner") {
			m.hrecs = append(m.hrecs[:i], m.hrecs[i+1:]...)
			return outcome{valid: true, postSettle: r.owner != "" && m.enabled}
		}
	}
	return invalid
}

func (m *model) driftForeign(op Op) outcome {
	if m.be == kube {
		if op.SubjKind == "" {
			return invalid
		}
		m.foreignN++
		m.krecs = append(m.krecs, &krec{role: op.Role, kind: op.SubjKind, name: op.Name, foreign: true, foreignID: m.foreignN})
		return outcome{valid: true}
	}
	if op.SubjKind != "" {
		return invalid
	}
	// a foreign person must not overlap anyone the organization or a member names
	if m.accounts[fold(op.Name)] {
		return invalid
	}
	for _, r := range m.hrecs {
		if r.matches(op.Name) || (op.Email != "" && r.matches(op.Email)) {
			return invalid
		}
		if r.member && op.Email != "" && fold(r.email) == fold(op.Email) {
			return invalid
		}
	}
	for _, u := range m.users {
		for _, id := range []string{u.userName, u.primary()} {
			if fold(id) == fold(op.Name) || fold(id) == fold(op.Email) {
				return invalid
			}
		}
	}
	m.accounts[fold(op.Name)] = true
	m.hrecs = append(m.hrecs, &hrec{member: true, username: op.Name, email: op.Email, foreign: true})
	return outcome{valid: true}
}

// hubFound is what the operator finds under a userName and primary email.
func (m *model) hubFound(ids ...string) []*hrec {
	var out []*hrec
	for _, r := range m.hrecs {
		for _, id := range ids {
			if r.matches(id) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

func (m *model) wanted(u *muser) bool {
	if !keepRestoresAccess && !u.active {
		return u.origin == "Provisioned" && m.deactivation == "Keep" && u.kept
	}
	return u.origin == "Provisioned" && (u.active || m.deactivation == "Keep")
}

// converge is what the controllers do to an enabled config's backend until it matches.
func (m *model) converge() {
	if m.be == kube {
		m.convergeKube()
		return
	}
	m.convergeHub()
}

func (m *model) convergeKube() {
	want := map[string]*krec{} // owner/role -> desired
	for _, h := range m.sortedUsers() {
		u := m.users[h]
		if !m.wanted(u) {
			continue
		}
		for role := 0; role < 2; role++ {
			want[fmt.Sprintf("%s/%d", uOwner(h), role)] = &krec{role: role, kind: "User", name: u.userName, owner: uOwner(h)}
		}
	}
	for _, h := range m.sortedGroups() {
		for role := 0; role < 2; role++ {
			want[fmt.Sprintf("%s/%d", gOwner(h), role)] = &krec{role: role, kind: "Group",
				name: teamName(m.groups[h].displayName), owner: gOwner(h)}
		}
	}
	out := m.krecs[:0]
	for _, r := range m.krecs {
		if r.owner == "" {
			out = append(out, r)
			continue
		}
		k := fmt.Sprintf("%s/%d", r.owner, r.role)
		if w, ok := want[k]; ok {
			r.kind, r.name = w.kind, w.name
			delete(want, k)
			out = append(out, r)
		}
	}
	m.krecs = out
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m.krecs = append(m.krecs, want[k])
	}
}

func (m *model) convergeHub() {
	for _, h := range m.sortedUsers() {
		u := m.users[h]
		if u.origin != "Provisioned" {
			continue
		}
		owner := uOwner(h)
		if !m.wanted(u) {
			m.release(owner, true)
			continue
		}
		found := m.hubFound(u.userName, u.primary())
		isFound := map[*hrec]bool{}
		for _, r := range found {
			isFound[r] = true
		}
		// every recorded identity that is not the current one goes
		out := m.hrecs[:0]
		for _, r := range m.hrecs {
			if r.owner == owner && !isFound[r] {
				continue
			}
			out = append(out, r)
		}
		m.hrecs = out
		if len(found) == 0 {
			invitee := u.userName
			if !isEmail(u.userName) && u.email != "" {
				invitee = u.email
			}
			m.hrecs = append(m.hrecs, &hrec{invitee: invitee, owner: owner})
		}
	}
}

// unambiguous tells whether the state stays within what the doc decides (see the package
// comment); the generator and the replay skip operations that leave it.
func (m *model) unambiguous() bool {
	if m.be != hub {
		return true
	}
	seen := map[string]int{}
	for _, h := range m.sortedUsers() {
		u := m.users[h]
		for _, id := range []string{u.userName, u.primary()} {
			if o, ok := seen[fold(id)]; ok && o != h {
				return false
			}
			seen[fold(id)] = h
		}
		if u.origin != "Provisioned" {
			continue
		}
		for _, r := range m.hubFound(u.userName, u.primary()) {
			if r.owner != uOwner(h) {
				return false
			}
		}
	}
	return true
}

// ---- expected backend ----

// kubeGrants is the expected set of "role/kind/name" grants.
func (m *model) kubeGrants() map[string]bool {
	out := map[string]bool{}
	for _, r := range m.krecs {
		out[access.Grant(r.role, r.kind, r.name)] = true
	}
	return out
}

// hubPeople is the expected set of "member:<username>" and "invite:<invitee>" (folded).
func (m *model) hubPeople() map[string]bool {
	out := map[string]bool{}
	for _, r := range m.hrecs {
		out[r.key()] = true
	}
	return out
}

// describe lists the model's records, for failure reports.
func (m *model) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config #%d enabled=%v deletion=%s deactivation=%s\n", m.cfgN, m.enabled, m.deletion, m.deactivation)
	for _, h := range m.sortedUsers() {
		u := m.users[h]
		fmt.Fprintf(&b, "  u%d userName=%q email=%q active=%v team=%q origin=%s\n", h, u.userName, u.email, u.active, u.team, u.origin)
	}
	for _, h := range m.sortedGroups() {
		fmt.Fprintf(&b, "  g%d displayName=%q team=%q\n", h, m.groups[h].displayName, teamName(m.groups[h].displayName))
	}
	for _, r := range m.krecs {
		fmt.Fprintf(&b, "  grant role%d %s %q owner=%q orphan=%v foreign=%v\n", r.role, r.kind, r.name, r.owner, r.orphan, r.foreign)
	}
	for _, r := range m.hrecs {
		fmt.Fprintf(&b, "  hub %s email=%q owner=%q orphan=%v foreign=%v\n", r.key(), r.email, r.owner, r.orphan, r.foreign)
	}
	return b.String()
}
