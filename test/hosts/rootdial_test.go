package hosts

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// rootDialers open connections from whatever namespace the calling thread is
// in (the root namespace, for any goroutine but DialContext's).
var rootDialers = map[string]bool{
	"net.Dial": true, "net.DialTimeout": true, "net.DialTCP": true, "net.DialUDP": true,
	"net.DialIP": true, "net.Dialer": true, "http.Get": true, "http.Head": true, "http.Post": true,
	"http.PostForm": true, "http.DefaultClient": true, "http.DefaultTransport": true,
}

// TestNoRootDials: outside dialIn (which runs on a thread inside a
// namespace and checks its socket), the package's code never names a way to
// open a connection from the root namespace. An http.Client or Transport
// must get its DialContext from a Host.
func TestNoRootDials(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var found []string
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if ok && fn.Name.Name == "dialIn" && file == "dial.go" {
				continue
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && rootDialers[id.Name+"."+n.Sel.Name] {
						found = append(found, fset.Position(n.Pos()).String()+": "+id.Name+"."+n.Sel.Name)
					}
				case *ast.CompositeLit:
					// A Transport without DialContext dials from the root namespace.
					if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Transport" {
						if id, ok := sel.X.(*ast.Ident); ok && id.Name == "http" && !hasField(n, "DialContext") {
							found = append(found, fset.Position(n.Pos()).String()+": http.Transport without DialContext")
						}
					}
				}
				return true
			})
		}
	}
	if len(found) > 0 {
		t.Fatalf("ways to dial from the root namespace:\n%s", strings.Join(found, "\n"))
	}
}

func hasField(lit *ast.CompositeLit, name string) bool {
	for _, e := range lit.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == name {
				return true
			}
		}
	}
	return false
}
