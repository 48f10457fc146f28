package controllers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every controller of the package is built by newController, so that each has
// its bounded retry backoff (MaxRetryBackoff): the drift controller,
// built with ctrl.NewControllerManagedBy directly, once ran with client-go's default
// backoff of up to 1,000 s, and nothing noticed. The options cannot be read back from a
// built controller, so the package's source is held to the one constructor: no other way
// to build a controller, and no WithOptions after it (it would replace the options whole).
func TestEveryControllerIsBuiltByNewController(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	built := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				switch fun := call.Fun.(type) {
				case *ast.SelectorExpr:
					// every way to build a controller, and WithOptions, which replaces the
					// options whole (the bounded backoff with them)
					switch fun.Sel.Name {
					case "NewControllerManagedBy", "ControllerManagedBy", "TypedControllerManagedBy",
						"New", "NewTyped", "NewUnmanaged", "NewTypedUnmanaged", "WithOptions":
						if id, ok := fun.X.(*ast.Ident); (fun.Sel.Name == "WithOptions" || ok && (id.Name == "ctrl" || id.Name == "builder" ||
							id.Name == "controller")) && fn.Name.Name != "newController" {
							t.Errorf("%s: %s calls %s outside newController: its controller would miss the bounded backoff",
								fset.Position(call.Pos()), fn.Name.Name, fun.Sel.Name)
						}
					}
				case *ast.Ident:
					if fun.Name == "newController" {
						built++
					}
				}
				return true
			})
		}
	}
	// the ScimConfig, OrgMember, OrgGroup and drift controllers
	if built != 4 {
		t.Errorf("newController is called %d times, want once for each of the 4 controllers", built)
	}
}
