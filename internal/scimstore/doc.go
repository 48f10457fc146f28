// Package scimstore keeps SCIM Users as OrgMembers and SCIM Groups as OrgGroups: it
// reads from the controller-runtime cache through the field indexes of internal/index,
// and writes through the API server as field owner "scim-server" with merge patches
// guarded by resourceVersion preconditions. The JSON conversions live in
// scimstore/convert.
package scimstore
