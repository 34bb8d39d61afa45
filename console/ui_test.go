package console

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/problem"
	"github.com/google/go-cmp/cmp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// seed posts a small two-service trace with an error span, a hostile span
// name and a log record, and returns the trace id.
func seed(t *testing.T, c *Console) string {
	t.Helper()
	req := traceRequest(
		testSpan{service: "gateway", trace: 0xab, id: 1, name: "GET /checkout", startMS: 0, durMS: 40},
		testSpan{service: "order", trace: 0xab, id: 2, parent: 1, name: "PlaceOrder", startMS: 5, durMS: 30, err: true,
			attrs: map[string]string{"order.id": "o-42", "evil": `"><img src=x onerror=alert(1)>`}},
		testSpan{service: "order", trace: 0xab, id: 3, parent: 2, name: "<script>alert(1)</script>", startMS: 10, durMS: 5},
		testSpan{service: "order", trace: 0xcd, id: 4, name: "other trace", startMS: 100, durMS: 1},
	)
	if rec := postProto(t, c, "/v1/traces", req); rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/traces = %d", rec.Code)
	}
	logs := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "order")}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
			TimeUnixNano:   1_700_000_000_010_000_000,
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR,
			Body:           strAttr("", "payment declined <b>hard</b>").Value,
			TraceId:        fill[[]byte](0xab, 16),
			SpanId:         fill[[]byte](2, 8),
		}, {
			Body: strAttr("", "unrelated").Value,
		}}}},
	}}}
	if rec := postProto(t, c, "/v1/logs", logs); rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/logs = %d", rec.Code)
	}
	return hexID(0xab, 16)
}

func TestPages(t *testing.T) {
	c := New(Options{})
	id := seed(t, c)
	tests := []struct {
		target   string
		wantCode int
		want     []string // substrings of the body
		dontWant []string
	}{
		{"/", 200, []string{
			`href="/traces/` + id + `"`, "GET /checkout", "gateway", "1 error", "other trace",
			`http-equiv="refresh"`, "gateway, order",
		}, []string{"<script>alert"}},
		{"/?refresh=0", 200, []string{"GET /checkout", "Auto-refresh paused"}, []string{`http-equiv="refresh"`}},
		{"/?service=gateway", 200, []string{"GET /checkout", "auto-refresh off"}, []string{"other trace", `http-equiv="refresh"`}},
		{"/traces/" + id, 200, []string{
			"GET /checkout", "PlaceOrder", "&lt;script&gt;alert(1)&lt;/script&gt;", "o-42",
			`&#34;&gt;&lt;img src=x onerror=alert(1)&gt;`, "payment declined &lt;b&gt;hard&lt;/b&gt;",
			`id="span-` + hexID(2, 8) + `"`, `class="wf-row err crit"`, "ERROR", "40ms", "critical path",
			`id="endpoint-critical-path" href="/critical-path?service=gateway&amp;operation=GET%20%2fcheckout"`,
		}, []string{"<script>alert", "<img src=x", "<b>hard", "unrelated"}},
		{"/traces/" + strings.ToUpper(id), 200, []string{"PlaceOrder"}, nil},
		{"/traces/" + hexID(0xee, 16), 404, []string{"not found"}, nil},
		{"/traces/xyz", 400, []string{"want 32 hex digits"}, nil},
		{"/traces/" + hexID(0, 16), 400, []string{"all zeros"}, nil},
		{"/nope", 404, []string{"no page at /nope"}, nil},
		{"/?limit=0", 400, []string{"limit"}, nil},
		{"/static/console.css", 200, []string{".wf-bar"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := do(t, c.UIHandler(), http.MethodGet, tt.target, "", nil)
			body := rec.Body.String()
			if rec.Code != tt.wantCode {
				t.Fatalf("GET %s = %d, want %d\n%s", tt.target, rec.Code, tt.wantCode, body)
			}
			for _, s := range tt.want {
				if !strings.Contains(body, s) {
					t.Errorf("GET %s: body lacks %q", tt.target, s)
				}
			}
			for _, s := range tt.dontWant {
				if strings.Contains(body, s) {
					t.Errorf("GET %s: body contains %q", tt.target, s)
				}
			}
			if rec.Header().Get("Content-Security-Policy") == "" {
				t.Errorf("GET %s: no Content-Security-Policy header", tt.target)
			}
		})
	}
}

func TestWaterfallOrder(t *testing.T) {
	spans := []*span{ // sorted by start, as the store returns them
		mkSpan("a", 1, 1, 0, 0),
		mkSpan("a", 1, 2, 1, 1*time.Millisecond),
		mkSpan("a", 1, 4, 1, 2*time.Millisecond),
		mkSpan("a", 1, 3, 2, 3*time.Millisecond),
		mkSpan("a", 1, 6, 5, 4*time.Millisecond), // cycle 5 <-> 6
		mkSpan("a", 1, 5, 6, 5*time.Millisecond),
		mkSpan("a", 1, 7, 9, 6*time.Millisecond), // orphan
	}
	rows := waterfall(spans, testEpoch, 10*time.Millisecond)
	type row struct {
		ID     spanID
		Depth  int
		Offset float64
	}
	var got []row
	for _, r := range rows {
		got = append(got, row{r.SpanID, r.Depth, r.Offset})
	}
	want := []row{
		{sid(1), 0, 0}, {sid(2), 1, 10}, {sid(3), 2, 30}, {sid(4), 1, 20},
		{sid(7), 0, 60}, {sid(6), 0, 40}, {sid(5), 1, 50},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("waterfall rows (-want +got):\n%s", diff)
	}
	for _, r := range rows {
		if r.Width != 10 {
			t.Errorf("span %s width = %v%%, want 10%%", r.SpanID, r.Width)
		}
	}
}

func TestAPI(t *testing.T) {
	c := New(Options{})
	id := seed(t, c)

	var services struct{ Services []string }
	getJSON(t, c, "/api/services", 200, &services)
	if diff := cmp.Diff([]string{"gateway", "order"}, services.Services); diff != "" {
		t.Errorf("/api/services (-want +got):\n%s", diff)
	}

	var traces struct {
		Traces []struct {
			TraceID     string `json:"trace_id"`
			RootService string `json:"root_service"`
			RootName    string `json:"root_name"`
			SpanCount   int    `json:"span_count"`
			ErrorCount  int    `json:"error_count"`
			DurationNS  int64  `json:"duration_ns"`
			Services    []string
		}
	}
	getJSON(t, c, "/api/traces?service=gateway&limit=5", 200, &traces)
	if len(traces.Traces) != 1 {
		t.Fatalf("/api/traces?service=gateway: %d traces, want 1", len(traces.Traces))
	}
	if tr := traces.Traces[0]; tr.TraceID != id || tr.RootService != "gateway" || tr.RootName != "GET /checkout" ||
		tr.SpanCount != 3 || tr.ErrorCount != 1 || tr.DurationNS != int64(40*time.Millisecond) {
		t.Errorf("trace summary = %+v", tr)
	}
	getJSON(t, c, "/api/traces", 200, &traces)
	if len(traces.Traces) != 2 || traces.Traces[0].TraceID != hexID(0xcd, 16) {
		t.Errorf("/api/traces = %+v, want 2 traces, latest start first", traces.Traces)
	}

	var tr apiTrace
	getJSON(t, c, "/api/traces/"+id, 200, &tr)
	if len(tr.Spans) != 3 || len(tr.Logs) != 1 || tr.Spans[1].Status.Code != "error" || tr.Spans[1].Attributes["order.id"] != "o-42" {
		t.Errorf("/api/traces/%s = %+v", id, tr)
	}

	var logs struct {
		Logs []struct{ Body any }
	}
	getJSON(t, c, "/api/logs?trace_id="+id, 200, &logs)
	if len(logs.Logs) != 1 || logs.Logs[0].Body != "payment declined <b>hard</b>" {
		t.Errorf("/api/logs?trace_id = %+v", logs.Logs)
	}
	getJSON(t, c, "/api/logs?limit=1", 200, &logs)
	if len(logs.Logs) != 1 || logs.Logs[0].Body != "unrelated" {
		t.Errorf("/api/logs?limit=1 = %+v, want the newest record", logs.Logs)
	}

	var stats Stats
	getJSON(t, c, "/api/stats", 200, &stats)
	if stats != c.Stats() || stats.Spans.Stored != 4 || stats.Logs.Stored != 2 {
		t.Errorf("/api/stats = %+v, want %+v", stats, c.Stats())
	}

	var metrics struct{ Metrics []any }
	getJSON(t, c, "/api/metrics", 200, &metrics)
	if metrics.Metrics == nil || len(metrics.Metrics) != 0 {
		t.Errorf("/api/metrics = %+v, want an empty list", metrics)
	}

	for target, code := range map[string]int{
		"/api/traces/" + hexID(0xee, 16): 404,
		"/api/traces/zz":                 400,
		"/api/traces?limit=abc":          400,
		"/api/traces?limit=1001":         400,
		"/api/logs?trace_id=123":         400,
		"/api/nope":                      404,
	} {
		var p problem.Details
		getJSON(t, c, target, code, &p)
		if p.Status != code || !strings.HasPrefix(p.Detail, "console: ") {
			t.Errorf("GET %s problem = %+v, want status %d and a console: detail", target, p, code)
		}
	}
	if rec := do(t, c.UIHandler(), http.MethodPost, "/api/stats", "", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/stats = %d, want 405", rec.Code)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{999, "999ns"},
		{1500, "1.5µs"},
		{850 * time.Microsecond, "850µs"},
		{12345 * time.Microsecond, "12.3ms"},
		{40 * time.Millisecond, "40ms"},
		{1250 * time.Millisecond, "1.25s"},
		{90 * time.Second, "1m30s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%d) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestTracePageMarksCriticalPath: of two concurrent children, only the
// one the root waited for is marked on the critical path, with a stretch
// of its bar drawn over it.
func TestTracePageMarksCriticalPath(t *testing.T) {
	c := New(Options{})
	req := traceRequest(
		testSpan{service: "api", trace: 0x11, id: 1, name: "root", startMS: 0, durMS: 40},
		testSpan{service: "api", trace: 0x11, id: 2, parent: 1, name: "fast", startMS: 5, durMS: 15},
		testSpan{service: "api", trace: 0x11, id: 3, parent: 1, name: "slow", startMS: 5, durMS: 25},
	)
	if rec := postProto(t, c, "/v1/traces", req); rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/traces = %d", rec.Code)
	}
	rec := do(t, c.UIHandler(), http.MethodGet, "/traces/"+hexID(0x11, 16), "", nil)
	body := rec.Body.String()
	row := func(id byte) string {
		i := strings.Index(body, `id="span-`+hexID(id, 8)+`"`)
		if i < 0 {
			t.Fatalf("no row for span %d", id)
		}
		j := strings.LastIndex(body[:i], "<details")
		return body[j:i]
	}
	for id, want := range map[byte]bool{1: true, 2: false, 3: true} {
		if got := strings.Contains(row(id), "crit"); got != want {
			t.Errorf("span %d marked on the critical path = %v, want %v", id, got, want)
		}
	}
	// The slow child's stretch: from 5ms to 30ms of 40ms.
	if !strings.Contains(body, `class="wf-crit" style="left: 12.500%; width: 62.500%"`) {
		t.Errorf("no path stretch for the slow child at 12.5%%, 62.5%% in:\n%s", body)
	}
}
