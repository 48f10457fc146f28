// Command testlint fails on Gomega assertions that assert nothing: an Expect, Eventually
// or Consistently whose result is never given a matcher (Should, ShouldNot, To, ToNot,
// NotTo). `Eventually(f)` alone, or `Eventually(f).WithTimeout(t)`, polls nothing and
// passes whatever f returns; `Expect(err)` alone checks nothing. Such a line is a test
// that cannot fail. Run by `make verify`:
//
//	go run ./hack/testlint [dir ...]   (default: the repository)
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// assertionStarts begin a Gomega assertion; matchers end one.
var (
	assertionStarts = map[string]bool{
		"Expect": true, "ExpectWithOffset": true, "Ω": true,
		"Eventually": true, "EventuallyWithOffset": true,
		"Consistently": true, "ConsistentlyWithOffset": true,
	}
	matchers = map[string]bool{"Should": true, "ShouldNot": true, "To": true, "ToNot": true, "NotTo": true}
)

func main() {
	dirs := os.Args[1:]
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	var findings []string
	for _, d := range dirs {
		f, err := lintDir(d)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testlint:", err)
			os.Exit(2)
		}
		findings = append(findings, f...)
	}
	for _, f := range findings {
		fmt.Fprintln(os.Stderr, f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "testlint: %d assertion(s) without a matcher: add .Should(...)/.To(...) or remove them\n", len(findings))
		os.Exit(1)
	}
}

// lintDir checks every _test.go file under root (skipping .git, testdata and vendor).
func lintDir(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "vendor", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := lintFile(path)
		out = append(out, f...)
		return err
	})
	sort.Strings(out)
	return out, err
}

func lintFile(path string) ([]string, error) {
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	ast.Inspect(file, func(n ast.Node) bool {
		stmt, ok := n.(*ast.ExprStmt)
		if !ok {
			return true
		}
		call, ok := stmt.X.(*ast.CallExpr)
		if !ok {
			return true
		}
		if start, last := chain(call); start != "" && !matchers[last] {
			out = append(out, fmt.Sprintf("%s: %s(...) has no matcher: it asserts nothing", fset.Position(call.Pos()), start))
		}
		return true
	})
	return out, nil
}

// chain walks a call chain such as Eventually(f).WithTimeout(t).Should(m) down to its first
// call. It returns the assertion that starts it ("" if none) and the name of the last call.
func chain(call *ast.CallExpr) (start, last string) {
	last = funcName(call.Fun)
	for {
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			break // Expect(x): an identifier
		}
		inner, ok := sel.X.(*ast.CallExpr)
		if !ok {
			break // g.Expect(x) or gomega.Expect(x): a selector on a value or package
		}
		call = inner
	}
	if name := funcName(call.Fun); assertionStarts[name] {
		return name, last
	}
	return "", last
}

func funcName(e ast.Expr) string {
	switch f := e.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	case *ast.IndexExpr: // a generic instantiation
		return funcName(f.X)
	}
	return ""
}
