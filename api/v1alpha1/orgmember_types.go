package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MemberPhase is where a member stands in the backend.
// +kubebuilder:validation:Enum=Pending;Invited;Active;Deactivated;Removed;Failed
type MemberPhase string

const (
	// PhasePending: not yet provisioned in the backend.
	PhasePending MemberPhase = "Pending"
	// PhaseInvited: invited, waiting for the person to accept.
	PhaseInvited MemberPhase = "Invited"
	// PhaseActive: in the organization with the access the config names.
	PhaseActive MemberPhase = "Active"
	// PhaseDeactivated: active=false; access removed (or kept, per policy).
	PhaseDeactivated MemberPhase = "Deactivated"
	// PhaseRemoved: the OrgMember is being deleted and its access was removed.
	PhaseRemoved MemberPhase = "Removed"
	// PhaseFailed: the backend refused the member for a reason retries will not fix.
	PhaseFailed MemberPhase = "Failed"
)

// MemberOrigin records whether SCIM provisioned a member or found them in the backend.
// +kubebuilder:validation:Enum=Provisioned;Adopted;Preexisting
type MemberOrigin string

const (
	// OriginProvisioned: SCIM added the member to the backend.
	OriginProvisioned MemberOrigin = "Provisioned"
	// OriginAdopted: the member already existed and the config's adoption policy took them
	// over.
	OriginAdopted MemberOrigin = "Adopted"
	// OriginPreexisting: the member already existed and adoption is off: SCIM never changes
	// or removes them.
	OriginPreexisting MemberOrigin = "Preexisting"
)

// Name is a SCIM user's name (RFC 7643 section 4.1.1).
type Name struct {
	// formatted full name.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Formatted string `json:"formatted,omitempty"`
	// familyName (last name).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	FamilyName string `json:"familyName,omitempty"`
	// givenName (first name).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	GivenName string `json:"givenName,omitempty"`
	// middleName.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	MiddleName string `json:"middleName,omitempty"`
	// honorificPrefix, for example "Ms.".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	HonorificPrefix string `json:"honorificPrefix,omitempty"`
	// honorificSuffix, for example "III".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	HonorificSuffix string `json:"honorificSuffix,omitempty"`
}

// MultiValue is one value of a SCIM multi-valued attribute (emails, phoneNumbers, ...).
type MultiValue struct {
	// value, for example an email address.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Value string `json:"value"`
	// type label, for example work or home.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Type string `json:"type,omitempty"`
	// display is a human-readable form of the value.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Display string `json:"display,omitempty"`
	// primary marks the preferred value; at most one value is primary.
	// +optional
	Primary bool `json:"primary,omitempty"`
}

// EnterpriseUser is the urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
// extension (RFC 7643 section 4.3).
type EnterpriseUser struct {
	// employeeNumber.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	EmployeeNumber string `json:"employeeNumber,omitempty"`
	// costCenter.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	CostCenter string `json:"costCenter,omitempty"`
	// organization.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Organization string `json:"organization,omitempty"`
	// division.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Division string `json:"division,omitempty"`
	// department.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Department string `json:"department,omitempty"`
	// manager is the id (and display name) of the user's manager.
	// +optional
	Manager *Manager `json:"manager,omitempty"`
}

// Manager refers to another user as a manager.
type Manager struct {
	// value is the manager's SCIM id.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Value string `json:"value,omitempty"`
	// displayName of the manager.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	DisplayName string `json:"displayName,omitempty"`
}

// DockerUser is the urn:ietf:params:scim:schemas:extension:docker:2.0:User extension:
// role and team hints for the backend.
type DockerUser struct {
	// role in the organization; the config's default role when empty.
	// +kubebuilder:validation:Enum=member;editor;owner
	// +optional
	Role string `json:"role,omitempty"`
	// org the IdP meant (informational; the ScimConfig's organization is used).
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Org string `json:"org,omitempty"`
	// team the member is added to once active.
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Team string `json:"team,omitempty"`
}

// OrgMemberSpec is what the IdP sent for one person (the SCIM User).
// +kubebuilder:validation:XValidation:rule="self.configName == oldSelf.configName",message="configName is immutable"
type OrgMemberSpec struct {
	// configName is the ScimConfig (same namespace) this member belongs to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ConfigName string `json:"configName"`

	// userName is the person's unique login, normally an email address; unique per
	// ScimConfig, case-insensitively.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.trim() == self",message="userName must not start or end with white space"
	UserName string `json:"userName"`

	// externalId is the IdP's own identifier for the person.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ExternalID string `json:"externalId,omitempty"`

	// name parts.
	// +optional
	Name *Name `json:"name,omitempty"`

	// displayName shown for the person.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	DisplayName string `json:"displayName,omitempty"`

	// nickName, title, userType, preferredLanguage, locale, timezone and profileUrl are the
	// RFC 7643 core User attributes of the same names.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	NickName string `json:"nickName,omitempty"`
	// title, for example "Vice President".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Title string `json:"title,omitempty"`
	// userType, for example "Employee".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	UserType string `json:"userType,omitempty"`
	// preferredLanguage, for example "en-US".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	PreferredLanguage string `json:"preferredLanguage,omitempty"`
	// locale, for example "en-US".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Locale string `json:"locale,omitempty"`
	// timezone, for example "Europe/Paris".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Timezone string `json:"timezone,omitempty"`
	// profileUrl of the person.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	ProfileURL string `json:"profileUrl,omitempty"`

	// active is false for a deactivated (suspended, unassigned) person. Deactivation keeps
	// the OrgMember so a reactivation can restore access.
	// +kubebuilder:default=true
	Active bool `json:"active"`

	// emails of the person; at most one is primary.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.filter(e, has(e.primary) && e.primary).size() <= 1",message="at most one email may be primary"
	// +optional
	Emails []MultiValue `json:"emails,omitempty"`

	// phoneNumbers of the person; at most one is primary.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.filter(e, has(e.primary) && e.primary).size() <= 1",message="at most one phone number may be primary"
	// +optional
	PhoneNumbers []MultiValue `json:"phoneNumbers,omitempty"`

	// enterprise holds the Enterprise User extension.
	// +optional
	Enterprise *EnterpriseUser `json:"enterprise,omitempty"`

	// docker holds the Docker User extension: role and team hints.
	// +optional
	Docker *DockerUser `json:"docker,omitempty"`
}

// OrgMemberStatus is what the controller observed of a member in the backend.
type OrgMemberStatus struct {
	// phase: Pending, Invited, Active, Deactivated, Removed or Failed.
	// +optional
	Phase MemberPhase `json:"phase,omitempty"`

	// origin says whether SCIM provisioned this member or found them in the backend.
	// Preexisting members are never changed or removed by SCIM.
	// +optional
	Origin MemberOrigin `json:"origin,omitempty"`

	// backendID is the backend's identity of the member (a Docker ID, an RBAC user name).
	// +kubebuilder:validation:MaxLength=256
	// +optional
	BackendID string `json:"backendID,omitempty"`

	// inviteID is the pending invitation's id, while there is one.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	InviteID string `json:"inviteID,omitempty"`

	// grantedIdentities are the identities this member was granted access under in a
	// backend that does not label its grants (Docker Hub: invitation emails or userNames,
	// Docker IDs), folded to lower case. Each is recorded before it is granted and dropped
	// only once the backend confirms it gone, so a rename or an email change never leaves
	// the old identity in the organization.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=320
	// +listType=set
	// +optional
	GrantedIdentities []string `json:"grantedIdentities,omitempty"`

	// deprovisioned is true once the member's access was removed because it was
	// deactivated (deactivation policy Remove). A later switch of the policy to Keep does
	// not give it back (Keep keeps what a member holds; it never re-invites a suspended
	// person); a reactivation clears it.
	// +optional
	Deprovisioned bool `json:"deprovisioned,omitempty"`

	// hintedTeam is the team the member was put in because of its docker team hint
	// (spec.docker.team), so that a changed or removed hint takes it out of that team.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	HintedTeam string `json:"hintedTeam,omitempty"`

	// conditions: Ready and Synced.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastSyncTime is when the member last matched the backend.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// message is a human-readable account of the last sync.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}

// OrgMember is one provisioned person: the SCIM User, written by the SCIM server and
// reconciled against the organization's backend.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=om;orgm,categories=scim
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.spec.userName`
// +kubebuilder:printcolumn:name="Active",type=boolean,JSONPath=`.spec.active`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Config",type=string,JSONPath=`.spec.configName`,priority=1
// +kubebuilder:printcolumn:name="Backend ID",type=string,JSONPath=`.status.backendID`,priority=1
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastSyncTime`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.userName`
// +kubebuilder:selectablefield:JSONPath=`.spec.externalId`
// +kubebuilder:selectablefield:JSONPath=`.spec.configName`
type OrgMember struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the IdP sent.
	Spec OrgMemberSpec `json:"spec"`
	// status is what the controller observed.
	// +optional
	Status OrgMemberStatus `json:"status,omitempty"`
}

// OrgMemberList is a list of OrgMembers.
// +kubebuilder:object:root=true
type OrgMemberList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OrgMember `json:"items"`
}
