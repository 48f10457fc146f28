package scim

import (
	"encoding/json"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// PatchRequest is the body of a PATCH (RFC 7644 section 3.5.2).
type PatchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []PatchOp `json:"Operations"`
}

// PatchOp is one operation. Op is matched case-insensitively (Entra sends "Replace").
type PatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// MaxPatchOperations bounds the operations of one PATCH request.
const MaxPatchOperations = 1000

// MemberDelta is what a Group PATCH does to the group's members. Membership is not held
// in the group resource (groups can have tens of thousands of members), so member
// operations are collected here for the store to apply.
type MemberDelta struct {
	// Clear removes every current member first (replace, or remove without a filter).
	Clear bool
	// Add and Remove are member ids, in request order, without duplicates between them.
	Add    []string
	Remove []string
}

func (d *MemberDelta) add(ids []string) {
	for _, id := range ids {
		d.Remove = without(d.Remove, id)
		if !contains(d.Add, id) {
			d.Add = append(d.Add, id)
		}
	}
}

func (d *MemberDelta) remove(ids []string) {
	for _, id := range ids {
		d.Add = without(d.Add, id)
		if !d.Clear && !contains(d.Remove, id) {
			d.Remove = append(d.Remove, id)
		}
	}
}

func (d *MemberDelta) clear() { d.Clear, d.Add, d.Remove = true, nil, nil }

// Empty tells whether the delta changes nothing.
func (d *MemberDelta) Empty() bool { return !d.Clear && len(d.Add) == 0 && len(d.Remove) == 0 }

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

func without(l []string, s string) []string {
	out := l[:0]
	for _, e := range l {
		if e != s {
			out = append(out, e)
		}
	}
	return out
}

// ApplyPatch applies PATCH operations to a canonical resource in place. For groups,
// operations on "members" are not applied to res but collected in the returned delta.
//
// Tolerances: op names in any case; string booleans; path-less values whose keys are
// attribute paths ("name.givenName", "urn:...:enterprise:2.0:User:employeeNumber"); a
// value-filtered path that matches no element creates one on add/replace (Microsoft
// Entra ID relies on this; RFC 7644 would answer noTarget); removing something absent
// succeeds; read-only attributes (id, meta, groups, schemas) are ignored.
func ApplyPatch(rt *ResourceType, res Resource, ops []PatchOp) (*MemberDelta, error) {
	if len(ops) == 0 {
		return nil, BadRequest(ErrInvalidValue, "PATCH request has no Operations")
	}
	if len(ops) > MaxPatchOperations {
		return nil, BadRequest(ErrTooMany, "PATCH request has more than %d operations", MaxPatchOperations)
	}
	d := &MemberDelta{}
	for i, op := range ops {
		if err := applyOp(rt, res, d, op); err != nil {
			if se, ok := err.(*Error); ok {
				se.Detail = "operation " + itoa(i+1) + ": " + se.Detail
			}
			return nil, err
		}
	}
	return d, nil
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func applyOp(rt *ResourceType, res Resource, d *MemberDelta, op PatchOp) error {
	kind := strings.ToLower(strings.TrimSpace(op.Op))
	switch kind {
	case "add", "replace", "remove":
	default:
		return BadRequest(ErrInvalidSyntax, "unknown op %q (want add, replace or remove)", op.Op)
	}
	var value any
	hasValue := len(op.Value) > 0 && string(op.Value) != "null"
	if hasValue {
		if err := json.Unmarshal(op.Value, &value); err != nil {
			return BadRequest(ErrInvalidSyntax, "value is not valid JSON")
		}
	}
	path := strings.TrimSpace(op.Path)
	if path == "" {
		if kind == "remove" {
			return BadRequest(ErrNoTarget, "remove needs a path")
		}
		m, ok := value.(map[string]any)
		if !ok {
			return BadRequest(ErrInvalidValue, "an operation without path needs an object value")
		}
		return applyObject(rt, res, d, kind, m)
	}
	if uri, rest := rt.splitURN(path); uri != "" && rest == "" {
		// path names a whole schema: its value is an object of that schema's attributes
		m, ok := value.(map[string]any)
		if !ok && kind != "remove" {
			return BadRequest(ErrInvalidValue, "value for %q must be an object", path)
		}
		if kind == "remove" {
			if !rt.isCoreURN(uri) {
				delete(res, uri)
			}
			return nil
		}
		return applyObject(rt, res, d, kind, map[string]any{uri: m})
	}
	return applyPath(rt, res, d, kind, path, value, hasValue)
}

// applyObject applies a path-less add/replace: each key is a path (possibly dotted or
// URN-prefixed), and an extension URN key holds an object of that extension's attributes.
func applyObject(rt *ResourceType, res Resource, d *MemberDelta, kind string, m map[string]any) error {
	for k, v := range m {
		uri, rest := rt.splitURN(k)
		if uri != "" && rest == "" {
			sub, ok := v.(map[string]any)
			if !ok {
				return BadRequest(ErrInvalidValue, "value of %q must be an object", k)
			}
			for sk, sv := range sub {
				p := sk
				if !rt.isCoreURN(uri) {
					p = uri + ":" + sk
				}
				if err := applyPath(rt, res, d, kind, p, sv, sv != nil); err != nil {
					return err
				}
			}
			continue
		}
		if strings.EqualFold(k, "schemas") {
			continue
		}
		if err := applyPath(rt, res, d, kind, k, v, v != nil); err != nil {
			return err
		}
	}
	return nil
}

func applyPath(rt *ResourceType, res Resource, d *MemberDelta, kind, path string, value any, hasValue bool) error {
	if len(path) > MaxFilterLength {
		return BadRequest(ErrInvalidPath, "path is too long")
	}
	p, err := parsePathText(normalizeFilter(path))
	if err != nil {
		return BadRequest(ErrInvalidPath, "invalid path %q: %s", path, describeParseError(err))
	}
	ext, attr, canonical := rt.lookup(p.AttributePath.URI(), p.AttributePath.AttributeName)
	if attr == nil {
		// unknown attribute: ignore, like unknown attributes in POST and PUT
		return nil
	}
	if attr.Mutability == "readOnly" {
		return nil
	}
	if p.ValueExpression != nil {
		if err := checkValueFilter(attr, p.ValueExpression); err != nil {
			return BadRequest(ErrInvalidFilter, "invalid filter in path %q: %s", path, err.Error())
		}
	}
	if rt == GroupType && canonical == "members" {
		return memberOp(d, kind, p, value)
	}
	container := res
	if ext != "" {
		m, ok := res[ext].(map[string]any)
		if !ok {
			if kind == "remove" {
				return nil
			}
			m = map[string]any{}
			res[ext] = m
		}
		container = m
	}
	sub := p.AttributePath.SubAttributeName()
	if p.ValueExpression != nil {
		sub = p.SubAttributeName()
	}
	var subAttr *Attribute
	if sub != "" {
		if subAttr = attr.Sub(sub); subAttr == nil {
			return nil // unknown sub-attribute: ignored
		}
		if subAttr.Mutability == "readOnly" {
			return nil
		}
	}
	if kind != "remove" && !hasValue {
		return BadRequest(ErrInvalidValue, "%s of %q needs a value", kind, path)
	}

	if p.ValueExpression != nil {
		if !attr.MultiValued {
			return BadRequest(ErrInvalidPath, "%q is not multi-valued and cannot take a filter", canonical)
		}
		return applyFiltered(attr, container, canonical, kind, p.ValueExpression, subAttr, value)
	}

	if subAttr != nil {
		if attr.MultiValued {
			// "emails.value": applies to every element
			for _, el := range asList(container[canonical]) {
				if m, ok := el.(map[string]any); ok {
					if kind == "remove" {
						delete(m, subAttr.Name)
					} else {
						m[subAttr.Name] = CoerceValue(subAttr, value)
					}
				}
			}
			return nil
		}
		m, ok := container[canonical].(map[string]any)
		if !ok {
			if kind == "remove" {
				return nil
			}
			m = map[string]any{}
			container[canonical] = m
		}
		if kind == "remove" {
			delete(m, subAttr.Name)
			if len(m) == 0 {
				delete(container, canonical)
			}
		} else {
			m[subAttr.Name] = CoerceValue(subAttr, value)
		}
		return nil
	}

	switch kind {
	case "remove":
		if attr.MultiValued && hasValue {
			// remove the listed values (Entra's members form, for other attributes too)
			var keep []any
			for _, el := range asList(container[canonical]) {
				if !containsValue(CoerceValue(attr, value), el) {
					keep = append(keep, el)
				}
			}
			if len(keep) == 0 {
				delete(container, canonical)
			} else {
				container[canonical] = keep
			}
			return nil
		}
		delete(container, canonical)
	case "add":
		v := CoerceValue(attr, value)
		switch {
		case attr.MultiValued:
			cur := asList(container[canonical])
			newVals := asList(v)
			if hasPrimary(newVals) {
				clearPrimary(cur)
			}
			for _, nv := range newVals {
				if !containsExact(cur, nv) {
					cur = append(cur, nv)
				}
			}
			container[canonical] = cur
		case attr.Type == "complex":
			mergeInto(container, canonical, v)
		default:
			container[canonical] = v
		}
	case "replace":
		v := CoerceValue(attr, value)
		if attr.Type == "complex" && !attr.MultiValued {
			mergeInto(container, canonical, v)
		} else {
			container[canonical] = v
		}
	}
	return nil
}

func mergeInto(container map[string]any, key string, v any) {
	nm, ok := v.(map[string]any)
	if !ok {
		container[key] = v
		return
	}
	cur, ok := container[key].(map[string]any)
	if !ok {
		cur = map[string]any{}
	}
	for k, e := range nm {
		if e == nil {
			delete(cur, k)
		} else {
			cur[k] = e
		}
	}
	container[key] = cur
}

func hasPrimary(l []any) bool {
	for _, e := range l {
		if m, ok := e.(map[string]any); ok && m["primary"] == true {
			return true
		}
	}
	return false
}

func clearPrimary(l []any) {
	for _, e := range l {
		if m, ok := e.(map[string]any); ok {
			delete(m, "primary")
		}
	}
}

func containsExact(l []any, v any) bool {
	b, _ := json.Marshal(v)
	for _, e := range l {
		eb, _ := json.Marshal(e)
		if string(eb) == string(b) {
			return true
		}
	}
	return false
}

// containsValue tells whether el matches one of the values by their "value" sub-attribute
// (or equals a simple value).
func containsValue(values any, el any) bool {
	ev := el
	if m, ok := el.(map[string]any); ok {
		ev = m["value"]
	}
	for _, v := range asList(values) {
		vv := v
		if m, ok := v.(map[string]any); ok {
			vv = m["value"]
		}
		if vv != nil && ev != nil && vv == ev {
			return true
		}
	}
	return false
}

func applyFiltered(attr *Attribute, container map[string]any, canonical, kind string, vf filter.Expression, sub *Attribute, value any) error {
	list := asList(container[canonical])
	matched := false
	var keep []any
	for _, el := range list {
		m, ok := el.(map[string]any)
		if !ok || !MatchElement(attr, vf, m) {
			keep = append(keep, el)
			continue
		}
		matched = true
		switch {
		case kind == "remove" && sub == nil:
			continue // drop the element
		case kind == "remove":
			delete(m, sub.Name)
		case sub != nil:
			if sub.Name == "primary" && coerceBool(value) == true {
				clearPrimary(list)
			}
			m[sub.Name] = CoerceValue(sub, value)
		default:
			if nm, ok := CoerceValue(attr, value).([]any); ok && len(nm) == 1 {
				if vm, ok := nm[0].(map[string]any); ok {
					for k, v := range vm {
						m[k] = v
					}
				}
			}
		}
		keep = append(keep, m)
	}
	if !matched && kind != "remove" {
		// Entra compatibility: create the element the filter describes.
		el := map[string]any{}
		seedFromFilter(attr, vf, el)
		if sub != nil {
			el[sub.Name] = CoerceValue(sub, value)
		} else if nm, ok := CoerceValue(attr, value).([]any); ok && len(nm) == 1 {
			if vm, ok := nm[0].(map[string]any); ok {
				for k, v := range vm {
					el[k] = v
				}
			}
		}
		if el["primary"] == true {
			clearPrimary(keep)
		}
		keep = append(keep, el)
	}
	if len(keep) == 0 {
		delete(container, canonical)
	} else {
		container[canonical] = keep
	}
	return nil
}

// seedFromFilter copies the `sub eq "v"` terms of an and-filter into a new element.
func seedFromFilter(attr *Attribute, e filter.Expression, el map[string]any) {
	switch t := e.(type) {
	case *filter.AttributeExpression:
		if t.Operator != filter.EQ || t.CompareValue == nil {
			return
		}
		name := t.AttributePath.AttributeName
		if sub := attr.Sub(name); sub != nil {
			name = sub.Name
		}
		v := t.CompareValue
		if s, ok := v.(string); ok {
			v = unescape(s)
		}
		el[name] = v
	case *filter.LogicalExpression:
		if t.Operator == filter.AND {
			seedFromFilter(attr, t.Left, el)
			seedFromFilter(attr, t.Right, el)
		}
	}
}

func memberOp(d *MemberDelta, kind string, p filter.Path, value any) error {
	if p.SubAttribute != nil || p.AttributePath.SubAttribute != nil {
		return BadRequest(ErrInvalidPath, "member sub-attributes cannot be changed")
	}
	if p.ValueExpression != nil {
		ids, ok := memberIDsFromFilter(p.ValueExpression)
		if !ok {
			return BadRequest(ErrInvalidFilter, `member filters must have the form value eq "<id>" (or several joined by or)`)
		}
		if kind == "remove" {
			d.remove(ids)
			return nil
		}
		vals, err := memberValues(value)
		if err != nil {
			return err
		}
		d.add(append(ids, vals...))
		return nil
	}
	var ids []string
	if value != nil {
		var err error
		if ids, err = memberValues(value); err != nil {
			return err
		}
	}
	switch kind {
	case "add":
		d.add(ids)
	case "replace":
		d.clear()
		d.add(ids)
	case "remove":
		if value == nil {
			d.clear()
		} else {
			d.remove(ids)
		}
	}
	return nil
}

func memberIDsFromFilter(e filter.Expression) ([]string, bool) {
	switch t := e.(type) {
	case *filter.AttributeExpression:
		s, ok := t.CompareValue.(string)
		if t.Operator != filter.EQ || !ok || !strings.EqualFold(t.AttributePath.AttributeName, "value") || t.AttributePath.SubAttribute != nil {
			return nil, false
		}
		return []string{unescape(s)}, true
	case *filter.LogicalExpression:
		if t.Operator != filter.OR {
			return nil, false
		}
		l, ok1 := memberIDsFromFilter(t.Left)
		r, ok2 := memberIDsFromFilter(t.Right)
		return append(l, r...), ok1 && ok2
	}
	return nil, false
}

// memberValues reads member ids from a value: a list of {"value": id} objects (other
// keys such as $ref, display or Okta's id are ignored), one such object, or bare strings.
func memberValues(v any) ([]string, error) {
	var ids []string
	for _, e := range asList(v) {
		switch t := e.(type) {
		case map[string]any:
			id, _ := lookupKey(t, nil, "value").(string)
			if strings.TrimSpace(id) == "" {
				return nil, BadRequest(ErrInvalidValue, "a member needs a non-empty string value (the user's id)")
			}
			ids = append(ids, id)
		case string:
			if t == "" {
				return nil, BadRequest(ErrInvalidValue, "a member id is empty")
			}
			ids = append(ids, t)
		default:
			return nil, BadRequest(ErrInvalidValue, `members must be objects like {"value": "<id>"}`)
		}
	}
	return ids, nil
}
