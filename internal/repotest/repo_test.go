package repotest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// moduleRoot returns the directory of the go.mod above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// pkg is what the checks need to know about one directory of Go files.
type pkg struct {
	dir      string
	name     string
	doc      string // the package doc comment, from whichever file has one
	hasTests bool
	testMain bool // some _test.go file defines TestMain calling goleak.VerifyTestMain
}

// packages parses every Go package of the module rooted at root, skipping
// nested modules (bench/), testdata and hidden directories.
func packages(t *testing.T, root string) []pkg {
	t.Helper()
	var out []pkg
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root {
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module, checked by its own tests
			}
		}
		p, ok, err := parseDir(path)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func parseDir(dir string) (pkg, bool, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return pkg{}, false, err
	}
	p := pkg{dir: dir}
	found := false
	fset := token.NewFileSet()
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return pkg{}, false, err
		}
		if strings.HasSuffix(n, "_test.go") {
			p.hasTests = true
			if definesLeakCheckingTestMain(f) {
				p.testMain = true
			}
			continue
		}
		found = true
		p.name = f.Name.Name
		if f.Doc != nil && p.doc == "" {
			p.doc = f.Doc.Text()
		}
	}
	if !found && p.hasTests {
		// A directory of tests only; it still needs its TestMain.
		return p, true, nil
	}
	return p, found, nil
}

// definesLeakCheckingTestMain reports whether f declares TestMain and calls
// goleak.VerifyTestMain in it.
func definesLeakCheckingTestMain(f *ast.File) bool {
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "TestMain" || fn.Recv != nil || fn.Body == nil {
			continue
		}
		calls := false
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if ok && sel.Sel.Name == "VerifyTestMain" {
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "goleak" {
					calls = true
				}
			}
			return !calls
		})
		return calls
	}
	return false
}

func TestEveryPackageHasDoc(t *testing.T) {
	root := moduleRoot(t)
	pkgs := packages(t, root)
	if len(pkgs) < 2 {
		t.Fatalf("found %d packages under %s; the walk is broken", len(pkgs), root)
	}
	for _, p := range pkgs {
		if p.name == "" {
			continue // tests only
		}
		rel, _ := filepath.Rel(root, p.dir)
		want := "Package " + p.name + " "
		if p.name == "main" {
			want = "Command " + filepath.Base(p.dir) + " "
		}
		if !strings.HasPrefix(p.doc, want) {
			t.Errorf("%s: package doc comment = %q, want one starting %q", rel, firstLine(p.doc), want)
		}
	}
}

func TestEveryTestedPackageChecksLeaks(t *testing.T) {
	root := moduleRoot(t)
	for _, p := range packages(t, root) {
		if p.hasTests && !p.testMain {
			rel, _ := filepath.Rel(root, p.dir)
			t.Errorf("%s: has tests but no TestMain calling goleak.VerifyTestMain", rel)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// TestChecksCatchOffenders proves the two checks above can fail.
func TestChecksCatchOffenders(t *testing.T) {
	p, ok, err := parseDir(filepath.Join("testdata", "nodoc"))
	if err != nil || !ok {
		t.Fatalf("parseDir(nodoc) = %v, %v", ok, err)
	}
	if p.doc != "" {
		t.Errorf("nodoc: doc = %q, want none", p.doc)
	}
	p, ok, err = parseDir(filepath.Join("testdata", "noleakcheck"))
	if err != nil || !ok {
		t.Fatalf("parseDir(noleakcheck) = %v, %v", ok, err)
	}
	if !p.hasTests || p.testMain {
		t.Errorf("noleakcheck: hasTests, testMain = %v, %v, want true, false", p.hasTests, p.testMain)
	}
	p, _, err = parseDir(".")
	if err != nil || !p.testMain {
		t.Errorf("repotest itself: testMain = %v, %v, want true", p.testMain, err)
	}
}

// TestShopArrowsPointInward checks the hexagonal rule of every shop service
// (LAYOUT.md): domain imports nothing of the project; app imports only its
// own service's domain and the cqrs buses; adapters never import another
// service.
func TestShopArrowsPointInward(t *testing.T) {
	root := moduleRoot(t)
	const module = "github.com/cairnhq/cairn/"
	services, err := filepath.Glob(filepath.Join(root, "internal", "shop", "*"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, svc := range services {
		name := filepath.Base(svc)
		own := module + "internal/shop/" + name + "/"
		rings := map[string]func(imp string) bool{
			"domain": func(imp string) bool { return !strings.HasPrefix(imp, module) },
			// app may use cqrs, the application-level buses its use cases
			// run on; no adapter, store or transport.
			"app": func(imp string) bool {
				return !strings.HasPrefix(imp, module) || imp == own+"domain" || imp == module+"cqrs"
			},
			"adapters": func(imp string) bool {
				return !strings.HasPrefix(imp, module+"internal/shop/") || strings.HasPrefix(imp, own)
			},
		}
		for ring, allowed := range rings {
			dir := filepath.Join(svc, ring)
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					if os.IsNotExist(err) {
						return filepath.SkipDir
					}
					return err
				}
				if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
					return nil
				}
				f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
				if err != nil {
					return err
				}
				checked++
				for _, is := range f.Imports {
					imp := strings.Trim(is.Path.Value, `"`)
					if !allowed(imp) {
						rel, _ := filepath.Rel(root, path)
						t.Errorf("%s (%s ring of %s) imports %s: arrows must point inward", rel, ring, name, imp)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no shop service files checked; the walk is broken")
	}
}

// TestExportedNamesHaveDocs checks that every exported top-level name of a
// library package (everything outside internal/ and cmd/), and every
// exported method of an exported type, has a doc comment, and that a
// function's comment starts with its name.
func TestExportedNamesHaveDocs(t *testing.T) {
	root := moduleRoot(t)
	for _, p := range packages(t, root) {
		rel, _ := filepath.Rel(root, p.dir)
		if p.name == "" || p.name == "main" || strings.HasPrefix(rel, "internal") || strings.HasPrefix(rel, "cmd") {
			continue
		}
		for _, problem := range undocumented(t, p.dir) {
			t.Errorf("%s: %s", rel, problem)
		}
	}
}

// undocumented lists the exported names in dir's non-test files that lack a
// doc comment, or whose function comment does not start with the name.
func undocumented(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if ast.IsGenerated(f) {
			continue // documented in its source (a .proto file), not in the generated Go
		}
		missing := func(id *ast.Ident, docs ...*ast.CommentGroup) {
			if !id.IsExported() {
				return
			}
			for _, d := range docs {
				if d != nil {
					return
				}
			}
			out = append(out, fmt.Sprintf("%s:%d: %s has no doc comment", filepath.Base(name), fset.Position(id.Pos()).Line, id.Name))
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil && !exportedReceiver(d.Recv) {
					continue // methods of unexported types are not part of the API
				}
				missing(d.Name, d.Doc)
				if d.Doc != nil && d.Name.IsExported() && !strings.HasPrefix(d.Doc.Text(), d.Name.Name+" ") {
					out = append(out, fmt.Sprintf("%s:%d: the doc of %s does not start with its name", filepath.Base(name), fset.Position(d.Pos()).Line, d.Name.Name))
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						missing(s.Name, s.Doc, d.Doc)
					case *ast.ValueSpec:
						for _, n := range s.Names {
							missing(n, s.Doc, s.Comment, d.Doc)
						}
					}
				}
			}
		}
	}
	return out
}

func exportedReceiver(recv *ast.FieldList) bool {
	rt := recv.List[0].Type
	if st, ok := rt.(*ast.StarExpr); ok {
		rt = st.X
	}
	switch x := rt.(type) {
	case *ast.IndexExpr: // generic receiver T[P]
		rt = x.X
	case *ast.IndexListExpr:
		rt = x.X
	}
	id, ok := rt.(*ast.Ident)
	return ok && id.IsExported()
}

func TestUndocumentedCatchesOffenders(t *testing.T) {
	got := undocumented(t, filepath.Join("testdata", "undocumented"))
	if len(got) != 2 || !strings.Contains(got[0], "Bare has no doc comment") || !strings.Contains(got[1], "the doc of Fn does not start with its name") {
		t.Errorf("undocumented(testdata/undocumented) = %q, want Bare and Fn reported", got)
	}
}
