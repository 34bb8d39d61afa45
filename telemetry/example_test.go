package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cairnhq/cairn/telemetry"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// dropTime removes the time from console records so the output is stable.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// A service logs inside a request that arrived with W3C trace context: the
// console record carries the caller's trace and span ids.
func Example() {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName:     "order",
		TracesExporter:  telemetry.ExporterNone,
		MetricsExporter: telemetry.ExporterNone,
		LogsExporter:    telemetry.ExporterNone,
		LogFormat:       telemetry.LogFormatJSON,
		LogOutput:       os.Stdout,
		ReplaceAttr:     dropTime,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tel.Shutdown(ctx)

	// What an incoming request's headers would carry.
	headers := propagation.HeaderCarrier{}
	headers.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx = tel.Propagator().Extract(ctx, headers)

	tel.Logger().InfoContext(ctx, "order placed", "order", "o-1")
	tel.Logger().DebugContext(ctx, "not shown at the default Info level")
	// Output:
	// {"level":"INFO","msg":"order placed","order":"o-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}
}

// An operator raises the log level of a running service over the admin
// endpoint; the next debug record is written.
func ExampleTelemetry_AdminHandler() {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Disabled:    true,
		LogOutput:   os.Stdout,
		ReplaceAttr: dropTime,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tel.Shutdown(ctx)
	admin := tel.AdminHandler()

	req := httptest.NewRequest(http.MethodPut, "/loglevel", strings.NewReader("debug"))
	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, req)
	fmt.Print(rec.Code, " ", rec.Body)

	tel.Logger().Debug("now visible")

	rec = httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/loglevel", strings.NewReader("loud")))
	fmt.Print(rec.Code, " ", rec.Body)
	// Output:
	// level=INFO msg="log level changed" from=INFO to=DEBUG
	// 200 {"level":"DEBUG"}
	// level=DEBUG msg="now visible"
	// level=DEBUG msg="request failed" method=PUT path=/loglevel status=400 error="http 400: bad log level \"loud\": want debug, info, warn, error or an integer"
	// 400 {"type":"about:blank","title":"Bad Request","status":400,"detail":"bad log level \"loud\": want debug, info, warn, error or an integer"}
}

// Setup builds one service's providers from Config and the OTEL_*
// environment; Shutdown flushes what the batch processors still hold. Here
// the spans go to the console exporter, captured in a buffer and decoded.
func ExampleSetup() {
	ctx := context.Background()
	var out bytes.Buffer
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName:           "order",
		TracesExporter:        telemetry.ExporterConsole,
		ConsoleExporterOutput: &out,
		BatchTimeout:          time.Hour, // export on Shutdown only, for the example
		MetricsExporter:       telemetry.ExporterNone,
		NoPrometheus:          true,
		LogsExporter:          telemetry.ExporterNone,
		LogOutput:             io.Discard,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tracer := tel.TracerProvider().Tracer("example")
	reqCtx, server := tracer.Start(ctx, "POST /orders", trace.WithSpanKind(trace.SpanKindServer))
	_, db := tracer.Start(reqCtx, "INSERT orders", trace.WithSpanKind(trace.SpanKindClient))
	db.End()
	server.End()
	fmt.Println("exported before Shutdown:", out.Len(), "bytes")

	if err := tel.Shutdown(ctx); err != nil {
		fmt.Println(err)
		return
	}
	// The console exporter writes one JSON object per span, in the order
	// the spans ended.
	type exported struct {
		Name                string
		SpanContext, Parent struct{ SpanID string }
		Resource            []struct {
			Key   string
			Value struct{ Value any }
		}
	}
	var spans []exported
	for dec := json.NewDecoder(&out); dec.More(); {
		var s exported
		if err := dec.Decode(&s); err != nil {
			fmt.Println(err)
			return
		}
		spans = append(spans, s)
	}
	for _, s := range spans {
		parent := "no parent"
		for _, p := range spans {
			if p.SpanContext.SpanID == s.Parent.SpanID {
				parent = "child of " + p.Name
			}
		}
		for _, kv := range s.Resource {
			if kv.Key == "service.name" {
				fmt.Printf("%s (service.name=%v): %s\n", s.Name, kv.Value.Value, parent)
			}
		}
	}
	// Output:
	// exported before Shutdown: 0 bytes
	// INSERT orders (service.name=order): child of POST /orders
	// POST /orders (service.name=order): no parent
}

// A client's Transport injects the W3C traceparent and baggage headers into
// each request; the server's Handler extracts them, so the server span
// joins the client's trace. The two services are two Telemetry instances in
// one process, as in cairn demo.
func ExampleTelemetry_Transport() {
	ctx := context.Background()
	cfg := telemetry.Config{
		TracesExporter:        telemetry.ExporterConsole,
		ConsoleExporterOutput: io.Discard,
		MetricsExporter:       telemetry.ExporterNone,
		NoPrometheus:          true,
		LogsExporter:          telemetry.ExporterNone,
		LogOutput:             io.Discard,
	}
	cfg.ServiceName = "loadgen"
	client, err := telemetry.Setup(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Shutdown(ctx)
	cfg.ServiceName = "order"
	server, err := telemetry.Setup(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Shutdown(ctx)

	var serverTrace trace.TraceID
	srv := httptest.NewServer(server.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := strings.Split(r.Header.Get("traceparent"), "-")
		fmt.Printf("traceparent: version %s, trace-id %d hex digits, parent-id %d hex digits, flags %s\n",
			f[0], len(f[1]), len(f[2]), f[3])
		fmt.Println("baggage:", r.Header.Get("baggage"))
		serverTrace = trace.SpanContextFromContext(r.Context()).TraceID()
	}), "order"))
	defer srv.Close()

	ctx, root := client.TracerProvider().Tracer("example").Start(ctx, "loadgen place-order")
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx = baggage.ContextWithBaggage(ctx, bag)
	hc := &http.Client{Transport: client.Transport(srv.Client().Transport)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/orders", nil)
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	root.End()
	fmt.Println("server span in the client's trace:", serverTrace == root.SpanContext().TraceID())
	// Output:
	// traceparent: version 00, trace-id 32 hex digits, parent-id 16 hex digits, flags 01
	// baggage: tenant=acme
	// server span in the client's trace: true
}

// Prometheus scrapes /metrics on the admin handler: OpenTelemetry
// instrument names become Prometheus names that pass promlint (a counter
// gains _total, go.goroutine.count becomes go_goroutines), and scrapers that
// ask for OpenMetrics get it.
func ExampleTelemetry_AdminHandler_metrics() {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		ServiceName:     "order",
		TracesExporter:  telemetry.ExporterNone,
		MetricsExporter: telemetry.ExporterNone, // no push exporter; Prometheus stays on
		LogsExporter:    telemetry.ExporterNone,
		LogOutput:       io.Discard,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tel.Shutdown(ctx)
	meter := tel.MeterProvider().Meter("github.com/cairnhq/cairn/internal/shop/order/app")
	placed, err := meter.Int64Counter("cairn.shop.orders.placed",
		metric.WithDescription("Number of orders placed."), metric.WithUnit("{order}"))
	if err != nil {
		fmt.Println(err)
		return
	}
	placed.Add(ctx, 3)
	admin := tel.AdminHandler()

	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "cairn_") || strings.HasPrefix(line, "# TYPE cairn_") || strings.HasPrefix(line, "# TYPE go_goroutines") {
			fmt.Print(line)
		}
	}

	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec = httptest.NewRecorder()
	admin.ServeHTTP(rec, req)
	fmt.Println(rec.Header().Get("Content-Type"))
	// Output:
	// # TYPE cairn_shop_orders_placed_total counter
	// cairn_shop_orders_placed_total{otel_scope_name="github.com/cairnhq/cairn/internal/shop/order/app",otel_scope_schema_url="",otel_scope_version=""} 3
	// # TYPE go_goroutines gauge
	// application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores
}

// stalledDisk stands for a disk that has stopped answering: Write blocks
// until release is closed. started is closed when the first Write begins.
type stalledDisk struct {
	started, release chan struct{}
	once             sync.Once
	buf              strings.Builder
}

func (d *stalledDisk) Write(p []byte) (int, error) {
	d.once.Do(func() { close(d.started) })
	<-d.release
	return d.buf.Write(p)
}

// A stalled disk never blocks the caller: AsyncWriter queues records, drops
// and counts the ones that do not fit, and writes the queued ones once the
// disk answers again.
func ExampleAsyncWriter() {
	disk := &stalledDisk{started: make(chan struct{}), release: make(chan struct{})}
	w := telemetry.NewAsyncWriter(disk, 2) // a queue of two records

	fmt.Fprintln(w, "record 1") // taken by the writer goroutine, which blocks in disk.Write
	<-disk.started
	for i := 2; i <= 5; i++ {
		fmt.Fprintf(w, "record %d\n", i) // 2 and 3 wait in the queue; 4 and 5 do not fit
	}
	fmt.Println("dropped:", w.Dropped())

	close(disk.release)               // the disk answers again
	if err := w.Close(); err != nil { // writes what is queued, then stops the goroutine
		fmt.Println(err)
	}
	fmt.Print(disk.buf.String())
	// Output:
	// dropped: 2
	// record 1
	// record 2
	// record 3
}
