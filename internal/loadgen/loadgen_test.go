package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
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
		{"negative decline ratio", loadgen.Config{BaseURL: "http://x", DeclineRatio: -0.1}},
		{"decline ratio above 1", loadgen.Config{BaseURL: "http://x", DeclineRatio: 1.5}},
		{"NaN decline ratio", loadgen.Config{BaseURL: "http://x", DeclineRatio: math.NaN()}},
		{"negative watch timeout", loadgen.Config{BaseURL: "http://x", WatchTimeout: -time.Second}},
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

// TestRunDynamicRate follows a Rate that changes during the run, ignoring
// RPS: 10/s until 1.05s, paused until 2.05s, then 20/s.
func TestRunDynamicRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newOrderService(t, nil)
		defer svc.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 3975*time.Millisecond)
		defer cancel()
		rate := loadgen.NewRate(10)
		go func() {
			time.Sleep(1050 * time.Millisecond)
			rate.Set(0)
			time.Sleep(time.Second)
			rate.Set(20)
		}()
		stats, err := loadgen.Run(ctx, loadgen.Config{
			BaseURL: "http://order.test",
			RPS:     1000,
			Rate:    rate,
			Client:  &http.Client{Transport: handlerTransport{h: svc.Handler(), delay: 20 * time.Millisecond}},
		})
		if err != nil {
			t.Fatalf("Run(...) error = %v", err)
		}
		// 0s..1.0s: 11 arrivals; 2.05s..3.95s at 20/s: 39 arrivals.
		if stats.Sent != 50 || stats.Succeeded != 50 {
			t.Errorf("Run(...) = %+v, want 50 sent, 50 succeeded", stats)
		}
	})
}

// stubOrders answers POST /orders with 201 and the ids o-1, o-2, ... in
// order, and every other request with 200. It records the bodies posted.
type stubOrders struct {
	mu     sync.Mutex
	n      int
	bodies [][]byte
}

func (s *stubOrders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusOK)
		return
	}
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.n++
	n := s.n
	s.bodies = append(s.bodies, b)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"o-%d","status":"placed"}`, n)
}

// TestRunWatch follows the checkouts of ten placed orders, two of each
// outcome, and checks the stats, the histogram, the log and that each watch
// carries its placement's root span.
func TestRunWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		reader := sdkmetric.NewManualReader()
		var logs strings.Builder
		var mu sync.Mutex
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))

		var (
			watchMu   sync.Mutex
			watchSpan = map[string]trace.SpanContext{}
		)
		watch := func(ctx context.Context, id string) (string, error) {
			watchMu.Lock()
			watchSpan[id] = trace.SpanContextFromContext(ctx)
			watchMu.Unlock()
			if d, ok := ctx.Deadline(); !ok || time.Until(d) != 5*time.Second {
				t.Errorf("Watch(%s) context deadline in %v (%v), want in 5s", id, time.Until(d), ok)
			}
			var i int
			fmt.Sscanf(id, "o-%d", &i)
			switch i % 5 {
			case 1:
				time.Sleep(time.Second)
				return "confirmed", nil
			case 2:
				time.Sleep(2 * time.Second)
				return "cancelled", nil
			case 3:
				time.Sleep(3 * time.Second)
				return "failed", nil
			case 4:
				<-ctx.Done() // never final
				return "", ctx.Err()
			default:
				time.Sleep(500 * time.Millisecond)
				return "compensating", nil // not final
			}
		}

		ctx, cancel := context.WithTimeout(t.Context(), 950*time.Millisecond)
		defer cancel()
		start := time.Now()
		stats, err := loadgen.Run(ctx, loadgen.Config{
			BaseURL:        "http://order.test",
			RPS:            10,
			ReadRatio:      -1,
			ListRatio:      -1,
			Client:         &http.Client{Transport: handlerTransport{h: &stubOrders{}, delay: 20 * time.Millisecond}},
			TracerProvider: tp,
			MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
			Logger:         logger,
			Watch:          watch,
			WatchTimeout:   5 * time.Second,
		})
		if err != nil {
			t.Fatalf("Run(...) error = %v", err)
		}
		want := loadgen.CheckoutStats{
			Watched: 10, Confirmed: 2, Cancelled: 2, Failed: 2, Unfinished: 4,
			// Over 1.02s, 1.02s, 2.02s, 2.02s: the request's 20ms and the watch.
			P50: 1020 * time.Millisecond, P99: 2020 * time.Millisecond,
		}
		if stats.Checkouts != want {
			t.Errorf("Run(...).Checkouts = %+v, want %+v", stats.Checkouts, want)
		}
		if stats.Sent != 10 || stats.Succeeded != 10 {
			t.Errorf("Run(...) = %+v, want 10 sent, 10 succeeded", stats)
		}
		// Run waited for the last watch: o-9, placed at 0.8s, timed out 5s
		// after its response.
		if got, want := time.Since(start), 5820*time.Millisecond; got != want {
			t.Errorf("Run returned after %v, want %v", got, want)
		}
		if n := strings.Count(logs.String(), "loadgen checkout unfinished"); n != 4 {
			t.Errorf("logged %d unfinished checkouts, want 4:\n%s", n, logs.String())
		}

		// Each watch carried its placement's root span.
		roots := 0
		for _, s := range exp.GetSpans() {
			if s.Name != "loadgen place-order" {
				continue
			}
			roots++
			var id string
			for _, kv := range s.Attributes {
				if kv.Key == "cairn.order.id" {
					id = kv.Value.AsString()
				}
			}
			if got := watchSpan[id]; !got.Equal(s.SpanContext) {
				t.Errorf("Watch(%s) context span %v, want the placement's root span %v", id, got.SpanID(), s.SpanContext.SpanID())
			}
		}
		if roots != 10 || len(watchSpan) != 10 {
			t.Errorf("%d placement spans, %d watches, want 10 of each", roots, len(watchSpan))
		}

		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		counts := map[string]uint64{}
		sums := map[string]float64{}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "cairn.loadgen.checkout.duration" {
					continue
				}
				if m.Unit != "s" {
					t.Errorf("%s unit %q, want s", m.Name, m.Unit)
				}
				for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					outcome, _ := dp.Attributes.Value("outcome")
					counts[outcome.AsString()] += dp.Count
					sums[outcome.AsString()] += dp.Sum
					if b := dp.Bounds; len(b) == 0 || b[0] != 0.001 || b[len(b)-1] != 30 {
						t.Errorf("%s bounds %v, want 0.001 .. 30", m.Name, b)
					}
				}
			}
		}
		wantCounts := map[string]uint64{"confirmed": 2, "cancelled": 2, "failed": 2, "unfinished": 4}
		if !maps.Equal(counts, wantCounts) {
			t.Errorf("cairn.loadgen.checkout.duration counts by outcome = %v, want %v", counts, wantCounts)
		}
		// unfinished: two timeouts (5.02s) and two non-final statuses (0.52s).
		wantSums := map[string]float64{"confirmed": 2.04, "cancelled": 4.04, "failed": 6.04, "unfinished": 11.08}
		for k, w := range wantSums {
			if math.Abs(sums[k]-w) > 1e-9 {
				t.Errorf("cairn.loadgen.checkout.duration{outcome=%s} sum = %v, want %v", k, sums[k], w)
			}
		}
	})
}

// TestRunWatchOnlyPlaced: a failed placement has no checkout to follow.
func TestRunWatchOnlyPlaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusServiceUnavailable)
		})
		ctx, cancel := context.WithTimeout(t.Context(), 950*time.Millisecond)
		defer cancel()
		stats, err := loadgen.Run(ctx, loadgen.Config{
			BaseURL:   "http://order.test",
			ReadRatio: -1,
			ListRatio: -1,
			Client:    &http.Client{Transport: handlerTransport{h: broken}},
			Watch: func(ctx context.Context, id string) (string, error) {
				t.Errorf("Watch(%s) called after a failed placement", id)
				return "confirmed", nil
			},
		})
		if err != nil {
			t.Fatalf("Run(...) error = %v", err)
		}
		if stats.Failed != 10 || stats.Checkouts != (loadgen.CheckoutStats{}) {
			t.Errorf("Run(...) = %+v, want 10 failed, no checkouts", stats)
		}
	})
}

// TestRunDeclineRatio checks the payment methods placements send, through
// the real order service, which accepts them.
func TestRunDeclineRatio(t *testing.T) {
	tests := []struct {
		ratio          float64
		minDeclines    int
		maxDeclines    int
		wantPlacements int
	}{
		{0, 0, 0, 200},
		{0.3, 40, 80, 200},
		{1, 200, 200, 200},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.ratio), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				svc := newOrderService(t, nil)
				defer svc.Close()
				var (
					mu      sync.Mutex
					methods = map[string]int{}
				)
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					var body struct {
						PaymentMethod *string `json:"payment_method"`
					}
					if err := json.Unmarshal(b, &body); err != nil || body.PaymentMethod == nil {
						t.Errorf("POST body %s has no payment_method (%v)", b, err)
					} else {
						mu.Lock()
						methods[*body.PaymentMethod]++
						mu.Unlock()
					}
					r.Body = io.NopCloser(bytes.NewReader(b))
					svc.Handler().ServeHTTP(w, r)
				})
				ctx, cancel := context.WithTimeout(t.Context(), 1995*time.Millisecond)
				defer cancel()
				stats, err := loadgen.Run(ctx, loadgen.Config{
					BaseURL:      "http://order.test",
					RPS:          100,
					ReadRatio:    -1,
					ListRatio:    -1,
					DeclineRatio: tt.ratio,
					Client:       &http.Client{Transport: handlerTransport{h: h}},
					Seed:         3,
				})
				if err != nil {
					t.Fatalf("Run(...) error = %v", err)
				}
				if stats.Succeeded != int64(tt.wantPlacements) {
					t.Errorf("Run(...) = %+v, want %d succeeded", stats, tt.wantPlacements)
				}
				declines, visas := methods["tok_decline"], methods["tok_visa"]
				if declines+visas != tt.wantPlacements || len(methods) > 2 {
					t.Errorf("payment methods = %v, want %d of tok_visa and tok_decline", methods, tt.wantPlacements)
				}
				if declines < tt.minDeclines || declines > tt.maxDeclines {
					t.Errorf("DeclineRatio %v: %d of %d placements tok_decline, want %d..%d", tt.ratio, declines, declines+visas, tt.minDeclines, tt.maxDeclines)
				}
			})
		})
	}
}
