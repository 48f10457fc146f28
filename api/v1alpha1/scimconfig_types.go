package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackendType names a membership backend.
// +kubebuilder:validation:Enum=kubernetes;dockerhub
type BackendType string

const (
	// BackendKubernetes grants cluster access through RBAC bindings (the embedded default).
	BackendKubernetes BackendType = "kubernetes"
	// BackendDockerHub manages the members and teams of a Docker Hub organization.
	BackendDockerHub BackendType = "dockerhub"
)

// DeactivationPolicy says what active=false does in the backend.
// +kubebuilder:validation:Enum=Remove;Keep
type DeactivationPolicy string

// DeletionPolicy says what deleting an OrgMember does in the backend.
// +kubebuilder:validation:Enum=Remove;Orphan
type DeletionPolicy string

// GrantLayout says how the kubernetes backend records its grants.
// +kubebuilder:validation:Enum=Bindings;Webhook
type GrantLayout string

const (
	// GrantLayoutBindings grants with RBAC bindings: a ClusterRoleBinding or RoleBinding
	// per member and role (the default).
	GrantLayoutBindings GrantLayout = "Bindings"
	// GrantLayoutWebhook records every grant as an OrgGrant in the ScimConfig's namespace,
	// which RBAC never reads, and the operator's authorization webhook grants it.
	GrantLayoutWebhook GrantLayout = "Webhook"
)

// AdoptionPolicy says what happens to people the backend already has when SCIM
// provisions them.
// +kubebuilder:validation:Enum=Adopt;Ignore
type AdoptionPolicy string

const (
	// DeactivationRemove removes a deactivated member's access (the default).
	DeactivationRemove DeactivationPolicy = "Remove"
	// DeactivationKeep leaves a deactivated member's access in place.
	DeactivationKeep DeactivationPolicy = "Keep"
	// DeletionRemove removes a deleted member's access (the default).
	DeletionRemove DeletionPolicy = "Remove"
	// DeletionOrphan leaves a deleted member's access in place.
	DeletionOrphan DeletionPolicy = "Orphan"
	// AdoptionAdopt takes over members that already exist in the backend: SCIM may later
	// change or remove them.
	AdoptionAdopt AdoptionPolicy = "Adopt"
	// AdoptionIgnore leaves members that existed before SCIM alone forever (the default).
	AdoptionIgnore AdoptionPolicy = "Ignore"
)

// ScimConfigSpec is one organization connection: who may call the SCIM endpoint and where
// the provisioned members go.
// +kubebuilder:validation:XValidation:rule="self.backend.type != 'dockerhub' || has(self.backend.dockerhub)",message="backend.dockerhub is required when backend.type is dockerhub"
// +kubebuilder:validation:XValidation:rule="self.backend.type == 'dockerhub' || !has(self.backend.dockerhub)",message="backend.dockerhub is only allowed when backend.type is dockerhub"
// +kubebuilder:validation:XValidation:rule="self.backend.type == 'kubernetes' || !has(self.backend.kubernetes)",message="backend.kubernetes is only allowed when backend.type is kubernetes"
// +kubebuilder:validation:XValidation:rule="!has(self.backend.kubernetes) || !has(self.backend.kubernetes.grantLayout) || self.backend.kubernetes.grantLayout != 'Webhook' || !has(self.policies) || !has(self.policies.deletion) || self.policies.deletion != 'Orphan'",message="policies.deletion Orphan is not allowed with backend.kubernetes.grantLayout Webhook: the authorization webhook honours a grant only while its ScimConfig exists, so access could not outlive the ScimConfig's deletion as Orphan promises; use grantLayout Bindings to keep access after deletion"
type ScimConfigSpec struct {
	// enabled turns the SCIM endpoint and all syncing for this organization on or off.
	// Turning it off leaves every provisioned member where they are: disabling SCIM never
	// deprovisions anyone.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// organization is the organization's name in the backend (the Docker Hub organization,
	// or a label for the kubernetes backend).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`
	Organization string `json:"organization"`

	// backend selects the membership backend and holds its settings.
	Backend BackendSpec `json:"backend"`

	// tokenSecretRef names the Secret key holding the SCIM bearer token. When absent the
	// operator generates a strong random token into a Secret it owns (see
	// status.tokenSecretName) and rotates it when the annotation
	// scim.operator.dev/rotate-token changes.
	// +optional
	TokenSecretRef *SecretKeyRef `json:"tokenSecretRef,omitempty"`

	// tokenGracePeriod keeps the previous generated token valid for this long after a
	// rotation so the IdP can be updated. Zero ends the old token at once; at most 720h
	// (30 days). A Go duration: "0s", "15m", "24h".
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') || (duration(self) >= duration('0s') && duration(self) <= duration('720h'))",message="tokenGracePeriod must be between 0s and 720h (30 days)"
	// +optional
	TokenGracePeriod *metav1.Duration `json:"tokenGracePeriod,omitempty"`

	// verifiedDomains are the email domains the organization has verified. A userName whose
	// domain is not listed is refused. An empty list accepts any userName.
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`
	// +optional
	VerifiedDomains []string `json:"verifiedDomains,omitempty"`

	// policies are the lifecycle rules for members.
	// +kubebuilder:default={}
	// +optional
	Policies LifecyclePolicies `json:"policies,omitempty"`

	// resyncInterval is how often the backend's organization is listed once (paged) and
	// every member compared with that listing to repair drift; only the members that
	// differ are reconciled (jittered by up to 10%): at least 1m, and at most 24h. A Go
	// duration: "10m", "1h30m".
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') || (duration(self) >= duration('1m') && duration(self) <= duration('24h'))",message="resyncInterval must be between 1m and 24h"
	// +optional
	ResyncInterval *metav1.Duration `json:"resyncInterval,omitempty"`
}

// LifecyclePolicies are explicit, documented rules for what SCIM changes do in the backend.
type LifecyclePolicies struct {
	// deactivation says what active=false does: Remove takes the member out of the
	// organization but keeps the OrgMember so a reactivation re-adds them; Keep leaves
	// their access in place.
	// +kubebuilder:default=Remove
	// +optional
	Deactivation DeactivationPolicy `json:"deactivation,omitempty"`

	// deletion says what deleting an OrgMember does: Remove takes the member out of the
	// organization; Orphan leaves them there.
	// +kubebuilder:default=Remove
	// +optional
	Deletion DeletionPolicy `json:"deletion,omitempty"`

	// adoption says what happens when SCIM provisions someone the backend already has:
	// Ignore leaves them alone for good (SCIM never changes or removes them); Adopt takes
	// them over.
	// +kubebuilder:default=Ignore
	// +optional
	Adoption AdoptionPolicy `json:"adoption,omitempty"`
}

// BackendSpec selects a membership backend.
type BackendSpec struct {
	// type of the backend.
	// +kubebuilder:default=kubernetes
	Type BackendType `json:"type"`

	// kubernetes settings: the access that every active member gets.
	// +optional
	Kubernetes *KubernetesBackend `json:"kubernetes,omitempty"`

	// dockerhub settings: where Docker Hub is and how to authenticate.
	// +optional
	DockerHub *DockerHubBackend `json:"dockerhub,omitempty"`
}

// KubernetesBackend names the RBAC access that active members receive. Each active member
// gets one binding per role with a single User subject named by its userName; OrgGroups
// get one binding per role with a Group subject. The operator writes the bindings as the
// ServiceAccount serviceAccountName names, so a ScimConfig grants no more than that
// ServiceAccount could grant itself (docs/kubernetes-backend.md).
type KubernetesBackend struct {
	// serviceAccountName is a ServiceAccount in the ScimConfig's namespace that the operator
	// impersonates to create and update the bindings (and to dry-run them in the backend
	// check): the API server then refuses any binding that grants more than this
	// ServiceAccount holds itself or may bind ("bind" verb). Empty: the manager's
	// --default-service-account, or, when that flag is unset, the manager's own identity.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// clusterRoles are bound cluster-wide with ClusterRoleBindings.
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +optional
	ClusterRoles []string `json:"clusterRoles,omitempty"`

	// roles are bound in their namespaces with RoleBindings.
	// +kubebuilder:validation:MaxItems=64
	// +listType=atomic
	// +optional
	Roles []NamespacedRole `json:"roles,omitempty"`

	// grantLayout is how the grants are recorded. Bindings (the default): one RBAC binding
	// per member and role (a ClusterRoleBinding for clusterRoles, a RoleBinding in the
	// role's namespace for roles); the API server's RBAC authorizer needs nothing else.
	// Webhook: every grant is an OrgGrant in this ScimConfig's namespace, which RBAC never
	// reads, and the operator's authorization webhook (configured beside RBAC in the API
	// server's AuthorizationConfiguration) grants it while this ScimConfig exists and lists
	// the role.
	// Choose Bindings for small organizations and clusters without the webhook; choose
	// Webhook for large ones: the RBAC authorizer walks every ClusterRoleBinding on every
	// request, and 10,000 per-member bindings made an unrelated SubjectAccessReview 5.8x
	// slower, while OrgGrants cost RBAC nothing. In
	// Webhook, access ends when the manager is down (the webhook fails closed) and when
	// this ScimConfig is deleted (so policies.deletion Orphan is refused); keep the
	// ScimConfig in a namespace only cluster administrators administer. Changing it moves
	// every grant to the new layout on the next reconcile (docs/kubernetes-backend.md).
	// +kubebuilder:default=Bindings
	// +optional
	GrantLayout GrantLayout `json:"grantLayout,omitempty"`
}

// Layout is the grant layout (GrantLayoutBindings when unset).
func (k *KubernetesBackend) Layout() GrantLayout {
	if k == nil || k.GrantLayout == "" {
		return GrantLayoutBindings
	}
	return k.GrantLayout
}

// NamespacedRole is a Role or ClusterRole bound in one namespace.
type NamespacedRole struct {
	// namespace the RoleBinding is created in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// kind of the role bound: Role or ClusterRole.
	// +kubebuilder:validation:Enum=Role;ClusterRole
	// +kubebuilder:default=Role
	// +optional
	Kind string `json:"kind,omitempty"`

	// name of the role.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// DockerHubBackend connects to a Docker Hub organization.
type DockerHubBackend struct {
	// baseURL of the Docker Hub API.
	// +kubebuilder:default="https://hub.docker.com"
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	// +optional
	BaseURL string `json:"baseURL,omitempty"`

	// accessTokenSecretRef names the organization access token (dckr_oat_...) with
	// member, invite and group read+edit scopes.
	AccessTokenSecretRef SecretKeyRef `json:"accessTokenSecretRef"`

	// defaultRole is the role given to members whose dockerRole is not set.
	// +kubebuilder:validation:Enum=member;editor;owner
	// +kubebuilder:default=member
	// +optional
	DefaultRole string `json:"defaultRole,omitempty"`

	// requestsPerMinute bounds calls to Docker Hub for this organization, shared by every
	// worker: no minute holds more. A tenth of it is kept for bursts after a quiet spell,
	// so sustained calls run at nine tenths of it.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=6000
	// +kubebuilder:default=180
	// +optional
	RequestsPerMinute int32 `json:"requestsPerMinute,omitempty"`
}

// MemberCounts counts a ScimConfig's members by phase.
type MemberCounts struct {
	// total number of OrgMembers of this config.
	Total int32 `json:"total"`
	// active members (in the backend, with access).
	// +optional
	Active int32 `json:"active,omitempty"`
	// invited members waiting to accept an invitation.
	// +optional
	Invited int32 `json:"invited,omitempty"`
	// pending members not yet provisioned.
	// +optional
	Pending int32 `json:"pending,omitempty"`
	// deactivated members (active=false).
	// +optional
	Deactivated int32 `json:"deactivated,omitempty"`
	// failed members whose last sync failed.
	// +optional
	Failed int32 `json:"failed,omitempty"`
}

// ScimConfigStatus is what the operator observed of a ScimConfig.
type ScimConfigStatus struct {
	// conditions: Ready, TokenReady, BackendReady, Paused.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// basePath is the SCIM base URL path of this config on the operator's SCIM listener,
	// for example /scim/v2/<namespace>/<name>.
	// +optional
	BasePath string `json:"basePath,omitempty"`

	// tokenSecretName is the Secret that holds the bearer token (generated or referenced).
	// +optional
	TokenSecretName string `json:"tokenSecretName,omitempty"`

	// tokenRotatedAt is when the generated token last changed.
	// +optional
	TokenRotatedAt *metav1.Time `json:"tokenRotatedAt,omitempty"`

	// lastRotation is the value of the rotate-token annotation that was last acted on (the
	// token rotated, or, for a token from tokenSecretRef, a CannotRotateExternalToken warning).
	// +optional
	LastRotation string `json:"lastRotation,omitempty"`

	// members counts this config's OrgMembers by phase.
	// +optional
	Members *MemberCounts `json:"members,omitempty"`

	// lastFullSyncTime is when every member was last compared with the backend.
	// +optional
	LastFullSyncTime *metav1.Time `json:"lastFullSyncTime,omitempty"`
}

// ScimConfig is one organization connection: the SCIM endpoint's enablement and token,
// the organization, its membership backend and lifecycle policies. Its name is at most 63
// characters: members and grants carry it as a label value.
// +kubebuilder:object:root=true
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters: a ScimConfig's name is used as a label value"
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=scimcfg,categories=scim
// +kubebuilder:printcolumn:name="Enabled",type=boolean,JSONPath=`.spec.enabled`
// +kubebuilder:printcolumn:name="Organization",type=string,JSONPath=`.spec.organization`
// +kubebuilder:printcolumn:name="Backend",type=string,JSONPath=`.spec.backend.type`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=`.status.members.total`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.status.basePath`,priority=1
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastFullSyncTime`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.organization`
type ScimConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired connection.
	Spec ScimConfigSpec `json:"spec"`
	// status is what the operator observed.
	// +optional
	Status ScimConfigStatus `json:"status,omitempty"`
}

// IsEnabled tells whether the config accepts SCIM requests and syncs (default true).
func (c *ScimConfig) IsEnabled() bool { return c.Spec.Enabled == nil || *c.Spec.Enabled }

// ScimConfigList is a list of ScimConfigs.
// +kubebuilder:object:root=true
type ScimConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ScimConfig `json:"items"`
}
