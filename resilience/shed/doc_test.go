package shed

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocComments checks that the package has a package comment and that
// every exported top-level name and method has a doc comment starting with
// its name.
func TestDocComments(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	pkgDoc := false
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil && strings.HasPrefix(f.Doc.Text(), "Package shed ") {
			pkgDoc = true
		}
		check := func(id *ast.Ident, doc *ast.CommentGroup, group *ast.CommentGroup) {
			if !id.IsExported() {
				return
			}
			if doc == nil {
				doc = group
			}
			if doc == nil {
				t.Errorf("%s: %s has no doc comment", fset.Position(id.Pos()), id.Name)
			}
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil {
					// Methods of unexported types are not part of the API.
					rt := d.Recv.List[0].Type
					if st, ok := rt.(*ast.StarExpr); ok {
						rt = st.X
					}
					if id, ok := rt.(*ast.Ident); ok && !id.IsExported() {
						continue
					}
				}
				check(d.Name, d.Doc, nil)
				if d.Doc != nil && d.Name.IsExported() && !strings.HasPrefix(d.Doc.Text(), d.Name.Name+" ") {
					t.Errorf("%s: doc of %s does not start with its name", fset.Position(d.Pos()), d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						check(s.Name, s.Doc, d.Doc)
					case *ast.ValueSpec:
						for _, n := range s.Names {
							doc := s.Doc
							if doc == nil {
								doc = s.Comment
							}
							check(n, doc, d.Doc)
						}
					}
				}
			}
		}
	}
	if !pkgDoc {
		t.Error("no package comment starting \"Package shed \"")
	}
}
