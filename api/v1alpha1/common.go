package v1alpha1

// SecretKeyRef names one key of a Secret in the same namespace as the object that holds
// the reference.
type SecretKeyRef struct {
	// name of the Secret, in the referring object's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`

	// key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// Condition types shared by the kinds of this API.
const (
	// ConditionReady summarizes the object: True when everything it asks for is in place.
	ConditionReady = "Ready"
	// ConditionTokenReady is True on a ScimConfig whose bearer token can be read.
	ConditionTokenReady = "TokenReady"
	// ConditionBackendReady is True on a ScimConfig whose backend answered a
	// connectivity and credentials check.
	ConditionBackendReady = "BackendReady"
	// ConditionSynced is True on a member or group that matches the backend.
	ConditionSynced = "Synced"
	// ConditionPaused is True on a ScimConfig with enabled: false.
	ConditionPaused = "Paused"
)

// Well-known labels and annotations.
const (
	// FinalizerDeprovision holds an OrgMember (or OrgGroup) until its access has been
	// removed from the backend as the config's deletion policy says. The SCIM server
	// creates members with it, so the controllers need no write to add it.
	FinalizerDeprovision = "scim.operator.dev/deprovision"
	// LabelConfig is set on every OrgMember and OrgGroup to the name of its ScimConfig.
	LabelConfig = "scim.operator.dev/config"
	// LabelGroupPrefix starts the label key that marks an OrgMember as a member of an
	// OrgGroup: "<LabelGroupPrefix><orggroup name>" with an empty value. Membership lives on
	// the members so that no single object has to hold every member of a large group.
	LabelGroupPrefix = "group.scim.operator.dev/"
	// LabelChangePrefix starts the label key that carries an OrgMember's part of a
	// membership change of a group that is not finished yet:
	// "<LabelChangePrefix><change id>" with the value "add.<orggroup name>" or
	// "remove.<orggroup name>". The change counts once the group's
	// AnnotationMembersChange names its id; until then the label means nothing. Readers
	// apply it over the group label, so a change is all there or not there at all while
	// its group labels are written; the operator then moves it to the group label.
	LabelChangePrefix = "change.scim.operator.dev/"
	// LabelChangingPrefix marks an OrgMember that carries a LabelChangePrefix label for the
	// group "<LabelChangingPrefix><orggroup name>" (empty value), so that a group created
	// again under that name finds, from the API server, every member a change of the
	// former group may still label, and marks it out.
	LabelChangingPrefix = "changing.scim.operator.dev/"
	// AnnotationMembersChange on an OrgGroup is the id of its last membership change
	// ("<id>" while its OrgMembers still carry LabelChangePrefix labels for it, "<id> done"
	// once every one has its group label). It is written in the same request as the
	// change's other fields: that write is the change's commit.
	AnnotationMembersChange = "scim.operator.dev/members-change"
	// AnnotationMembersChangePrevious on an OrgGroup is the id of the change before its
	// last one, finished when the last one was committed. A reader whose member cache has
	// not caught up with that finish still applies its marks, so it never sees a member
	// go that no change removed.
	AnnotationMembersChangePrevious = "scim.operator.dev/members-change-previous"
	// AnnotationRotateToken on a ScimConfig asks for a new generated bearer token: set it to
	// any new value (for example a timestamp); the controller rotates once per value.
	AnnotationRotateToken = "scim.operator.dev/rotate-token"
	// AnnotationReconcile on any object of this API asks for an immediate reconcile when its
	// value changes.
	AnnotationReconcile = "scim.operator.dev/reconcile-requested-at"
	// AnnotationLastModified on an OrgMember or OrgGroup is the time (RFC 3339, UTC) of the
	// last change the SCIM server made to it: its SCIM meta.lastModified. It is written in
	// the same request as the change, so every replica and every cache reads the same value.
	AnnotationLastModified = "scim.operator.dev/last-modified"
)
