package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// NameClaimKind says which SCIM name an OrgNameClaim holds.
// +kubebuilder:validation:Enum=User;Group
type NameClaimKind string

const (
	// NameClaimUser holds a userName: its holder is an OrgMember.
	NameClaimUser NameClaimKind = "User"
	// NameClaimGroup holds a group's displayName: its holder is an OrgGroup.
	NameClaimGroup NameClaimKind = "Group"
)

// OrgNameClaimSpec names the holder of one userName or displayName of a ScimConfig.
type OrgNameClaimSpec struct {
	// configName is the ScimConfig (same namespace) whose name this is.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ConfigName string `json:"configName"`

	// kind is User (the holder is an OrgMember) or Group (an OrgGroup).
	Kind NameClaimKind `json:"kind"`

	// holder is the name of the OrgMember or OrgGroup that holds the name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Holder string `json:"holder"`

	// holderUID is the holder's UID; empty while the holder is being created.
	// +optional
	HolderUID types.UID `json:"holderUID,omitempty"`

	// acquiredAt is when the holder took the name. A claim whose holder does not (yet)
	// carry the name is taken over by another writer only some time after this.
	AcquiredAt metav1.Time `json:"acquiredAt"`
}

// OrgNameClaim is internal bookkeeping of the SCIM server: it makes a userName (or a
// group's displayName) unique per ScimConfig through the API server, for creates and
// renames alike. Its object name is derived from the ScimConfig and the name, so two
// writers of one name race for one object and the API server lets exactly one win. A
// user created under its userName's derived object name holds the name without one. It
// is owned by its holder, so it goes away with it. Do not edit: it carries no settings.
// +kubebuilder:object:root=true
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.kind`
// +kubebuilder:printcolumn:name="Holder",type=string,JSONPath=`.spec.holder`
// +kubebuilder:printcolumn:name="Config",type=string,JSONPath=`.spec.configName`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OrgNameClaim struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec names the holder.
	Spec OrgNameClaimSpec `json:"spec"`
}

// OrgNameClaimList is a list of OrgNameClaims.
// +kubebuilder:object:root=true
type OrgNameClaimList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OrgNameClaim `json:"items"`
}
