package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GrantSubjectKind is the kind of subject an OrgGrant grants to.
// +kubebuilder:validation:Enum=User;Group
type GrantSubjectKind string

const (
	// GrantSubjectUser: the subject is a user (an OrgMember's userName).
	GrantSubjectUser GrantSubjectKind = "User"
	// GrantSubjectGroup: the subject is a group (an OrgGroup's team name).
	GrantSubjectGroup GrantSubjectKind = "Group"
)

// GrantRoleKind is the kind of role an OrgGrant grants.
// +kubebuilder:validation:Enum=ClusterRole;Role
type GrantRoleKind string

const (
	// GrantRoleClusterRole: a ClusterRole, cluster-wide or in one namespace.
	GrantRoleClusterRole GrantRoleKind = "ClusterRole"
	// GrantRoleRole: a Role of the grant's namespace.
	GrantRoleRole GrantRoleKind = "Role"
)

// OrgGrantSubject is who an OrgGrant grants to, as the API server's authenticator names
// them (the same string RBAC would match).
type OrgGrantSubject struct {
	// kind is User or Group.
	Kind GrantSubjectKind `json:"kind"`

	// name is the user or group name exactly as the authenticator presents it. Names
	// starting with "system:" are refused: Kubernetes reserves them for its own identities.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.lowerAscii().trim().startsWith('system:')",message="system: users and groups are reserved by Kubernetes"
	Name string `json:"name"`
}

// OrgGrantRole is the role an OrgGrant grants.
type OrgGrantRole struct {
	// kind is ClusterRole or Role (a Role needs spec.namespace).
	Kind GrantRoleKind `json:"kind"`

	// name is the role's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// OrgGrantSpec is one grant of the Webhook grant layout: role to subject, cluster-wide or in
// one namespace.
// +kubebuilder:validation:XValidation:rule="self.role.kind != 'Role' || (has(self.namespace) && size(self.namespace) > 0)",message="a Role is granted in a namespace: set spec.namespace"
type OrgGrantSpec struct {
	// subject is who is granted the role.
	Subject OrgGrantSubject `json:"subject"`

	// role is the role granted.
	Role OrgGrantRole `json:"role"`

	// namespace is where the grant applies; empty: cluster-wide (a clusterRoles entry of
	// the ScimConfig), otherwise a roles entry of that namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
}

// OrgGrant is the grant ledger of the Webhook grant layout
// (spec.backend.kubernetes.grantLayout: Webhook): the kubernetes backend writes one per
// (member or team, configured role), in the ScimConfig's namespace, labelled like the
// bindings of the Bindings layout (scim.operator.dev/config, config-namespace, member or
// team hash, owner). It grants through the manager's authorization webhook, never through
// RBAC: the webhook allows a request when an OrgGrant names the requester or one of its
// groups, its ScimConfig (labels, same namespace) exists with the Webhook layout and still
// lists the role at that scope, and the role's rules allow the request. RBAC never reads
// OrgGrants, so a million of them cost other requests nothing. Do not edit: the operator
// writes them; who may create OrgGrants in a namespace may grant that namespace's
// ScimConfigs' roles (docs/kubernetes-backend.md).
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ogt,categories=scim
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject.kind`
// +kubebuilder:printcolumn:name="Name",type=string,JSONPath=`.spec.subject.name`
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.spec.role.name`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.namespace`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type OrgGrant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the grant.
	Spec OrgGrantSpec `json:"spec"`
}

// OrgGrantList is a list of OrgGrants.
// +kubebuilder:object:root=true
type OrgGrantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OrgGrant `json:"items"`
}
