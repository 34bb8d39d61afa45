package loadgen_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/internal/loadgen"
	"github.com/cairnhq/cairn/internal/shop/order"
)

// handlerTransport serves requests in process with h, without a network, so
// a whole Run fits in a synctest bubble. Like a real server, h sees a fresh
// request: only the headers carry the trace context.
type handlerTransport struct {
	h     http.Handler
	delay time.Duration // server-side latency
}

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(t.delay)
	sr := r.Clone(context.Background())
	sr.RequestURI = r.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sr)
	return rec.Result(), nil
}

// newOrderService builds the real order service; call within the bubble that
// uses it, and close it there.
func newOrderService(t *testing.T, tp trace.TracerProvider) *order.Service {
	t.Helper()
	svc, err := order.New(t.Context(), order.Config{TracerProvider: tp})
	if err != nil {
		t.Fatalf("order.New(...) error = %v", err)
	}
	return svc
}

func TestRunConstantRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newOrderService(t, nil)
		defer svc.Close()
		reader := sdkmetric.NewManualReader()
		ctx, cancel := context.WithTimeout(t.Context(), 9995*time.Millisecond)
		defer cancel()

		stats, err := loadgen.Run(ctx, loadgen.Config{
			BaseURL:       "http://order.test",
			RPS:           100,
			Client:        &http.Client{Transport: handlerTransport{h: svc.Handler(), delay: 20 * time.Millisecond}},
			MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
			Seed:          1,
		})
		if err != nil {
			t.Fatalf("Run(...) error = %v", err)
		}
		want := loadgen.Stats{Sent: 1000, Succeeded: 1000, P50: 20 * time.Millisecond, P95: 20 * time.Millisecond, P99: 20 * time.Millisecond}
		if stats != want {
			t.Errorf("Run(...) = %+v, want %+v", stats, want)
		}

		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		byOp := map[string]int64{}
		var total int64
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "cairn.loadgen.requests" {
					continue
				}
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					op, _ := dp.Attributes.Value("cairn.loadgen.operation")
					outcome, _ := dp.Attributes.Value("cairn.loadgen.outcome")
					if outcome.AsString() != "success" {
						t.Errorf("requests{%s,%s} = %d, want only successes", op.AsString(), outcome.AsString(), dp.Value)
					}
					byOp[op.AsString()] += dp.Value
					total += dp.Value
				}
			}
		}
		if total != 1000 {
			t.Errorf("cairn.loadgen.requests total = %d, want 1000", total)
		}
		// With ListRatio 0.1 and ReadRatio 0.5, reads and placements are both
		// frequent, and lists about a tenth.
		if byOp["get-order"] < 300 || byOp["place-order"] < 300 || byOp["list-orders"] < 50 {
			t.Errorf("requests by operation = %v, want a mix of place-order, get-order and list-orders", byOp)
		}
	})
}

// TestRunSkipsWhenSaturated shows the open loop: slow responses do not slow
// the arrivals; arrivals beyond MaxInFlight are skipped.
func TestRunSkipsWhenSaturated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newOrderService(t, nil)
		defer svc.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 1950*time.Millisecond)
		defer cancel()
		start := time.Now()
		stats, err := loadgen.Run(ctx, loadgen.Config{
			BaseURL:     "http://order.test/",
			RPS:         10,
			MaxInFlight: 5,
			Client:      &http.Client{Transport: handlerTransport{h: svc.Handler(), delay: 10 * time.Second}},
		})
		if err != nil {
			t.Fatalf("Run(...) error = %v", err)
		}
		want := loadgen.Stats{Sent: 5, Succeeded: 5, Skipped: 15, P50: 10 * time.Second, P95: 10 * time.Second, P99: 10 * time.Second}
		if stats != want {
			t.Errorf("Run(...) = %+v, want %+v", stats, want)
		}
		// Run waited for the in-flight requests: the last started at 0.4s.
		if got, want := time.Since(start), 10400*time.Millisecond; got != want {
			t.Errorf("Run returned after %v, want %v", got, want)
		}
	})
}

// TestRunFailures counts failed requests and logs them with their context.
func TestRunFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		var logs strings.Builder
		var mu sync.Mutex
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
		broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		})
		ctx, cancel := context.WithTimeout(t.Context(), 950*time.Millisecond)
		defer cancel()
		stats, err := loadgen.Run(ctx, loadgen.Config{
			BaseURL:        "http://order.test",
			Client:         &http.Client{Transport: handlerTransport{h: broken}},
			TracerProvider: tp,
			Logger:         logger,
		})
		if err != nil {
			t.Fatalf("Run(...) error = %v", err)
		}
		if stats.Sent != 10 || stats.Failed != 10 || stats.Succeeded != 0 {
			t.Errorf("Run(...) = %+v, want 10 sent, 10 failed", stats)
		}
		if n := strings.Count(logs.String(), "loadgen request failed"); n != 10 {
			t.Errorf("logged %d failures, want 10:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "500 Internal Server Error: boom") {
			t.Errorf("log does not name the status and body:\n%s", logs.String())
		}
		for _, s := range exp.GetSpans() {
			if (s.Name != "loadgen place-order" && s.Name != "loadgen list-orders") || s.Status.Code != codes.Error || s.Parent.IsValid() {
				t.Errorf("span %q status %v parent %v, want root loadgen place-order or list-orders with Error", s.Name, s.Status.Code, s.Parent.SpanID())
			}
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRunInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  loadgen.Config
	}{
		{"no base URL", loadgen.Config{}},
		{"relative URL", loadgen.Config{BaseURL: "/orders"}},
		{"bad scheme", loadgen.Config{BaseURL: "ftp://x"}},
		{"negative RPS", loadgen.Config{BaseURL: "http://x", RPS: -1}},
		{"read ratio above 1", loadgen.Config{BaseURL: "http://x", ReadRatio: 1.5}},
		{"list ratio above 1", loadgen.Config{BaseURL: "http://x", ListRatio: 1.5}},
		{"negative in flight", loadgen.Config{BaseURL: "http://x", MaxInFlight: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := loadgen.Run(t.Context(), tt.cfg); err == nil || !strings.HasPrefix(err.Error(), "loadgen: ") {
				t.Errorf("Run(%+v) error = %v, want a loadgen: error", tt.cfg, err)
			}
		})
	}
}

// TestRunRealServer runs against the real order service over loopback, with
// otelhttp on both sides, and checks the counts and one whole trace:
// loadgen span -> HTTP client span -> server span -> SQLite span.
func TestRunRealServer(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prop := propagation.TraceContext{}
	svc, err := order.New(t.Context(), order.Config{DataDir: t.TempDir(), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	srv := httptest.NewServer(otelhttp.NewHandler(svc.Handler(), "order",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop)))
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: otelhttp.NewTransport(base, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))}

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	stats, err := loadgen.Run(ctx, loadgen.Config{BaseURL: srv.URL, RPS: 200, Client: client, TracerProvider: tp, Seed: 7})
	if err != nil {
		t.Fatalf("Run(...) error = %v", err)
	}
	if stats.Sent == 0 || stats.Failed != 0 || stats.Sent != stats.Succeeded+stats.Failed {
		t.Errorf("Run(...) = %+v, want some sent, none failed, Sent == Succeeded+Failed", stats)
	}
	if stats.P50 <= 0 || stats.P50 > stats.P95 || stats.P95 > stats.P99 {
		t.Errorf("percentiles p50 %v p95 %v p99 %v, want 0 < p50 <= p95 <= p99", stats.P50, stats.P95, stats.P99)
	}

	spans := exp.GetSpans()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	chains := 0
	for _, db := range spans {
		if db.Name != "append events" {
			continue
		}
		cmd, ok := byID[db.Parent.SpanID()]
		if !ok || cmd.Name != "command order.place" {
			continue
		}
		server, ok := byID[cmd.Parent.SpanID()]
		if !ok || server.SpanKind != trace.SpanKindServer {
			continue
		}
		client, ok := byID[server.Parent.SpanID()]
		if !ok || client.SpanKind != trace.SpanKindClient {
			continue
		}
		root, ok := byID[client.Parent.SpanID()]
		if !ok || root.Name != "loadgen place-order" || root.Parent.IsValid() {
			continue
		}
		if !hasAttr(root.Attributes, "cairn.order.id") {
			t.Errorf("loadgen span attributes = %v, want cairn.order.id", root.Attributes)
		}
		chains++
	}
	if chains == 0 {
		t.Errorf("found no trace loadgen place-order -> client -> server -> command order.place -> append events among %d spans", len(spans))
	}
}

func hasAttr(attrs []attribute.KeyValue, key attribute.Key) bool {
	for _, kv := range attrs {
		if kv.Key == key {
			return true
		}
	}
	return false
}
