package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/scim-operator/scim-operator"

// kindOfReconciler attributes a condition or event to the kind whose reconciler sets it.
var kindOfReconciler = map[string]string{
	"ScimConfigReconciler": "ScimConfig",
	"OrgMemberReconciler":  "OrgMember",
	"OrgGroupReconciler":   "OrgGroup",
}

// kinds are the kinds with a reference page, docs/reference/<kind>.md.
func kinds() []string {
	var out []string
	for _, k := range kindOfReconciler {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// phasesNeverReadyTrue are the member phases that string(m.Status.Phase) never carries
// into Ready: OrgMemberReconciler.summarize copies the phase only when Synced is True with
// reason Synced, and a Pending member (conclude: "the backend does not show the member
// yet") or a Failed one (backendError) is Synced=False.
var phasesNeverReadyTrue = map[string]bool{"Pending": true, "Failed": true}

// sink is a helper whose arguments are a condition's or an event's reason and type.
type sink struct {
	reason, typ int    // argument positions (-1: none)
	fixedType   string // the condition type the helper always sets
	event       bool
}

var sinks = map[string]sink{
	"setCond":      {reason: 4, typ: 2},
	"setCondition": {reason: 3, typ: 1},
	"synced":       {reason: 2, typ: -1, fixedType: "Synced"},
	// permanentFailure(conds, gen, reason, msg, again, interval, now) sets Synced
	"permanentFailure": {reason: 2, typ: -1, fixedType: "Synced"},
	"event":            {reason: 2, typ: 1, event: true},
	"Eventf":           {reason: 3, typ: 2, event: true}, // events.EventRecorder.Eventf(obj, related, type, reason, action, note, ...)
}

// special reasons an expression can stand for.
const (
	anyBackendReason = "<backend.ReasonOf>"
	anyPhase         = "<phase>"
)

type found struct {
	kind, typ, reason string // typ "" when the code does not say
	pos               string
}

type backendReason struct {
	classes  map[string]bool
	backends map[string]bool
}

type scan struct {
	t      *testing.T
	fset   *token.FileSet
	consts map[string]map[string]string // import path -> constant -> string value
	conds  []found
	events []found
	// backend reasons by reason
	backend    map[string]*backendReason
	configWide map[string]bool
	errs       []string
}

// TestReferenceListsEveryReason holds docs/reference to the code: every condition type,
// condition reason and event reason the controllers set is in the reference page of its
// kind, every reason a backend error carries is in docs/reference/backend-reasons.md with
// its class, scope and backend, and nothing is documented that the code never sets.
//
// The reasons are read from the source with go/ast, not from a list someone keeps:
//
//   - controllers/: the reason (and, where it is written down, the type) of every call of
//     setCond, setCondition and synced, every metav1.Condition literal, every assignment
//     to a Condition's Reason, and the reason and type of every event (Recorder.Eventf and
//     the event helpers), attributed to a kind by the reconciler whose method sets it.
//   - everywhere else in api/, cmd/, controllers/ and internal/: every backend error
//     constructor (NewPermanent, NewTransient, NewRateLimited, an Error literal) with its
//     class, the fallback of backend.ReasonOf, and the reasons backend.ConfigWide lists.
//
// A reason is a string literal, a constant (of any package of this module), a local
// variable (every value assigned to it), backend.ReasonOf(err) (any backend reason: the
// page needs a row of that condition type linking backend-reasons.md), the reason of
// another condition (copied: documented where it is first set, and the copying type may
// list any reason of its kind), or string(x.Phase) (any member phase but those in
// phasesNeverReadyTrue). Anything else fails the test: teach it the new shape rather than
// leave a reason unchecked.
//
// The tables it reads: "## Conditions" (columns Type, Status, Reason; one type and the
// reasons as code spans), "## Events" (Reason, Type) in each kind's page, and "## Reasons"
// (Reason, Class, Scope, Backend) in backend-reasons.md.
func TestReferenceListsEveryReason(t *testing.T) {
	s := scanCode(t)
	for _, e := range s.errs {
		t.Error(e)
	}
	if len(s.conds) == 0 || len(s.events) == 0 || len(s.backend) == 0 || len(s.configWide) == 0 {
		t.Fatalf("the scan found %d condition reasons, %d event reasons, %d backend reasons and %d config-wide reasons: "+
			"the code moved, teach this test where", len(s.conds), len(s.events), len(s.backend), len(s.configWide))
	}
	conditionTypes := s.constsMatching(module+"/api/v1alpha1", "Condition")
	phases := s.constsOfType(module+"/api/v1alpha1", "MemberPhase")
	if len(phases) == 0 {
		t.Fatal("no MemberPhase constants found in api/v1alpha1")
	}

	for _, kind := range kinds() {
		t.Run(kind, func(t *testing.T) {
			file := filepath.Join("docs", "reference", strings.ToLower(kind)+".md")
			doc := readDoc(t, file)
			checkConditions(t, file, doc, kind, s, conditionTypes, phases)
			checkEvents(t, file, doc, kind, s)
		})
	}
	t.Run("backend", func(t *testing.T) {
		checkBackendReasons(t, s)
	})
}

func checkConditions(t *testing.T, file, doc, kind string, s *scan, conditionTypes map[string]string, phases []string) {
	rows := tableOf(t, file, doc, "## Conditions", "Type", "Status", "Reason")
	docPairs := map[[2]string]bool{} // (type, reason)
	docTypes := map[string]bool{}
	backendRowTypes := map[string]bool{} // types with a row that points at backend-reasons.md
	known := map[string]bool{}
	for _, v := range conditionTypes {
		known[v] = true
	}
	for _, r := range rows {
		types := ticks(r["Type"])
		if len(types) != 1 {
			t.Errorf("%s: Conditions row %q: want one `Type`", file, r["Type"])
			continue
		}
		typ := types[0]
		if !known[typ] {
			t.Errorf("%s: condition type %q is not one of api/v1alpha1's Condition constants %v", file, typ, sortedKeys(known))
		}
		docTypes[typ] = true
		if strings.Contains(r["Reason"], "backend-reasons.md") {
			backendRowTypes[typ] = true
		}
		for _, reason := range ticks(r["Reason"]) {
			docPairs[[2]string{typ, reason}] = true
		}
	}

	codePairs := map[[2]string]bool{}
	codeAnyType := map[string]bool{}
	backendTypes := map[string]bool{}
	copyTypes := map[string]bool{} // types that copy the reason of another condition of the kind
	for _, c := range s.conds {
		if c.kind != kind {
			continue
		}
		reasons := []string{c.reason}
		switch c.reason {
		case copiedReason:
			copyTypes[c.typ] = true
			continue
		case anyBackendReason:
			if c.typ == "" {
				t.Errorf("%s: backend reasons set on a condition whose type the test cannot tell", c.pos)
			}
			backendTypes[c.typ] = true
			if !backendRowTypes[c.typ] {
				t.Errorf("%s: %s sets %s to any backend reason (%s): %s needs a `%s` row whose reason links backend-reasons.md",
					file, kind, c.typ, c.pos, file, c.typ)
			}
			continue
		case anyPhase:
			reasons = nil
			for _, p := range phases {
				if !phasesNeverReadyTrue[p] {
					reasons = append(reasons, p)
				}
			}
		}
		if c.typ != "" && !docTypes[c.typ] {
			t.Errorf("%s: %s sets condition %s (%s), which the Conditions table does not list", file, kind, c.typ, c.pos)
		}
		for _, reason := range reasons {
			if c.typ == "" {
				codeAnyType[reason] = true
				found := false
				for p := range docPairs {
					found = found || p[1] == reason
				}
				if !found {
					t.Errorf("%s: %s sets a condition reason %q (%s) that the Conditions table does not list", file, kind, reason, c.pos)
				}
				continue
			}
			codePairs[[2]string{c.typ, reason}] = true
			if !docPairs[[2]string{c.typ, reason}] {
				t.Errorf("%s: %s sets %s with reason %q (%s): the Conditions table has no `%s` row with reason `%s`",
					file, kind, c.typ, reason, c.pos, c.typ, reason)
			}
		}
	}
	// the other way: every documented row is set by the code
	setByKind := func(reason string) bool {
		for p := range codePairs {
			if p[1] == reason {
				return true
			}
		}
		return codeAnyType[reason] || (len(backendTypes) > 0 && s.backend[reason] != nil)
	}
	for p := range docPairs {
		if codePairs[p] || codeAnyType[p[1]] || (backendTypes[p[0]] && s.backend[p[1]] != nil) {
			continue
		}
		if copyTypes[p[0]] && setByKind(p[1]) {
			continue // a condition that carries the reason of another one, documented with it
		}
		t.Errorf("%s: the Conditions table lists `%s` with reason `%s`, which %s never sets (stale row?)", file, p[0], p[1], kind)
	}
	for typ := range backendRowTypes {
		if !backendTypes[typ] {
			t.Errorf("%s: the `%s` rows point at backend reasons, but %s never sets %s from a backend error", file, typ, kind, typ)
		}
	}
}

func checkEvents(t *testing.T, file, doc, kind string, s *scan) {
	rows := tableOf(t, file, doc, "## Events", "Reason", "Type")
	docEvents := map[[2]string]bool{} // (reason, type)
	for _, r := range rows {
		reasons, types := ticks(r["Reason"]), ticks(r["Type"])
		if len(reasons) != 1 || len(types) != 1 {
			t.Errorf("%s: Events row %q | %q: want one `Reason` and one `Type`", file, r["Reason"], r["Type"])
			continue
		}
		docEvents[[2]string{reasons[0], types[0]}] = true
	}
	codeEvents := map[[2]string]bool{}
	for _, e := range s.events {
		if e.kind != kind {
			continue
		}
		k := [2]string{e.reason, e.typ}
		codeEvents[k] = true
		if !docEvents[k] {
			t.Errorf("%s: %s records a %s event %q (%s) that the Events table does not list", file, kind, e.typ, e.reason, e.pos)
		}
	}
	for k := range docEvents {
		if !codeEvents[k] {
			t.Errorf("%s: the Events table lists a %s event `%s` that %s never records (stale row?)", file, k[1], k[0], kind)
		}
	}
}

func checkBackendReasons(t *testing.T, s *scan) {
	file := filepath.Join("docs", "reference", "backend-reasons.md")
	doc := readDoc(t, file)
	rows := tableOf(t, file, doc, "## Reasons", "Reason", "Class", "Scope", "Backend")
	documented := map[string]bool{}
	for _, r := range rows {
		reasons := ticks(r["Reason"])
		if len(reasons) != 1 {
			t.Errorf("%s: row %q: want one `Reason`", file, r["Reason"])
			continue
		}
		reason := reasons[0]
		if documented[reason] {
			t.Errorf("%s: `%s` has two rows", file, reason)
		}
		documented[reason] = true
		code := s.backend[reason]
		if code == nil {
			t.Errorf("%s: `%s` is documented, but no backend error carries it (stale row?)", file, reason)
			continue
		}
		if got, want := words(r["Class"]), sortedKeys(code.classes); !slices.Equal(got, want) {
			t.Errorf("%s: `%s` class %v, the code makes it %v", file, reason, got, want)
		}
		want := sortedKeys(code.backends)
		if code.backends["any"] {
			want = []string{"any"} // raised for every backend: naming one too would say less
		}
		if got := words(r["Backend"]); !slices.Equal(got, want) {
			t.Errorf("%s: `%s` backend %v, the code raises it in %v", file, reason, got, want)
		}
		wantScope := "member"
		if s.configWide[reason] {
			wantScope = "config"
		}
		if got := strings.Join(words(r["Scope"]), " "); got != wantScope {
			t.Errorf("%s: `%s` scope %q, want %q (backend.ConfigWide)", file, reason, got, wantScope)
		}
	}
	for _, reason := range sortedKeys(s.backend) {
		if !documented[reason] {
			t.Errorf("%s: backend errors carry reason %q (class %v, backend %v), which the Reasons table does not list",
				file, reason, sortedKeys(s.backend[reason].classes), sortedKeys(s.backend[reason].backends))
		}
	}
	for reason := range s.configWide {
		if s.backend[reason] == nil {
			t.Errorf("backend.ConfigWide lists %q, which no backend error carries", reason)
		}
	}
}

// --- the code side --------------------------------------------------------------------

func scanCode(t *testing.T) *scan {
	s := &scan{t: t, fset: token.NewFileSet(), consts: map[string]map[string]string{},
		backend: map[string]*backendReason{}, configWide: map[string]bool{}}
	for _, dir := range []string{"api", "cmd", "controllers", "internal"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(s.fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(repoRoot, path)
			s.file(filepath.ToSlash(rel), f)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// fileCtx is what evaluating an expression needs: the file's imports, its package, the
// function around it.
type fileCtx struct {
	pkg     string            // import path of the file's package
	imports map[string]string // local name -> import path
	fn      *ast.FuncDecl
}

func (s *scan) file(rel string, f *ast.File) {
	fc := &fileCtx{pkg: module + "/" + filepath.ToSlash(filepath.Dir(rel)), imports: map[string]string{}}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := p[strings.LastIndex(p, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		fc.imports[name] = p
	}
	inBackend := strings.HasPrefix(rel, "internal/backend/")
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		fc := *fc
		fc.fn = fn
		if inBackend && fn.Name.Name == "ConfigWide" && fn.Recv == nil {
			s.configWideCases(fn)
		}
		if inBackend && fn.Name.Name == "ReasonOf" && fn.Recv == nil {
			// unclassified errors: ClassOf calls them Transient
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				if ret, ok := n.(*ast.ReturnStmt); ok {
					for _, r := range ret.Results {
						if lit, ok := r.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, _ := strconv.Unquote(lit.Value)
							s.addBackend(v, "Transient", backendOf(rel))
						}
					}
				}
				return true
			})
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				s.call(rel, &fc, n)
			case *ast.CompositeLit:
				s.literal(rel, &fc, n)
			case *ast.AssignStmt:
				s.assign(rel, &fc, n)
			}
			return true
		})
	}
}

// backendOf names the backend a file under internal/backend raises its errors for.
func backendOf(rel string) string {
	switch dir := filepath.Base(filepath.Dir(rel)); dir {
	case "backend", "registry":
		return "any"
	default:
		return dir
	}
}

func (s *scan) fail(n ast.Node, format string, a ...any) {
	s.errs = append(s.errs, s.pos(n)+": "+fmt.Sprintf(format, a...))
}

func (s *scan) pos(n ast.Node) string {
	p := s.fset.Position(n.Pos())
	rel, err := filepath.Rel(repoRoot, p.Filename)
	if err != nil {
		rel = p.Filename
	}
	return fmt.Sprintf("%s:%d", filepath.ToSlash(rel), p.Line)
}

func calleeName(call *ast.CallExpr) (name string, recv ast.Expr) {
	switch f := call.Fun.(type) {
	case *ast.Ident:
		return f.Name, nil
	case *ast.SelectorExpr:
		return f.Sel.Name, f.X
	}
	return "", nil
}

var backendConstructors = map[string]string{"NewPermanent": "Permanent", "NewTransient": "Transient", "NewRateLimited": "RateLimited"}

func (s *scan) call(rel string, fc *fileCtx, call *ast.CallExpr) {
	name, recv := calleeName(call)
	if class, ok := backendConstructors[name]; ok && s.isBackendPkg(fc, recv) {
		if !strings.HasPrefix(rel, "internal/backend/") {
			s.fail(call, "a backend error made outside internal/backend: backend-reasons.md cannot say which backend raises it")
			return
		}
		if name == "NewRateLimited" {
			return // its Error literal in errors.go carries the reason
		}
		s.backendReasonArg(rel, fc, call, call.Args[0], class)
		return
	}
	sk, ok := sinks[name]
	if !ok {
		return
	}
	if name == "Eventf" {
		sel, ok := recv.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Recorder" {
			return
		}
	}
	if name == "synced" || name == "event" || name == "setCondition" {
		if recv == nil {
			return // a function of another package that happens to share the name
		}
	}
	if len(call.Args) <= sk.reason || len(call.Args) <= sk.typ {
		s.fail(call, "%s called with %d arguments: update the sinks table", name, len(call.Args))
		return
	}
	var typeExpr ast.Expr
	if sk.typ >= 0 {
		typeExpr = call.Args[sk.typ]
	}
	s.record(fc, call, sk.event, typeExpr, sk.fixedType, call.Args[sk.reason])
}

func (s *scan) literal(rel string, fc *fileCtx, lit *ast.CompositeLit) {
	typeName := exprString(lit.Type)
	switch {
	case typeName == "metav1.Condition":
		var reason, typ ast.Expr
		for _, el := range lit.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			switch exprString(kv.Key) {
			case "Reason":
				reason = kv.Value
			case "Type":
				typ = kv.Value
			}
		}
		if reason != nil {
			s.record(fc, lit, false, typ, "", reason)
		}
	case strings.HasPrefix(rel, "internal/backend/") && (typeName == "Error" || typeName == "backend.Error"):
		var reason ast.Expr
		class := ""
		for _, el := range lit.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				switch exprString(kv.Key) {
				case "Reason":
					reason = kv.Value
				case "Class":
					class = strings.TrimPrefix(exprString(kv.Value), "backend.")
				}
			}
		}
		if reason != nil {
			s.backendReasonArg(rel, fc, lit, reason, class)
		}
	}
}

// assign records `c.Reason = x` (and the tuple forms) on a condition.
func (s *scan) assign(_ string, fc *fileCtx, as *ast.AssignStmt) {
	for i, l := range as.Lhs {
		sel, ok := l.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Reason" {
			continue
		}
		if len(as.Rhs) != len(as.Lhs) {
			s.fail(as, "a Reason assigned from a multi-value call: the test cannot tell its values")
			continue
		}
		if interned(as.Rhs[i], l) {
			continue // the same text, as one copy the cache shares: no reason is set
		}
		// the type, when the condition variable was made by a literal that names it
		var typ ast.Expr
		if id, ok := sel.X.(*ast.Ident); ok {
			ast.Inspect(fc.fn.Body, func(n ast.Node) bool {
				a, ok := n.(*ast.AssignStmt)
				if !ok {
					return true
				}
				for j, l := range a.Lhs {
					if lid, ok := l.(*ast.Ident); ok && lid.Name == id.Name && j < len(a.Rhs) {
						if lit, ok := a.Rhs[j].(*ast.CompositeLit); ok {
							for _, el := range lit.Elts {
								if kv, ok := el.(*ast.KeyValueExpr); ok && exprString(kv.Key) == "Type" {
									typ = kv.Value
								}
							}
						}
					}
				}
				return true
			})
		}
		s.record(fc, as, false, typ, "", as.Rhs[i])
	}
}

// interned tells whether rhs is the cache's interning of lhs itself (internal/cachepolicy:
// `c.Reason = t.shared(c.Reason)`), which stores the text lhs already holds.
func interned(rhs, lhs ast.Expr) bool {
	call, ok := rhs.(*ast.CallExpr)
	if !ok || len(call.Args) != 1 {
		return false
	}
	fn, ok := call.Fun.(*ast.SelectorExpr)
	return ok && fn.Sel.Name == "shared" && exprString(call.Args[0]) == exprString(lhs)
}

// record evaluates one reason (and type) set on a condition or an event.
func (s *scan) record(fc *fileCtx, at ast.Node, event bool, typeExpr ast.Expr, fixedType string, reasonExpr ast.Expr) {
	reasons, params, err := s.eval(fc, reasonExpr, 0)
	if err != nil {
		s.fail(at, "reason %s: %v", exprString(reasonExpr), err)
		return
	}
	if len(params) > 0 {
		_, helper := sinks[fc.fn.Name.Name]
		if helper {
			return // the helper's own body: its callers are checked
		}
		s.fail(at, "reason %s comes from parameter %v of %s: add %s to the sinks table of this test",
			exprString(reasonExpr), params, fc.fn.Name.Name, fc.fn.Name.Name)
		return
	}
	kind := ""
	if fc.fn.Recv != nil && len(fc.fn.Recv.List) == 1 {
		kind = kindOfReconciler[strings.TrimPrefix(exprString(fc.fn.Recv.List[0].Type), "*")]
	}
	if kind == "" {
		s.fail(at, "a reason set outside the ScimConfig, OrgMember and OrgGroup reconcilers (in %s): the test cannot tell whose reference page lists it",
			fc.fn.Name.Name)
		return
	}
	typ := fixedType
	if typeExpr != nil {
		types, tparams, err := s.eval(fc, typeExpr, 0)
		switch {
		case err != nil:
			s.fail(at, "type %s: %v", exprString(typeExpr), err)
			return
		case len(tparams) > 0 || len(types) != 1:
			s.fail(at, "type %s: want one value, got %v (parameters %v)", exprString(typeExpr), types, tparams)
			return
		}
		typ = types[0]
	}
	for _, r := range reasons {
		if r == copiedReason && event {
			s.fail(at, "an event reason copied from a condition: the test cannot tell its values")
			continue
		}
		f := found{kind: kind, typ: typ, reason: r, pos: s.pos(at)}
		if event {
			s.events = append(s.events, f)
		} else {
			s.conds = append(s.conds, f)
		}
	}
}

func (s *scan) backendReasonArg(rel string, fc *fileCtx, at ast.Node, e ast.Expr, class string) {
	reasons, params, err := s.eval(fc, e, 0)
	if err != nil {
		s.fail(at, "backend reason %s: %v", exprString(e), err)
		return
	}
	if len(params) > 0 {
		if _, ctor := backendConstructors[fc.fn.Name.Name]; ctor {
			return // the constructor's own body
		}
		s.fail(at, "backend reason %s comes from parameter %v of %s: the test cannot tell its values", exprString(e), params, fc.fn.Name.Name)
		return
	}
	if class == "" {
		s.fail(at, "a backend Error literal without a Class")
		return
	}
	for _, r := range reasons {
		if r == copiedReason || r == anyBackendReason || r == anyPhase {
			s.fail(at, "a backend reason that is not a fixed word: %s", exprString(e))
			continue
		}
		s.addBackend(r, class, backendOf(rel))
	}
}

func (s *scan) addBackend(reason, class, backend string) {
	b := s.backend[reason]
	if b == nil {
		b = &backendReason{classes: map[string]bool{}, backends: map[string]bool{}}
		s.backend[reason] = b
	}
	b.classes[class] = true
	b.backends[backend] = true
}

// configWideCases reads the reasons backend.ConfigWide answers true for.
func (s *scan) configWideCases(fn *ast.FuncDecl) {
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		cc, ok := n.(*ast.CaseClause)
		if !ok || len(cc.Body) != 1 {
			return true
		}
		ret, ok := cc.Body[0].(*ast.ReturnStmt)
		if !ok || len(ret.Results) != 1 || exprString(ret.Results[0]) != "true" {
			return true
		}
		for _, e := range cc.List {
			if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				v, _ := strconv.Unquote(lit.Value)
				s.configWide[v] = true
			} else {
				s.fail(e, "backend.ConfigWide case %s is not a string literal", exprString(e))
			}
		}
		return true
	})
}

func (s *scan) isBackendPkg(fc *fileCtx, recv ast.Expr) bool {
	if recv == nil {
		return fc.pkg == module+"/internal/backend"
	}
	id, ok := recv.(*ast.Ident)
	return ok && fc.imports[id.Name] == module+"/internal/backend"
}

const copiedReason = "<copied>"

// eval returns the string values e can have, or the parameters of the function around it
// that it comes from.
func (s *scan) eval(fc *fileCtx, e ast.Expr, depth int) (vals []string, params []string, err error) {
	if depth > 10 {
		return nil, nil, fmt.Errorf("too deep")
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return nil, nil, fmt.Errorf("not a string")
		}
		v, err := strconv.Unquote(e.Value)
		return []string{v}, nil, err
	case *ast.ParenExpr:
		return s.eval(fc, e.X, depth+1)
	case *ast.Ident:
		if isParam(fc.fn, e.Name) {
			return nil, []string{e.Name}, nil
		}
		if rhs, ok := localValues(fc.fn, e.Name); ok {
			for _, r := range rhs {
				v, p, err := s.eval(fc, r, depth+1)
				if err != nil {
					return nil, nil, fmt.Errorf("local %s: %w", e.Name, err)
				}
				vals, params = append(vals, v...), append(params, p...)
			}
			return vals, params, nil
		}
		if v, ok := s.constsOf(fc.pkg)[e.Name]; ok {
			return []string{v}, nil, nil
		}
		return nil, nil, fmt.Errorf("%s is neither a parameter, a local variable nor a string constant of %s", e.Name, fc.pkg)
	case *ast.SelectorExpr:
		if e.Sel.Name == "Reason" {
			return []string{copiedReason}, nil, nil
		}
		if id, ok := e.X.(*ast.Ident); ok {
			p, imported := fc.imports[id.Name]
			switch {
			case imported && p == "k8s.io/api/core/v1" && e.Sel.Name == "EventTypeNormal":
				return []string{"Normal"}, nil, nil
			case imported && p == "k8s.io/api/core/v1" && e.Sel.Name == "EventTypeWarning":
				return []string{"Warning"}, nil, nil
			case imported && strings.HasPrefix(p, module+"/"):
				if v, ok := s.constsOf(p)[e.Sel.Name]; ok {
					return []string{v}, nil, nil
				}
			}
		}
		return nil, nil, fmt.Errorf("%s is not a string constant of this module", exprString(e))
	case *ast.CallExpr:
		name, recv := calleeName(e)
		if name == "ReasonOf" && s.isBackendPkg(fc, recv) {
			return []string{anyBackendReason}, nil, nil
		}
		if name == "string" && recv == nil && len(e.Args) == 1 {
			if sel, ok := e.Args[0].(*ast.SelectorExpr); ok && sel.Sel.Name == "Phase" {
				return []string{anyPhase}, nil, nil
			}
		}
		return nil, nil, fmt.Errorf("a call the test does not know: %s", exprString(e))
	}
	return nil, nil, fmt.Errorf("an expression the test does not know: %s", exprString(e))
}

func isParam(fn *ast.FuncDecl, name string) bool {
	for _, f := range fn.Type.Params.List {
		for _, n := range f.Names {
			if n.Name == name {
				return true
			}
		}
	}
	return false
}

// localValues returns every expression assigned to the local variable name in fn (every
// variable of that name: a shadowing one only adds values to check).
func localValues(fn *ast.FuncDecl, name string) ([]ast.Expr, bool) {
	var out []ast.Expr
	declared := false
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			for i, l := range n.Lhs {
				if id, ok := l.(*ast.Ident); ok && id.Name == name {
					declared = true
					if len(n.Rhs) == len(n.Lhs) {
						out = append(out, n.Rhs[i])
					} else {
						out = append(out, &ast.BadExpr{From: n.Pos(), To: n.End()})
					}
				}
			}
		case *ast.ValueSpec:
			for i, id := range n.Names {
				if id.Name == name {
					declared = true
					if i < len(n.Values) {
						out = append(out, n.Values[i])
					}
				}
			}
		}
		return true
	})
	return out, declared
}

// constsOf returns the string constants of one package of this module.
func (s *scan) constsOf(importPath string) map[string]string {
	if c, ok := s.consts[importPath]; ok {
		return c
	}
	c := map[string]string{}
	s.consts[importPath] = c
	dir := filepath.Join(repoRoot, filepath.FromSlash(strings.TrimPrefix(importPath, module+"/")))
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	refs := map[string]string{} // const X = Y
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					switch v := vs.Values[i].(type) {
					case *ast.BasicLit:
						if v.Kind == token.STRING {
							c[n.Name], _ = strconv.Unquote(v.Value)
						}
					case *ast.Ident:
						refs[n.Name] = v.Name
					}
				}
			}
		}
	}
	for name, ref := range refs {
		if v, ok := c[ref]; ok {
			c[name] = v
		}
	}
	return c
}

// constsMatching returns the string constants of a package whose names start with prefix.
func (s *scan) constsMatching(importPath, prefix string) map[string]string {
	out := map[string]string{}
	for n, v := range s.constsOf(importPath) {
		if strings.HasPrefix(n, prefix) {
			out[n] = v
		}
	}
	return out
}

// constsOfType returns the values of the constants of one named type in a package.
func (s *scan) constsOfType(importPath, typeName string) []string {
	dir := filepath.Join(repoRoot, filepath.FromSlash(strings.TrimPrefix(importPath, module+"/")))
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var out []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				if vs.Type == nil || exprString(vs.Type) != typeName {
					continue
				}
				for i := range vs.Names {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						out = append(out, v)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case nil:
		return ""
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.BasicLit:
		return e.Value
	case *ast.CallExpr:
		args := make([]string, len(e.Args))
		for i, a := range e.Args {
			args[i] = exprString(a)
		}
		return exprString(e.Fun) + "(" + strings.Join(args, ", ") + ")"
	case *ast.ParenExpr:
		return "(" + exprString(e.X) + ")"
	case *ast.UnaryExpr:
		return e.Op.String() + exprString(e.X)
	case *ast.CompositeLit:
		return exprString(e.Type) + "{...}"
	}
	return fmt.Sprintf("%T", e)
}

// --- the docs side --------------------------------------------------------------------

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableOf returns the rows of the first table under the heading, as column -> cell, and
// fails when the table lacks one of the columns.
func tableOf(t *testing.T, file, doc, heading string, columns ...string) []map[string]string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	start := slices.Index(lines, heading)
	if start < 0 {
		t.Fatalf("%s has no line %q", file, heading)
	}
	var header []string
	var rows []map[string]string
	for _, l := range lines[start+1:] {
		if strings.HasPrefix(l, "## ") || strings.HasPrefix(l, "# ") {
			break
		}
		if !strings.HasPrefix(strings.TrimSpace(l), "|") {
			if header != nil {
				break // the end of the first table
			}
			continue
		}
		cells := splitRow(l)
		switch {
		case header == nil:
			header = cells
		case strings.Trim(strings.Join(cells, ""), "-: ") == "":
			// the delimiter row
		default:
			row := map[string]string{}
			for i, h := range header {
				if i < len(cells) {
					row[h] = cells[i]
				}
			}
			rows = append(rows, row)
		}
	}
	for _, c := range columns {
		if !slices.Contains(header, c) {
			t.Fatalf("%s: the table under %q has columns %q, want a %q column", file, heading, header, c)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: the table under %q has no rows", file, heading)
	}
	return rows
}

// splitRow splits a Markdown table row on the pipes that are not escaped.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			cur.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(line[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

var tickRE = regexp.MustCompile("`([^`]+)`")

// ticks returns the code spans of a cell.
func ticks(cell string) []string {
	var out []string
	for _, m := range tickRE.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// words returns the sorted words of a cell, without punctuation or code fences.
func words(cell string) []string {
	f := strings.FieldsFunc(cell, func(r rune) bool { return r == ',' || r == ' ' || r == '`' || r == '/' })
	sort.Strings(f)
	return slices.Compact(f)
}
