package telemetry

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"go.opentelemetry.io/otel/metric"
)

func do(t *testing.T, h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestAdminLogLevel(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.tel.AdminHandler()

	if rec := do(t, admin, "GET", "/loglevel", ""); rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"level":"INFO"}` {
		t.Fatalf("GET /loglevel = %d %s, want 200 {\"level\":\"INFO\"}", rec.Code, rec.Body)
	}
	h.tel.Logger().Debug("before")

	if rec := do(t, admin, "PUT", "/loglevel", "debug\n"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"DEBUG"`) {
		t.Fatalf("PUT debug = %d %s, want 200 DEBUG", rec.Code, rec.Body)
	}
	h.tel.Logger().Debug("after")
	out := h.out.String()
	if strings.Contains(out, `"before"`) || !strings.Contains(out, `"after"`) {
		t.Errorf("console = %s, want only the debug record after the change", out)
	}

	tests := []struct {
		body, want string
		code       int
	}{
		{"INFO", "INFO", 200},
		{"warn", "WARN", 200},
		{"-4", "DEBUG", 200},
		{`{"level":"error"}`, "ERROR", 200},
		{`{"level":-4}`, "DEBUG", 200},
		{"loud", `bad log level \"loud\"`, 400},
		{`{"level":"shouty"}`, `bad log level \"shouty\"`, 400},
		{`{"lvl":"debug"}`, `bad body`, 400},
		{"", `bad log level \"\"`, 400},
	}
	for _, tt := range tests {
		rec := do(t, admin, "PUT", "/loglevel", tt.body)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("PUT %q = %d %s, want %d containing %s", tt.body, rec.Code, rec.Body, tt.code, tt.want)
		}
		if tt.code == 400 && rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("PUT %q Content-Type = %q, want application/problem+json", tt.body, rec.Header().Get("Content-Type"))
		}
	}
	if rec := do(t, admin, "DELETE", "/loglevel", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /loglevel = %d, want 405", rec.Code)
	}
}

func TestAdminHealthzAndPprof(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.tel.AdminHandler()
	rec := do(t, admin, "GET", "/healthz", "")
	var body map[string]string
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body["status"] != "ok" {
		t.Errorf("GET /healthz = %d %s, want 200 {\"status\":\"ok\"}", rec.Code, rec.Body)
	}
	rec = do(t, admin, "GET", "/debug/pprof/", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "goroutine") {
		t.Errorf("GET /debug/pprof/ = %d, want 200 with the profile index", rec.Code)
	}
	rec = do(t, admin, "GET", "/debug/pprof/goroutine?debug=1", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "goroutine profile") {
		t.Errorf("GET /debug/pprof/goroutine = %d, want 200 with a profile", rec.Code)
	}
}

// TestMetricsPromlint fails on any promlint problem in the exposition of
// real instruments of every kind, the runtime and HTTP metrics.
func TestMetricsPromlint(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.LogFile = &FileConfig{Path: filepath.Join(t.TempDir(), "app.log")}
	})
	// Real instruments of every kind, plus HTTP server metrics.
	meter := h.tel.MeterProvider().Meter("github.com/cairnhq/cairn/internal/shop/order")
	orders, _ := meter.Int64Counter("shop.orders.placed", metric.WithUnit("{order}"), metric.WithDescription("Orders placed."))
	orders.Add(t.Context(), 3)
	latency, _ := meter.Float64Histogram("shop.checkout.duration", metric.WithUnit("s"), metric.WithDescription("Checkout duration."))
	latency.Record(t.Context(), 0.12)
	queue, _ := meter.Int64UpDownCounter("shop.queue.depth", metric.WithUnit("{message}"), metric.WithDescription("Queued messages."))
	queue.Add(t.Context(), 2)
	size, _ := meter.Int64Gauge("shop.cache.size", metric.WithUnit("By"), metric.WithDescription("Cache size."))
	size.Record(t.Context(), 1024)
	srv := h.tel.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }), "hello")
	do(t, srv, "GET", "/hello", "")

	mfs, err := h.tel.Gatherer().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{
		"shop_orders_placed_total", "shop_checkout_duration_seconds", "go_goroutines", "go_memory_used_bytes",
		"http_server_request_duration_seconds", "cairn_log_dropped_total", "target_info",
	} {
		if !names[want] {
			t.Errorf("metric %s missing; have %v", want, names)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	// The same over HTTP, both formats.
	admin := h.tel.AdminHandler()
	for _, accept := range []string{"", "application/openmetrics-text; version=1.0.0"} {
		rec := do(t, admin, "GET", "/metrics", "", "Accept", accept)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "shop_orders_placed_total") {
			t.Fatalf("GET /metrics (Accept %q) = %d", accept, rec.Code)
		}
		ct := rec.Header().Get("Content-Type")
		if accept != "" && !strings.HasPrefix(ct, "application/openmetrics-text") {
			t.Errorf("Content-Type = %q, want OpenMetrics", ct)
		}
		if accept == "" {
			problems, err := promlint.New(rec.Body).Lint()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("promlint /metrics: %s: %s", p.Metric, p.Text)
			}
		}
	}
}

func TestServeAdmin(t *testing.T) {
	h := newHarness(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.tel.ServeAdmin(ctx, ln) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeAdmin = %v, want nil after cancel", err)
	}
}

// A change to a level above Info is itself recorded, and an oversized body
// is refused with 413.
func TestAdminLogLevelChangeRecorded(t *testing.T) {
	h := newHarness(t, nil)
	admin := h.tel.AdminHandler()
	if rec := do(t, admin, "PUT", "/loglevel", "error"); rec.Code != 200 {
		t.Fatalf("PUT error = %d %s, want 200", rec.Code, rec.Body)
	}
	if out := h.out.String(); !strings.Contains(out, `"msg":"log level changed"`) || !strings.Contains(out, `"to":"ERROR"`) {
		t.Errorf("console = %s, want the change to ERROR recorded", out)
	}
	rec := do(t, admin, "PUT", "/loglevel", strings.Repeat("d", 1<<20))
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "body exceeds") {
		t.Errorf("PUT 1 MiB = %d %s, want 413 naming the limit", rec.Code, rec.Body)
	}
}
