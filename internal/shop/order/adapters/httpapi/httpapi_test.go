package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/shop/order/adapters/httpapi"
	sqlitestore "github.com/cairnhq/cairn/internal/shop/order/adapters/sqlite"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/problem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newServer serves the real handler over an in-memory SQLite store, with
// fixed time and sequential IDs.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	store, err := sqlitestore.Open(t.Context(), sqlitestore.MemoryPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	svc, err := app.New(store, app.Config{
		Now: func() time.Time { return fixedNow },
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("o%03d", n)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewHandler(svc, nil))
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path, contentType string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

const validBody = `{"customer_id":"c1","lines":[{"sku":"SKU-1","quantity":2,"unit_price":1299}]}`

func TestPlaceGetList(t *testing.T) {
	srv := newServer(t)

	r := do(t, srv, "POST", "/orders", "application/json", strings.NewReader(validBody))
	if r.status != http.StatusCreated {
		t.Fatalf("POST /orders status = %d, want 201; body %s", r.status, r.body)
	}
	if got := r.header.Get("Location"); got != "/orders/o001" {
		t.Errorf("Location = %q, want /orders/o001", got)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	want := httpapi.Order{
		ID: "o001", CustomerID: "c1", Status: "placed",
		Lines: []httpapi.Line{{SKU: "SKU-1", Quantity: 2, UnitPrice: 1299}},
		Total: 2598, CreatedAt: fixedNow, UpdatedAt: fixedNow,
	}
	if diff := cmp.Diff(want, decode[httpapi.Order](t, r)); diff != "" {
		t.Errorf("POST /orders body mismatch (-want +got):\n%s", diff)
	}

	r = do(t, srv, "GET", "/orders/o001", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /orders/o001 status = %d, want 200; body %s", r.status, r.body)
	}
	if diff := cmp.Diff(want, decode[httpapi.Order](t, r)); diff != "" {
		t.Errorf("GET /orders/o001 body mismatch (-want +got):\n%s", diff)
	}

	// No Content-Type at all is accepted too.
	if r := do(t, srv, "POST", "/orders", "", strings.NewReader(validBody)); r.status != http.StatusCreated {
		t.Fatalf("POST /orders without Content-Type status = %d, want 201", r.status)
	}
	r = do(t, srv, "GET", "/orders?limit=1", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /orders?limit=1 status = %d, want 200", r.status)
	}
	list := decode[httpapi.OrderList](t, r)
	if len(list.Orders) != 1 || list.Orders[0].ID != "o002" {
		t.Errorf("GET /orders?limit=1 = %+v, want [o002]", list)
	}
	r = do(t, srv, "GET", "/orders", "", nil)
	if list := decode[httpapi.OrderList](t, r); r.status != http.StatusOK || len(list.Orders) != 2 {
		t.Errorf("GET /orders = %d %+v, want 200 with 2 orders", r.status, list)
	}

	r = do(t, srv, "GET", "/healthz", "", nil)
	if r.status != http.StatusOK || string(r.body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok", r.status, r.body)
	}
}

func TestEmptyList(t *testing.T) {
	srv := newServer(t)
	r := do(t, srv, "GET", "/orders", "", nil)
	if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"orders":[]}` {
		t.Errorf("GET /orders on empty store = %d %s, want 200 {\"orders\":[]}", r.status, r.body)
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantDetail  string
	}{
		{"not found", "GET", "/orders/nope", "", "", 404, `order "nope" not found`},
		{"bad json", "POST", "/orders", "application/json", `{"customer_id":"c1",`, 400, "malformed JSON: body ends unexpectedly"},
		{"syntax error", "POST", "/orders", "application/json", `{"customer_id" "c1"}`, 400, "malformed JSON at byte 16: invalid character '\"' after object key"},
		{"empty body", "POST", "/orders", "application/json", ``, 400, "request body is empty; want a JSON object"},
		{"unknown field", "POST", "/orders", "application/json", `{"customer_id":"c1","coupon":"FREE","lines":[]}`, 400, `unknown field "coupon"`},
		{"wrong type", "POST", "/orders", "application/json", `{"customer_id":"c1","lines":[{"sku":"S","quantity":"2"}]}`, 400, `field "lines.quantity": want int, got JSON string`},
		{"not an object", "POST", "/orders", "application/json", `[1,2]`, 400, "request body is a JSON array, want a JSON object"},
		{"two objects", "POST", "/orders", "application/json", validBody + validBody, 400, "request body must contain a single JSON object"},
		{"validation quantity", "POST", "/orders", "application/json", `{"customer_id":"c1","lines":[{"sku":"S","quantity":1},{"sku":"S","quantity":0}]}`, 400, "order: line 2: quantity 0 out of range [1,1000]"},
		{"validation customer", "POST", "/orders", "application/json", `{"lines":[{"sku":"S","quantity":1}]}`, 400, `order: customer_id "" must not be empty`},
		{"too large", "POST", "/orders", "application/json", `{"customer_id":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, 413, "request body exceeds 1048576 bytes"},
		{"wrong content type", "POST", "/orders", "text/plain", validBody, 415, `Content-Type "text/plain" is not application/json`},
		{"bad limit", "GET", "/orders?limit=abc", "", "", 400, `query parameter limit "abc" is not a positive integer`},
		{"zero limit", "GET", "/orders?limit=0", "", "", 400, `query parameter limit "0" is not a positive integer`},
	}
	srv := newServer(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := do(t, srv, tt.method, tt.path, tt.contentType, body)
			if r.status != tt.wantStatus {
				t.Errorf("%s %s status = %d, want %d; body %s", tt.method, tt.path, r.status, tt.wantStatus, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			want := problem.Details{Type: "about:blank", Title: http.StatusText(tt.wantStatus), Status: tt.wantStatus, Detail: tt.wantDetail}
			if diff := cmp.Diff(want, decode[problem.Details](t, r)); diff != "" {
				t.Errorf("problem mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// failing is a Service whose every call fails with err.
type failing struct{ err error }

func (f failing) PlaceOrder(context.Context, app.PlaceOrder) (domain.Order, error) {
	return domain.Order{}, f.err
}
func (f failing) GetOrder(context.Context, string) (domain.Order, error) {
	return domain.Order{}, f.err
}
func (f failing) ListOrders(context.Context, int) ([]domain.Order, error) {
	return nil, f.err
}

func TestServerErrorIsLoggedWithTraceAndHidden(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	h := httpapi.NewHandler(failing{errors.New("database is on fire")}, logger)

	ctx, span := tp.Tracer("test").Start(t.Context(), "server")
	req := httptest.NewRequestWithContext(ctx, "GET", "/orders/o1", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	span.End()

	if rec.Code != 500 {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	var p problem.Details
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	want := problem.Details{Type: "about:blank", Title: "Internal Server Error", Status: 500,
		Detail: "internal server error", TraceID: span.SpanContext().TraceID().String()}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("problem mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "database is on fire") || !strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("log = %s, want an ERROR record with the cause", logs.String())
	}
	// The route is set on the span in the context.
	spans := exp.GetSpans()
	if len(spans) != 1 || !hasAttr(spans[0].Attributes, attribute.String("http.route", "/orders/{id}")) {
		t.Errorf("span attributes = %v, want http.route=/orders/{id}", spans[0].Attributes)
	}
	if req.Pattern != "GET /orders/{id}" {
		t.Errorf("request Pattern = %q, want %q (otelhttp names the span from it)", req.Pattern, "GET /orders/{id}")
	}
}

func hasAttr(attrs []attribute.KeyValue, want attribute.KeyValue) bool {
	for _, kv := range attrs {
		if kv == want {
			return true
		}
	}
	return false
}

func TestUnknownRouteAndMethod(t *testing.T) {
	srv := newServer(t)
	if r := do(t, srv, "GET", "/nope", "", nil); r.status != 404 {
		t.Errorf("GET /nope status = %d, want 404", r.status)
	}
	r := do(t, srv, "DELETE", "/orders/x", "", nil)
	if r.status != 405 || r.header.Get("Allow") == "" {
		t.Errorf("DELETE /orders/x = %d Allow=%q, want 405 with Allow", r.status, r.header.Get("Allow"))
	}
}

func TestCanceledRequestIsNotAServerError(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := httpapi.NewHandler(failing{errors.New("interrupted (9)")}, logger)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/orders", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %s, want nothing at INFO and above for a canceled request", logs.String())
	}
}

// TestUnavailableIsRetryLater answers a port's UnavailableError with 503
// and the Retry-After it carries, rounded up to whole seconds.
func TestUnavailableIsRetryLater(t *testing.T) {
	tests := []struct {
		after time.Duration
		want  string
	}{
		{2500 * time.Millisecond, "3"},
		{0, ""},
	}
	for _, tt := range tests {
		h := httpapi.NewHandler(failing{&app.UnavailableError{RetryAfter: tt.after, Err: errors.New("breaker open")}}, nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/orders/o1", nil))
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != tt.want {
			t.Errorf("RetryAfter %v: status %d, Retry-After %q; want 503, %q", tt.after, rec.Code, rec.Header().Get("Retry-After"), tt.want)
		}
		if !strings.Contains(rec.Body.String(), "temporarily unavailable") {
			t.Errorf("body = %s", rec.Body)
		}
	}
}
