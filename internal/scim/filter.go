package scim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	filter "github.com/scim2/filter-parser/v2"

	"github.com/scim-operator/scim-operator/internal/naming"
)

// MaxFilterLength bounds the filter text a request may carry.
const MaxFilterLength = 4096

// Filter is a parsed SCIM filter (RFC 7644 section 3.4.2.2) bound to a resource type.
type Filter struct {
	rt   *ResourceType
	expr filter.Expression
}

// ParseFilter parses a filter for a resource type. It accepts, besides the RFC grammar,
// two dialects real clients send: a value path followed by a sub-attribute and an
// operator (Entra's `emails[type eq "work"].value eq "x"`, rewritten to
// `emails[type eq "work" and value eq "x"]`) and unquoted literals (the Microsoft
// conformance collection's `userName sw O`), which are quoted.
func ParseFilter(rt *ResourceType, s string) (*Filter, error) {
	if len(s) > MaxFilterLength {
		return nil, BadRequest(ErrInvalidFilter, "filter is longer than %d characters", MaxFilterLength)
	}
	if strings.TrimSpace(s) == "" {
		return nil, BadRequest(ErrInvalidFilter, "filter is empty")
	}
	expr, err := parseFilterText(normalizeFilter(s))
	if err != nil {
		return nil, BadRequest(ErrInvalidFilter, "invalid filter %q: %s", s, describeParseError(err))
	}
	if err := checkTypes(rt, expr); err != nil {
		return nil, BadRequest(ErrInvalidFilter, "invalid filter %q: %s", s, err.Error())
	}
	return &Filter{rt: rt, expr: expr}, nil
}

// checkTypes refuses comparisons the attribute's type does not allow (RFC 7644
// 3.4.2.2): gt, ge, lt and le on booleans and binary values, co, sw and ew on booleans,
// and any comparison but pr on a complex attribute, which is compared through its
// sub-attributes. A complex multi-valued attribute without a sub-attribute compares its
// "value" (emails eq "x"). Unknown attributes are not checked: they match nothing.
func checkTypes(rt *ResourceType, e filter.Expression) error {
	switch t := e.(type) {
	case *filter.LogicalExpression:
		if err := checkTypes(rt, t.Left); err != nil {
			return err
		}
		return checkTypes(rt, t.Right)
	case *filter.NotExpression:
		return checkTypes(rt, t.Expression)
	case *filter.ValuePath:
		_, attr, _ := rt.lookup(t.AttributePath.URI(), t.AttributePath.AttributeName)
		return checkValueFilter(attr, t.ValueFilter)
	case *filter.AttributeExpression:
		p := t.AttributePath
		_, attr, _ := rt.lookup(p.URI(), p.AttributeName)
		if attr == nil {
			return nil
		}
		def, name := attr, attr.Name
		switch {
		case p.SubAttribute != nil:
			def = attr.Sub(*p.SubAttribute)
			if def != nil {
				name += "." + def.Name
			}
		case attr.Type == "complex" && attr.MultiValued && attr.Sub("value") != nil:
			def = attr.Sub("value")
			name += ".value"
		}
		return checkComparison(def, name, t.Operator)
	}
	return nil
}

// checkValueFilter checks a value filter (the part in brackets) of the attribute parent.
func checkValueFilter(parent *Attribute, e filter.Expression) error {
	if parent == nil {
		return nil
	}
	switch t := e.(type) {
	case *filter.LogicalExpression:
		if err := checkValueFilter(parent, t.Left); err != nil {
			return err
		}
		return checkValueFilter(parent, t.Right)
	case *filter.NotExpression:
		return checkValueFilter(parent, t.Expression)
	case *filter.AttributeExpression:
		sub := parent.Sub(t.AttributePath.AttributeName)
		if sub == nil || t.AttributePath.SubAttribute != nil {
			return nil
		}
		return checkComparison(sub, parent.Name+"."+sub.Name, t.Operator)
	}
	return nil
}

func checkComparison(def *Attribute, name string, op filter.CompareOperator) error {
	if def == nil || op == filter.PR {
		return nil
	}
	switch def.Type {
	case "boolean":
		if op != filter.EQ && op != filter.NE {
			return fmt.Errorf("%s is not allowed on the boolean attribute %s: booleans take eq, ne and pr", op, name)
		}
	case "binary":
		switch op {
		case filter.GT, filter.GE, filter.LT, filter.LE:
			return fmt.Errorf("%s is not allowed on the binary attribute %s: binary attributes cannot be ordered", op, name)
		}
	case "complex":
		return fmt.Errorf("%s is not allowed on the complex attribute %s: compare one of its sub-attributes (%s.<sub-attribute>) or test it with pr", op, name, name)
	}
	return nil
}

type tok struct {
	kind byte // ' ' space, '"' string, '(', ')', '[', ']', 'w' word
	text string
}

func tokenize(s string) []tok {
	var out []tok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			j := i
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r') {
				j++
			}
			out = append(out, tok{' ', s[i:j]})
			i = j
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				j = len(s) - 1
			}
			out = append(out, tok{'"', s[i : j+1]})
			i = j + 1
		case c == '(' || c == ')' || c == '[' || c == ']':
			out = append(out, tok{c, string(c)})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n\"()[]", rune(s[j])) {
				j++
			}
			out = append(out, tok{'w', s[i:j]})
			i = j
		}
	}
	return out
}

var numberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

func isCompareOp(w string) bool {
	switch strings.ToLower(w) {
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
		return true
	}
	return false
}

func isLogicalOp(w string) bool {
	switch strings.ToLower(w) {
	case "and", "or", "not":
		return true
	}
	return false
}

func isLiteral(w string) bool {
	switch strings.ToLower(w) {
	case "true", "false", "null":
		return true
	}
	return numberRE.MatchString(w)
}

// normalizeFilter applies the dialect rewrites described at ParseFilter.
func normalizeFilter(s string) string {
	toks := tokenize(s)
	// quote unquoted literals after a comparison operator: a word that follows an
	// attribute path (not "and", "or" or "not": there it is an attribute named like an
	// operator, as in `x eq 1 and le co 0`, which the fuzzer found misquoted)
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].kind == 'w' && isCompareOp(toks[i].text) && i > 1 && toks[i-1].kind == ' ' &&
			toks[i-2].kind == 'w' && !isLogicalOp(toks[i-2].text) &&
			toks[i+1].kind == ' ' && toks[i+2].kind == 'w' && !isLiteral(toks[i+2].text) {
			b, _ := json.Marshal(toks[i+2].text)
			toks[i+2] = tok{'"', string(b)}
		}
	}
	// valuePath "." subAttr op value  ->  valuePath with the comparison moved inside
	var out []tok
	var opens []int
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case '[':
			opens = append(opens, len(out))
		case ']':
			var open = -1
			if len(opens) > 0 {
				open = opens[len(opens)-1]
				opens = opens[:len(opens)-1]
			}
			if open >= 0 && i+3 < len(toks) && toks[i+1].kind == 'w' && strings.HasPrefix(toks[i+1].text, ".") &&
				len(toks[i+1].text) > 1 && toks[i+2].kind == ' ' && toks[i+3].kind == 'w' {
				op := strings.ToLower(toks[i+3].text)
				sub := toks[i+1].text[1:]
				if op == "pr" {
					out = wrapInner(out, open)
					out = append(out, tok{'w', " and " + sub + " pr"}, tok{']', "]"})
					i += 3
					continue
				}
				if isCompareOp(op) && i+5 < len(toks) && toks[i+4].kind == ' ' && (toks[i+5].kind == '"' || toks[i+5].kind == 'w') {
					out = wrapInner(out, open)
					out = append(out, tok{'w', " and " + sub + " " + op + " " + toks[i+5].text}, tok{']', "]"})
					i += 5
					continue
				}
			}
		}
		out = append(out, t)
	}
	var b strings.Builder
	for _, t := range out {
		b.WriteString(t.text)
	}
	return b.String()
}

// wrapInner puts parentheses around the tokens after the '[' at index open, so that the
// comparison the caller appends with "and" applies to the whole bracketed filter
// (`emails[type eq "a" or type eq "b"].value eq "x"` means
// `emails[(type eq "a" or type eq "b") and value eq "x"]`).
func wrapInner(out []tok, open int) []tok {
	wrapped := append([]tok{}, out[:open+1]...)
	wrapped = append(wrapped, tok{'(', "("})
	wrapped = append(wrapped, out[open+1:]...)
	return append(wrapped, tok{')', ")"})
}

// Match tells whether a canonical resource matches the filter.
func (f *Filter) Match(res Resource) bool {
	return evalExpr(f.rt, f.expr, res)
}

// Expr exposes the parsed expression.
func (f *Filter) Expr() filter.Expression { return f.expr }

// EqualityValue returns v when the filter is, or is an "and" that contains,
// `<attr> eq "v"` on a core attribute (no sub-attribute). Stores use it to answer from an
// index before evaluating the whole filter.
func (f *Filter) EqualityValue(attr string) (string, bool) {
	return equality(f.rt, f.expr, attr)
}

func equality(rt *ResourceType, e filter.Expression, attr string) (string, bool) {
	switch t := e.(type) {
	case *filter.AttributeExpression:
		if t.Operator != filter.EQ || t.AttributePath.SubAttribute != nil {
			return "", false
		}
		if uri := t.AttributePath.URI(); uri != "" && !rt.isCoreURN(uri) {
			return "", false
		}
		s, ok := t.CompareValue.(string)
		if !ok || !strings.EqualFold(t.AttributePath.AttributeName, attr) {
			return "", false
		}
		return unescape(s), true
	case *filter.LogicalExpression:
		if t.Operator != filter.AND {
			return "", false
		}
		if v, ok := equality(rt, t.Left, attr); ok {
			return v, true
		}
		return equality(rt, t.Right, attr)
	}
	return "", false
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var out string
	if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
		return s
	}
	return out
}

func evalExpr(rt *ResourceType, e filter.Expression, res Resource) bool {
	switch t := e.(type) {
	case *filter.LogicalExpression:
		if t.Operator == filter.AND {
			return evalExpr(rt, t.Left, res) && evalExpr(rt, t.Right, res)
		}
		return evalExpr(rt, t.Left, res) || evalExpr(rt, t.Right, res)
	case *filter.NotExpression:
		return !evalExpr(rt, t.Expression, res)
	case *filter.ValuePath:
		attr, v := resolve(rt, res, t.AttributePath.URI(), t.AttributePath.AttributeName)
		for _, el := range asList(v) {
			if m, ok := el.(map[string]any); ok && evalElem(attr, t.ValueFilter, m) {
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		p := t.AttributePath
		attr, v := resolve(rt, res, p.URI(), p.AttributeName)
		var vals []any
		def := attr
		switch {
		case p.SubAttribute != nil:
			var sub *Attribute
			if attr != nil {
				sub = attr.Sub(*p.SubAttribute)
			}
			def = sub
			for _, el := range asList(v) {
				if m, ok := el.(map[string]any); ok {
					vals = append(vals, lookupKey(m, sub, *p.SubAttribute))
				}
			}
		case attr != nil && attr.Type == "complex" && attr.MultiValued:
			def = attr.Sub("value")
			for _, el := range asList(v) {
				if m, ok := el.(map[string]any); ok {
					vals = append(vals, m["value"])
				}
			}
		default:
			vals = asList(v)
		}
		return compareAny(def, vals, t.Operator, t.CompareValue)
	}
	return false
}

func evalElem(parent *Attribute, e filter.Expression, el map[string]any) bool {
	switch t := e.(type) {
	case *filter.LogicalExpression:
		if t.Operator == filter.AND {
			return evalElem(parent, t.Left, el) && evalElem(parent, t.Right, el)
		}
		return evalElem(parent, t.Left, el) || evalElem(parent, t.Right, el)
	case *filter.NotExpression:
		return !evalElem(parent, t.Expression, el)
	case *filter.AttributeExpression:
		var sub *Attribute
		if parent != nil {
			sub = parent.Sub(t.AttributePath.AttributeName)
		}
		v := lookupKey(el, sub, t.AttributePath.AttributeName)
		return compareAny(sub, asList(v), t.Operator, t.CompareValue)
	}
	return false
}

// MatchElement evaluates a value filter (the part in brackets) against one element of a
// multi-valued attribute.
func MatchElement(parent *Attribute, e filter.Expression, el map[string]any) bool {
	return evalElem(parent, e, el)
}

func lookupKey(m map[string]any, def *Attribute, name string) any {
	if def != nil {
		if v, ok := m[def.Name]; ok {
			return v
		}
	}
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

func resolve(rt *ResourceType, res Resource, uri, name string) (*Attribute, any) {
	ext, attr, canonical := rt.lookup(uri, name)
	container := res
	if ext != "" {
		m, ok := res[ext].(map[string]any)
		if !ok {
			return attr, nil
		}
		container = m
	}
	return attr, lookupKey(container, attr, canonical)
}

func asList(v any) []any {
	switch t := v.(type) {
	case nil:
		return nil
	case []any:
		return t
	}
	return []any{v}
}

func present(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return t != ""
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	}
	return true
}

// compareAny applies a comparison to each value of an attribute (one for a single-valued
// attribute, none when it is unassigned) and tells whether any value matches (RFC 7644
// 3.4.2.2). An unassigned attribute, or an element without the sub-attribute, counts as
// one null value: it is "eq null" and differs from ("ne") every other value.
func compareAny(def *Attribute, vals []any, op filter.CompareOperator, want any) bool {
	if len(vals) == 0 {
		vals = []any{nil}
	}
	for _, v := range vals {
		if compareValue(def, v, op, want) {
			return true
		}
	}
	return false
}

// compareValue applies a comparison to one value.
func compareValue(def *Attribute, v any, op filter.CompareOperator, want any) bool {
	switch {
	case op == filter.PR:
		return present(v)
	case want == nil: // eq null, ne null
		switch op {
		case filter.EQ:
			return !present(v)
		case filter.NE:
			return present(v)
		}
		return false
	case op == filter.NE:
		return !compareOne(def, v, filter.EQ, want)
	}
	return compareOne(def, v, op, want)
}

func compareOne(def *Attribute, v any, op filter.CompareOperator, want any) bool {
	switch w := want.(type) {
	case bool:
		b, ok := coerceBool(v).(bool)
		return ok && op == filter.EQ && b == w
	case int:
		return compareNumber(v, float64(w), op)
	case float64:
		return compareNumber(v, w, op)
	case string:
		w = unescape(w)
		s, ok := v.(string)
		if !ok {
			if b, isBool := v.(bool); isBool { // a boolean compared with "true"
				s, ok = fmt.Sprint(b), true
			}
		}
		if !ok {
			return false
		}
		if def != nil && def.Type == "dateTime" {
			if a, err1 := time.Parse(time.RFC3339Nano, s); err1 == nil {
				if b, err2 := time.Parse(time.RFC3339Nano, w); err2 == nil {
					return orderCompare(a.Compare(b), op)
				}
			}
		}
		if def == nil || !def.CaseExact {
			// the equality uniqueness is decided by (naming.NameKey), so that a filter
			// finds exactly the user a create of that userName would collide with
			s, w = naming.Caseless(s), naming.Caseless(w)
		}
		switch op {
		case filter.EQ:
			return s == w
		case filter.CO:
			return strings.Contains(s, w)
		case filter.SW:
			return strings.HasPrefix(s, w)
		case filter.EW:
			return strings.HasSuffix(s, w)
		default:
			return orderCompare(strings.Compare(s, w), op)
		}
	}
	return false
}

func compareNumber(v any, w float64, op filter.CompareOperator) bool {
	var f float64
	switch t := v.(type) {
	case float64:
		f = t
	case int:
		f = float64(t)
	case int64:
		f = float64(t)
	default:
		return false
	}
	c := 0
	if f < w {
		c = -1
	} else if f > w {
		c = 1
	}
	if op == filter.EQ {
		return c == 0
	}
	return orderCompare(c, op)
}

func orderCompare(c int, op filter.CompareOperator) bool {
	switch op {
	case filter.EQ:
		return c == 0
	case filter.GT:
		return c > 0
	case filter.GE:
		return c >= 0
	case filter.LT:
		return c < 0
	case filter.LE:
		return c <= 0
	}
	return false
}
