// Package naming holds the names every layer agrees on: the SCIM base path of a
// ScimConfig, the object names of OrgMembers and OrgGroups, and the token Secret layout.
package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// BasePathPrefix starts every ScimConfig's SCIM base path.
const BasePathPrefix = "/scim/v2/"

// BasePath is the SCIM base URL path of a ScimConfig on the SCIM listener.
func BasePath(namespace, name string) string {
	return BasePathPrefix + namespace + "/" + name
}

// FoldUserName is the case-insensitive form of a userName used for uniqueness.
func FoldUserName(userName string) string { return strings.ToLower(strings.TrimSpace(userName)) }

// MemberName is the OrgMember object name (and SCIM id) for a userName first provisioned
// under a ScimConfig. Deriving it from the folded userName makes uniqueness atomic: two
// concurrent creates of one userName race for one name and the API server lets exactly
// one win.
func MemberName(configName, userName string) string {
	return "u-" + digest(configName, FoldUserName(userName))
}

// GroupName is the OrgGroup object name (and SCIM id) for a group first created with a
// displayName under a ScimConfig.
func GroupName(configName, displayName string) string {
	return "g-" + digest(configName, strings.ToLower(strings.TrimSpace(displayName)))
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// Token Secret layout for generated tokens.
const (
	// TokenKey is the data key of the current bearer token in a generated Secret.
	TokenKey = "token"
	// PreviousTokenKey holds the token replaced by the last rotation, while its grace
	// period lasts.
	PreviousTokenKey = "previous-token"
	// AnnotationPreviousTokenExpires on a generated token Secret is when the previous
	// token stops being accepted (RFC 3339).
	AnnotationPreviousTokenExpires = "scim.operator.dev/previous-token-expires-at"
	// AnnotationRotatedFor on a generated token Secret is the rotate-token annotation
	// value the current token was made for: one rotation per value.
	AnnotationRotatedFor = "scim.operator.dev/rotated-for"
	// LabelTokenFor marks a generated token Secret with its ScimConfig's name.
	LabelTokenFor = "scim.operator.dev/token-for"
)

// TokenSecretName is the name of the Secret a ScimConfig's generated token is kept in.
func TokenSecretName(configName string) string { return configName + "-scim-token" }
