package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/shipping/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/shipping/app"
	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

var monday = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type fixture struct {
	svc    *app.Service
	clock  *clock
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
}

// newFixture returns a Service on a SQLite store in a temp file.
func newFixture(t *testing.T, dispatchAfter time.Duration) *fixture {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "shipping.db")+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := sqlstore.New(t.Context(), db, cqrs.SQLite, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: &clock{now: monday}, reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	f.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
	t.Cleanup(func() { _ = f.tp.Shutdown(context.Background()) })
	f.svc, err = app.New(app.Config{
		Store: store, DispatchAfter: dispatchAfter, Now: f.clock.Now,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader)), TracerProvider: f.tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// counts returns the ShipmentsMetric's values by outcome.
func (f *fixture) counts(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != app.ShipmentsMetric {
				continue
			}
			if m.Unit != "{shipment}" {
				t.Errorf("%s unit = %q, want {shipment}", m.Name, m.Unit)
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value("outcome")
				out[v.AsString()] = dp.Value
			}
		}
	}
	return out
}

func schedule(saga, region string) app.Schedule {
	return app.Schedule{
		Key:     app.Key{SagaID: saga, BranchID: "shipping"},
		OrderID: "order-" + saga,
		Address: domain.Address{Recipient: "Ada", Lines: []string{"Hauptstr. 1"}, Locality: "Berlin", RegionCode: region},
		Lines:   []domain.Line{{SKU: "A", Quantity: 1}},
	}
}

func cancel(saga string) app.Cancel {
	return app.Cancel{Key: app.Key{SagaID: saga, BranchID: "shipping"}, OrderID: "order-" + saga}
}

func TestLifecycleAndMetrics(t *testing.T) {
	f := newFixture(t, time.Hour)
	ctx := t.Context()

	first, err := f.svc.ScheduleShipment(ctx, schedule("saga-1", "DE"))
	if err != nil {
		t.Fatal(err)
	}
	if want := monday.AddDate(0, 0, 2); first.Status != domain.Scheduled || !first.EstimatedDelivery.Equal(want) {
		t.Errorf("ScheduleShipment = %v due %v, want scheduled due %v", first.Status, first.EstimatedDelivery, want)
	}
	f.clock.Add(time.Minute)
	dup, err := f.svc.ScheduleShipment(ctx, schedule("saga-1", "DE"))
	if err != nil || dup.ID != first.ID || !dup.EstimatedDelivery.Equal(first.EstimatedDelivery) {
		t.Errorf("ScheduleShipment(duplicate) = %s due %v, %v; want %s due %v", dup.ID, dup.EstimatedDelivery, err, first.ID, first.EstimatedDelivery)
	}
	if _, err := f.svc.ScheduleShipment(ctx, schedule("saga-jp", "JP")); !errors.Is(err, domain.ErrUnservedRegion) {
		t.Errorf("ScheduleShipment(JP) = %v, want ErrUnservedRegion", err)
	}
	bad := schedule("saga-bad", "DE")
	bad.Lines = nil
	if _, err := f.svc.ScheduleShipment(ctx, bad); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("ScheduleShipment(no lines) = %v, want ErrInvalid", err)
	}

	got, err := f.svc.CancelShipment(ctx, cancel("saga-1"))
	if err != nil || got == nil || got.Status != domain.Cancelled || got.ID != first.ID {
		t.Fatalf("CancelShipment = %+v, %v; want %s cancelled", got, err, first.ID)
	}
	if got, err := f.svc.CancelShipment(ctx, cancel("saga-1")); err != nil || got == nil || got.Status != domain.Cancelled {
		t.Errorf("CancelShipment(duplicate) = %+v, %v; want cancelled", got, err)
	}

	// The compensation overtakes its action.
	if got, err := f.svc.CancelShipment(ctx, cancel("saga-2")); err != nil || got != nil {
		t.Errorf("CancelShipment(before schedule) = %+v, %v; want nil, nil", got, err)
	}
	if _, err := f.svc.ScheduleShipment(ctx, schedule("saga-2", "DE")); !errors.Is(err, app.ErrAborted) {
		t.Errorf("ScheduleShipment(after cancel) = %v, want ErrAborted", err)
	}

	// Dispatch ships what is an hour old, then cancelling it fails.
	s3, err := f.svc.ScheduleShipment(ctx, schedule("saga-3", "US"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.Dispatch(ctx); err != nil || n != 0 {
		t.Errorf("Dispatch after a minute = %d, %v; want 0", n, err)
	}
	f.clock.Add(time.Hour)
	if n, err := f.svc.Dispatch(ctx); err != nil || n != 1 {
		t.Errorf("Dispatch after an hour = %d, %v; want 1", n, err)
	}
	if got, err := f.svc.GetShipment(ctx, s3.ID); err != nil || got.Status != domain.Shipped {
		t.Errorf("GetShipment = %v, %v; want shipped", got.Status, err)
	}
	if _, err := f.svc.CancelShipment(ctx, cancel("saga-3")); !errors.Is(err, domain.ErrNotCancellable) {
		t.Errorf("CancelShipment(shipped) = %v, want ErrNotCancellable", err)
	}

	want := map[string]int64{app.OutcomeScheduled: 2, app.OutcomeRejected: 2, app.OutcomeCancelled: 1, app.OutcomeShipped: 1}
	if diff := cmp.Diff(want, f.counts(t)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", app.ShipmentsMetric, diff)
	}

	var dispatches int
	for _, s := range f.spans.Ended() {
		if s.Name() == "shipping.dispatch" {
			dispatches++
		}
	}
	if dispatches != 2 {
		t.Errorf("%d spans shipping.dispatch, want 2", dispatches)
	}
}

func TestSpanAttributes(t *testing.T) {
	f := newFixture(t, 0)
	ctx, span := f.tp.Tracer("test").Start(t.Context(), "rpc")
	sh, err := f.svc.ScheduleShipment(ctx, schedule("saga-1", "DE"))
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	ended := f.spans.Ended()
	got := map[attribute.Key]string{}
	for _, kv := range ended[len(ended)-1].Attributes() {
		got[kv.Key] = kv.Value.AsString()
	}
	want := map[attribute.Key]string{
		app.AttrOrderID: "order-saga-1", app.AttrSagaID: "saga-1", app.AttrBranchID: "shipping", app.AttrShipmentID: sh.ID,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("span attributes (-want +got):\n%s", diff)
	}
}

func TestInvalid(t *testing.T) {
	f := newFixture(t, 0)
	ctx := t.Context()
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"schedule without saga", func() error {
			in := schedule("", "DE")
			_, err := f.svc.ScheduleShipment(ctx, in)
			return err
		}, "idempotency.saga_id"},
		{"schedule without branch", func() error {
			in := schedule("s", "DE")
			in.Key.BranchID = ""
			_, err := f.svc.ScheduleShipment(ctx, in)
			return err
		}, "idempotency.branch_id"},
		{"cancel without saga", func() error { _, err := f.svc.CancelShipment(ctx, cancel("")); return err }, "idempotency.saga_id"},
		{"cancel without order", func() error {
			_, err := f.svc.CancelShipment(ctx, app.Cancel{Key: app.Key{SagaID: "s", BranchID: "b"}})
			return err
		}, "order_id"},
		{"get without id", func() error { _, err := f.svc.GetShipment(ctx, ""); return err }, "shipment_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inv *domain.InvalidError
			if err := tc.call(); !errors.As(err, &inv) || inv.Field != tc.field {
				t.Errorf("error = %v, want an *InvalidError for %s", err, tc.field)
			}
		})
	}
	if _, err := f.svc.GetShipment(ctx, "shp-unknown"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("GetShipment(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := app.New(app.Config{}); err == nil {
		t.Error("New without a store = nil error")
	}
}

func TestRegionsConfigured(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(t.Context(), db, cqrs.SQLite, nil)
	if err != nil {
		t.Fatal(err)
	}
	regions := domain.Regions{"JP": 10}
	svc, err := app.New(app.Config{Store: store, Regions: regions, Now: func() time.Time { return monday }})
	if err != nil {
		t.Fatal(err)
	}
	regions["DE"] = 1 // New copied the map
	if _, err := svc.ScheduleShipment(t.Context(), schedule("s1", "DE")); !errors.Is(err, domain.ErrUnservedRegion) {
		t.Errorf("ScheduleShipment(DE) = %v, want ErrUnservedRegion", err)
	}
	sh, err := svc.ScheduleShipment(t.Context(), schedule("s2", "JP"))
	if want := monday.AddDate(0, 0, 14); err != nil || !sh.EstimatedDelivery.Equal(want) {
		t.Errorf("ScheduleShipment(JP) due %v, %v; want %v", sh.EstimatedDelivery, err, want)
	}
}

// dispatchStore records the Dispatch calls; its other methods are not
// called.
type dispatchStore struct {
	app.Store
	mu    sync.Mutex
	calls []time.Time // createdBy of each call
	fail  bool
}

func (s *dispatchStore) Dispatch(_ context.Context, createdBy, _ time.Time) ([]domain.Shipment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, createdBy)
	if s.fail {
		return nil, errors.New("database down")
	}
	return []domain.Shipment{{ID: "shp"}}, nil
}

func TestRunDispatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &dispatchStore{fail: true}
		svc, err := app.New(app.Config{Store: store, DispatchAfter: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- svc.RunDispatcher(ctx, 10*time.Second) }()

		time.Sleep(25 * time.Second) // fake time: two ticks, at 10s and 20s
		synctest.Wait()
		store.mu.Lock()
		store.fail = false // a failed pass does not stop the dispatcher
		store.mu.Unlock()
		time.Sleep(10 * time.Second) // the tick at 30s
		synctest.Wait()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("RunDispatcher = %v, want context.Canceled", err)
		}
		want := []time.Time{start.Add(10*time.Second - time.Minute), start.Add(20*time.Second - time.Minute), start.Add(30*time.Second - time.Minute)}
		if diff := cmp.Diff(want, store.calls); diff != "" {
			t.Errorf("Dispatch calls' createdBy (-want +got):\n%s", diff)
		}
	})
	svc, err := app.New(app.Config{Store: &dispatchStore{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RunDispatcher(t.Context(), 0); err == nil {
		t.Error("RunDispatcher(0) = nil error")
	}
}

func TestLogs(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.New(t.Context(), db, cqrs.SQLite, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	svc, err := app.New(app.Config{Store: store, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, call := range []func() error{
		func() error { _, err := svc.ScheduleShipment(ctx, schedule("s1", "DE")); return err },
		func() error { _, err := svc.CancelShipment(ctx, cancel("s1")); return err },
		func() error { _, err := svc.ScheduleShipment(ctx, schedule("s2", "DE")); return err },
		func() error { _, err := svc.Dispatch(ctx); return err },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = svc.ScheduleShipment(ctx, schedule("s3", "JP"))
	for _, want := range []string{
		`msg="shipment scheduled"`, "order_id=order-s1", "saga_id=s1", "region_code=DE",
		`msg="shipment cancelled"`, `msg="shipment shipped"`, "order_id=order-s2",
		`msg="shipment rejected"`, "reason=unserved_region",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, buf.String())
		}
	}
}
