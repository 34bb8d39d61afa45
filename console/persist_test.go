package console

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// openT opens a Console and closes it when the test ends (a no-op if the
// test closed it already).
func openT(t *testing.T, opts Options) *Console {
	t.Helper()
	c, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%q) error = %v", opts.DataDir, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closeT closes c, failing the test on an error.
func closeT(t *testing.T, c *Console) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
}

// persistedTraces is a two-span trace whose root has an attribute, an
// event and a link, and whose child failed.
func persistedTraces(tr byte) *coltracepb.ExportTraceServiceRequest {
	req := traceRequest(
		testSpan{service: "shop", trace: tr, id: 1, name: "GET /cart", durMS: 30, attrs: map[string]string{"http.route": "/cart"}},
		testSpan{service: "db", trace: tr, id: 2, parent: 1, name: "SELECT", startMS: 5, durMS: 10, err: true},
	)
	root := req.ResourceSpans[0].ScopeSpans[0].Spans[0]
	root.Events = []*tracepb.Span_Event{{
		TimeUnixNano: root.StartTimeUnixNano + 1e6, Name: "cache miss",
		Attributes: []*commonpb.KeyValue{strAttr("cache.key", "cart:42")},
	}}
	root.Links = []*tracepb.Span_Link{{TraceId: fill[[]byte](9, 16), SpanId: fill[[]byte](9, 8)}}
	return req
}

// persistedLogs is one log record of trace tr.
func persistedLogs(tr byte) *collogspb.ExportLogsServiceRequest {
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "shop")}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
			TimeUnixNano:   1_700_000_000_001_000_000,
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN,
			Body:           &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "low stock"}},
			Attributes:     []*commonpb.KeyValue{strAttr("sku", "A-1")},
			TraceId:        fill[[]byte](tr, 16),
			SpanId:         fill[[]byte](1, 8),
		}}}},
	}}}
}

// persistedMetrics is a gauge with two points and a sum with one.
func persistedMetrics() *colmetricspb.ExportMetricsServiceRequest {
	point := func(ms uint64, v float64) *metricspb.NumberDataPoint {
		return &metricspb.NumberDataPoint{
			TimeUnixNano: 1_700_000_000_000_000_000 + ms*1e6,
			Value:        &metricspb.NumberDataPoint_AsDouble{AsDouble: v},
			Attributes:   []*commonpb.KeyValue{strAttr("pool", "main")},
		}
	}
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", "shop")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: "pool.in_use", Unit: "1", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{
				DataPoints: []*metricspb.NumberDataPoint{point(0, 3), point(1000, 4)},
			}}},
			{Name: "orders", Unit: "1", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
				IsMonotonic:            true,
				DataPoints:             []*metricspb.NumberDataPoint{point(1000, 12)},
			}}},
		}}},
	}}}
}

// otlpJSON encodes m as OTLP/JSON: protojson with hex trace and span ids.
func otlpJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var hexIDs func(v any)
	hexIDs = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					raw, err := base64.StdEncoding.DecodeString(s)
					if err != nil {
						t.Fatalf("%s %q: %v", k, s, err)
					}
					v[k] = hex.EncodeToString(raw)
					continue
				}
				hexIDs(e)
			}
		case []any:
			for _, e := range v {
				hexIDs(e)
			}
		}
	}
	hexIDs(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exporter sends one export request to a Console by some transport.
type exporter func(t *testing.T, c *Console, path string, m proto.Message)

var exporters = map[string]exporter{
	"http-protobuf": func(t *testing.T, c *Console, path string, m proto.Message) {
		t.Helper()
		if rec := postProto(t, c, path, m); rec.Code != http.StatusOK {
			t.Fatalf("POST %s = %d %s", path, rec.Code, rec.Body)
		}
	},
	"http-json": func(t *testing.T, c *Console, path string, m proto.Message) {
		t.Helper()
		if rec := do(t, c.OTLPHandler(), http.MethodPost, path, jsonType, otlpJSON(t, m)); rec.Code != http.StatusOK {
			t.Fatalf("POST %s (JSON) = %d %s", path, rec.Code, rec.Body)
		}
	},
	"grpc": func(t *testing.T, c *Console, _ string, m proto.Message) {
		t.Helper()
		conn := serveGRPC(t, c)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var err error
		switch m := m.(type) {
		case *coltracepb.ExportTraceServiceRequest:
			_, err = coltracepb.NewTraceServiceClient(conn).Export(ctx, m)
		case *collogspb.ExportLogsServiceRequest:
			_, err = collogspb.NewLogsServiceClient(conn).Export(ctx, m)
		case *colmetricspb.ExportMetricsServiceRequest:
			_, err = colmetricspb.NewMetricsServiceClient(conn).Export(ctx, m)
		}
		if err != nil {
			t.Fatalf("gRPC export %T: %v", m, err)
		}
	},
}

// history is what the API shows of trace tr: the trace with its logs, the
// logs of the trace, the metrics and the services.
func history(t *testing.T, c *Console, tr byte) map[string]any {
	t.Helper()
	id := hexID(tr, 16)
	out := make(map[string]any)
	for _, target := range []string{"/api/traces/" + id, "/api/logs?trace_id=" + id, "/api/metrics", "/api/services"} {
		var v any
		getJSON(t, c, target, http.StatusOK, &v)
		out[target] = v
	}
	return out
}

// TestPersistRestartKeepsHistory: spans with their events, links and
// attributes, logs with their trace id and metric points survive Close and
// Open on the same directory, whichever transport brought them.
func TestPersistRestartKeepsHistory(t *testing.T) {
	for name, export := range exporters {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			c := openT(t, Options{DataDir: dir})
			export(t, c, "/v1/traces", persistedTraces(7))
			export(t, c, "/v1/logs", persistedLogs(7))
			export(t, c, "/v1/metrics", persistedMetrics())
			want := history(t, c, 7)
			closeT(t, c)

			// The history is not empty: the trace has its two spans, the
			// root its event and link, and the log its trace id.
			var tr apiTrace
			getJSON(t, c, "/api/traces/"+hexID(7, 16), http.StatusOK, &tr)
			if len(tr.Spans) != 2 || len(tr.Logs) != 1 {
				t.Fatalf("before restart: %d spans, %d logs; want 2, 1", len(tr.Spans), len(tr.Logs))
			}
			body, _ := json.Marshal(want)
			for _, s := range []string{"cache miss", "cart:42", hexID(9, 16), "/cart", "low stock", "pool.in_use"} {
				if !bytes.Contains(body, []byte(s)) {
					t.Errorf("before restart, the API does not show %q: %s", s, body)
				}
			}

			c2 := openT(t, Options{DataDir: dir})
			if diff := cmp.Diff(want, history(t, c2, 7)); diff != "" {
				t.Errorf("after restart (-before +after):\n%s", diff)
			}
			st := c2.Stats()
			p := st.Persist
			if p.ReplayedSpans != 2 || p.ReplayedLogs != 1 || p.ReplayedPoints != 3 || p.ReplaySkipped != 0 {
				t.Errorf("Persist = %+v, want 2 spans, 1 log, 3 points replayed, none skipped", p)
			}
			if st.Spans.Stored != 2 || st.Logs.Stored != 1 || st.MetricPoints.Stored != 3 {
				t.Errorf("stored %d spans, %d logs, %d points; want 2, 1, 3", st.Spans.Stored, st.Logs.Stored, st.MetricPoints.Stored)
			}
			if p.DatabaseBytes <= 0 {
				t.Errorf("Persist.DatabaseBytes = %d, want > 0", p.DatabaseBytes)
			}
		})
	}
}

// countRows returns the rows and items the database at dir holds for sig.
func countRows(t *testing.T, dir string, sig signal) (rows, items int64) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, DataFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(items), 0) FROM exports WHERE signal = ?`, sig.String()).Scan(&rows, &items); err != nil {
		t.Fatalf("count %s rows: %v", sig, err)
	}
	return rows, items
}

// execSQL runs statements on the closed database at dir.
func execSQL(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, DataFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestPersistReplayRespectsBounds: with more persisted than MaxSpans, the
// newest traces come back and the oldest do not, nothing is evicted to
// replay, and trimming keeps the database within twice the bound.
func TestPersistReplayRespectsBounds(t *testing.T) {
	const bound, sent = 10, 50
	dir := t.TempDir()
	c := openT(t, Options{DataDir: dir, MaxSpans: bound})
	for i := range sent {
		postProto(t, c, "/v1/traces", traceRequest(testSpan{service: "s", trace: byte(i + 1), id: 1, name: "op"}))
	}
	closeT(t, c)
	p := c.Stats().Persist
	rows, items := countRows(t, dir, sigTraces)
	if items < bound || items > 2*bound {
		t.Errorf("database holds %d spans, want %d..%d", items, bound, 2*bound)
	}
	if p.WrittenItems != sent || p.TrimmedItems != uint64(sent-items) {
		t.Errorf("Persist = %+v; want %d written, %d trimmed", p, sent, sent-items)
	}

	c2 := openT(t, Options{DataDir: dir, MaxSpans: bound})
	st := c2.Stats()
	if st.Persist.ReplayedSpans != bound || st.Spans.Stored != bound || st.Spans.Evicted != 0 {
		t.Errorf("after Open: replayed %d, stored %d, evicted %d; want %d, %d, 0 (of %d rows)",
			st.Persist.ReplayedSpans, st.Spans.Stored, st.Spans.Evicted, bound, bound, rows)
	}
	checkInvariant(t, "spans", st.Spans)
	for i := range sent {
		_, ok := c2.store.trace(tid(byte(i + 1)))
		if want := i >= sent-bound; ok != want {
			t.Errorf("trace %d of %d stored = %v, want %v", i+1, sent, ok, want)
		}
	}
	closeT(t, c2)

	// A smaller bound replays less and trims the database at Open.
	c3 := openT(t, Options{DataDir: dir, MaxSpans: 2})
	if st := c3.Stats(); st.Persist.ReplayedSpans != 2 || st.Persist.TrimmedItems == 0 {
		t.Errorf("Open with MaxSpans 2: Persist = %+v, want 2 replayed and some trimmed", st.Persist)
	}
	closeT(t, c3)
	if _, items := countRows(t, dir, sigTraces); items != 2 {
		t.Errorf("database holds %d spans after Open with MaxSpans 2, want 2", items)
	}
}

// TestPersistSkipsCorruptRow: a row that cannot be decoded is skipped,
// counted and logged with its id; the others are replayed.
func TestPersistSkipsCorruptRow(t *testing.T) {
	dir := t.TempDir()
	c := openT(t, Options{DataDir: dir})
	for i := range 3 {
		postProto(t, c, "/v1/traces", traceRequest(testSpan{service: "s", trace: byte(i + 1), id: 1, name: "op"}))
	}
	closeT(t, c)
	execSQL(t, dir, `UPDATE exports SET body = x'ffff' WHERE id = 2`)

	var logs bytes.Buffer
	c2 := openT(t, Options{DataDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if p := c2.Stats().Persist; p.ReplaySkipped != 1 || p.ReplayedSpans != 2 {
		t.Errorf("Persist = %+v, want 1 skipped, 2 spans replayed", p)
	}
	if !strings.Contains(logs.String(), "row=2") {
		t.Errorf("log does not name row 2:\n%s", logs.String())
	}
}

// TestPersistOpenErrors: Open refuses, naming the file, a database of a
// newer schema, a file that is not a database, and a database that
// another console holds.
func TestPersistOpenErrors(t *testing.T) {
	t.Run("newer schema", func(t *testing.T) {
		dir := t.TempDir()
		closeT(t, openT(t, Options{DataDir: dir}))
		execSQL(t, dir, `PRAGMA user_version = 7`)
		_, err := Open(Options{DataDir: dir})
		path := filepath.Join(dir, DataFile)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "version 7 is newer than this program's 1") {
			t.Errorf("Open() error = %v, want one naming %s and versions 7 and 1", err, path)
		}
	})
	t.Run("not a database", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, DataFile)
		if err := os.WriteFile(path, bytes.Repeat([]byte("not sqlite "), 100), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Open() error = %v, want one naming %s", err, path)
		}
	})
	t.Run("in use", func(t *testing.T) {
		dir := t.TempDir()
		openT(t, Options{DataDir: dir})
		path := filepath.Join(dir, DataFile)
		if _, err := Open(Options{DataDir: dir}); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "in use") {
			t.Errorf("second Open() error = %v, want one naming %s in use", err, path)
		}
	})
}

// TestPersistCloseDrains: every export acknowledged before Close is in the
// database afterwards, and exports after Close are refused as unavailable.
func TestPersistCloseDrains(t *testing.T) {
	const sent = 300
	dir := t.TempDir()
	c := openT(t, Options{DataDir: dir})
	conn := serveGRPC(t, c)
	for i := range sent {
		postProto(t, c, "/v1/traces", traceRequest(testSpan{service: "s", trace: byte(i%250 + 1), id: byte(i/250 + 1), name: "op"}))
	}
	closeT(t, c)
	if p := c.Stats().Persist; p.WrittenRequests != sent || p.Pending != 0 || p.WriteErrors != 0 {
		t.Errorf("after Close: Persist = %+v, want %d written, none pending or failed", p, sent)
	}
	if _, items := countRows(t, dir, sigTraces); items != sent {
		t.Errorf("database holds %d spans, want %d", items, sent)
	}

	rec := postProto(t, c, "/v1/traces", traceRequest(testSpan{service: "s", trace: 1, id: 9, name: "late"}))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("POST after Close = %d %s, want 503", rec.Code, rec.Body)
	}
	_, err := coltracepb.NewTraceServiceClient(conn).Export(t.Context(), traceRequest(testSpan{service: "s", trace: 1, id: 9, name: "late"}))
	if code := grpcstatus.Code(err); code != codes.Unavailable {
		t.Errorf("gRPC export after Close = %v, want UNAVAILABLE", err)
	}
	if st := c.Stats(); st.Spans.Received != sent {
		t.Errorf("Received = %d after refused exports, want %d", st.Spans.Received, sent)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}

	c2 := openT(t, Options{DataDir: dir})
	if got := c2.Stats().Persist.ReplayedSpans; got != sent {
		t.Errorf("replayed %d spans, want %d", got, sent)
	}
}

// TestPersistConcurrentExports: many concurrent exports of every signal,
// then Close and Open: every item is replayed.
func TestPersistConcurrentExports(t *testing.T) {
	const workers, each = 8, 30 // 240 distinct one-byte trace ids, none zero
	dir := t.TempDir()
	c := openT(t, Options{DataDir: dir})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				tr := byte(w*each + i + 1)
				for _, e := range []struct {
					path string
					m    proto.Message
				}{
					{"/v1/traces", persistedTraces(tr)},
					{"/v1/logs", persistedLogs(tr)},
					{"/v1/metrics", persistedMetrics()},
				} {
					if rec := postProto(t, c, e.path, e.m); rec.Code != http.StatusOK {
						t.Errorf("POST %s = %d %s", e.path, rec.Code, rec.Body)
					}
				}
			}
		})
	}
	wg.Wait()
	before := c.Stats()
	closeT(t, c)

	c2 := openT(t, Options{DataDir: dir})
	st := c2.Stats()
	const n = workers * each
	if p := st.Persist; p.ReplayedSpans != 2*n || p.ReplayedLogs != n || p.ReplayedPoints != 3*n {
		t.Errorf("Persist = %+v, want %d spans, %d logs, %d points replayed", p, 2*n, n, 3*n)
	}
	if st.Spans.Stored != before.Spans.Stored || st.Logs.Stored != before.Logs.Stored || st.MetricPoints.Stored != before.MetricPoints.Stored || st.Traces != before.Traces {
		t.Errorf("after Open: %d traces, %d spans, %d logs, %d points; before Close: %d, %d, %d, %d",
			st.Traces, st.Spans.Stored, st.Logs.Stored, st.MetricPoints.Stored,
			before.Traces, before.Spans.Stored, before.Logs.Stored, before.MetricPoints.Stored)
	}
	for name, s := range map[string]SignalStats{"spans": st.Spans, "logs": st.Logs, "points": st.MetricPoints} {
		checkInvariant(t, name, s)
	}
}

// TestPersistBackpressure: while the write queue is full an export waits,
// holding its in-flight slot, so that the next one is shed with 429; it
// completes once the writer drains the queue.
func TestPersistBackpressure(t *testing.T) {
	dir := t.TempDir()
	c, err := open(Options{DataDir: dir, MaxInFlightExports: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	req := func(tr byte) *coltracepb.ExportTraceServiceRequest {
		return traceRequest(testSpan{service: "s", trace: tr, id: 1, name: "op"})
	}
	if rec := postProto(t, c, "/v1/traces", req(1)); rec.Code != http.StatusOK {
		t.Fatalf("first POST = %d %s", rec.Code, rec.Body)
	}
	// The queue is full: an export whose client gives up is refused.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.consumeTraces(ctx, req(2)); err == nil {
		t.Errorf("consumeTraces with a full queue and a cancelled context = nil error")
	}

	second := make(chan int, 1)
	go func() { second <- postProto(t, c, "/v1/traces", req(3)).Code }()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.inflight) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second export never took its in-flight slot")
		}
		time.Sleep(time.Millisecond)
	}
	if rec := postProto(t, c, "/v1/traces", req(4)); rec.Code != http.StatusTooManyRequests {
		t.Errorf("third POST while the second waits = %d, want 429", rec.Code)
	}
	select {
	case code := <-second:
		t.Fatalf("second POST finished (%d) with the queue full", code)
	default:
	}
	c.persist.start()
	if code := <-second; code != http.StatusOK {
		t.Errorf("second POST = %d, want 200", code)
	}
	closeT(t, c)
	if _, items := countRows(t, dir, sigTraces); items != 2 {
		t.Errorf("database holds %d spans, want 2", items)
	}
}

// TestPersistWriteError: a failed write is counted and logged, not lost
// silently.
func TestPersistWriteError(t *testing.T) {
	var logs bytes.Buffer
	c, err := open(Options{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}, persistQueue)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.persist.db.Exec(`DROP TABLE exports`); err != nil {
		t.Fatal(err)
	}
	c.persist.start()
	postProto(t, c, "/v1/traces", traceRequest(testSpan{service: "s", trace: 1, id: 1, name: "op"}))
	closeT(t, c)
	if p := c.Stats().Persist; p.WriteErrors != 1 || p.WrittenRequests != 0 {
		t.Errorf("Persist = %+v, want 1 write error, nothing written", p)
	}
	if !strings.Contains(logs.String(), "not persisted") {
		t.Errorf("the failed write was not logged:\n%s", logs.String())
	}
}

// TestPersistCloseStopsWriter: no goroutine of a persisting Console
// survives Close.
func TestPersistCloseStopsWriter(t *testing.T) {
	before := goleak.IgnoreCurrent()
	c, err := Open(Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	postProto(t, c, "/v1/logs", persistedLogs(1))
	closeT(t, c)
	goleak.VerifyNone(t, before)
}

// TestOpenWithoutDataDir: Open without DataDir keeps memory only.
func TestOpenWithoutDataDir(t *testing.T) {
	c := openT(t, Options{})
	if c.persist != nil {
		t.Fatal("Open(Options{}) persists")
	}
	postProto(t, c, "/v1/traces", persistedTraces(1))
	closeT(t, c)
	if st := c.Stats(); st.Persist != (PersistStats{}) || st.Spans.Stored != 2 {
		t.Errorf("Stats = %+v, want 2 spans stored and no persistence", st)
	}
	if rec := postProto(t, c, "/v1/traces", persistedTraces(2)); rec.Code != http.StatusOK {
		t.Errorf("POST after Close of a memory console = %d, want 200", rec.Code)
	}
}

// BenchmarkPersistExport measures an OTLP/HTTP protobuf export of 100
// spans to a persisting console, against one keeping memory only.
func BenchmarkPersistExport(b *testing.B) {
	spans := make([]testSpan, 100)
	for i := range spans {
		spans[i] = testSpan{service: "bench", trace: 1, id: byte(i + 1), name: "op", attrs: map[string]string{"k": "v"}}
	}
	body, err := proto.Marshal(traceRequest(spans...))
	if err != nil {
		b.Fatal(err)
	}
	for _, dataDir := range []bool{false, true} {
		b.Run(fmt.Sprintf("persist=%v", dataDir), func(b *testing.B) {
			opts := Options{}
			if dataDir {
				opts.DataDir = b.TempDir()
			}
			c, err := Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			h := c.OTLPHandler()
			b.ReportAllocs()
			for b.Loop() {
				if rec := do(b, h, http.MethodPost, "/v1/traces", protobufType, body); rec.Code != http.StatusOK {
					b.Fatalf("POST = %d", rec.Code)
				}
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(c.Stats().Persist.WrittenRequests)/float64(b.N), "written/op")
		})
	}
}
