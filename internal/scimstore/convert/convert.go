// Package convert turns SCIM Users and Groups (canonical JSON objects of internal/scim)
// into OrgMember and OrgGroup specs and back. It has no client code, so that its fuzz
// target builds quickly.
package convert

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	scimv1 "github.com/scim-operator/scim-operator/api/v1alpha1"
	"github.com/scim-operator/scim-operator/internal/naming"
	"github.com/scim-operator/scim-operator/internal/scim"
)

// Touch records now as o's SCIM meta.lastModified (AnnotationLastModified), to be
// written with the change it dates.
func Touch(o metav1.Object, now time.Time) {
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[scimv1.AnnotationLastModified] = now.UTC().Format(time.RFC3339Nano)
	o.SetAnnotations(a)
}

// FieldOwner is the field manager of every write of the SCIM server.
const FieldOwner = "scim-server"

// Version is the weak ETag of a version token (VersionOf).
func Version(token string) string { return `W/"` + token + `"` }

// AnnotationMembersRevision on an OrgGroup counts its membership changes (members live on
// the OrgMembers, as labels).
const AnnotationMembersRevision = "scim.operator.dev/members-revision"

// VersionOf is the version token of an OrgMember's or OrgGroup's SCIM representation: its
// ETag and meta.version, without W/ and quotes. It changes exactly when what SCIM shows
// changes: the spec (metadata.generation), a user's group memberships (its group labels),
// a group's members (AnnotationMembersRevision). The controllers' writes (finalizers,
// status) change the resourceVersion but not the token, so the ETag an IdP got from a POST
// is still good for its next PATCH. The object's UID is hashed in too: a user deleted and
// created again under the same id starts at generation 1 again, and the former
// incarnation's ETag must not match it.
func VersionOf(o metav1.Object) string {
	var groups []string
	for k := range o.GetLabels() {
		if strings.HasPrefix(k, scimv1.LabelGroupPrefix) {
			groups = append(groups, k)
		}
	}
	return VersionWith(o, groups)
}

// VersionWith is VersionOf with a user's groups as given (each as what SCIM shows of it,
// for example "<group label>" or "<id>\x00<display>") instead of read from its labels:
// the store gives the groups readers see while a membership change is being finished,
// so the version moves with the commit that changes them, not with the labels after it.
func VersionWith(o metav1.Object, groups []string) string {
	h := fnv32a(fnv32aOffset, string(o.GetUID()))
	h = fnv32a(h, "\n")
	if len(groups) > 1 {
		groups = slices.Clone(groups)
		slices.Sort(groups)
	}
	for _, g := range groups {
		h = fnv32a(fnv32a(h, g), "\n")
	}
	h = fnv32a(h, o.GetAnnotations()[AnnotationMembersRevision])
	b := make([]byte, 0, 29) // an int64's 20 characters, "-", 8 hex digits
	b = strconv.AppendInt(b, o.GetGeneration(), 10)
	b = append(b, '-')
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, "0123456789abcdef"[h>>shift&0xf])
	}
	return string(b)
}

// fnv32aOffset and fnv32a are hash/fnv's 32-bit FNV-1a over strings, without its
// allocations (a []byte of each part): every user of a page is versioned. The tokens are
// the ones hash/fnv gave (TestVersionWithIsHashFNV), so an ETag an IdP holds stays good
// across an upgrade.
const fnv32aOffset uint32 = 2166136261

func fnv32a(h uint32, s string) uint32 {
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// lastModified is the time the SCIM server last changed o: the annotation it writes with
// every change. Objects written before the annotation existed fall back to the SCIM
// server's managedFields entry, present only in live reads (the manager's cache strips
// managedFields), and then to the creation time.
func lastModified(o metav1.Object) time.Time {
	if v, ok := o.GetAnnotations()[scimv1.AnnotationLastModified]; ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	t := o.GetCreationTimestamp().Time
	for _, mf := range o.GetManagedFields() {
		if mf.Manager == FieldOwner && mf.Time != nil && mf.Time.After(t) && mf.Subresource == "" {
			t = mf.Time.Time
		}
	}
	return t
}

func meta(o metav1.Object, resourceType, location, version string) map[string]any {
	return map[string]any{
		"resourceType": resourceType,
		"created":      o.GetCreationTimestamp().UTC().Format(time.RFC3339),
		"lastModified": lastModified(o).UTC().Format(time.RFC3339),
		"location":     location,
		"version":      Version(version),
	}
}

func setStr(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func multiToSCIM(l []scimv1.MultiValue) []any {
	out := make([]any, 0, len(l))
	for _, e := range l {
		m := map[string]any{"value": e.Value}
		setStr(m, "type", e.Type)
		setStr(m, "display", e.Display)
		if e.Primary {
			m["primary"] = true
		}
		out = append(out, m)
	}
	return out
}

// UserToSCIM renders an OrgMember as a SCIM User (without groups, which need lookups),
// its meta.version from its labels (VersionOf).
func UserToSCIM(m *scimv1.OrgMember, baseURL string) scim.Resource {
	return UserToSCIMVersion(m, baseURL, VersionOf(m))
}

// UserToSCIMVersion is UserToSCIM with the version token given: the store computes it from
// the groups it shows, and a page's users would otherwise each hash their labels for a
// version thrown away (a third of the conversion's CPU while pages of 100,000 members were
// read).
func UserToSCIMVersion(m *scimv1.OrgMember, baseURL, version string) scim.Resource {
	s := m.Spec
	r := scim.Resource{}
	r["id"], r["userName"], r["active"] = m.Name, s.UserName, s.Active
	r["meta"] = meta(m, "User", baseURL+"/Users/"+m.Name, version)
	setStr(r, "externalId", s.ExternalID)
	setStr(r, "displayName", s.DisplayName)
	setStr(r, "nickName", s.NickName)
	setStr(r, "title", s.Title)
	setStr(r, "userType", s.UserType)
	setStr(r, "preferredLanguage", s.PreferredLanguage)
	setStr(r, "locale", s.Locale)
	setStr(r, "timezone", s.Timezone)
	setStr(r, "profileUrl", s.ProfileURL)
	if n := s.Name; n != nil {
		nm := map[string]any{}
		setStr(nm, "formatted", n.Formatted)
		setStr(nm, "familyName", n.FamilyName)
		setStr(nm, "givenName", n.GivenName)
		setStr(nm, "middleName", n.MiddleName)
		setStr(nm, "honorificPrefix", n.HonorificPrefix)
		setStr(nm, "honorificSuffix", n.HonorificSuffix)
		if len(nm) > 0 {
			r["name"] = nm
		}
	}
	if len(s.Emails) > 0 {
		r["emails"] = multiToSCIM(s.Emails)
	}
	if len(s.PhoneNumbers) > 0 {
		r["phoneNumbers"] = multiToSCIM(s.PhoneNumbers)
	}
	schemas := []any{scim.SchemaUser}
	if e := s.Enterprise; e != nil {
		em := map[string]any{}
		setStr(em, "employeeNumber", e.EmployeeNumber)
		setStr(em, "costCenter", e.CostCenter)
		setStr(em, "organization", e.Organization)
		setStr(em, "division", e.Division)
		setStr(em, "department", e.Department)
		if e.Manager != nil && (e.Manager.Value != "" || e.Manager.DisplayName != "") {
			mm := map[string]any{}
			setStr(mm, "value", e.Manager.Value)
			setStr(mm, "displayName", e.Manager.DisplayName)
			if e.Manager.Value != "" {
				mm["$ref"] = baseURL + "/Users/" + e.Manager.Value
			}
			em["manager"] = mm
		}
		if len(em) > 0 {
			r[scim.SchemaEnterpriseUser] = em
			schemas = append(schemas, scim.SchemaEnterpriseUser)
		}
	}
	if d := s.Docker; d != nil {
		dm := map[string]any{}
		setStr(dm, "dockerRole", d.Role)
		setStr(dm, "dockerOrg", d.Org)
		setStr(dm, "dockerTeam", d.Team)
		if len(dm) > 0 {
			r[scim.SchemaDockerUser] = dm
			schemas = append(schemas, scim.SchemaDockerUser)
		}
	}
	r["schemas"] = schemas
	return r
}

// getString reads a string attribute. A number or a boolean is refused like any other
// non-string (400 invalidValue, RFC 7643 section 2.3 and RFC 7644 section 3.12): read as
// text, "userName": 42 would create the user "42", and two different JSON values
// (42 and "42") would name one user.
func getString(m map[string]any, key string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", nil
	}
	if s, ok := v.(string); ok {
		return strings.TrimSpace(s), nil
	}
	return "", scim.BadRequest(scim.ErrInvalidValue, "%s must be a string, not %s", key, jsonType(v))
}

// checkName refuses a userName or group displayName that cannot name anyone: one with a
// control character (a NUL, a line break), or one whose characters are all invisible, so
// that its uniqueness key (naming.NameKey) would be empty.
func checkName(attr, name string) error {
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		return scim.BadRequest(scim.ErrInvalidValue, "%s must not contain control characters (found %U)", attr, []rune(name[i:])[0])
	}
	if naming.NameKey(name) == "" {
		return scim.BadRequest(scim.ErrInvalidValue, "%s has no visible characters", attr)
	}
	return nil
}

func jsonType(v any) string {
	switch v.(type) {
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func multiFromSCIM(v any, attr string) ([]scimv1.MultiValue, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, scim.BadRequest(scim.ErrInvalidValue, "%s must be a list", attr)
	}
	var out []scimv1.MultiValue
	seen := map[string]int{}
	primaries := 0
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			if s, isStr := e.(string); isStr {
				m = map[string]any{"value": s}
			} else {
				return nil, scim.BadRequest(scim.ErrInvalidValue, "%s entries must be objects", attr)
			}
		}
		var mv scimv1.MultiValue
		var err error
		if mv.Value, err = getString(m, "value"); err != nil {
			return nil, scim.BadRequest(scim.ErrInvalidValue, "%s.value must be a string", attr)
		}
		if mv.Type, err = getString(m, "type"); err != nil {
			return nil, scim.BadRequest(scim.ErrInvalidValue, "%s.type must be a string", attr)
		}
		if mv.Display, err = getString(m, "display"); err != nil {
			return nil, scim.BadRequest(scim.ErrInvalidValue, "%s.display must be a string", attr)
		}
		switch p := m["primary"].(type) {
		case bool:
			mv.Primary = p
		case nil:
		default:
			return nil, scim.BadRequest(scim.ErrInvalidValue, "%s.primary must be a boolean", attr)
		}
		if mv.Value == "" {
			continue // an empty template value ("{$user.email}" unset): nothing to keep
		}
		key := strings.ToLower(mv.Type) + "\x00" + strings.ToLower(mv.Value)
		if i, dup := seen[key]; dup {
			if mv.Primary && !out[i].Primary {
				out[i].Primary = true
				primaries++
			}
			continue
		}
		if mv.Primary {
			primaries++
		}
		seen[key] = len(out)
		out = append(out, mv)
	}
	if primaries > 1 {
		return nil, scim.BadRequest(scim.ErrInvalidValue, "at most one of %s may be primary, %d are", attr, primaries)
	}
	return out, nil
}

// UserSpecFromSCIM reads an OrgMember spec from a canonical SCIM User. active reports
// whether the resource carried "active" (its value is in spec.Active). password, groups,
// id, meta and unknown attributes are ignored.
func UserSpecFromSCIM(r scim.Resource) (spec scimv1.OrgMemberSpec, active bool, err error) {
	if spec.UserName, err = getString(r, "userName"); err != nil {
		return spec, false, err
	}
	if spec.UserName == "" {
		return spec, false, scim.BadRequest(scim.ErrInvalidValue, "userName is required")
	}
	if err := checkName("userName", spec.UserName); err != nil {
		return spec, false, err
	}
	fields := []struct {
		key string
		dst *string
	}{
		{"externalId", &spec.ExternalID}, {"displayName", &spec.DisplayName}, {"nickName", &spec.NickName},
		{"title", &spec.Title}, {"userType", &spec.UserType}, {"preferredLanguage", &spec.PreferredLanguage},
		{"locale", &spec.Locale}, {"timezone", &spec.Timezone}, {"profileUrl", &spec.ProfileURL},
	}
	for _, f := range fields {
		if *f.dst, err = getString(r, f.key); err != nil {
			return spec, false, err
		}
	}
	switch a := r["active"].(type) {
	case bool:
		spec.Active, active = a, true
	case nil:
	default:
		return spec, false, scim.BadRequest(scim.ErrInvalidValue, "active must be a boolean")
	}
	if nv, ok := r["name"]; ok && nv != nil {
		nm, ok := nv.(map[string]any)
		if !ok {
			return spec, false, scim.BadRequest(scim.ErrInvalidValue, "name must be an object")
		}
		n := &scimv1.Name{}
		for _, f := range []struct {
			key string
			dst *string
		}{{"formatted", &n.Formatted}, {"familyName", &n.FamilyName}, {"givenName", &n.GivenName},
			{"middleName", &n.MiddleName}, {"honorificPrefix", &n.HonorificPrefix}, {"honorificSuffix", &n.HonorificSuffix}} {
			if *f.dst, err = getString(nm, f.key); err != nil {
				return spec, false, scim.BadRequest(scim.ErrInvalidValue, "name.%s must be a string", f.key)
			}
		}
		if *n != (scimv1.Name{}) {
			spec.Name = n
		}
	}
	if spec.Emails, err = multiFromSCIM(r["emails"], "emails"); err != nil {
		return spec, false, err
	}
	if spec.PhoneNumbers, err = multiFromSCIM(r["phoneNumbers"], "phoneNumbers"); err != nil {
		return spec, false, err
	}
	if ev, ok := r[scim.SchemaEnterpriseUser].(map[string]any); ok {
		e := &scimv1.EnterpriseUser{}
		for _, f := range []struct {
			key string
			dst *string
		}{{"employeeNumber", &e.EmployeeNumber}, {"costCenter", &e.CostCenter}, {"organization", &e.Organization},
			{"division", &e.Division}, {"department", &e.Department}} {
			if *f.dst, err = getString(ev, f.key); err != nil {
				return spec, false, scim.BadRequest(scim.ErrInvalidValue, "%s must be a string", f.key)
			}
		}
		switch m := ev["manager"].(type) {
		case map[string]any:
			mg := &scimv1.Manager{}
			if mg.Value, err = getString(m, "value"); err != nil {
				return spec, false, scim.BadRequest(scim.ErrInvalidValue, "manager.value must be a string")
			}
			if mg.DisplayName, err = getString(m, "displayName"); err != nil {
				return spec, false, scim.BadRequest(scim.ErrInvalidValue, "manager.displayName must be a string")
			}
			if *mg != (scimv1.Manager{}) {
				e.Manager = mg
			}
		case string:
			if m != "" {
				e.Manager = &scimv1.Manager{Value: m}
			}
		case nil:
		default:
			return spec, false, scim.BadRequest(scim.ErrInvalidValue, "manager must be an object (or the manager's id), not %s", jsonType(m))
		}
		if *e != (scimv1.EnterpriseUser{}) {
			spec.Enterprise = e
		}
	}
	if dv, ok := r[scim.SchemaDockerUser].(map[string]any); ok {
		d := &scimv1.DockerUser{}
		if d.Role, err = getString(dv, "dockerRole"); err != nil {
			return spec, false, err
		}
		d.Role = strings.ToLower(d.Role)
		if d.Org, err = getString(dv, "dockerOrg"); err != nil {
			return spec, false, err
		}
		if d.Team, err = getString(dv, "dockerTeam"); err != nil {
			return spec, false, err
		}
		if *d != (scimv1.DockerUser{}) {
			spec.Docker = d
		}
	}
	return spec, active, nil
}

// GroupToSCIM renders an OrgGroup; members is nil when members were not asked for.
func GroupToSCIM(g *scimv1.OrgGroup, members []scimv1.OrgMember, withMembers bool, baseURL string) scim.Resource {
	r := scim.Resource{
		"schemas":     []any{scim.SchemaGroup},
		"id":          g.Name,
		"displayName": g.Spec.DisplayName,
		"meta":        meta(g, "Group", baseURL+"/Groups/"+g.Name, VersionOf(g)),
	}
	setStr(r, "externalId", g.Spec.ExternalID)
	if withMembers {
		sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
		ms := make([]any, 0, len(members))
		for i := range members {
			ms = append(ms, map[string]any{
				"value":   members[i].Name,
				"display": members[i].Spec.UserName,
				"type":    "User",
				"$ref":    baseURL + "/Users/" + members[i].Name,
			})
		}
		r["members"] = ms
	}
	return r
}

// GroupSpecFromSCIM reads displayName and externalId, and the member ids when present.
func GroupSpecFromSCIM(r scim.Resource) (spec scimv1.OrgGroupSpec, members []string, hasMembers bool, err error) {
	if spec.DisplayName, err = getString(r, "displayName"); err != nil {
		return spec, nil, false, err
	}
	if spec.DisplayName == "" {
		return spec, nil, false, scim.BadRequest(scim.ErrInvalidValue, "displayName is required")
	}
	if err := checkName("displayName", spec.DisplayName); err != nil {
		return spec, nil, false, err
	}
	if spec.ExternalID, err = getString(r, "externalId"); err != nil {
		return spec, nil, false, err
	}
	if mv, ok := r["members"]; ok {
		hasMembers = true
		if mv != nil {
			d, perr := scim.ApplyPatch(scim.GroupType, scim.Resource{}, []scim.PatchOp{{Op: "replace", Path: "members", Value: mustJSON(mv)}})
			if perr != nil {
				return spec, nil, false, perr
			}
			members = d.Add
		}
	}
	return spec, members, hasMembers, nil
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
