package scim

import "strings"

// Attribute describes one attribute of a schema (RFC 7643 section 7).
type Attribute struct {
	Name          string      `json:"name"`
	Type          string      `json:"type"`
	MultiValued   bool        `json:"multiValued"`
	Description   string      `json:"description,omitempty"`
	Required      bool        `json:"required"`
	CaseExact     bool        `json:"caseExact"`
	Mutability    string      `json:"mutability"`
	Returned      string      `json:"returned"`
	Uniqueness    string      `json:"uniqueness"`
	SubAttributes []Attribute `json:"subAttributes,omitempty"`
	CanonicalVals []string    `json:"canonicalValues,omitempty"`
	ReferenceType []string    `json:"referenceTypes,omitempty"`
}

// Schema is a SCIM schema definition.
type Schema struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Attributes  []Attribute `json:"attributes"`
}

// Sub finds a sub-attribute case-insensitively.
func (a *Attribute) Sub(name string) *Attribute {
	for i := range a.SubAttributes {
		if strings.EqualFold(a.SubAttributes[i].Name, name) {
			return &a.SubAttributes[i]
		}
	}
	return nil
}

// Attr finds an attribute case-insensitively.
func (s *Schema) Attr(name string) *Attribute {
	for i := range s.Attributes {
		if strings.EqualFold(s.Attributes[i].Name, name) {
			return &s.Attributes[i]
		}
	}
	return nil
}

func str(name, desc string) Attribute {
	return Attribute{Name: name, Type: "string", Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func strRequired(name, desc string) Attribute {
	a := str(name, desc)
	a.Required = true
	return a
}

func boolean(name, desc string) Attribute {
	return Attribute{Name: name, Type: "boolean", Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none"}
}

func complexAttr(name, desc string, multi bool, subs ...Attribute) Attribute {
	return Attribute{Name: name, Type: "complex", MultiValued: multi, Description: desc, Mutability: "readWrite", Returned: "default", Uniqueness: "none", SubAttributes: subs}
}

func multiValued(name, desc string) Attribute {
	return complexAttr(name, desc, true,
		strRequired("value", "The value."),
		str("display", "A human-readable name."),
		str("type", "A label such as work or home."),
		boolean("primary", "The preferred value; at most one is primary."),
	)
}

var userName = func() Attribute {
	a := strRequired("userName", "Unique identifier for the user, normally an email address; unique per configuration, case-insensitively.")
	a.Uniqueness = "server"
	return a
}()

var externalID = func() Attribute {
	a := str("externalId", "The identity provider's identifier for the resource.")
	a.CaseExact = true
	return a
}()

// UserSchema is the core User schema as this server supports it.
var UserSchema = Schema{
	ID: SchemaUser, Name: "User", Description: "User Account",
	Attributes: []Attribute{
		userName,
		complexAttr("name", "The components of the user's name.", false,
			str("formatted", "The full name."), str("familyName", "The family name."),
			str("givenName", "The given name."), str("middleName", "The middle name."),
			str("honorificPrefix", "Honorific prefix."), str("honorificSuffix", "Honorific suffix.")),
		str("displayName", "The name of the user, suitable for display."),
		str("nickName", "The casual name of the user."),
		func() Attribute {
			a := str("profileUrl", "A URI of the user's profile.")
			a.Type = "reference"
			a.ReferenceType = []string{"external"}
			return a
		}(),
		str("title", "The user's title."),
		str("userType", "The relationship between the organization and the user."),
		str("preferredLanguage", "The user's preferred written or spoken language."),
		str("locale", "The user's default location."),
		str("timezone", "The user's time zone."),
		boolean("active", "Whether the user has access. Deactivated users are kept and returned with active false."),
		func() Attribute {
			a := str("password", "Accepted and discarded: this service provider stores no passwords.")
			a.Mutability, a.Returned = "writeOnly", "never"
			return a
		}(),
		multiValued("emails", "Email addresses; at most one is primary."),
		multiValued("phoneNumbers", "Phone numbers; at most one is primary."),
		func() Attribute {
			a := complexAttr("groups", "The groups the user belongs to (read-only; change them through Groups).", true,
				str("value", "The group's id."), func() Attribute {
					r := str("$ref", "The group's URI.")
					r.Type = "reference"
					r.ReferenceType = []string{"Group"}
					return r
				}(),
				str("display", "The group's displayName."), str("type", "direct"))
			a.Mutability = "readOnly"
			for i := range a.SubAttributes {
				a.SubAttributes[i].Mutability = "readOnly"
			}
			return a
		}(),
	},
}

// EnterpriseUserSchema is the Enterprise User extension.
var EnterpriseUserSchema = Schema{
	ID: SchemaEnterpriseUser, Name: "EnterpriseUser", Description: "Enterprise User",
	Attributes: []Attribute{
		str("employeeNumber", "Employee number."), str("costCenter", "Cost center."),
		str("organization", "Organization."), str("division", "Division."), str("department", "Department."),
		complexAttr("manager", "The user's manager.", false,
			str("value", "The manager's id."),
			func() Attribute {
				r := str("$ref", "The manager's URI.")
				r.Type = "reference"
				r.ReferenceType = []string{"User"}
				return r
			}(),
			func() Attribute {
				d := str("displayName", "The manager's displayName.")
				d.Mutability = "readOnly"
				return d
			}()),
	},
}

// DockerUserSchema is the Docker User extension: role and team hints.
var DockerUserSchema = Schema{
	ID: SchemaDockerUser, Name: "DockerUser", Description: "Docker organization role and team hints",
	Attributes: []Attribute{
		func() Attribute {
			a := str("dockerRole", "Role in the organization: member, editor or owner.")
			a.CanonicalVals = []string{"member", "editor", "owner"}
			return a
		}(),
		str("dockerOrg", "The organization the IdP meant (informational)."),
		str("dockerTeam", "A team the member joins once active."),
	},
}

// GroupSchema is the core Group schema.
var GroupSchema = Schema{
	ID: SchemaGroup, Name: "Group", Description: "Group",
	Attributes: []Attribute{
		func() Attribute {
			a := strRequired("displayName", "A human-readable name for the group.")
			a.Uniqueness = "server"
			return a
		}(),
		func() Attribute {
			a := complexAttr("members", "The members of the group (users of the same configuration).", true,
				func() Attribute { v := str("value", "The member's id."); v.Mutability = "immutable"; return v }(),
				func() Attribute {
					r := str("$ref", "The member's URI.")
					r.Type = "reference"
					r.Mutability = "immutable"
					r.ReferenceType = []string{"User"}
					return r
				}(),
				func() Attribute { d := str("display", "The member's userName."); d.Mutability = "readOnly"; return d }(),
				func() Attribute {
					t := str("type", "User.")
					t.Mutability = "immutable"
					t.CanonicalVals = []string{"User"}
					return t
				}())
			a.Returned = "default"
			return a
		}(),
	},
}

// ResourceType describes a SCIM endpoint (RFC 7643 section 6).
type ResourceType struct {
	ID         string
	Name       string
	Endpoint   string
	Schema     *Schema
	Extensions []*Schema
}

// UserType and GroupType are the two resource types served.
var (
	UserType  = &ResourceType{ID: "User", Name: "User", Endpoint: "/Users", Schema: &UserSchema, Extensions: []*Schema{&EnterpriseUserSchema, &DockerUserSchema}}
	GroupType = &ResourceType{ID: "Group", Name: "Group", Endpoint: "/Groups", Schema: &GroupSchema}
)

// commonAttrs are attributes every resource has.
var idAttr = Attribute{Name: "id", Type: "string", CaseExact: true, Mutability: "readOnly", Returned: "always", Uniqueness: "server"}
var metaAttr = Attribute{Name: "meta", Type: "complex", Mutability: "readOnly", Returned: "default", SubAttributes: []Attribute{
	{Name: "resourceType", Type: "string", CaseExact: true, Mutability: "readOnly"},
	{Name: "created", Type: "dateTime", Mutability: "readOnly"},
	{Name: "lastModified", Type: "dateTime", Mutability: "readOnly"},
	{Name: "location", Type: "reference", CaseExact: true, Mutability: "readOnly"},
	{Name: "version", Type: "string", CaseExact: true, Mutability: "readOnly"},
}}

// lookup resolves an attribute name (optionally with a schema URN prefix) for a resource
// type. It returns the extension schema URN ("" for core), the attribute definition (nil
// when unknown) and the canonical name.
func (rt *ResourceType) lookup(uri, name string) (ext string, attr *Attribute, canonical string) {
	if uri != "" && !rt.isCoreURN(uri) {
		for _, e := range rt.Extensions {
			if strings.EqualFold(e.ID, uri) {
				if a := e.Attr(name); a != nil {
					return e.ID, a, a.Name
				}
				return e.ID, nil, name
			}
		}
		return uri, nil, name
	}
	switch {
	case strings.EqualFold(name, "id"):
		return "", &idAttr, "id"
	case strings.EqualFold(name, "externalId"):
		return "", &externalID, "externalId"
	case strings.EqualFold(name, "meta"):
		return "", &metaAttr, "meta"
	case strings.EqualFold(name, "schemas"):
		return "", &Attribute{Name: "schemas", Type: "reference", MultiValued: true, CaseExact: true}, "schemas"
	}
	if a := rt.Schema.Attr(name); a != nil {
		return "", a, a.Name
	}
	return "", nil, name
}

func (rt *ResourceType) isCoreURN(uri string) bool {
	return strings.EqualFold(uri, rt.Schema.ID) || strings.EqualFold(uri, SchemaSCIM1Core)
}

// Extension finds an extension schema by URN, case-insensitively.
func (rt *ResourceType) Extension(uri string) *Schema {
	for _, e := range rt.Extensions {
		if strings.EqualFold(e.ID, uri) {
			return e
		}
	}
	return nil
}

// splitURN splits "urn:...:User:attr.sub" into the URN and the rest when the prefix is
// one of the resource type's schemas (case-insensitive).
func (rt *ResourceType) splitURN(path string) (uri, rest string) {
	all := append([]*Schema{rt.Schema}, rt.Extensions...)
	for _, s := range all {
		if len(path) > len(s.ID) && strings.EqualFold(path[:len(s.ID)], s.ID) && path[len(s.ID)] == ':' {
			return s.ID, path[len(s.ID)+1:]
		}
		if strings.EqualFold(path, s.ID) {
			return s.ID, ""
		}
	}
	return "", path
}
