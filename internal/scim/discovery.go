package scim

import "time"

// MaxBulkOperations is the most operations one Bulk request may hold.
const MaxBulkOperations = 1000

// ServiceProviderConfig is the /ServiceProviderConfig document for a base URL; it
// describes exactly what this implementation does. maxPayloadSize is the request body
// limit in bytes, which bounds a Bulk request too.
func ServiceProviderConfig(baseURL string, maxPayloadSize int64) map[string]any {
	return map[string]any{
		"schemas":          []string{SchemaServiceProvider},
		"documentationUri": "https://github.com/scim-operator/scim-operator/blob/main/docs/scim.md",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": true, "maxOperations": MaxBulkOperations, "maxPayloadSize": maxPayloadSize},
		"filter":           map[string]any{"supported": true, "maxResults": MaxCount},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		// RFC 9865 section 4; index paging stays the default (its section 2.4: existing
		// clients expect it)
		"pagination": map[string]any{
			"cursor": true, "index": true, "defaultPaginationMethod": "index",
			"defaultPageSize": DefaultCount, "maxPageSize": MaxCount,
			"cursorTimeout": int(CursorTimeout / time.Second),
		},
		"authenticationSchemes": []map[string]any{{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "Authentication with the ScimConfig's bearer token in the Authorization header.",
			"specUri":     "https://www.rfc-editor.org/rfc/rfc6750",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     baseURL + "/ServiceProviderConfig",
		},
	}
}

// ResourceTypeDoc is one /ResourceTypes entry.
func ResourceTypeDoc(baseURL string, rt *ResourceType) map[string]any {
	var exts []map[string]any
	for _, e := range rt.Extensions {
		exts = append(exts, map[string]any{"schema": e.ID, "required": false})
	}
	doc := map[string]any{
		"schemas":     []string{SchemaResourceType},
		"id":          rt.ID,
		"name":        rt.Name,
		"endpoint":    rt.Endpoint,
		"description": rt.Schema.Description,
		"schema":      rt.Schema.ID,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     baseURL + "/ResourceTypes/" + rt.ID,
		},
	}
	if exts != nil {
		doc["schemaExtensions"] = exts
	}
	return doc
}

// AllSchemas lists every schema served under /Schemas.
func AllSchemas() []*Schema {
	return []*Schema{&UserSchema, &GroupSchema, &EnterpriseUserSchema, &DockerUserSchema}
}

// SchemaDoc is one /Schemas entry.
func SchemaDoc(baseURL string, s *Schema) map[string]any {
	return map[string]any{
		"schemas":     []string{SchemaSchema},
		"id":          s.ID,
		"name":        s.Name,
		"description": s.Description,
		"attributes":  s.Attributes,
		"meta": map[string]any{
			"resourceType": "Schema",
			"location":     baseURL + "/Schemas/" + s.ID,
		},
	}
}

// ListOf wraps documents in a ListResponse.
func ListOf(docs []map[string]any) ListResponse {
	res := make([]Resource, len(docs))
	for i, d := range docs {
		res[i] = d
	}
	return ListResponse{Schemas: []string{SchemaListResponse}, TotalResults: len(docs), StartIndex: 1, ItemsPerPage: len(docs), Resources: res}
}
