package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
)

// jsonLines decodes each line of s as a JSON object.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogTraceCorrelation(t *testing.T) {
	h := newHarness(t, nil)
	ctx, span := h.tel.TracerProvider().Tracer("test").Start(t.Context(), "work")
	h.tel.Logger().InfoContext(ctx, "inside", "k", "v")
	span.End()
	h.tel.Logger().Info("outside")

	sc := span.SpanContext()
	lines := jsonLines(t, h.out.String())
	if len(lines) != 2 {
		t.Fatalf("console has %d lines, want 2:\n%s", len(lines), h.out)
	}
	if lines[0][TraceIDKey] != sc.TraceID().String() || lines[0][SpanIDKey] != sc.SpanID().String() {
		t.Errorf("console record = %v, want trace_id %s span_id %s", lines[0], sc.TraceID(), sc.SpanID())
	}
	if _, ok := lines[1][TraceIDKey]; ok {
		t.Errorf("record outside a span has a trace_id: %v", lines[1])
	}

	recs := h.logs.Records()
	if len(recs) != 2 {
		t.Fatalf("LoggerProvider got %d records, want 2", len(recs))
	}
	if recs[0].TraceID() != sc.TraceID() || recs[0].SpanID() != sc.SpanID() {
		t.Errorf("OTel record trace %s span %s, want %s %s", recs[0].TraceID(), recs[0].SpanID(), sc.TraceID(), sc.SpanID())
	}
	if recs[0].Body().AsString() != "inside" || recs[0].Severity() != otellog.SeverityInfo {
		t.Errorf("OTel record = %q at %v, want \"inside\" at INFO", recs[0].Body().AsString(), recs[0].Severity())
	}
	// The bridge records trace context in the record's fields, not as
	// extra attributes.
	recs[0].WalkAttributes(func(kv attribute.KeyValue) bool {
		if kv.Key == TraceIDKey || kv.Key == SpanIDKey {
			t.Errorf("OTel record has attribute %s", kv.Key)
		}
		return true
	})
	if recs[1].TraceID().IsValid() {
		t.Errorf("OTel record outside a span has trace id %s", recs[1].TraceID())
	}
	if got := recs[0].InstrumentationScope().Name; got != ScopeName {
		t.Errorf("scope = %q, want %q", got, ScopeName)
	}
}

func TestLogAttrsAndGroups(t *testing.T) {
	h := newHarness(t, nil)
	l := h.tel.Logger().With("svc", "order").WithGroup("req").With("id", 7)
	l.Info("hello", "path", "/x")

	lines := jsonLines(t, h.out.String())
	want := map[string]any{"svc": "order", "req": map[string]any{"id": float64(7), "path": "/x"}}
	got := map[string]any{"svc": lines[0]["svc"], "req": lines[0]["req"]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("console attrs (-want +got):\n%s", diff)
	}

	recs := h.logs.Records()
	attrs := map[string]string{}
	recs[0].WalkAttributes(func(kv attribute.KeyValue) bool {
		attrs[string(kv.Key)] = kv.Value.String()
		return true
	})
	if attrs["svc"] != "order" || !strings.Contains(attrs["req"], "id") || !strings.Contains(attrs["req"], "path") {
		t.Errorf("OTel attrs = %v, want svc and group req{id,path}", attrs)
	}
}

func TestLogLevelGates(t *testing.T) {
	h := newHarness(t, nil)
	h.tel.Logger().Debug("hidden")
	h.tel.Level().Set(slog.LevelDebug)
	h.tel.Logger().Debug("shown")
	if out := h.out.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("console = %q, want only the record after the level change", out)
	}
	if n := len(h.logs.Records()); n != 1 {
		t.Errorf("LoggerProvider got %d records, want 1", n)
	}
}

func TestLevelFromEnv(t *testing.T) {
	t.Setenv(LevelEnv, "warn")
	h := newHarness(t, nil)
	if got := h.tel.Level().Level(); got != slog.LevelWarn {
		t.Errorf("level = %v, want WARN", got)
	}
	t.Setenv(LevelEnv, "chatty")
	if _, err := Setup(t.Context(), Config{LogOutput: io.Discard, TracesExporter: "none", MetricsExporter: "none", LogsExporter: "none"}); err == nil || !strings.Contains(err.Error(), `"chatty"`) {
		t.Errorf("Setup error = %v, want one naming \"chatty\"", err)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "Warning": slog.LevelWarn,
		"error": slog.LevelError, "-4": slog.LevelDebug, "12": 12, " info+2 ": slog.LevelInfo + 2,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "loud", "info+", "1.5"} {
		if _, err := ParseLevel(in); err == nil || !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseLevel(%q) error = %v, want one naming the value", in, err)
		}
	}
}

// TestFanoutConformance runs the standard slog handler conformance suite
// over the fan-out with a JSON console handler.
func TestFanoutConformance(t *testing.T) {
	var buf bytes.Buffer
	h := &fanout{level: slog.LevelInfo, console: newFormatHandler(LogFormatJSON, &buf, false, nil)}
	results := func() []map[string]any {
		var ms []map[string]any
		for line := range bytes.Lines(buf.Bytes()) {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		return ms
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Error(err)
	}
}

func TestConsoleOffAndText(t *testing.T) {
	// LogOutput io.Discard builds no console handler at all.
	h := newHarness(t, func(c *Config) { c.LogOutput = io.Discard })
	if f := h.tel.Logger().Handler().(*fanout); f.console != nil {
		t.Errorf("console handler built for io.Discard")
	}
	h2 := newHarness(t, func(c *Config) { c.LogFormat = LogFormatText })
	ctx, span := h2.tel.TracerProvider().Tracer("t").Start(t.Context(), "s")
	h2.tel.Logger().InfoContext(ctx, "text")
	span.End()
	if out := h2.out.String(); !strings.Contains(out, "msg=text") || !strings.Contains(out, "trace_id="+span.SpanContext().TraceID().String()) {
		t.Errorf("text output = %q", out)
	}
}

func TestLogAllocations(t *testing.T) {
	// A record below the level costs nothing.
	h := newHarness(t, func(c *Config) { c.LogOutput = io.Discard })
	l := h.tel.Logger()
	if n := testing.AllocsPerRun(100, func() { l.Debug("x", "k", 1) }); n != 0 {
		t.Errorf("disabled Debug allocates %v times, want 0", n)
	}
}

// TestLogConcurrentLevelChanges exercises the shared level under the race
// detector: records flow while the level changes over the admin endpoint.
func TestLogConcurrentLevelChanges(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LogOutput = io.Discard })
	admin := h.tel.AdminHandler()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			l := h.tel.Logger().With("worker", i)
			for j := range 200 {
				l.Debug("tick", "j", j)
			}
		})
	}
	for _, lvl := range []string{"debug", "info", "debug", "error"} {
		if rec := do(t, admin, "PUT", "/loglevel", lvl); rec.Code != 200 {
			t.Errorf("PUT %s = %d", lvl, rec.Code)
		}
	}
	wg.Wait()
}
