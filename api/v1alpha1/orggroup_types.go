package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OrgGroupSpec is a SCIM Group. Its members are not listed here: each member OrgMember
// carries the label group.scim.operator.dev/<this group's name>, so a group of any size
// never outgrows one object.
// +kubebuilder:validation:XValidation:rule="self.configName == oldSelf.configName",message="configName is immutable"
type OrgGroupSpec struct {
	// configName is the ScimConfig (same namespace) this group belongs to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ConfigName string `json:"configName"`

	// displayName of the group. Docker Hub's convention "org:team" names the team; a plain
	// name is the team name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName"`

	// externalId is the IdP's own identifier for the group.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ExternalID string `json:"externalId,omitempty"`
}

// OrgGroupStatus is what the controller observed of a group in the backend.
type OrgGroupStatus struct {
	// team is the backend's name for the group (a Docker Hub team, an RBAC Group subject).
	// +optional
	Team string `json:"team,omitempty"`

	// teamCreated is true when SCIM created the team (it did not exist when the group was
	// first synced). Deleting the group deletes only a team SCIM created; a team that
	// existed before SCIM is left in place.
	// +optional
	TeamCreated bool `json:"teamCreated,omitempty"`

	// memberCount is the number of OrgMembers in the group.
	// +optional
	MemberCount int32 `json:"memberCount,omitempty"`

	// conditions: Ready and Synced.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastSyncTime is when the group last matched the backend.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
}

// OrgGroup is a SCIM Group: a team in the backend.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=og;orgg,categories=scim
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Team",type=string,JSONPath=`.status.team`
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=`.status.memberCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Config",type=string,JSONPath=`.spec.configName`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.displayName`
// +kubebuilder:selectablefield:JSONPath=`.spec.configName`
type OrgGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the IdP sent.
	Spec OrgGroupSpec `json:"spec"`
	// status is what the controller observed.
	// +optional
	Status OrgGroupStatus `json:"status,omitempty"`
}

// OrgGroupList is a list of OrgGroups.
// +kubebuilder:object:root=true
type OrgGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OrgGroup `json:"items"`
}
