package cqrs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/eventstore"
)

// TestProjectorExactlyOnce kills a projector after it applied a batch and
// moved the checkpoint but before the commit, then restarts it: every
// event is in the read model exactly once.
func TestProjectorExactlyOnce(t *testing.T) {
	for _, b := range backends {
		for _, crash := range []string{"error before commit", "context canceled before commit"} {
			t.Run(b.name+"/"+crash, func(t *testing.T) {
				db := b.open(t)
				es := openEventStore(t)
				last := appendN(t, es, "order-1", 10)

				newProjector := func() *Projector {
					p, err := NewProjector(db, b.dialect, es, orders{version: 1, d: b.dialect}, ProjectorOptions{Name: "orders", BatchSize: 3})
					if err != nil {
						t.Fatalf("NewProjector: %v", err)
					}
					return p
				}
				// First run: the second batch is applied, then the process "dies".
				p := newProjector()
				errCrash := errors.New("crash")
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				batches := 0
				p.beforeCommit = func(context.Context) error {
					batches++
					if batches < 2 {
						return nil
					}
					if crash == "error before commit" {
						return errCrash
					}
					cancel() // the commit that follows fails
					return nil
				}
				err := p.Run(ctx)
				if err == nil {
					t.Fatal("Run() = nil, want the crash")
				}
				cp, cerr := Checkpoint(t.Context(), db, b.dialect, "orders", 1)
				if cerr != nil {
					t.Fatal(cerr)
				}
				rows, _ := counts(t, db, 1)
				if cp == 0 || rows != 3 {
					t.Fatalf("after the crash: checkpoint %d, %d rows; want the first batch only (3 rows)", cp, rows)
				}

				// Restart: the rolled-back batch is applied once, nothing twice.
				p = newProjector()
				r := start(t, p)
				waitFor(t, "catch up", func() bool { return p.Checkpoint() == last })
				if err := r.stop(); err != nil {
					t.Fatalf("Run() = %v", err)
				}
				rows, distinct := counts(t, db, 1)
				if rows != 10 || distinct != 10 {
					t.Errorf("orders_v1 has %d rows, %d distinct events; want 10 and 10", rows, distinct)
				}
				if cp, _ := Checkpoint(t.Context(), db, b.dialect, "orders", 1); cp != last {
					t.Errorf("Checkpoint() = %d, want %d", cp, last)
				}
			})
		}
	}
}

// TestProjectorApplyError checks that an error of Apply stops Run, wrapped
// with the projection's name, and commits nothing of the batch.
func TestProjectorApplyError(t *testing.T) {
	db := openSQLite(t)
	es := openEventStore(t)
	appendN(t, es, "order-1", 2)
	errApply := errors.New("apply failed")
	p, err := NewProjector(db, SQLite, es, failing{orders{version: 1, d: SQLite}, errApply}, ProjectorOptions{Name: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Run(t.Context())
	if !errors.Is(err, errApply) {
		t.Fatalf("Run() = %v, want %v", err, errApply)
	}
	if rows, _ := counts(t, db, 1); rows != 0 {
		t.Errorf("%d rows after a failed batch, want 0", rows)
	}
}

type failing struct {
	orders
	err error
}

func (f failing) Apply(context.Context, *sql.Tx, []eventstore.RecordedEvent) error { return f.err }

// TestProjectorConcurrentInstances runs two projectors of one version at
// once: the checkpoint guard keeps each event applied once.
func TestProjectorConcurrentInstances(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			es := openEventStore(t)
			last := appendN(t, es, "order-1", 30)
			var ps []*Projector
			for range 2 {
				p, err := NewProjector(db, b.dialect, es, orders{version: 1, d: b.dialect}, ProjectorOptions{Name: "orders", BatchSize: 2})
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}
			// Set up once, so that both instances start from created tables.
			r0 := start(t, ps[0])
			r1 := start(t, ps[1])
			waitFor(t, "catch up", func() bool {
				cp, err := Checkpoint(t.Context(), db, b.dialect, "orders", 1)
				return err == nil && cp == last
			})
			for _, r := range []*runner{r0, r1} {
				if err := r.stop(); err != nil {
					t.Errorf("Run() = %v", err)
				}
			}
			if rows, distinct := counts(t, db, 1); rows != 30 || distinct != 30 {
				t.Errorf("orders_v1 has %d rows, %d distinct; want 30 and 30", rows, distinct)
			}
		})
	}
}

// TestProjectorTracing checks the parent of a one-event batch and the
// links of a batch of several.
func TestProjectorTracing(t *testing.T) {
	db := openSQLite(t)
	es := openEventStore(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())

	// Three commands, each appending in its own trace.
	var traces []trace.SpanContext
	appendTraced := func(id string) {
		ctx, span := tp.Tracer("test").Start(t.Context(), "command "+id)
		defer span.End()
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, carrier)
		traces = append(traces, span.SpanContext())
		if _, err := es.Append(ctx, "order-"+id, eventstore.Any, eventstore.Event{ID: id, Type: "order.placed", Metadata: eventstore.Metadata{TraceParent: carrier["traceparent"]}}); err != nil {
			t.Fatal(err)
		}
	}
	appendTraced("a")

	p, err := NewProjector(db, SQLite, es, orders{version: 1, d: SQLite}, ProjectorOptions{Name: "orders", TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	p.beforeCommit = func(context.Context) error { return nil }
	r := &runner{cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); r.err = p.Run(ctx) }()
	waitFor(t, "first event", func() bool { return p.Checkpoint() > 0 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	appendTraced("b")
	appendTraced("c")
	r = start(t, p)
	waitFor(t, "all events", func() bool { rows, _ := counts(t, db, 1); return rows == 3 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	var project []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "project orders" {
			project = append(project, s)
		}
	}
	if len(project) < 2 {
		t.Fatalf("%d spans named %q, want 2 or more (one per batch)", len(project), "project orders")
	}
	single, multi := project[0], project[len(project)-1]
	if got, want := single.Parent().SpanID(), traces[0].SpanID(); got != want || single.SpanContext().TraceID() != traces[0].TraceID() {
		t.Errorf("one-event batch: parent %s in trace %s, want %s in trace %s", got, single.SpanContext().TraceID(), want, traces[0].TraceID())
	}
	var linked []trace.SpanID
	for _, l := range multi.Links() {
		linked = append(linked, l.SpanContext.SpanID())
	}
	if len(linked) != 2 || linked[0] != traces[1].SpanID() || linked[1] != traces[2].SpanID() {
		t.Errorf("two-event batch links %v, want [%s %s]", linked, traces[1].SpanID(), traces[2].SpanID())
	}
	if multi.Parent().IsValid() {
		t.Errorf("two-event batch has parent %s, want a root span", multi.Parent().SpanID())
	}
}

// readerOnly hides the eventstore.Counter of a store.
type readerOnly struct{ eventstore.Reader }

// gated applies events only when let through.
type gated struct {
	orders
	gate chan struct{}
}

func (g gated) Apply(ctx context.Context, tx *sql.Tx, events []eventstore.RecordedEvent) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.orders.Apply(ctx, tx, events)
}

func lagGauge(t *testing.T, reader *sdkmetric.ManualReader) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == ProjectionLagMetricName && len(g.DataPoints) == 1 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// TestProjectorLagCountsEvents: over a store that counts events, the lag
// gauge is the number of events after the checkpoint.
func TestProjectorLagCountsEvents(t *testing.T) {
	db := openSQLite(t)
	es := openEventStore(t)
	appendN(t, es, "order-1", 6)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	gate := make(chan struct{})
	p, err := NewProjector(db, SQLite, es, gated{orders{version: 1, d: SQLite}, gate}, ProjectorOptions{Name: "orders", MeterProvider: mp, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, p)
	waitFor(t, "lag 6 before any batch", func() bool { lag, ok := lagGauge(t, reader); return ok && lag == 6 })
	gate <- struct{}{}
	waitFor(t, "lag 4 after one batch of 2", func() bool { lag, ok := lagGauge(t, reader); return ok && lag == 4 })
	close(gate)
	waitFor(t, "lag 0", func() bool { lag, ok := lagGauge(t, reader); return ok && lag == 0 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestProjectorLagMetrics checks the gauges against a head ahead of the
// checkpoint, then caught up, over a reader that does not count events.
func TestProjectorLagMetrics(t *testing.T) {
	db := openSQLite(t)
	store := openEventStore(t)
	es := readerOnly{store}
	last := appendN(t, store, "order-1", 4)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())

	var extra atomic.Int64 // how far the reported head is past the last event
	extra.Store(5)
	p, err := NewProjector(db, SQLite, es, orders{version: 1, d: SQLite}, ProjectorOptions{
		Name:          "orders",
		MeterProvider: mp,
		Head: func(ctx context.Context) (eventstore.Position, error) {
			h, err := head(ctx, es)
			return h + eventstore.Position(extra.Load()), err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, p)
	waitFor(t, "catch up", func() bool { return p.Checkpoint() == last })

	gauges := func() (lag int64, seconds float64, ok bool) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch m.Name {
				case ProjectionLagMetricName:
					if g, isGauge := m.Data.(metricdata.Gauge[int64]); isGauge && len(g.DataPoints) == 1 {
						lag = g.DataPoints[0].Value
						found++
					}
				case ProjectionLagSecondsMetricName:
					if g, isGauge := m.Data.(metricdata.Gauge[float64]); isGauge && len(g.DataPoints) == 1 {
						seconds = g.DataPoints[0].Value
						found++
					}
				}
			}
		}
		return lag, seconds, found == 2
	}
	waitFor(t, "lag 5", func() bool { lag, _, ok := gauges(); return ok && lag == 5 })
	extra.Store(0)
	waitFor(t, "lag 0", func() bool { lag, _, ok := gauges(); return ok && lag == 0 })
	if _, seconds, _ := gauges(); seconds != 0 {
		t.Errorf("%s = %v once caught up, want 0", ProjectionLagSecondsMetricName, seconds)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// Stopped: the gauges are no longer reported.
	if _, _, ok := gauges(); ok {
		t.Errorf("gauges still reported after Run returned")
	}
}

// TestRebuild builds v2 beside a serving v1 while writers append, and
// switches to it: queries never fail, and v2 holds every event once.
func TestRebuild(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			db := b.open(t)
			es := openEventStore(t)
			notify := make(chan struct{}, 1)
			newProjector := func(version int) *Projector {
				p, err := NewProjector(db, b.dialect, es, orders{version: version, d: b.dialect}, ProjectorOptions{
					Name: "orders", Version: version, BatchSize: 16, Notify: notify,
				})
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			appendN(t, es, "seed", 50)
			v1 := newProjector(1)
			r1 := start(t, v1)
			<-v1.Activated()

			// Readers query the active version all along.
			ctx, stopQueries := context.WithCancel(t.Context())
			var queries sync.WaitGroup
			var queryErrs atomic.Int64
			var firstErr atomic.Value
			var sawV1, sawV2 atomic.Bool
			for range 2 {
				queries.Go(func() {
					for ctx.Err() == nil {
						v, err := Active(ctx, db, b.dialect, "orders")
						if err == nil {
							var n int
							err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+Table("orders", v)).Scan(&n)
						}
						if err != nil && ctx.Err() == nil {
							queryErrs.Add(1)
							firstErr.CompareAndSwap(nil, err)
						}
						if v == 1 {
							sawV1.Store(true)
						} else if v == 2 {
							sawV2.Store(true)
						}
					}
				})
			}
			// Writers append while v2 builds.
			var writers sync.WaitGroup
			for w := range 2 {
				writers.Go(func() {
					for i := range 40 {
						_, err := es.Append(t.Context(), fmt.Sprintf("writer-%d", w), eventstore.Any, eventstore.Event{ID: fmt.Sprintf("w%d-%d", w, i), Type: "order.placed"})
						if err != nil {
							t.Errorf("Append: %v", err)
							return
						}
						select {
						case notify <- struct{}{}:
						default:
						}
					}
				})
			}
			waitFor(t, "v1 serving", sawV1.Load)
			v2 := newProjector(2)
			r2 := start(t, v2)
			<-v2.Activated()
			writers.Wait()
			last, err := head(t.Context(), es)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, "v2 at head", func() bool { return v2.Checkpoint() == last })
			waitFor(t, "queries on v2", sawV2.Load)
			stopQueries()
			queries.Wait()
			if n := queryErrs.Load(); n != 0 {
				t.Errorf("%d queries failed, first: %v", n, firstErr.Load())
			}
			if v, err := Active(t.Context(), db, b.dialect, "orders"); v != 2 || err != nil {
				t.Errorf("Active() = %d, %v; want 2", v, err)
			}
			if rows, distinct := counts(t, db, 2); rows != 130 || distinct != 130 {
				t.Errorf("orders_v2 has %d rows, %d distinct; want 130 and 130", rows, distinct)
			}

			// v1 stays until dropped; the active version cannot be.
			if err := r1.stop(); err != nil {
				t.Errorf("v1 Run() = %v", err)
			}
			if err := DropVersion(t.Context(), db, b.dialect, "orders", 2, orders{version: 2, d: b.dialect}); !errors.Is(err, ErrVersionActive) {
				t.Errorf("DropVersion(active v2) = %v, want %v", err, ErrVersionActive)
			}
			if err := DropVersion(t.Context(), db, b.dialect, "orders", 1, orders{version: 1, d: b.dialect}); err != nil {
				t.Errorf("DropVersion(v1) = %v", err)
			}
			if _, err := db.ExecContext(t.Context(), "SELECT COUNT(*) FROM "+Table("orders", 1)); err == nil {
				t.Errorf("orders_v1 still exists after DropVersion")
			}
			if err := r2.stop(); err != nil {
				t.Errorf("v2 Run() = %v", err)
			}
			// An old version restarted never takes the active role back.
			v1again := newProjector(1)
			r := start(t, v1again)
			waitFor(t, "v1 rebuilt", func() bool { return v1again.Checkpoint() == last })
			if err := r.stop(); err != nil {
				t.Errorf("v1 Run() = %v", err)
			}
			if v, _ := Active(t.Context(), db, b.dialect, "orders"); v != 2 {
				t.Errorf("Active() = %d after restarting v1, want 2", v)
			}
		})
	}
}
