package scim

import (
	"fmt"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// The filter library (github.com/scim2/filter-parser) implements the RFC 7644 ABNF with
// two limits real requests exceed:
//
//   - inside brackets it takes one comparison or two joined by one and/or
//     (`valLogExp = attrExp SP ("and" / "or") SP attrExp`), although RFC 7644 3.4.2.2 and
//     3.5.2 give value filters the full filter language: any number of and/or/not and
//     parentheses (`members[value eq "a" or value eq "b" or value eq "c"]`);
//   - a schema URN may hold only letters, digits, "-" and ".", although RFC 8141 allows
//     "_" and more (`urn:ietf:params:scim:schemas:extension:my_ext:2.0:User:x`).
//
// parseFilterText and parsePathText work around both without changing the library: each
// bracketed value filter is cut out and parsed by the library as a filter of its own
// (attribute paths relative to the multi-valued attribute), its place in the outer text
// taken by the one-term placeholder `vf<i> pr`; and each URN prefix is replaced by the
// placeholder `u<i>:`. After parsing, the placeholders are swapped back in the tree.

// syntaxError is a parse failure described in words rather than by the library.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

// offsetError is a library parse failure at an offset of the text the caller gave.
type offsetError struct{ offset int }

func (e *offsetError) Error() string { return "syntax error at offset " + strconv.Itoa(e.offset) }

// describeParseError is the detail text of a parse failure.
func describeParseError(err error) string {
	switch t := err.(type) {
	case *syntaxError:
		return t.msg
	case *offsetError:
		return t.Error()
	}
	return "syntax error"
}

// textMap is text rebuilt from pieces of a source text, able to map an offset in it back
// to the source.
type textMap struct {
	b      strings.Builder
	pieces []piece
}

type piece struct{ out, src, outLen, srcLen int }

func (m *textMap) emit(text string, src, srcLen int) {
	m.pieces = append(m.pieces, piece{m.b.Len(), src, len(text), srcLen})
	m.b.WriteString(text)
}

func (m *textMap) String() string { return m.b.String() }

// source maps an offset of the rebuilt text to the source: within a piece copied as it
// was, exactly; within a placeholder, to the start of what it stands for.
func (m *textMap) source(off int) int {
	last := 0
	for _, p := range m.pieces {
		if off < p.out {
			break
		}
		last = p.src + min(off-p.out, p.srcLen)
	}
	return last
}

// lifted is filter or path text with its value filters and URNs taken out.
type lifted struct {
	outer  textMap
	inner  []*textMap // the value filters, in the order of their brackets
	urns   []string   // the URNs, by placeholder number
	starts []int      // where each value filter starts in the source
}

const (
	valueFilterPlaceholder = "vf"
	urnPlaceholder         = "u"
)

// lift takes the value filters and URNs out of s.
func lift(s string) (*lifted, error) {
	l := &lifted{}
	var cur *textMap // the value filter being read, nil outside brackets
	var attr string  // the word before the open bracket
	prevWord := ""
	pos := 0
	for _, t := range tokenize(s) {
		start := pos
		pos += len(t.text)
		switch t.kind {
		case '[':
			if cur != nil {
				return nil, &syntaxError{"value filters cannot be nested"}
			}
			l.outer.emit("[", start, 1)
			cur, attr = &textMap{}, prevWord
			l.inner = append(l.inner, cur)
			l.starts = append(l.starts, pos)
			continue
		case ']':
			if cur != nil {
				if strings.TrimSpace(cur.String()) == "" {
					if attr == "" {
						return nil, &syntaxError{"a value filter is empty"}
					}
					return nil, &syntaxError{fmt.Sprintf("the value filter of %s is empty", attr)}
				}
				ph := fmt.Sprintf("%s%d pr", valueFilterPlaceholder, len(l.inner)-1)
				l.outer.emit(ph, l.starts[len(l.starts)-1], start-l.starts[len(l.starts)-1])
				l.outer.emit("]", start, 1)
				cur = nil
				continue
			}
		case 'w':
			prevWord = t.text
			if i := strings.LastIndexByte(t.text, ':'); i > 0 && i < len(t.text)-1 {
				ph := fmt.Sprintf("%s%d:", urnPlaceholder, len(l.urns))
				l.urns = append(l.urns, t.text[:i])
				out := &l.outer
				if cur != nil {
					out = cur
				}
				out.emit(ph, start, i+1)
				out.emit(t.text[i+1:], start+i+1, len(t.text)-i-1)
				continue
			}
		}
		if cur != nil {
			cur.emit(t.text, start, len(t.text))
		} else {
			l.outer.emit(t.text, start, len(t.text))
		}
	}
	if cur != nil {
		return nil, &syntaxError{"a value filter is not closed by ]"}
	}
	return l, nil
}

func recoverParse(err *error) {
	if r := recover(); r != nil {
		*err = &syntaxError{"unparsable expression"}
	}
}

// libraryOffset reads the offset of a library error ("parse conflict [00:008]: ...").
func libraryOffset(err error) (int, bool) {
	msg := err.Error()
	i := strings.Index(msg, "[")
	if i < 0 {
		return 0, false
	}
	j := strings.Index(msg[i:], "]")
	if j < 0 {
		return 0, false
	}
	_, col, ok := strings.Cut(msg[i+1:i+j], ":")
	if !ok {
		return 0, false
	}
	n, err2 := strconv.Atoi(col)
	return n, err2 == nil
}

// mapError maps a library error to the source text (every piece of m knows its place in it).
func mapError(err error, m *textMap) error {
	if _, ok := err.(*syntaxError); ok {
		return err
	}
	if off, ok := libraryOffset(err); ok {
		return &offsetError{m.source(off)}
	}
	return &syntaxError{"syntax error"}
}

func parseLibraryFilter(m *textMap) (expr filter.Expression, err error) {
	defer recoverParse(&err)
	expr, err = filter.ParseFilter([]byte(m.String()))
	if err != nil {
		return nil, mapError(err, m)
	}
	return expr, nil
}

func parseLibraryPath(m *textMap) (p filter.Path, err error) {
	defer recoverParse(&err)
	p, err = filter.ParsePath([]byte(m.String()))
	if err != nil {
		return filter.Path{}, mapError(err, m)
	}
	return p, nil
}

// parseFilterText parses filter text (already through normalizeFilter).
func parseFilterText(s string) (filter.Expression, error) {
	l, err := lift(s)
	if err != nil {
		return nil, err
	}
	expr, err := parseLibraryFilter(&l.outer)
	if err != nil {
		return nil, err
	}
	inner, err := l.parseInner()
	if err != nil {
		return nil, err
	}
	r := restorer{l: l, inner: inner}
	expr = r.expr(expr)
	if r.err == nil && r.next != len(inner) {
		r.err = &syntaxError{"syntax error"}
	}
	if r.err != nil {
		return nil, r.err
	}
	return expr, nil
}

// parsePathText parses a PATCH path (already through normalizeFilter).
func parsePathText(s string) (filter.Path, error) {
	l, err := lift(s)
	if err != nil {
		return filter.Path{}, err
	}
	p, err := parseLibraryPath(&l.outer)
	if err != nil {
		return filter.Path{}, err
	}
	inner, err := l.parseInner()
	if err != nil {
		return filter.Path{}, err
	}
	r := restorer{l: l, inner: inner}
	r.attrPath(&p.AttributePath)
	if p.ValueExpression != nil {
		p.ValueExpression = r.valueFilter(p.ValueExpression)
	}
	if r.err == nil && r.next != len(inner) {
		r.err = &syntaxError{"syntax error"}
	}
	if r.err != nil {
		return filter.Path{}, r.err
	}
	return p, nil
}

func (l *lifted) parseInner() ([]filter.Expression, error) {
	out := make([]filter.Expression, len(l.inner))
	for i := range l.inner {
		e, err := parseLibraryFilter(l.inner[i])
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// restorer puts the value filters and URNs back into a parsed tree.
type restorer struct {
	l     *lifted
	inner []filter.Expression
	next  int // the next value filter, in bracket order
	err   error
}

func (r *restorer) expr(e filter.Expression) filter.Expression {
	switch t := e.(type) {
	case *filter.LogicalExpression:
		t.Left = r.expr(t.Left)
		t.Right = r.expr(t.Right)
	case *filter.NotExpression:
		t.Expression = r.expr(t.Expression)
	case *filter.AttributeExpression:
		r.attrPath(&t.AttributePath)
	case *filter.ValuePath:
		r.attrPath(&t.AttributePath)
		t.ValueFilter = r.valueFilter(t.ValueFilter)
	}
	return e
}

// valueFilter returns the value filter a placeholder stands for, with its URNs restored.
func (r *restorer) valueFilter(e filter.Expression) filter.Expression {
	ph, ok := e.(*filter.AttributeExpression)
	want := valueFilterPlaceholder + strconv.Itoa(r.next)
	if !ok || ph.Operator != filter.PR || ph.AttributePath.AttributeName != want || r.next >= len(r.inner) {
		if r.err == nil {
			r.err = &syntaxError{"syntax error"}
		}
		return e
	}
	vf := r.inner[r.next]
	r.next++
	return r.expr(vf)
}

func (r *restorer) attrPath(p *filter.AttributePath) {
	if p.URIPrefix == nil {
		return
	}
	n, err := strconv.Atoi(strings.TrimPrefix(*p.URIPrefix, urnPlaceholder))
	if err != nil || !strings.HasPrefix(*p.URIPrefix, urnPlaceholder) || n < 0 || n >= len(r.l.urns) {
		// every URN of the text was replaced: any other prefix is not one of ours
		if r.err == nil {
			r.err = &syntaxError{"syntax error"}
		}
		return
	}
	uri := r.l.urns[n]
	p.URIPrefix = &uri
}
