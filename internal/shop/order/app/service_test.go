package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memRepo is an in-memory app.Repository for tests.
type memRepo struct {
	mu      sync.Mutex
	orders  []domain.Order // insertion order
	saveErr error
	lastLim int
}

var _ app.Repository = (*memRepo)(nil)

func (r *memRepo) Save(_ context.Context, o domain.Order) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.saveErr != nil {
		return r.saveErr
	}
	for _, x := range r.orders {
		if x.ID == o.ID {
			return fmt.Errorf("save order %s: %w", o.ID, domain.ErrAlreadyExists)
		}
	}
	r.orders = append(r.orders, o)
	return nil
}

func (r *memRepo) Get(_ context.Context, id string) (domain.Order, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.orders {
		if o.ID == id {
			return o, nil
		}
	}
	return domain.Order{}, fmt.Errorf("load order %s: %w", id, domain.ErrNotFound)
}

func (r *memRepo) List(_ context.Context, limit int) ([]domain.Order, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastLim = limit
	out := slices.Clone(r.orders)
	slices.Reverse(out)
	return out[:min(limit, len(out))], nil
}

// captureHandler is a slog.Handler that keeps every record and the trace ID
// found in the context it was logged with.
type captureHandler struct {
	mu       sync.Mutex
	records  []slog.Record
	traceIDs []trace.TraceID
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *captureHandler) WithGroup(string) slog.Handler            { return h }
func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	h.traceIDs = append(h.traceIDs, trace.SpanContextFromContext(ctx).TraceID())
	return nil
}

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newService(t *testing.T, repo app.Repository, reader sdkmetric.Reader, h slog.Handler) *app.Service {
	t.Helper()
	n := 0
	var mu sync.Mutex
	svc, err := app.New(repo, app.Config{
		Logger:        slog.New(h),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Now:           func() time.Time { return fixedNow },
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("o%d", n)
		},
	})
	if err != nil {
		t.Fatalf("app.New(...) error = %v", err)
	}
	return svc
}

func TestPlaceOrder(t *testing.T) {
	repo := &memRepo{}
	reader := sdkmetric.NewManualReader()
	h := &captureHandler{}
	svc := newService(t, repo, reader, h)

	tid := trace.TraceID{1, 2, 3}
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: trace.SpanID{4}, TraceFlags: trace.FlagsSampled,
	}))
	lines := []domain.Line{{SKU: "SKU-1", Quantity: 2, UnitPrice: 1299}}
	got, err := svc.PlaceOrder(ctx, app.PlaceOrder{CustomerID: "c1", Lines: lines})
	if err != nil {
		t.Fatalf("PlaceOrder(...) error = %v, want nil", err)
	}
	want := domain.Order{ID: "o1", CustomerID: "c1", Lines: lines, Total: 2598, Status: domain.StatusPlaced, CreatedAt: fixedNow, UpdatedAt: fixedNow}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PlaceOrder(...) mismatch (-want +got):\n%s", diff)
	}
	if stored, err := svc.GetOrder(t.Context(), "o1"); err != nil || !cmp.Equal(stored, want) {
		t.Errorf("GetOrder(o1) = %v, %v, want %v, nil", stored, err, want)
	}

	// Log record: message, attributes, and the ctx reached the handler.
	if len(h.records) != 1 {
		t.Fatalf("logged %d records, want 1", len(h.records))
	}
	r := h.records[0]
	if r.Message != "order placed" || r.Level != slog.LevelInfo {
		t.Errorf("record = %s %q, want INFO %q", r.Level, r.Message, "order placed")
	}
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	wantAttrs := map[string]string{"order_id": "o1", "customer_id": "c1", "lines": "1", "total": "2598"}
	if diff := cmp.Diff(wantAttrs, attrs); diff != "" {
		t.Errorf("record attrs mismatch (-want +got):\n%s", diff)
	}
	if h.traceIDs[0] != tid {
		t.Errorf("handler saw trace ID %s, want %s (log not made with ctx)", h.traceIDs[0], tid)
	}

	// A second order, then metrics.
	if _, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{CustomerID: "c2", Lines: []domain.Line{{SKU: "S", Quantity: 1, UnitPrice: 402}}}); err != nil {
		t.Fatalf("PlaceOrder(...) error = %v, want nil", err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	placed, ok := findMetric(rm, "cairn.shop.orders.placed").Data.(metricdata.Sum[int64])
	if !ok || len(placed.DataPoints) != 1 || placed.DataPoints[0].Value != 2 || !placed.IsMonotonic {
		t.Errorf("cairn.shop.orders.placed = %+v, want monotonic sum 2", placed)
	}
	if u := findMetric(rm, "cairn.shop.orders.placed").Unit; u != "{order}" {
		t.Errorf("cairn.shop.orders.placed unit = %q, want {order}", u)
	}
	value, ok := findMetric(rm, "cairn.shop.order.value").Data.(metricdata.Histogram[int64])
	if !ok || len(value.DataPoints) != 1 || value.DataPoints[0].Count != 2 || value.DataPoints[0].Sum != 3000 {
		t.Errorf("cairn.shop.order.value = %+v, want count 2 sum 3000", value)
	}
}

func findMetric(rm metricdata.ResourceMetrics, name string) metricdata.Metrics {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m
			}
		}
	}
	return metricdata.Metrics{}
}

func TestPlaceOrderErrors(t *testing.T) {
	t.Run("invalid", func(t *testing.T) {
		repo := &memRepo{}
		reader := sdkmetric.NewManualReader()
		h := &captureHandler{}
		svc := newService(t, repo, reader, h)
		_, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{CustomerID: "c1", Lines: []domain.Line{{SKU: "S", Quantity: 0}}})
		var ve *domain.ValidationError
		if !errors.As(err, &ve) || ve.Field != "quantity" || ve.Line != 1 {
			t.Fatalf("PlaceOrder(quantity 0) error = %v, want ValidationError on line 1 quantity", err)
		}
		if len(repo.orders) != 0 || len(h.records) != 0 {
			t.Errorf("invalid order: stored %d, logged %d, want 0, 0", len(repo.orders), len(h.records))
		}
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		if m := findMetric(rm, "cairn.shop.orders.placed"); m.Data != nil {
			if s := m.Data.(metricdata.Sum[int64]); len(s.DataPoints) != 0 {
				t.Errorf("cairn.shop.orders.placed recorded %+v after a rejected order, want nothing", s.DataPoints)
			}
		}
	})
	t.Run("repository", func(t *testing.T) {
		boom := errors.New("disk on fire")
		svc := newService(t, &memRepo{saveErr: boom}, sdkmetric.NewManualReader(), &captureHandler{})
		_, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{CustomerID: "c1", Lines: []domain.Line{{SKU: "S", Quantity: 1}}})
		if !errors.Is(err, boom) {
			t.Fatalf("PlaceOrder(...) error = %v, want wrapping %v", err, boom)
		}
		if want := "place order o1: disk on fire"; err.Error() != want {
			t.Errorf("PlaceOrder(...) error = %q, want %q", err, want)
		}
	})
}

func TestGetOrderNotFound(t *testing.T) {
	svc := newService(t, &memRepo{}, sdkmetric.NewManualReader(), &captureHandler{})
	_, err := svc.GetOrder(t.Context(), "nope")
	if !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("GetOrder(nope) error = %v, want ErrNotFound", err)
	}
}

func TestListOrdersLimit(t *testing.T) {
	tests := []struct{ limit, wantRepoLimit int }{
		{-1, app.DefaultListLimit},
		{0, app.DefaultListLimit},
		{1, 1},
		{app.MaxListLimit, app.MaxListLimit},
		{app.MaxListLimit + 1, app.MaxListLimit},
	}
	for _, tt := range tests {
		repo := &memRepo{}
		svc := newService(t, repo, sdkmetric.NewManualReader(), &captureHandler{})
		if _, err := svc.ListOrders(t.Context(), tt.limit); err != nil {
			t.Fatalf("ListOrders(%d) error = %v", tt.limit, err)
		}
		if repo.lastLim != tt.wantRepoLimit {
			t.Errorf("ListOrders(%d) asked repository for %d, want %d", tt.limit, repo.lastLim, tt.wantRepoLimit)
		}
	}
}

func TestListOrdersNewestFirst(t *testing.T) {
	svc := newService(t, &memRepo{}, sdkmetric.NewManualReader(), &captureHandler{})
	for _, c := range []string{"a", "b", "c"} {
		if _, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{CustomerID: c, Lines: []domain.Line{{SKU: "S", Quantity: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := svc.ListOrders(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range got {
		ids = append(ids, o.ID)
	}
	if want := []string{"o3", "o2"}; !slices.Equal(ids, want) {
		t.Errorf("ListOrders(2) ids = %v, want %v", ids, want)
	}
}

func TestDefaultsAndNilRepository(t *testing.T) {
	if _, err := app.New(nil, app.Config{}); err == nil {
		t.Errorf("app.New(nil, ...) error = nil, want error")
	}
	svc, err := app.New(&memRepo{}, app.Config{})
	if err != nil {
		t.Fatalf("app.New(repo, Config{}) error = %v", err)
	}
	a, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{CustomerID: "c", Lines: []domain.Line{{SKU: "S", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.PlaceOrder(t.Context(), app.PlaceOrder{CustomerID: "c", Lines: []domain.Line{{SKU: "S", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ID) != 32 || a.ID == b.ID {
		t.Errorf("default IDs = %q, %q, want two distinct 32-digit hex strings", a.ID, b.ID)
	}
	if a.CreatedAt.IsZero() || a.CreatedAt.Location() != time.UTC {
		t.Errorf("default CreatedAt = %v, want a UTC time", a.CreatedAt)
	}
}
