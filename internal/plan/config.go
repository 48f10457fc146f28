package plan

import scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"

// ConfigDeletion is what a deleted ScimConfig does to the grants of its members and groups
// before its finalizer is released (docs/access-invariant.md, "Deleting a ScimConfig").
type ConfigDeletion string

const (
	// DeleteRemoveAll removes every grant its members and groups hold.
	DeleteRemoveAll ConfigDeletion = "RemoveAll"
	// DeleteOrphanAll leaves every grant in place, marked orphaned.
	DeleteOrphanAll ConfigDeletion = "OrphanAll"
	// DeleteNothing leaves every grant in place with nothing to mark (a backend without
	// labels keeps its record on the members).
	DeleteNothing ConfigDeletion = "Nothing"
)

// ConfigDeletionOf decides a deleted config's outcome: an enabled config under Remove
// removes; Orphan, or a disabled config (disabling never deprovisions), leaves.
func ConfigDeletionOf(enabled bool, policy scimv1.DeletionPolicy, labelled bool) ConfigDeletion {
	switch {
	case enabled && policy != scimv1.DeletionOrphan:
		return DeleteRemoveAll
	case labelled:
		return DeleteOrphanAll
	}
	return DeleteNothing
}
