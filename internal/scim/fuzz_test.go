package scim

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	filter "github.com/scim2/filter-parser/v2"
)

// FuzzFilter: any filter text either fails with a 400 invalidFilter or evaluates without
// panicking.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `emails[type eq "work"].value eq "x"`, `not (a pr) or b gt 1`, `userName sw O`} {
		f.Add(s)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(alice), &res); err != nil {
		f.Fatal(err) // else every input would be matched against an empty user
	}
	user := Canonicalize(UserType, res)
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(UserType, s)
		if err != nil {
			if se, ok := err.(*Error); !ok || se.Status != 400 || se.ScimType != ErrInvalidFilter {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		matched := flt.Match(user)
		flt.EqualityValue("userName")
		// print, parse, print: the printed form is a fixed point and means the same
		printed := printExpr(flt.Expr())
		if len(printed) <= MaxFilterLength {
			again, err := ParseFilter(UserType, printed)
			if err != nil {
				t.Fatalf("%q printed as %q, which does not parse: %v", s, printed, err)
			}
			if p2 := printExpr(again.Expr()); p2 != printed {
				t.Fatalf("%q: printed %q, reparsed and printed %q", s, printed, p2)
			}
			if again.Match(user) != matched {
				t.Fatalf("%q and its printed form %q match differently", s, printed)
			}
		}
		gf, err := ParseFilter(GroupType, s)
		if err == nil {
			gf.Match(Resource{"displayName": "g", "members": []any{map[string]any{"value": "x"}}})
		}
	})
}

// FuzzPatch: any PATCH body applies or fails with a SCIM error, never panics, and the
// result still marshals.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"Operations":[{"op":"add","value":{"name.givenName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"1"}}]}`,
		`{"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":"a@b.c"}]}`,
		`{"Operations":[{"op":"Remove","path":"members","value":[{"value":"x"}]}]}`,
		`{"Operations":[{"op":"remove","path":"members[value eq \"x\"]"}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var p PatchRequest
		if json.Unmarshal([]byte(body), &p) != nil {
			return
		}
		for _, rt := range []*ResourceType{UserType, GroupType} {
			var res map[string]any
			if err := json.Unmarshal([]byte(alice), &res); err != nil {
				t.Fatal(err) // else every patch would apply to an empty resource
			}
			r := Canonicalize(rt, res)
			if _, err := ApplyPatch(rt, r, p.Operations); err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("non-SCIM error %v", err)
				}
				continue
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzValueFilter: whatever stands in the brackets of a value path, the filter, the PATCH
// path and the group member path built on it parse to the same value filter or fail
// with a SCIM error, never panic, and a parsed value filter prints and parses back to
// itself.
func FuzzValueFilter(f *testing.F) {
	for _, s := range []string{
		`type eq "work"`,
		`type eq "work" and primary eq true and value co "x"`,
		`value eq "a" or value eq "b" or value eq "c"`,
		`(type eq "home" or type eq "work") and not (primary eq true)`,
		`not (type eq "work" or type eq "home")`,
		`((type eq "x"))`,
		`type eq "a]" or value sw "[b"`,
		`urn:ietf:params:scim:schemas:extension:my_ext:2.0:User:type eq "x"`,
	} {
		f.Add(s)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(alice), &res); err != nil {
		f.Fatal(err)
	}
	user := Canonicalize(UserType, res)
	emails := UserSchema.Attr("emails")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > MaxFilterLength {
			return
		}
		expr, ferr := parseFilterText(normalizeFilter("emails[" + s + "]"))
		vp, isValuePath := expr.(*filter.ValuePath)
		p, perr := parsePathText(normalizeFilter("emails[" + s + "].value"))
		if ferr == nil && isValuePath {
			if perr != nil {
				t.Fatalf("emails[%s] parses as a filter but not as a path: %v", s, perr)
			}
			if a, b := printExpr(vp.ValueFilter), printExpr(p.ValueExpression); a != b {
				t.Fatalf("emails[%s]: the filter's value filter %q, the path's %q", s, a, b)
			}
			printed := printExpr(vp.ValueFilter)
			again, err := parseFilterText(printed)
			if err != nil {
				t.Fatalf("%q printed as %q, which does not parse: %v", s, printed, err)
			}
			if p2 := printExpr(again); p2 != printed {
				t.Fatalf("%q: printed %q, reparsed and printed %q", s, printed, p2)
			}
			for _, el := range user["emails"].([]any) {
				m := el.(map[string]any)
				if MatchElement(emails, vp.ValueFilter, m) != MatchElement(emails, again, m) {
					t.Fatalf("%q and its printed form %q match %v differently", s, printed, m)
				}
			}
		}
		if flt, err := ParseFilter(UserType, "emails["+s+"]"); err == nil {
			flt.Match(user)
		} else if se, ok := err.(*Error); !ok || se.Status != 400 || se.ScimType != ErrInvalidFilter {
			t.Fatalf("unexpected error %v", err)
		}
		path, _ := json.Marshal("emails[" + s + "].display")
		members, _ := json.Marshal("members[" + s + "]")
		for _, c := range []struct {
			rt  *ResourceType
			ops string
		}{
			{UserType, `[{"op":"replace","path":` + string(path) + `,"value":"x"},{"op":"remove","path":` + string(path) + `}]`},
			{GroupType, `[{"op":"remove","path":` + string(members) + `},{"op":"add","path":` + string(members) + `}]`},
		} {
			var ops []PatchOp
			if err := json.Unmarshal([]byte(c.ops), &ops); err != nil {
				t.Fatal(err)
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(alice), &r); err != nil {
				t.Fatal(err)
			}
			cr := Canonicalize(c.rt, r)
			if _, err := ApplyPatch(c.rt, cr, ops); err != nil {
				if se, ok := err.(*Error); !ok || se.Status != 400 {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if _, err := json.Marshal(cr); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// printExpr prints a parsed filter fully parenthesized, in a form ParseFilter reads back
// to the same tree.
func printExpr(e filter.Expression) string {
	switch t := e.(type) {
	case *filter.LogicalExpression:
		return "(" + printExpr(t.Left) + " " + string(t.Operator) + " " + printExpr(t.Right) + ")"
	case *filter.NotExpression:
		return "not (" + printExpr(t.Expression) + ")"
	case *filter.ValuePath:
		return printAttrPath(t.AttributePath) + "[" + printExpr(t.ValueFilter) + "]"
	case *filter.AttributeExpression:
		s := printAttrPath(t.AttributePath) + " " + string(t.Operator)
		if t.Operator == filter.PR {
			return s
		}
		switch v := t.CompareValue.(type) {
		case nil:
			return s + " null"
		case bool:
			return s + " " + strconv.FormatBool(v)
		case int:
			return s + " " + strconv.Itoa(v)
		case float64:
			return s + " " + strconv.FormatFloat(v, 'g', -1, 64)
		case string:
			return s + ` "` + v + `"` // the library keeps the escapes of the string as written
		}
		return s + " ?"
	}
	return "?"
}

func printAttrPath(p filter.AttributePath) string {
	var b strings.Builder
	if p.URIPrefix != nil {
		b.WriteString(*p.URIPrefix + ":")
	}
	b.WriteString(p.AttributeName)
	if p.SubAttribute != nil {
		b.WriteString("." + *p.SubAttribute)
	}
	return b.String()
}
