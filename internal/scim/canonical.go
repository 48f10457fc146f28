package scim

import (
	"strings"
)

// Resource is a SCIM resource as a JSON object with canonical attribute names:
// core attributes at the top level, each extension's attributes under its schema URN.
type Resource = map[string]any

// Canonicalize returns a copy of a decoded resource with attribute names in their
// canonical case, extension attributes (nested under a URN key or written as
// "urn:...:attr" keys, in any case) gathered under their canonical URN, boolean
// attributes sent as strings ("True", "false") turned into booleans, and a lone object
// given for a multi-valued attribute wrapped in a list. Unknown attributes are kept as
// they are (callers ignore them).
func Canonicalize(rt *ResourceType, in map[string]any) Resource {
	out := Resource{}
	for k, v := range in {
		uri, rest := rt.splitURN(k)
		switch {
		case uri != "" && rest == "":
			// an extension (or core) schema object
			m, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if rt.isCoreURN(uri) {
				for ck, cv := range Canonicalize(rt, m) {
					out[ck] = cv
				}
				continue
			}
			ext := extMap(out, uri)
			for ak, av := range m {
				setCanonical(rt, ext, uri, ak, av)
			}
		case uri != "" && !rt.isCoreURN(uri):
			setCanonical(rt, extMap(out, uri), uri, rest, v)
		default:
			setCanonical(rt, out, "", rest, v)
		}
	}
	return out
}

func extMap(out Resource, uri string) map[string]any {
	m, ok := out[uri].(map[string]any)
	if !ok {
		m = map[string]any{}
		out[uri] = m
	}
	return m
}

func setCanonical(rt *ResourceType, dst map[string]any, uri, name string, v any) {
	_, attr, canonical := rt.lookup(uri, name)
	if attr == nil {
		if uri == "" {
			dst[name] = v
		}
		return
	}
	dst[canonical] = CoerceValue(attr, v)
}

// CoerceValue brings a JSON value into the shape an attribute definition says: booleans
// from strings, sub-attribute names in canonical case, lists for multi-valued attributes.
func CoerceValue(attr *Attribute, v any) any {
	if v == nil {
		return nil
	}
	if attr.MultiValued {
		switch t := v.(type) {
		case []any:
			out := make([]any, 0, len(t))
			for _, e := range t {
				out = append(out, coerceSingle(attr, e))
			}
			return out
		default:
			return []any{coerceSingle(attr, v)}
		}
	}
	return coerceSingle(attr, v)
}

func coerceSingle(attr *Attribute, v any) any {
	switch attr.Type {
	case "boolean":
		return coerceBool(v)
	case "complex":
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, sv := range m {
			if sub := attr.Sub(k); sub != nil {
				out[sub.Name] = coerceSingle(sub, sv)
			} else {
				out[k] = sv
			}
		}
		return out
	}
	return v
}

func coerceBool(v any) any {
	if s, ok := v.(string); ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return v
}

// DeepCopy copies a JSON value.
func DeepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = DeepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = DeepCopy(e)
		}
		return l
	}
	return v
}
