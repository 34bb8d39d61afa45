package console

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// apiTrace mirrors the JSON of GET /api/traces/{id}.
type apiTrace struct {
	TraceID string `json:"trace_id"`
	Spans   []struct {
		TraceID      string `json:"trace_id"`
		SpanID       string `json:"span_id"`
		ParentSpanID string `json:"parent_span_id"`
		Service      string `json:"service"`
		Name         string `json:"name"`
		Kind         string `json:"kind"`
		Status       struct{ Code string }
		Attributes   map[string]any `json:"attributes"`
		DurationNS   int64          `json:"duration_ns"`
	} `json:"spans"`
	Logs []struct {
		TraceID string `json:"trace_id"`
		SpanID  string `json:"span_id"`
		Service string `json:"service"`
		Body    any    `json:"body"`
	} `json:"logs"`
}

// TestSDKExport sends real OTLP from the OpenTelemetry SDK exporters: a
// parent and child span, a log record emitted inside the child, and a
// counter; then reads them back through the JSON API.
func TestSDKExport(t *testing.T) {
	c := New(Options{})
	srv := httptest.NewServer(c.OTLPHandler())
	defer srv.Close()
	ctx := context.Background()
	res := sdkresource.NewSchemaless(attribute.String("service.name", "checkout"))

	texp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(texp), sdktrace.WithResource(res))
	lexp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(srv.URL+"/v1/logs"))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(lexp)), sdklog.WithResource(res))
	mexp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+"/v1/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)), sdkmetric.WithResource(res))

	tracer := tp.Tracer("test")
	pctx, parent := tracer.Start(ctx, "POST /orders", oteltrace.WithSpanKind(oteltrace.SpanKindServer))
	cctx, child := tracer.Start(pctx, "reserve stock", oteltrace.WithAttributes(attribute.String("sku", "A-1")))
	var rec otellog.Record
	rec.SetBody(attribute.StringValue("reserved 3 units"))
	rec.SetSeverity(otellog.SeverityInfo)
	lp.Logger("test").Emit(cctx, rec)
	counter, err := mp.Meter("test").Int64Counter("orders")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(ctx, 1)
	child.End()
	parent.End()

	for name, shutdown := range map[string]func(context.Context) error{
		"tracer": tp.Shutdown, "logger": lp.Shutdown, "meter": mp.Shutdown,
	} {
		if err := shutdown(ctx); err != nil {
			t.Fatalf("%s provider Shutdown: %v", name, err)
		}
	}

	traceID := parent.SpanContext().TraceID().String()
	var got apiTrace
	getJSON(t, c, "/api/traces/"+traceID, http.StatusOK, &got)
	if len(got.Spans) != 2 {
		t.Fatalf("trace has %d spans, want 2: %+v", len(got.Spans), got.Spans)
	}
	byName := map[string]int{}
	for i, sp := range got.Spans {
		byName[sp.Name] = i
		if sp.TraceID != traceID || sp.Service != "checkout" {
			t.Errorf("span %q: trace %s service %q, want %s checkout", sp.Name, sp.TraceID, sp.Service, traceID)
		}
	}
	p, ch := got.Spans[byName["POST /orders"]], got.Spans[byName["reserve stock"]]
	if p.ParentSpanID != "" || p.Kind != "server" {
		t.Errorf("parent span: parent %q kind %q, want none, server", p.ParentSpanID, p.Kind)
	}
	if ch.ParentSpanID != p.SpanID || ch.SpanID != child.SpanContext().SpanID().String() {
		t.Errorf("child span %s parent = %q, want %q", ch.SpanID, ch.ParentSpanID, p.SpanID)
	}
	if ch.Attributes["sku"] != "A-1" {
		t.Errorf("child attributes = %v, want sku=A-1", ch.Attributes)
	}
	if len(got.Logs) != 1 {
		t.Fatalf("trace has %d logs, want 1", len(got.Logs))
	}
	if l := got.Logs[0]; l.TraceID != traceID || l.SpanID != ch.SpanID || l.Body != "reserved 3 units" || l.Service != "checkout" {
		t.Errorf("log = %+v, want trace %s span %s body %q", l, traceID, ch.SpanID, "reserved 3 units")
	}

	st := c.Stats()
	if st.Spans.Stored != 2 || st.Logs.Stored != 1 || st.MetricPoints.Stored < 1 || st.Traces != 1 {
		t.Errorf("Stats() = %+v, want 2 spans, 1 log, >=1 point, 1 trace", st)
	}
	metrics := c.store.metrics("checkout")
	if len(metrics) != 1 || metrics[0].Name != "orders" || metrics[0].Kind != kindSum || metrics[0].Points[0].Value != 1 {
		t.Errorf("metrics(checkout) = %+v, want one sum series orders with value 1", metrics)
	}
}

func TestOTLPRequests(t *testing.T) {
	traces, err := proto.Marshal(traceRequest(testSpan{service: "a", trace: 1, id: 1, name: "root"}))
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2048) // zeros: decode as nothing, compress well
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		encoding    string
		body        []byte
		wantCode    int
		wantMsg     string // substring of the google.rpc.Status message
	}{
		{"plain", "POST", "/v1/traces", protobufType, "", traces, 200, ""},
		{"gzip", "POST", "/v1/traces", protobufType, "gzip", gzipBytes(t, traces), 200, ""},
		{"content type parameters", "POST", "/v1/traces", protobufType + "; charset=binary", "", traces, 200, ""},
		{"empty body", "POST", "/v1/logs", protobufType, "", nil, 200, ""},
		{"bad body", "POST", "/v1/traces", protobufType, "", []byte("\xff\xff\xff not protobuf"), 400, "decode ExportTraceServiceRequest"},
		{"bad gzip", "POST", "/v1/traces", protobufType, "gzip", traces, 400, "gzip"},
		{"truncated gzip", "POST", "/v1/traces", protobufType, "gzip", gzipBytes(t, traces)[:20], 400, "read body"},
		{"too large", "POST", "/v1/traces", protobufType, "", big, 413, "exceeds 1024 bytes"},
		{"too large after gunzip", "POST", "/v1/metrics", protobufType, "gzip", gzipBytes(t, big), 413, "exceeds 1024 bytes"},
		{"GET", "GET", "/v1/traces", protobufType, "", nil, 405, "method GET not allowed"},
		{"PUT", "PUT", "/v1/logs", protobufType, "", traces, 405, "use POST"},
		{"xml", "POST", "/v1/traces", "application/xml", "", traces, 415, "send application/x-protobuf or application/json"},
		{"text", "POST", "/v1/traces", "text/plain", "", traces, 415, `unsupported Content-Type "text/plain"`},
		{"no content type", "POST", "/v1/traces", "", "", traces, 415, "missing Content-Type"},
		{"brotli", "POST", "/v1/traces", protobufType, "br", traces, 415, "Content-Encoding"},
		{"unknown path", "POST", "/v1/profiles", protobufType, "", traces, 404, "no OTLP endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{MaxBodyBytes: 1024})
			var hdr []string
			if tt.encoding != "" {
				hdr = []string{"Content-Encoding", tt.encoding}
			}
			rec := do(t, c.OTLPHandler(), tt.method, tt.path, tt.contentType, tt.body, hdr...)
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s = %d %q, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != protobufType {
				t.Errorf("Content-Type = %q, want %q", ct, protobufType)
			}
			if tt.wantCode == 200 {
				return
			}
			var st spb.Status
			if err := proto.Unmarshal(rec.Body.Bytes(), &st); err != nil {
				t.Fatalf("error body is not a google.rpc.Status: %v", err)
			}
			if !strings.HasPrefix(st.GetMessage(), "console: ") || !strings.Contains(st.GetMessage(), tt.wantMsg) {
				t.Errorf("Status.Message = %q, want it to start with %q and contain %q", st.GetMessage(), "console: ", tt.wantMsg)
			}
			if tt.wantCode == 405 && rec.Header().Get("Allow") != "POST, OPTIONS" {
				t.Errorf("Allow = %q, want POST, OPTIONS", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestOTLPResponses(t *testing.T) {
	c := New(Options{})
	req := traceRequest(
		testSpan{service: "a", trace: 1, id: 1, name: "ok"},
		testSpan{service: "a", trace: 0, id: 2, name: "no trace id"},
	)
	rec := postProto(t, c, "/v1/traces", req)
	var tresp coltracepb.ExportTraceServiceResponse
	if err := proto.Unmarshal(rec.Body.Bytes(), &tresp); err != nil || rec.Code != 200 {
		t.Fatalf("POST /v1/traces = %d, decode: %v", rec.Code, err)
	}
	if ps := tresp.GetPartialSuccess(); ps.GetRejectedSpans() != 1 || !strings.Contains(ps.GetErrorMessage(), `span "no trace id": invalid trace_id`) {
		t.Errorf("partial_success = %v, want 1 rejected span named in the message", ps)
	}

	logs := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
			{TimeUnixNano: 1, Body: strAttr("", "x").Value, TraceId: []byte{1, 2, 3}},
			{ObservedTimeUnixNano: 5, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN},
		}}},
	}}}
	rec = postProto(t, c, "/v1/logs", logs)
	var lresp collogspb.ExportLogsServiceResponse
	if err := proto.Unmarshal(rec.Body.Bytes(), &lresp); err != nil || rec.Code != 200 {
		t.Fatalf("POST /v1/logs = %d, decode: %v", rec.Code, err)
	}
	if ps := lresp.GetPartialSuccess(); ps.GetRejectedLogRecords() != 1 {
		t.Errorf("logs partial_success = %v, want 1 rejected", ps)
	}
	got := c.store.queryLogs(logQuery{})
	if len(got) != 1 || got[0].Service != unknownService || got[0].Time.IsZero() || got[0].severity() != "WARN" {
		t.Errorf("stored logs = %+v, want one WARN record of %s timed by its observed time", got, unknownService)
	}

	metrics := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: "", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{}, {}}}}},
			{Name: "latency", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{DataPoints: []*metricspb.HistogramDataPoint{
				{Count: 3, ExplicitBounds: []float64{1, 2}, BucketCounts: []uint64{1, 1, 1}},
			}}}},
			{Name: "nodata"},
		}}},
	}}}
	rec = postProto(t, c, "/v1/metrics", metrics)
	var mresp colmetricspb.ExportMetricsServiceResponse
	if err := proto.Unmarshal(rec.Body.Bytes(), &mresp); err != nil || rec.Code != 200 {
		t.Fatalf("POST /v1/metrics = %d, decode: %v", rec.Code, err)
	}
	if ps := mresp.GetPartialSuccess(); ps.GetRejectedDataPoints() != 2 {
		t.Errorf("metrics partial_success = %v, want 2 rejected points", ps)
	}
	st := c.Stats()
	want := Stats{
		Spans:        SignalStats{Received: 2, Rejected: 1, Stored: 1},
		Logs:         SignalStats{Received: 2, Rejected: 1, Stored: 1},
		MetricPoints: SignalStats{Received: 3, Rejected: 2, Stored: 1},
		Traces:       1, MetricSeries: 1, Services: 2,
	}
	// Sizes are estimates, tested in size_test.go; here they must only be
	// counted.
	if st.Spans.Bytes <= 0 || st.Logs.Bytes <= 0 || st.MetricPoints.Bytes <= 0 {
		t.Errorf("Stats() sizes = %d, %d, %d bytes, want each positive", st.Spans.Bytes, st.Logs.Bytes, st.MetricPoints.Bytes)
	}
	st.Spans.Bytes, st.Logs.Bytes, st.MetricPoints.Bytes = 0, 0, 0
	if st != want {
		t.Errorf("Stats() = %+v, want %+v", st, want)
	}
}

func TestGzipResponse(t *testing.T) {
	c := New(Options{})
	for _, tt := range []struct {
		accept   string
		wantGzip bool
	}{{"gzip", true}, {"br, gzip;q=0.5", true}, {"*", true}, {"gzip;q=0", false}, {"", false}} {
		t.Run(tt.accept, func(t *testing.T) {
			rec := do(t, c.OTLPHandler(), http.MethodPost, "/v1/traces", jsonType,
				[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x","traceId":"","spanId":""}]}]}]}`),
				"Accept-Encoding", tt.accept)
			if rec.Code != http.StatusOK {
				t.Fatalf("POST = %d %s, want 200", rec.Code, rec.Body)
			}
			body := rec.Body.Bytes()
			if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tt.wantGzip {
				t.Fatalf("Accept-Encoding %q: Content-Encoding = %q, want gzip %v", tt.accept, rec.Header().Get("Content-Encoding"), tt.wantGzip)
			}
			if tt.wantGzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("gzip.NewReader: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("read gzip response: %v", err)
				}
			}
			var resp coltracepb.ExportTraceServiceResponse
			if err := protojson.Unmarshal(body, &resp); err != nil || resp.GetPartialSuccess().GetRejectedSpans() != 1 {
				t.Errorf("response %q: err %v, partial_success %v, want 1 rejected span", body, err, resp.GetPartialSuccess())
			}
		})
	}
}

// blockingBody is a request body whose first Read signals started and
// then waits for release, holding its export in flight.
type blockingBody struct {
	once             sync.Once
	started, release chan struct{}
}

func (b *blockingBody) Read([]byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return 0, io.EOF
}

func TestLoadShedding(t *testing.T) {
	c := New(Options{MaxInFlightExports: 1})
	h := c.OTLPHandler()
	body := &blockingBody{started: make(chan struct{}), release: make(chan struct{})}
	held := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", body)
		req.Header.Set("Content-Type", protobufType)
		h.ServeHTTP(held, req)
	}()
	<-body.started // the first export holds the only slot

	for _, path := range []string{"/v1/traces", "/v1/logs", "/v1/metrics"} {
		rec := do(t, h, http.MethodPost, path, protobufType, nil)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("POST %s while one export is in flight = %d, Retry-After %q; want 429, 1",
				path, rec.Code, rec.Header().Get("Retry-After"))
		}
		var st spb.Status
		if err := proto.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.GetCode() != rpcResourceExhausted {
			t.Errorf("429 body = %v (err %v), want code RESOURCE_EXHAUSTED", &st, err)
		}
	}
	if got := c.Stats().Shed; got != 3 {
		t.Errorf("Stats().Shed = %d, want 3", got)
	}
	close(body.release)
	<-done
	if held.Code != http.StatusOK {
		t.Errorf("held export = %d %s, want 200", held.Code, held.Body)
	}
	if rec := do(t, h, http.MethodPost, "/v1/traces", protobufType, nil); rec.Code != http.StatusOK {
		t.Errorf("POST after the slot was freed = %d, want 200", rec.Code)
	}
}

func TestCORS(t *testing.T) {
	preflight := func(h http.Handler, origin, reqHeaders string) *httptest.ResponseRecorder {
		return do(t, h, http.MethodOptions, "/v1/logs", "", nil,
			"Origin", origin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", reqHeaders)
	}
	t.Run("any origin", func(t *testing.T) {
		h := New(Options{}).OTLPHandler()
		rec := preflight(h, "http://app.example", "content-type, traceparent, x-secret")
		if rec.Code != http.StatusNoContent {
			t.Fatalf("preflight = %d %s, want 204", rec.Code, rec.Body)
		}
		hd := rec.Header()
		if hd.Get("Access-Control-Allow-Origin") != "*" || hd.Get("Access-Control-Allow-Methods") != "POST" || hd.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight headers = %v, want Allow-Origin *, Allow-Methods POST and a Max-Age", hd)
		}
		allow := hd.Get("Access-Control-Allow-Headers")
		for _, want := range []string{"Content-Type", "Content-Encoding", "traceparent"} {
			if !strings.Contains(allow, want) {
				t.Errorf("Access-Control-Allow-Headers = %q, want it to contain %q", allow, want)
			}
		}
		if strings.Contains(allow, "x-secret") {
			t.Errorf("Access-Control-Allow-Headers = %q allows x-secret, which is not on the safe list", allow)
		}
		rec = do(t, h, http.MethodPost, "/v1/logs", protobufType, nil, "Origin", "http://app.example")
		if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("POST with Origin = %d, Allow-Origin %q; want 200, *", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("listed origins", func(t *testing.T) {
		h := New(Options{CORSAllowedOrigins: []string{"http://a.example"}}).OTLPHandler()
		rec := preflight(h, "http://a.example", "")
		if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "http://a.example" {
			t.Errorf("preflight from listed origin = %d, Allow-Origin %q; want 204, http://a.example", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
		rec = preflight(h, "http://b.example", "")
		if rec.Code != http.StatusForbidden || rec.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from other origin = %d, Allow-Origin %q; want 403 without it", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
		// Error responses carry the header too, so the page can read them.
		rec = do(t, h, http.MethodPost, "/v1/logs", "text/plain", nil, "Origin", "http://a.example")
		if rec.Code != http.StatusUnsupportedMediaType || rec.Header().Get("Access-Control-Allow-Origin") != "http://a.example" {
			t.Errorf("failed POST from listed origin = %d, Allow-Origin %q; want 415, http://a.example", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("plain OPTIONS", func(t *testing.T) {
		rec := do(t, New(Options{}).OTLPHandler(), http.MethodOptions, "/v1/traces", "", nil)
		if rec.Code != http.StatusNoContent || rec.Header().Get("Allow") != "POST, OPTIONS" {
			t.Errorf("OPTIONS without Origin = %d, Allow %q; want 204, POST, OPTIONS", rec.Code, rec.Header().Get("Allow"))
		}
	})
}
