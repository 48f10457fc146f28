// Package naming holds the names every layer agrees on: the SCIM base path of a
// ScimConfig, the object names of OrgMembers and OrgGroups, and the token Secret layout.
package naming

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// BasePathPrefix starts every ScimConfig's SCIM base path.
const BasePathPrefix = "/scim/v2/"

// BasePath is the SCIM base URL path of a ScimConfig on the SCIM listener.
func BasePath(namespace, name string) string {
	return BasePathPrefix + namespace + "/" + name
}

// FoldUserName is the lower-cased, trimmed form of a userName under which the controllers
// record the identities a member was granted in a backend. It is deliberately narrower
// than NameKey: a backend compares identities as they are (modulo case), so "straße" and
// "strasse" are two people to it. SCIM uniqueness (NameKey) is wider, so no two members of
// one ScimConfig ever share a backend identity.
func FoldUserName(userName string) string { return strings.ToLower(strings.TrimSpace(userName)) }

// NameKey is the form a userName (or a group's displayName) is unique in, per ScimConfig:
// two userNames are the same user when their keys are equal. It is Caseless of the
// trimmed name.
func NameKey(name string) string { return Caseless(strings.TrimSpace(name)) }

// Caseless is the form in which SCIM compares strings that are not caseExact: userName
// and displayName uniqueness (through NameKey) and every filter comparison, so that a
// filter finds exactly the users a create would collide with. Two strings are equal when
// a reader could not tell them apart by case, width or the way their accents were typed:
//
//   - Unicode compatibility normalization (NFKC): fullwidth "ｊａｎｅ" is "jane", the
//     ligature "ﬁ" is "fi", and a precomposed "é" equals "e" with a combining acute;
//   - full Unicode case folding: "ß" and "ẞ" are "ss", final "ς" is "σ", the Kelvin
//     sign is "k";
//   - default-ignorable characters (zero-width spaces and joiners, soft hyphens, bidi
//     controls, variation selectors) are dropped: they are invisible;
//   - the dotless "ı" and the dotted capital "İ" are "i". Case folding alone leaves
//     "ı" apart, yet upper-cases it to "I": the IdPs' own comparisons (Java's
//     equalsIgnoreCase, .NET's OrdinalIgnoreCase) call "jıll" and "JILL" and "jill" one
//     name, so this does too.
//
// This is NFKC_Casefold (Unicode's caseless identifier match, as in UAX #31 and UTS #46)
// plus the dotless i. Accents stay: "josé" and "jose" differ; so do letters of different
// scripts that merely look alike (Cyrillic "а" and Latin "a"). An ASCII string's form
// is its lower case.
func Caseless(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	// a chain holds state: one per call
	t := transform.Chain(norm.NFKD, runes.Remove(runes.Predicate(ignorable)), cases.Fold(), norm.NFKC)
	out, _, err := transform.String(t, s)
	if err != nil {
		return strings.ToLower(s)
	}
	if strings.ContainsRune(out, 'ı') || strings.Contains(out, "i\u0307") {
		out = norm.NFC.String(dotless.Replace(out))
	}
	return out
}

var dotless = strings.NewReplacer("ı", "i", "i\u0307", "i")

// ignorable: Unicode's Default_Ignorable_Code_Point, near enough (format characters,
// variation selectors and the other default ignorables).
func ignorable(r rune) bool {
	return unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Variation_Selector, r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
}

// MemberName is the OrgMember object name (and SCIM id) for a userName first provisioned
// under a ScimConfig. Deriving it from the userName's NameKey makes uniqueness atomic: two
// concurrent creates of one userName race for one name and the API server lets exactly
// one win.
func MemberName(configName, userName string) string {
	return "u-" + digest(configName, NameKey(userName))
}

// GroupName is the OrgGroup object name (and SCIM id) for a group first created with a
// displayName under a ScimConfig.
func GroupName(configName, displayName string) string {
	return "g-" + digest(configName, NameKey(displayName))
}

// ClaimName is the OrgNameClaim object name for a userName (kind "User") or a group's
// displayName (kind "Group") of a ScimConfig: every writer of one name, whether it
// creates or renames, races for this one object.
func ClaimName(kind, configName, name string) string {
	return "n-" + strings.ToLower(kind[:1]) + "-" + digest("claim", kind, configName, NameKey(name))
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
	// AnnotationRotatedAt on a generated token Secret is when its current token was made
	// (RFC 3339): status.tokenRotatedAt is read from it, so a status write that was lost
	// (a conflict) does not lose it.
	AnnotationRotatedAt = "scim.operator.dev/rotated-at"
	// LabelTokenFor marks a generated token Secret with its ScimConfig's name.
	LabelTokenFor = "scim.operator.dev/token-for"
)

// TokenSecretName is the name of the Secret a ScimConfig's generated token is kept in.
func TokenSecretName(configName string) string { return configName + "-scim-token" }
