// Package backend is the contract between the membership controllers and a membership
// backend (Kubernetes RBAC, Docker Hub, ...), with its error classification and the
// conformance suite every implementation runs (conformance.go).
//
// Every call is idempotent ("already a member" is success; "not a member" on removal is
// success) and bounded by the context it is given.
package backend

import (
	"context"
	"errors"
	"time"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
)

// MemberState is where a person stands in the backend's organization.
type MemberState string

const (
	// StateAbsent: neither a member nor invited.
	StateAbsent MemberState = "Absent"
	// StateInvited: an invitation is pending; the person has not accepted yet.
	StateInvited MemberState = "Invited"
	// StateMember: a member of the organization.
	StateMember MemberState = "Member"
)

// Member is what the backend knows of one person.
type Member struct {
	// UserName is the SCIM userName the member was looked up by (normally an email).
	UserName string
	// Email as the backend knows it, when it does.
	Email string
	// BackendID is the backend's identity (a Docker ID; the RBAC user name). Empty for an
	// invitee who has not accepted yet.
	BackendID string
	// Role in the organization ("member", "editor", "owner"), lower case; empty when the
	// backend has no roles.
	Role string
	// Teams the member is in.
	Teams []string
	// State of the member.
	State MemberState
	// InviteID identifies a pending invitation.
	InviteID string
	// Managed is set by a backend that labels its grants (OwnerLedger) when some grant
	// found for the person carries SCIM's labels: SCIM granted it (to this member, to an
	// earlier member of the same name, or as an orphan), so it is never Preexisting.
	Managed bool
	// Owners are, on a backend that labels its grants (OwnerLedger), the UIDs of the
	// OrgMembers that own a grant naming the person (ListMembers sets it): a drift pass
	// attributes every grant to the object that wants it, whatever name it carries.
	Owners []string
}

// DesiredMember is what a member should look like.
type DesiredMember struct {
	// UserName is the SCIM userName (an email, or a Docker ID).
	UserName string
	// Email to invite when the userName is not itself an email (may be empty).
	Email string
	// Role wanted ("member", "editor", "owner"); empty means the backend's default.
	Role string
	// Also are more identities the person may already be a member under (Docker Hub: the
	// Docker ID an invitation was accepted under, as plan.LookupIdentities gives it; one
	// that repeats UserName or Email counts once). A backend that invites by email
	// (EmailInviter) looks under them too before inviting, so a member whose account
	// email changed is not invited again; they are never invited. Others ignore it.
	Also []string
	// Owner is the OrgMember that wants the access. A backend that labels its grants
	// (OwnerLedger) records it on every grant; others ignore it.
	Owner Owner
}

// Owner identifies the OrgMember or OrgGroup, by UID, that wants a grant.
type Owner struct {
	// Kind is "OrgMember" or "OrgGroup".
	Kind string
	// UID of the object: names change (renames), UIDs do not.
	UID string
}

// Team is a group of members in the backend.
type Team struct {
	Name string
	// Members holds the backend identities (BackendID) of the team's members.
	Members []string
}

// Backend is one organization in one membership backend.
type Backend interface {
	// Check verifies connectivity and credentials (BackendReady).
	Check(ctx context.Context) error

	// ObserveMember looks a person up by userName or email, case-insensitively, among
	// members and pending invitations. A person the backend does not know is returned
	// with State StateAbsent and a nil error.
	ObserveMember(ctx context.Context, userName string) (Member, error)

	// EnsureMember makes the person a member (or an invitee) with the desired role and
	// returns what the backend holds afterwards. It never invites a person who is already
	// a member or already invited.
	EnsureMember(ctx context.Context, want DesiredMember) (Member, error)

	// EnsureMemberAbsent removes the person from the organization (every team with them)
	// or cancels their pending invitation.
	EnsureMemberAbsent(ctx context.Context, userName string) error

	// ListMembers lists every member and pending invitation, for the drift pass: one
	// observation of the whole organization per resync interval, paged as the service
	// pages (its cost is O(members/page), never a call per member). Each entry carries
	// UserName (the identity the backend knows: an email or a backend ID), Email and
	// BackendID where known, State, Role and Teams; an OwnerLedger backend sets Owners.
	ListMembers(ctx context.Context) ([]Member, error)

	// ObserveTeam returns the team, or nil when it does not exist.
	ObserveTeam(ctx context.Context, team string) (*Team, error)

	// EnsureTeam creates the team when it is missing.
	EnsureTeam(ctx context.Context, team string) error

	// EnsureTeamAbsent deletes the team when it exists.
	EnsureTeamAbsent(ctx context.Context, team string) error

	// EnsureTeamMember adds a member (by BackendID) to a team.
	EnsureTeamMember(ctx context.Context, team, backendID string) error

	// EnsureTeamMemberAbsent removes a member (by BackendID) from a team.
	EnsureTeamMemberAbsent(ctx context.Context, team, backendID string) error
}

// EmailInviter is implemented, in addition to Backend, by a backend that invites a person
// under their email when their userName is not one (Docker Hub: DesiredMember.Email).
// Such a pending invitation (and the membership it becomes when its invitee signs up
// under another Docker ID) is not found by the userName alone, so the controllers
// observe and remove through these methods when a backend has them: a deprovisioned
// person then keeps no invitation, and a resync does not take the invitation for a
// missing member.
//
// It is a separate, optional interface so that Backend keeps its shape: a backend whose
// identities are only userNames (Kubernetes RBAC) must not look people up by email.
type EmailInviter interface {
	// ObserveMemberWithEmail is ObserveMember looking under the userName and the email
	// (may be empty), and under each identity in also (the Docker ID an invitation was
	// accepted under: plan.LookupIdentities; one that repeats the userName or the email
	// counts once). A membership found under any of them wins over an invitation.
	ObserveMemberWithEmail(ctx context.Context, userName, email string, also ...string) (Member, error)
	// EnsureMemberAbsentWithEmail is EnsureMemberAbsent for the person found under the
	// userName or the email (may be empty).
	EnsureMemberAbsentWithEmail(ctx context.Context, userName, email string) error
}

// OwnerLedger is implemented, in addition to Backend, by a backend that records on each
// grant the ScimConfig and the owner (OrgMember or OrgGroup UID) that wants it (the
// kubernetes backend: labels on every binding). The controllers then keep grants as sets:
// what an owner holds is found by its UID, never by its current name, and grants whose
// owner no longer exists are collected by a per-config sweep.
//
// A backend without it (Docker Hub, whose organization has no labels) is kept through the
// identities each OrgMember records in its status instead.
type OwnerLedger interface {
	// EnsureTeamOwned is EnsureTeam for the OrgGroup owner: its grants carry its UID.
	EnsureTeamOwned(ctx context.Context, owner Owner, team string) error
	// ObserveTeamOwned is ObserveTeam for the OrgGroup owner.
	ObserveTeamOwned(ctx context.Context, owner Owner, team string) (*Team, error)
	// EnsureOwnerAbsent removes every grant owned by owner, whatever identity it names, and
	// the grants of subject (a userName for an OrgMember, a team for an OrgGroup; may be
	// empty) that no owner holds (orphans the owner claimed).
	EnsureOwnerAbsent(ctx context.Context, owner Owner, subject string) error
	// OwnerHolds tells whether any grant of the config carries owner's UID, whatever
	// identity it names (a member that lost the write recording its origin, renamed since).
	OwnerHolds(ctx context.Context, owner Owner) (bool, error)
	// OrphanOwner leaves owner's grants in place and marks them orphaned (why says by
	// which policy): the sweep leaves them, and a member of the same identity claims them.
	OrphanOwner(ctx context.Context, owner Owner, why string) error
	// Sweep removes every grant of the config whose owner is not live, and returns how
	// many it removed. Orphaned and unlabelled grants are not removed (the kubernetes
	// backend moves orphans of the other grant layout to the config's).
	Sweep(ctx context.Context, live func(uid string) bool) (int, error)
	// OrphanAll marks every owned grant of the config orphaned (a config deleted under the
	// Orphan policy, or while disabled) and returns how many it marked.
	OrphanAll(ctx context.Context, why string) (int, error)
	// RemoveAllOwned removes every owned grant of the config (a config deleted under the
	// Remove policy) and returns how many it removed; orphaned grants stay orphaned.
	RemoveAllOwned(ctx context.Context) (int, error)
}

// TeamLister is implemented by a backend whose ListMembers gives each member's teams in
// full (Member.Teams: a team's members are the members that name it) and that lists its
// teams in pages. A drift pass then judges every group of the organization from those two
// listings, so a group costs no call of its own per resync interval: the calls stay
// O(members/page + teams/page) whatever the number of groups.
type TeamLister interface {
	// ListTeams lists the names of every team of the organization.
	ListTeams(ctx context.Context) ([]string, error)
	// ListedTeamName is the name ListTeams and Member.Teams give the team the other
	// methods call team (they may accept more than one form of it, as "org:team"), or an
	// error when the backend refuses the name (as ObserveTeam would). Given its own answer
	// it answers the same: the controllers record and compare it, then act on it.
	ListedTeamName(team string) (string, error)
}

// NoUserTeams is implemented by a backend whose teams are not lists of people but grants
// to a group that the authenticator asserts (Kubernetes RBAC Group subjects). A per-user
// team hint (spec.docker.team) must not create such a team: it would grant access to
// everyone the authenticator puts in the group, people the IdP never sent.
type NoUserTeams interface {
	NoUserTeams()
}

// ConfigWide reports whether err is a problem of the whole organization connection
// (credentials, organization, configuration) rather than of one member: the ScimConfig
// reports it once and its members wait instead of failing one by one. A transient failure
// (a 5xx, a dropped connection, an API server that did not answer) or a rate limit is a
// failure of that one call, never config-wide: the member that made it retries with its
// own bounded backoff and the config's other members go on, so a flaky backend does not
// pause everyone.
func ConfigWide(err error) bool {
	var e *Error
	if !errors.As(err, &e) || e.Class != Permanent {
		return false
	}
	switch e.Reason {
	case "InvalidCredentials", "OrganizationNotFound", "InvalidConfiguration", "CredentialsMissing",
		"UnknownBackend", "InvalidBackendConfig", "NoRolesConfigured", "RoleNotFound", "NotAllowedToBind",
		"NamespaceNotFound", "Forbidden", "ServiceAccountMissing", "ImpersonationForbidden", "ImpersonationUnavailable",
		"NoAuthorizationWebhook",
		// Permanent only from the registry: this manager was built without the backend.
		"BackendUnavailable":
		return true
	}
	return false
}

// Provider gives the Backend of one ScimConfig. Implementations cache what must be shared
// across reconciles of one organization (credentials, tokens, one rate limiter).
type Provider interface {
	// For returns the backend the ScimConfig names. A configuration problem (a missing
	// Secret, an unknown type) is a Permanent error.
	For(ctx context.Context, cfg *scimv1.ScimConfig) (Backend, error)
}

type noWaitKey struct{}

// MaxInlineWait is the longest a backend call made under NoWait waits for its
// organization's request budget; a longer wait answers RateLimited with the delay instead.
const MaxInlineWait = 500 * time.Millisecond

// NoWait marks ctx as a controller worker's: a backend with a rate limiter must not wait
// (longer than MaxInlineWait) for it under this context, but answer a RateLimited error
// whose RetryAfter is the limiter's delay, so that the worker requeues the object and
// serves another tenant meanwhile instead of sleeping for one organization's budget.
func NoWait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWaitKey{}, true)
}

// MayWait tells whether a backend may wait for its rate limiter under ctx (false under
// NoWait).
func MayWait(ctx context.Context) bool {
	v, _ := ctx.Value(noWaitKey{}).(bool)
	return !v
}

type guardKey struct{}

// WithGuard makes every backend call made under ctx ask guard first: a non-nil answer
// stops the call before it is sent. A controller uses it to stop a reconcile under way
// from calling the backend once its ScimConfig is disabled (Paused=True): a call already
// sent finishes, no further one starts.
func WithGuard(ctx context.Context, guard func() error) context.Context {
	return context.WithValue(ctx, guardKey{}, guard)
}

// Guarded is the answer of ctx's guard (nil without one). Backends call it right before
// each request they send.
func Guarded(ctx context.Context) error {
	if g, ok := ctx.Value(guardKey{}).(func() error); ok && g != nil {
		return g()
	}
	return nil
}
