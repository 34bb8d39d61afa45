package order_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/shop/order"
	"github.com/cairnhq/cairn/resilience/degrade"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTraceChain places an order through an otelhttp client and server and
// checks that one trace links client span -> server span -> SQLite span.
func TestTraceChain(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prop := propagation.TraceContext{}

	svc, err := order.New(t.Context(), order.Config{DataDir: t.TempDir(), TracerProvider: tp})
	if err != nil {
		t.Fatalf("order.New(...) error = %v", err)
	}
	defer func() {
		if err := svc.Close(); err != nil {
			t.Errorf("Close() error = %v", err)
		}
	}()
	srv := httptest.NewServer(otelhttp.NewHandler(svc.Handler(), "order",
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop)))
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections() // otelhttp.Transport does not forward CloseIdleConnections
	client := &http.Client{Transport: otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))}

	body := `{"customer_id":"c1","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1299}]}`
	req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/orders", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /orders status = %d, want 201", resp.StatusCode)
	}

	// The projection applies the order in a span of the same trace, a
	// child of the command whose context the event carries.
	var spans tracetest.SpanStubs
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans = exp.GetSpans()
		if findIn(spans, "project orders", findIn(spans, "HTTP POST", trace.TraceID{}).SpanContext.TraceID()).SpanContext.IsValid() || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	var clientSpan, serverSpan tracetest.SpanStub
	for _, s := range spans {
		switch {
		case s.SpanKind == trace.SpanKindServer:
			serverSpan = s
		case s.SpanKind == trace.SpanKindClient && s.Name == "HTTP POST":
			clientSpan = s
		}
	}
	cmd, appendSpan := find(spans, "command order.place"), find(spans, "append events")
	project := findIn(spans, "project orders", clientSpan.SpanContext.TraceID())
	for _, s := range []tracetest.SpanStub{clientSpan, serverSpan, cmd, appendSpan, project} {
		if !s.SpanContext.IsValid() {
			t.Fatalf("spans = %v, want client, server, command, append and projection spans", names(spans))
		}
	}
	tid := clientSpan.SpanContext.TraceID()
	for _, s := range []tracetest.SpanStub{serverSpan, cmd, appendSpan, project} {
		if s.SpanContext.TraceID() != tid {
			t.Errorf("span %q trace = %s, want %s", s.Name, s.SpanContext.TraceID(), tid)
		}
	}
	for _, pc := range [][2]tracetest.SpanStub{{clientSpan, serverSpan}, {serverSpan, cmd}, {cmd, appendSpan}, {cmd, project}} {
		if pc[1].Parent.SpanID() != pc[0].SpanContext.SpanID() {
			t.Errorf("span %q parent = %s, want %q (%s)", pc[1].Name, pc[1].Parent.SpanID(), pc[0].Name, pc[0].SpanContext.SpanID())
		}
	}
	if serverSpan.Name != "POST /orders" {
		t.Errorf("server span name = %q, want %q", serverSpan.Name, "POST /orders")
	}
}

func find(spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	return findIn(spans, name, trace.TraceID{})
}

// findIn returns the first span called name in trace tid, or in any trace
// if tid is zero.
func findIn(spans tracetest.SpanStubs, name string, tid trace.TraceID) tracetest.SpanStub {
	for _, s := range spans {
		if s.Name == name && (!tid.IsValid() || s.SpanContext.TraceID() == tid) {
			return s
		}
	}
	return tracetest.SpanStub{}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+"/"+s.SpanKind.String())
	}
	return out
}

func TestZeroConfig(t *testing.T) {
	svc, err := order.New(t.Context(), order.Config{})
	if err != nil {
		t.Fatalf("order.New(Config{}) error = %v", err)
	}
	defer svc.Close()
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /healthz status = %d, want 200", rec.Code)
	}
}

// TestDegradedList turns the order list down level by level while placing
// and reading single orders keeps working.
func TestDegradedList(t *testing.T) {
	sw, err := degrade.New(degrade.Config{Features: map[string]int{order.FeatureFullList: 1, order.FeatureList: 2}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := order.New(t.Context(), order.Config{Degrade: sw})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	h := svc.Handler()
	serve := func(method, target, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
		return rec
	}
	for range 15 {
		if rec := serve("POST", "/orders", `{"customer_id":"c1","lines":[{"sku":"SKU-1","quantity":1,"unit_price":100}]}`); rec.Code != http.StatusCreated {
			t.Fatalf("POST /orders = %d %s", rec.Code, rec.Body)
		}
	}
	count := func(rec *httptest.ResponseRecorder) int {
		var got struct {
			Orders []json.RawMessage `json:"orders"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("decode %s: %v", rec.Body, err)
		}
		return len(got.Orders)
	}
	// The list is read from the read model, which the projection fills a
	// moment after the appends.
	deadline := time.Now().Add(10 * time.Second)
	for count(serve("GET", "/orders?limit=50", "")) < 15 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	tests := []struct {
		level    int
		code     int
		orders   int
		degraded string
	}{
		{0, http.StatusOK, 15, ""},
		{1, http.StatusOK, order.DegradedListLimit, order.FeatureFullList},
		{2, http.StatusServiceUnavailable, 0, ""},
	}
	for _, tt := range tests {
		if err := sw.Force(t.Context(), tt.level); err != nil {
			t.Fatal(err)
		}
		rec := serve("GET", "/orders?limit=50", "")
		if rec.Code != tt.code || rec.Header().Get("Cairn-Degraded") != tt.degraded {
			t.Errorf("level %d: GET /orders = %d, Cairn-Degraded %q; want %d, %q", tt.level, rec.Code, rec.Header().Get("Cairn-Degraded"), tt.code, tt.degraded)
		}
		if tt.code == http.StatusOK {
			if n := count(rec); n != tt.orders {
				t.Errorf("level %d: %d orders, want %d", tt.level, n, tt.orders)
			}
		} else if rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "listing orders is turned off") {
			t.Errorf("level %d: %s, Retry-After %q", tt.level, rec.Body, rec.Header().Get("Retry-After"))
		}
		// The essential work is never degraded.
		if rec := serve("POST", "/orders", `{"customer_id":"c1","lines":[{"sku":"SKU-1","quantity":1,"unit_price":100}]}`); rec.Code != http.StatusCreated {
			t.Errorf("level %d: POST /orders = %d", tt.level, rec.Code)
		}
	}
}
