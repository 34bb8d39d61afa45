package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairnhq/cairn/eventstore"
)

const testCleanupTimeout = 10 * time.Second

func ev(id string) eventstore.Event {
	return eventstore.Event{ID: id, Type: "test.happened", Data: []byte(`{"id":"` + id + `"}`)}
}

func TestRoundTrip(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := t.Context()
	in := []eventstore.Event{
		{ID: "e1", Type: "order.placed", SchemaVersion: 2, Data: []byte(`{"b":1,"a":2}`), Metadata: eventstore.Metadata{
			CorrelationID: "c", CausationID: "k", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			TraceState: "a=b", Extra: map[string]string{"z": "1", "a": "2"}}},
		{ID: "e2", Type: "order.paid", Data: nil},
		{ID: "e3", Type: "order.noted", SchemaVersion: 1, Data: []byte{}},
	}
	res, err := s.Append(ctx, "order-1", eventstore.NoStream, in...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if res.NextExpectedVersion != 3 || res.LastPosition-res.FirstPosition != 2 {
		t.Errorf("Append = %+v, want version 3 and 3 consecutive positions", res)
	}
	got, err := s.ReadStream(ctx, "order-1", 1, eventstore.Forwards, 10)
	if err != nil {
		t.Fatalf("ReadStream: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("ReadStream returned %d events, want 3", len(got))
	}
	for i, e := range got {
		want := in[i]
		if want.SchemaVersion == 0 {
			want.SchemaVersion = 1
		}
		if diff := cmp.Diff(want, e.Event); diff != "" {
			t.Errorf("event %d (-want +got):\n%s", i, diff)
		}
		if e.StreamID != "order-1" || e.Version != int64(i+1) || e.Position != res.FirstPosition+eventstore.Position(i) {
			t.Errorf("event %d: stream %q version %d position %d", i, e.StreamID, e.Version, e.Position)
		}
		if e.RecordedAt.Location() != time.UTC || e.RecordedAt.Nanosecond()%1000 != 0 || time.Since(e.RecordedAt) > time.Minute {
			t.Errorf("event %d: RecordedAt = %v, want recent UTC in microseconds", i, e.RecordedAt)
		}
	}
	all, err := s.ReadAll(ctx, 0, 10)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if diff := cmp.Diff(got, all); diff != "" {
		t.Errorf("ReadAll differs from ReadStream (-stream +all):\n%s", diff)
	}
	back, err := s.ReadStream(ctx, "order-1", 0, eventstore.Backwards, 2)
	if err != nil || len(back) != 2 || back[0].Version != 3 || back[1].Version != 2 {
		t.Errorf("ReadStream backwards = %d events, %v; want versions 3, 2", len(back), err)
	}
	if v, err := s.Version(ctx, "order-1"); v != 3 || err != nil {
		t.Errorf("Version = %d, %v, want 3", v, err)
	}
	if v, err := s.Version(ctx, "nothing"); v != 0 || err != nil {
		t.Errorf("Version(missing) = %d, %v, want 0", v, err)
	}
}

func TestExpectedVersion(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := t.Context()
	n := 0
	next := func() eventstore.Event { n++; return ev(fmt.Sprint("ev-", n)) }
	tests := []struct {
		expected eventstore.ExpectedVersion
		actual   int64 // -1: succeeds
	}{
		{eventstore.StreamExists, 0},
		{eventstore.Exact(1), 0},
		{eventstore.NoStream, -1},
		{eventstore.NoStream, 1},
		{eventstore.Exact(2), 1},
		{eventstore.Exact(1), -1},
		{eventstore.StreamExists, -1},
		{eventstore.Any, -1},
		{eventstore.Exact(3), 4},
	}
	for i, tt := range tests {
		_, err := s.Append(ctx, "s", tt.expected, next())
		var conflict *eventstore.VersionConflictError
		switch {
		case tt.actual < 0 && err != nil:
			t.Errorf("%d: Append(%v) = %v, want success", i, tt.expected, err)
		case tt.actual >= 0 && (!errors.As(err, &conflict) || !errors.Is(err, eventstore.ErrVersionConflict)):
			t.Errorf("%d: Append(%v) = %v, want a VersionConflictError", i, tt.expected, err)
		case tt.actual >= 0 && (conflict.Actual != tt.actual || conflict.Expected != tt.expected || conflict.Stream != "s"):
			t.Errorf("%d: Append(%v) = %+v, want Actual %d", i, tt.expected, conflict, tt.actual)
		}
	}
}

func TestConcurrentAppendsOneWinnerPerVersion(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := t.Context()
	const writers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for w := range writers {
		wg.Go(func() {
			_, err := s.Append(ctx, "hot", eventstore.NoStream, ev(fmt.Sprint("w", w)))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if !errors.Is(err, eventstore.ErrVersionConflict) {
				t.Errorf("writer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d writers won version 1, want 1", wins)
	}
}

func TestIdempotentAppend(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := t.Context()
	batch := []eventstore.Event{ev("a"), ev("b")}
	first, err := s.Append(ctx, "s", eventstore.NoStream, batch...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "s", eventstore.Exact(2), ev("c")); err != nil {
		t.Fatal(err)
	}
	for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.StreamExists} {
		again, err := s.Append(ctx, "s", expected, batch...)
		if err != nil || again != first {
			t.Errorf("retry with %v = %+v, %v, want %+v", expected, again, err, first)
		}
	}
	if v, _ := s.Version(ctx, "s"); v != 3 {
		t.Errorf("Version after retries = %d, want 3", v)
	}
	dups := []struct {
		name   string
		stream string
		events []eventstore.Event
	}{
		{"other data", "s", []eventstore.Event{{ID: "a", Type: "test.happened", Data: []byte("other")}}},
		{"other type", "s", []eventstore.Event{{ID: "a", Type: "other", Data: ev("a").Data}}},
		{"other stream", "t", []eventstore.Event{ev("a")}},
		{"not consecutive", "s", []eventstore.Event{ev("a"), ev("c")}},
		{"part new", "s", []eventstore.Event{ev("c"), ev("d")}},
	}
	for _, tt := range dups {
		_, err := s.Append(ctx, tt.stream, eventstore.Any, tt.events...)
		if !errors.Is(err, eventstore.ErrDuplicateEvent) || !strings.Contains(err.Error(), `"`) {
			t.Errorf("%s: Append = %v, want ErrDuplicateEvent naming the ID", tt.name, err)
		}
	}
	if v, _ := s.Version(ctx, "s"); v != 3 {
		t.Errorf("Version after duplicates = %d, want 3", v)
	}
}

func TestDeleteStream(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := t.Context()
	if _, err := s.Append(ctx, "d", eventstore.Any, ev("d1")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteStream(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "d", eventstore.Any, ev("d2")); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("Append to deleted = %v, want ErrStreamDeleted", err)
	}
	if _, err := s.ReadStream(ctx, "d", 1, eventstore.Forwards, 10); !errors.Is(err, eventstore.ErrStreamDeleted) {
		t.Errorf("ReadStream of deleted = %v, want ErrStreamDeleted", err)
	}
	if all, err := s.ReadAll(ctx, 0, 10); err != nil || len(all) != 1 {
		t.Errorf("ReadAll after delete = %d events, %v, want the 1 event kept", len(all), err)
	}
}

func TestAppendBatch(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := t.Context()
	events := make([]eventstore.Event, 100)
	for i := range events {
		events[i] = ev(fmt.Sprint("batch-", i))
	}
	start := time.Now()
	res, err := s.Append(ctx, "batch", eventstore.NoStream, events...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("100-event append: %v", time.Since(start))
	if res.LastPosition-res.FirstPosition != 99 || res.NextExpectedVersion != 100 {
		t.Errorf("Append = %+v", res)
	}
}

func BenchmarkAppend100(b *testing.B) {
	s, _ := newTestStore(b)
	ctx := b.Context()
	events := make([]eventstore.Event, 100)
	n := 0
	for b.Loop() {
		for i := range events {
			n++
			events[i] = ev(fmt.Sprint("bench-", n))
		}
		if _, err := s.Append(ctx, fmt.Sprint("bench-", n), eventstore.NoStream, events...); err != nil {
			b.Fatal(err)
		}
	}
}

// gauges collects the watermark gauges of reader.
func gauges(t *testing.T, r *sdkmetric.ManualReader) (lag int64, age float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(t.Context(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				if m.Name == WatermarkLagMetricName && len(d.DataPoints) == 1 {
					lag = d.DataPoints[0].Value
				}
			case metricdata.Gauge[float64]:
				if m.Name == WatermarkAgeMetricName && len(d.DataPoints) == 1 {
					age = d.DataPoints[0].Value
				}
			}
		}
	}
	return lag, age
}

// ids returns the IDs of events.
func ids(events []eventstore.RecordedEvent) []string {
	out := []string{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

// readAllEventually reads the whole log until it holds want, for a few
// seconds: unrelated sessions on the same cluster may hold the watermark
// back for a moment.
func readAllEventually(t *testing.T, s *Store, want []string) {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		all, err := s.ReadAll(t.Context(), 0, 100)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if got = ids(all); cmp.Equal(got, want) {
			return
		}
	}
	t.Errorf("ReadAll = %q, want %q", got, want)
}

// appendOpen appends events in a transaction it leaves open.
func appendOpen(t *testing.T, s *Store, p *connPool, stream string, events ...eventstore.Event) (*poolTx, eventstore.AppendResult) {
	t.Helper()
	tx, err := p.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	rows, err := encode(events)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.appendIn(t.Context(), tx, stream, eventstore.Any, rows)
	if err != nil {
		t.Fatalf("appendIn: %v", err)
	}
	return tx.(*poolTx), res
}

// TestGlobalLogWaitsForLateCommit is the ordering gap: A takes a lower
// position and commits after B; ReadAll must not pass A.
func TestGlobalLogWaitsForLateCommit(t *testing.T) {
	for _, commit := range []bool{true, false} {
		t.Run(fmt.Sprint("commit=", commit), func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			s, p := newTestStore(t, WithReadAllWait(20*time.Millisecond), WithMeterProvider(mp))
			ctx := t.Context()
			txA, resA := appendOpen(t, s, p, "a", ev("A"))
			resB, err := s.Append(ctx, "b", eventstore.Any, ev("B"))
			if err != nil {
				t.Fatal(err)
			}
			if resB.FirstPosition <= resA.LastPosition {
				t.Fatalf("B's position %d is not above A's %d", resB.FirstPosition, resA.LastPosition)
			}
			// The gap is real: a plain read by position sees B, not A.
			var naive []string
			rows, err := p.Query(ctx, "SELECT event_id FROM "+pgx.Identifier{s.schema, "events"}.Sanitize()+" ORDER BY position")
			if err != nil {
				t.Fatal(err)
			}
			if naive, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || !cmp.Equal(naive, []string{"B"}) {
				t.Fatalf("plain read with A open = %q, %v, want [B]", naive, err)
			}
			for range 3 {
				all, err := s.ReadAll(ctx, 0, 100)
				if err != nil {
					t.Fatal(err)
				}
				if len(all) != 0 {
					t.Fatalf("ReadAll with A open = %q, want nothing (B would skip A)", ids(all))
				}
			}
			if lag, age := gauges(t, reader); lag < 1 || age <= 0 {
				t.Errorf("watermark lag, age = %d, %v with A open, want >= 1, > 0", lag, age)
			}
			want := []string{"A", "B"}
			if commit {
				if err := txA.Commit(ctx); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := txA.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
				want = []string{"B"}
			}
			readAllEventually(t, s, want)
			if !commit {
				// A's retry appends after B, and is read after it.
				if _, err := s.Append(ctx, "a", eventstore.NoStream, ev("A")); err != nil {
					t.Fatal(err)
				}
				readAllEventually(t, s, []string{"B", "A"})
			}
		})
	}
}

// TestUnrelatedIdleTransactionHoldsWatermark: a session that holds an xid
// and idles in its transaction delays readers (no skip), and the lag
// gauge shows it.
func TestUnrelatedIdleTransactionHoldsWatermark(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s, p := newTestStore(t, WithReadAllWait(20*time.Millisecond), WithMeterProvider(mp))
	ctx := t.Context()
	idle, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idle.Rollback(context.Background()) })
	if _, err := idle.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "c", eventstore.Any, ev("C")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if all, err := s.ReadAll(ctx, 0, 100); err != nil || len(all) != 0 {
		t.Fatalf("ReadAll with an idle transaction open = %q, %v, want nothing yet", ids(all), err)
	}
	lag, age := gauges(t, reader)
	if lag != 1 || age < 0.05 {
		t.Errorf("watermark lag, age = %d, %v, want 1, >= 0.05", lag, age)
	}
	if err := idle.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	readAllEventually(t, s, []string{"C"})
	if lag, _ := gauges(t, reader); lag != 0 {
		t.Errorf("watermark lag after release = %d, want 0", lag)
	}
}

// TestReadAllWaitsForHeldBackEvents: with a wait, ReadAll returns events
// held back by a transaction that ends within the wait.
func TestReadAllWaitsForHeldBackEvents(t *testing.T) {
	s, p := newTestStore(t, WithReadAllWait(5*time.Second))
	ctx := t.Context()
	txA, _ := appendOpen(t, s, p, "a", ev("A"))
	if _, err := s.Append(ctx, "b", eventstore.Any, ev("B")); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(100*time.Millisecond, func() { _ = txA.Commit(context.Background()) })
	defer timer.Stop()
	all, err := s.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all); !cmp.Equal(got, []string{"A", "B"}) {
		t.Errorf("ReadAll = %q, want A, B", got)
	}
}

// BenchmarkCopyFrom100 is the baseline of BenchmarkAppend100: one
// transaction that copies 100 rows into a table like the events table.
func BenchmarkCopyFrom100(b *testing.B) {
	p, schema := newTestDB(b)
	ctx := b.Context()
	s, err := New(ctx, p, WithSchema(schema))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	table := pgx.Identifier{schema, "events"}
	cols := []string{"position", "stream_id", "version", "event_id", "type", "schema_version", "data"}
	n := int64(0)
	rows := make([][]any, 100)
	for b.Loop() {
		for i := range rows {
			n++
			rows[i] = []any{n, fmt.Sprint("bench-", n/100), n % 100, fmt.Sprint("bench-", n), "test.happened", int32(1), ev("x").Data}
		}
		err := pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
			_, err := tx.CopyFrom(ctx, table, cols, pgx.CopyFromRows(rows))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendsInOneTransaction: a second append in the same transaction
// continues after the first one's positions.
func TestAppendsInOneTransaction(t *testing.T) {
	s, p := newTestStore(t, WithReadAllWait(0))
	ctx := t.Context()
	tx, first := appendOpen(t, s, p, "x", ev("x1"), ev("x2"))
	rows, err := encode([]eventstore.Event{ev("y1")})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.appendIn(ctx, tx, "y", eventstore.NoStream, rows)
	if err != nil {
		t.Fatal(err)
	}
	if second.FirstPosition != first.LastPosition+1 || first.FirstPosition>>indexBits != second.LastPosition>>indexBits {
		t.Errorf("positions %+v then %+v, want consecutive in one transaction", first, second)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	readAllEventually(t, s, []string{"x1", "x2", "y1"})
}

// TestOlderTransactionCannotAppendOutOfOrder: B draws its transaction ID,
// then A (younger) appends to the stream and commits first. B's append
// would put version 2 before version 1 in the global log; it is refused
// with ErrStreamOrder, and Append's retry in a new transaction lands after
// A.
func TestOlderTransactionCannotAppendOutOfOrder(t *testing.T) {
	s, p := newTestStore(t, WithReadAllWait(20*time.Millisecond))
	ctx := t.Context()
	txB, err := p.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = txB.Rollback(context.Background()) })
	var xidB int64
	if err := txB.QueryRow(ctx, "SELECT pg_current_xact_id()::text::bigint").Scan(&xidB); err != nil {
		t.Fatal(err)
	}
	resA, err := s.Append(ctx, "s", eventstore.NoStream, ev("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if int64(resA.FirstPosition)>>indexBits <= xidB {
		t.Fatalf("A's transaction %d is not younger than B's %d", int64(resA.FirstPosition)>>indexBits, xidB)
	}
	rows, err := encode([]eventstore.Event{ev("v2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.appendIn(ctx, txB, "s", eventstore.Any, rows); !errors.Is(err, ErrStreamOrder) {
		t.Fatalf("append in the older transaction = %v, want ErrStreamOrder", err)
	}
	if err := txB.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "s", eventstore.Exact(1), ev("v2")); err != nil {
		t.Fatal(err)
	}
	readAllEventually(t, s, []string{"v1", "v2"})
}
