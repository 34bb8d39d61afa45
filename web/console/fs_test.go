package console

import (
	"html/template"
	"io/fs"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestFSContents(t *testing.T) {
	for _, name := range []string{
		"static/console.css", "templates/layout.html", "templates/index.html", "templates/trace.html", "templates/error.html",
		"templates/services.html", "templates/service.html", "templates/logs.html", "templates/metrics.html", "templates/metric.html",
		"templates/critical-path.html", "templates/stats.html",
	} {
		if b, err := fs.ReadFile(FS, name); err != nil || len(b) == 0 {
			t.Errorf("ReadFile(FS, %q) = %d bytes, %v; want content", name, len(b), err)
		}
	}
}

// TestNoExternalResources guards the console's promise to work offline:
// no asset may load anything from another origin.
func TestNoExternalResources(t *testing.T) {
	err := fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(FS, path)
		if err != nil {
			return err
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if containsFold(string(b), bad) {
				t.Errorf("%s references %q; assets must be self-contained", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTemplatesParse(t *testing.T) {
	// The console adds its functions before parsing; stubs suffice here.
	funcs := template.FuncMap{}
	for _, name := range []string{"duration", "clock", "datetime", "value", "pct", "indent", "join", "severity", "sevClass", "headData", "attrsData", "pathEscape", "number", "percent", "bytes", "navLinks"} {
		funcs[name] = func(...any) string { return "" }
	}
	if _, err := template.New("").Funcs(funcs).ParseFS(FS, "templates/*.html"); err != nil {
		t.Fatalf("ParseFS: %v", err)
	}
}

// containsFold reports whether s contains the lowercase sub, ignoring case.
func containsFold(s, sub string) bool { return strings.Contains(strings.ToLower(s), sub) }
