package console

import (
	"bytes"
	"cmp"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cairnhq/cairn/problem"
)

// refreshSeconds is how often the recent-traces page reloads itself.
const refreshSeconds = 5

// newUIHandler routes the pages, static assets and JSON API.
func (c *Console) newUIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", c.ui(c.indexPage))
	mux.Handle("GET /traces/{traceID}", c.ui(c.tracePage))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	mux.Handle("GET /api/traces", c.ui(c.apiTraces))
	mux.Handle("GET /api/traces/{traceID}", c.ui(c.apiTrace))
	mux.Handle("GET /api/traces/{traceID}/critical-path", c.ui(c.apiCriticalPath))
	mux.Handle("GET /api/services", c.ui(c.apiServices))
	mux.Handle("GET /api/logs", c.ui(c.apiLogs))
	mux.Handle("GET /api/metrics", c.ui(c.apiMetrics))
	mux.Handle("GET /api/stats", c.ui(c.apiStats))
	c.registerAPI(mux)
	c.registerPages(mux)
	mux.Handle("GET /", c.ui(func(w http.ResponseWriter, r *http.Request) error {
		return problem.Errorf(http.StatusNotFound, "console: no page at %s", r.URL.Path)
	}))
	return securityHeaders(mux)
}

// securityHeaders forbids scripts, framing and MIME sniffing: the pages
// show data from untrusted senders.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// ui adapts a page or API handler: errors become problem+json under /api/
// and an HTML error page elsewhere.
func (c *Console) ui(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		he := problem.From(err)
		problem.Log(c.log, slog.LevelDebug, r, he, err)
		if strings.HasPrefix(r.URL.Path, "/api/") {
			problem.Write(w, r, he)
			return
		}
		var buf bytes.Buffer
		data := errorPage{Code: he.Status, Title: http.StatusText(he.Status), Message: he.Detail}
		if terr := c.pages.ExecuteTemplate(&buf, "error.html", data); terr != nil {
			http.Error(w, he.Detail, he.Status)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(he.Status)
		_, _ = w.Write(buf.Bytes())
	})
}

// render answers 200 with the named template; see renderStatus.
func (c *Console) render(w http.ResponseWriter, name string, data any) error {
	return c.renderStatus(w, http.StatusOK, name, data)
}

// renderStatus executes the named template into a buffer first, so a
// template failure can still be answered with a clean 500, then answers
// code with it.
func (c *Console) renderStatus(w http.ResponseWriter, code int, name string, data any) error {
	var buf bytes.Buffer
	if err := c.pages.ExecuteTemplate(&buf, name, data); err != nil {
		return fmt.Errorf("console: render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
	return nil
}

type errorPage struct {
	Code    int
	Title   string
	Message string
}

type traceData struct {
	Summary traceSummary
	Rows    []waterfallRow
	Ticks   []tick
	Logs    []*logRecord
}

// waterfallRow is one span of the waterfall: its depth in the span tree
// and its bar's offset and width in percent of the trace duration.
type waterfallRow struct {
	*span
	Depth  int
	Offset float64
	Width  float64
	// OnPath is set for a span on the trace's critical path, and Path
	// holds the stretches of its bar that are: the time the span ran on
	// its own while the root waited for it.
	OnPath bool
	Path   []pathBar
}

// pathBar is a stretch of a bar on the critical path, in percent of the
// trace duration.
type pathBar struct {
	Offset, Width float64
}

// tick labels the time axis above the waterfall.
type tick struct {
	Percent float64
	Label   string
}

func (c *Console) tracePage(w http.ResponseWriter, r *http.Request) error {
	id, err := traceIDParam(r)
	if err != nil {
		return err
	}
	spans, logs, err := c.lookupTrace(id)
	if err != nil {
		return err
	}
	t := &trace{id: id, spans: spans, index: make(map[spanID]int), services: make(map[string]int)}
	t.recompute()
	data := traceData{Summary: t.summary(), Logs: logs}
	data.Rows = waterfall(spans, t.start, data.Summary.Duration)
	markCriticalPath(data.Rows, criticalPathOf(spans), t.start, data.Summary.Duration)
	for i := range 5 {
		d := data.Summary.Duration * time.Duration(i) / 4
		data.Ticks = append(data.Ticks, tick{Percent: float64(i) * 25, Label: formatDuration(d)})
	}
	return c.render(w, "trace.html", data)
}

// markCriticalPath marks the rows of the spans on path, with the stretches
// of their bars that are on it.
func markCriticalPath(rows []waterfallRow, path criticalPath, start time.Time, total time.Duration) {
	if total <= 0 {
		return
	}
	bars := make(map[spanID][]pathBar, len(path.SpanIDs))
	for _, seg := range path.Segments {
		if seg.SelfTime <= 0 {
			continue
		}
		off := clamp(float64(seg.Start.Sub(start))/float64(total)*100, 0, 100)
		bars[seg.SpanID] = append(bars[seg.SpanID], pathBar{Offset: off, Width: clamp(float64(seg.SelfTime)/float64(total)*100, 0.2, 100-off)})
	}
	for i := range rows {
		if b, ok := bars[rows[i].SpanID]; ok {
			rows[i].OnPath, rows[i].Path = true, b
		}
	}
}

// waterfall orders spans depth-first along parent links, children by start
// time, and positions their bars relative to the trace's start and total
// duration. Spans whose parent is missing start their own subtree; spans
// caught in a parent cycle are appended at depth zero.
func waterfall(spans []*span, start time.Time, total time.Duration) []waterfallRow {
	present := make(map[spanID]bool, len(spans))
	for _, sp := range spans {
		present[sp.SpanID] = true
	}
	children := make(map[spanID][]*span)
	var roots []*span
	for _, sp := range spans { // spans are sorted by start already
		if sp.ParentSpanID.IsZero() || !present[sp.ParentSpanID] || sp.ParentSpanID == sp.SpanID {
			roots = append(roots, sp)
			continue
		}
		children[sp.ParentSpanID] = append(children[sp.ParentSpanID], sp)
	}
	if total <= 0 {
		total = 1
	}
	rows := make([]waterfallRow, 0, len(spans))
	visited := make(map[spanID]bool, len(spans))
	type item struct {
		sp    *span
		depth int
	}
	walk := func(root *span) {
		stack := []item{{root, 0}}
		for len(stack) > 0 {
			it := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[it.sp.SpanID] {
				continue
			}
			visited[it.sp.SpanID] = true
			rows = append(rows, bar(it.sp, it.depth, start, total))
			kids := children[it.sp.SpanID]
			for i := len(kids) - 1; i >= 0; i-- { // reversed: the earliest child pops first
				stack = append(stack, item{kids[i], it.depth + 1})
			}
		}
	}
	for _, sp := range roots {
		walk(sp)
	}
	for _, sp := range spans {
		if !visited[sp.SpanID] {
			walk(sp)
		}
	}
	return rows
}

func bar(sp *span, depth int, start time.Time, total time.Duration) waterfallRow {
	row := waterfallRow{span: sp, Depth: depth}
	if !sp.Start.IsZero() && !start.IsZero() {
		row.Offset = clamp(float64(sp.Start.Sub(start))/float64(total)*100, 0, 100)
	}
	row.Width = clamp(float64(sp.Duration)/float64(total)*100, 0.2, 100-row.Offset)
	return row
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(v, hi)) }

func sortLogsByTime(logs []*logRecord) {
	slices.SortStableFunc(logs, func(a, b *logRecord) int { return a.Time.Compare(b.Time) })
}

// templateFuncs are the helpers the page templates call.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"duration":   formatDuration,
		"bytes":      bytesString,
		"clock":      func(t time.Time) string { return formatTime(t, "15:04:05.000") },
		"datetime":   func(t time.Time) string { return formatTime(t, "2006-01-02 15:04:05.000 MST") },
		"value":      valueString,
		"pct":        func(f float64) string { return fmt.Sprintf("%.3f", f) },
		"indent":     func(depth int) int { return min(depth, 40) * 14 },
		"join":       strings.Join,
		"severity":   func(l *logRecord) string { return l.severity() },
		"sevClass":   severityClass,
		"headData":   func(title string, refresh int) headData { return headData{title, refresh} },
		"attrsData":  func(title string, a attrs) attrsData { return attrsData{title, a} },
		"pathEscape": url.PathEscape,
		"number":     formatNumber,
		"percent":    formatPercent,
	}
}

// headData feeds the shared "head" template.
type headData struct {
	Title   string
	Refresh int // seconds between reloads; 0 for none
}

// attrsData feeds the "attrs" table template.
type attrsData struct {
	Title string
	Attrs attrs
}

// severityClass buckets a log severity number for styling.
func severityClass(n int32) string {
	switch {
	case n >= 17:
		return "error"
	case n >= 13:
		return "warn"
	case n >= 9:
		return "info"
	case n >= 1:
		return "debug"
	}
	return "unset"
}

func formatTime(t time.Time, layout string) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(layout)
}

// formatDuration renders d with three significant digits in a unit that
// suits its size: 850µs, 12.3ms, 1.25s.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return trimFloat(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return trimFloat(float64(d)/float64(time.Millisecond)) + "ms"
	case d < time.Minute:
		return trimFloat(d.Seconds()) + "s"
	}
	return d.Round(time.Second).String()
}

// bytesString renders an int or int64 count of bytes for the templates.
func bytesString(n any) string {
	switch n := n.(type) {
	case int:
		return formatBytes(n)
	case int64:
		return formatBytes(n)
	}
	return fmt.Sprint(n)
}

// formatBytes renders n bytes in binary units: 512 B, 1.5 KiB, 12.3 MiB.
func formatBytes[T int | int64](n T) string {
	f := float64(n)
	for _, unit := range []string{"B", "KiB", "MiB", "GiB"} {
		if f < 1024 || unit == "GiB" {
			if unit == "B" {
				return fmt.Sprintf("%d B", int64(n))
			}
			return trimFloat(f) + " " + unit
		}
		f /= 1024
	}
	return ""
}

func trimFloat(f float64) string {
	prec := 2
	switch {
	case f >= 100:
		prec = 0
	case f >= 10:
		prec = 1
	}
	s := fmt.Sprintf("%.*f", prec, f)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return cmp.Or(s, "0")
}
