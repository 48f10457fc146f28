// Package v1alpha1 holds the scim.operator.dev/v1alpha1 API: ScimConfig, OrgMember and
// OrgGroup, OrgNameClaim (the SCIM server's own bookkeeping) and OrgGrant (the Webhook
// grant layout's ledger). It is a contract other programs import: types and markers
// only, no controller-runtime.
// +kubebuilder:object:generate=true
// +groupName=scim.operator.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "scim.operator.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&ScimConfig{}, &ScimConfigList{},
		&OrgMember{}, &OrgMemberList{},
		&OrgGroup{}, &OrgGroupList{},
		&OrgNameClaim{}, &OrgNameClaimList{},
		&OrgGrant{}, &OrgGrantList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
