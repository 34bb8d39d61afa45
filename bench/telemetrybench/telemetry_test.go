package telemetrybench

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cairnhq/cairn/telemetry"
)

// discardSpans and discardLogs stand in for an OTLP exporter at the end of
// the batch processors, so the benchmark measures the instrumentation and
// the batching, not a network.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

type discardLogs struct{}

func (discardLogs) Export(context.Context, []sdklog.Record) error { return nil }
func (discardLogs) Shutdown(context.Context) error                { return nil }
func (discardLogs) ForceFlush(context.Context) error              { return nil }

// setup builds cairn's instrumented configuration: every span sampled, batch
// span and log processors, metrics recorded into the Prometheus reader, one
// log line per request exported as an OTel log record (no console output).
func setup(b *testing.B) *telemetry.Telemetry {
	b.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		ServiceName:      "bench",
		TracesExporter:   telemetry.ExporterNone,
		MetricsExporter:  telemetry.ExporterNone,
		LogsExporter:     telemetry.ExporterNone,
		Sampler:          sdktrace.AlwaysSample(),
		LogOutput:        io.Discard,
		NoRuntimeMetrics: true,
		SpanProcessors:   []sdktrace.SpanProcessor{sdktrace.NewBatchSpanProcessor(discardSpans{})},
		LogProcessors:    []sdklog.Processor{sdklog.NewBatchProcessor(discardLogs{})},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tel.Shutdown(context.Background()) })
	return tel
}

// handWired is the peer: the same signals wired by hand from the
// OpenTelemetry Go SDK, otelhttp and the otelslog bridge, as a team would
// without cairn. It shows what cairn's layer adds over the SDK itself.
type handWired struct {
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
	lp     *sdklog.LoggerProvider
	prop   propagation.TextMapPropagator
	logger *slog.Logger
}

func setupByHand(b *testing.B) *handWired {
	b.Helper()
	reader, err := prometheus.New()
	if err != nil {
		b.Fatal(err)
	}
	h := &handWired{
		tp: sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(discardSpans{}))),
		mp:   sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		lp:   sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(discardLogs{}))),
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	h.logger = slog.New(otelslog.NewHandler("bench", otelslog.WithLoggerProvider(h.lp)))
	b.Cleanup(func() {
		ctx := context.Background()
		h.tp.Shutdown(ctx)
		h.mp.Shutdown(ctx)
		h.lp.Shutdown(ctx)
	})
	return h
}

func (h *handWired) options() []otelhttp.Option {
	return []otelhttp.Option{
		otelhttp.WithTracerProvider(h.tp),
		otelhttp.WithMeterProvider(h.mp),
		otelhttp.WithPropagators(h.prop),
	}
}

var body = []byte(`{"id":"4f3c2a1b","status":"placed","total":2598}` + "\n")

// orders is the handler under test: a ServeMux route that answers a small
// JSON body, logging one line when given a logger.
func orders(logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		if logger != nil {
			logger.InfoContext(r.Context(), "order read", "order_id", r.PathValue("id"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	return mux
}

// BenchmarkTelemetryHandler is one request served in memory: the cost the
// instrumentation adds on the server, isolated from the network. Variants:
// bare (no telemetry), otel (the SDK wired by hand), cairn (telemetry.Setup).
func BenchmarkTelemetryHandler(b *testing.B) {
	run := func(b *testing.B, h http.Handler) {
		req := httptest.NewRequest("GET", "/orders/4f3c2a1b", nil)
		req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	}
	b.Run("variant=bare", func(b *testing.B) { run(b, orders(nil)) })
	b.Run("variant=disabled", func(b *testing.B) {
		// Telemetry switched off (OTEL_SDK_DISABLED=true, no console
		// output): what the instrumented code costs when nothing is
		// collected.
		tel, err := telemetry.Setup(context.Background(), telemetry.Config{Disabled: true, LogOutput: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tel.Shutdown(context.Background()) })
		run(b, tel.Handler(orders(tel.Logger()), "orders"))
	})
	b.Run("variant=otel", func(b *testing.B) {
		h := setupByHand(b)
		run(b, otelhttp.NewHandler(orders(h.logger), "orders", h.options()...))
	})
	b.Run("variant=cairn", func(b *testing.B) {
		tel := setup(b)
		run(b, tel.Handler(orders(tel.Logger()), "orders"))
	})
}

// BenchmarkTelemetryRoundTrip is one request from an HTTP client to a server
// over loopback: with telemetry, the client span, the server span, the
// metrics of both sides, trace context in the headers and the server's log
// line.
func BenchmarkTelemetryRoundTrip(b *testing.B) {
	run := func(b *testing.B, h http.Handler, wrap func(http.RoundTripper) http.RoundTripper) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		base := &http.Transport{MaxIdleConnsPerHost: 4}
		defer base.CloseIdleConnections()
		client := &http.Client{Transport: wrap(base)}
		url := srv.URL + "/orders/4f3c2a1b"
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("variant=bare", func(b *testing.B) {
		run(b, orders(nil), func(rt http.RoundTripper) http.RoundTripper { return rt })
	})
	b.Run("variant=otel", func(b *testing.B) {
		h := setupByHand(b)
		run(b, otelhttp.NewHandler(orders(h.logger), "orders", h.options()...),
			func(rt http.RoundTripper) http.RoundTripper { return otelhttp.NewTransport(rt, h.options()...) })
	})
	b.Run("variant=cairn", func(b *testing.B) {
		tel := setup(b)
		run(b, tel.Handler(orders(tel.Logger()), "orders"), tel.Transport)
	})
}
