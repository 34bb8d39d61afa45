package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/inventory/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/inventory/app"
	"github.com/cairnhq/cairn/internal/shop/inventory/domain"
	"github.com/cairnhq/cairn/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDB is an empty database of one dialect.
type testDB struct {
	d  cqrs.Dialect
	db *sql.DB
}

// testDBs returns an empty database of each dialect: SQLite in a temp file
// (WAL, a busy timeout), and a schema of its own on the machine's
// PostgreSQL (skipped when it does not answer, except under CI=true).
func testDBs(t *testing.T) []testDB {
	t.Helper()
	lite, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "inventory.db")+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	out := []testDB{{d: cqrs.SQLite, db: lite}}
	pg := testenv.PostgresSchema(t, "inventory_")
	return append(out, testDB{d: cqrs.Postgres, db: pg})
}

// clock is a settable clock.
type clock struct{ t atomic.Pointer[time.Time] }

func newClock() *clock {
	c := &clock{}
	c.set(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC))
	return c
}

func (c *clock) now() time.Time          { return *c.t.Load() }
func (c *clock) set(t time.Time)         { c.t.Store(&t) }
func (c *clock) advance(d time.Duration) { c.set(c.now().Add(d)) }

// fixture is the use cases on a store with a catalog.
type fixture struct {
	uc    *app.Service
	store *sqlstore.Store
	clock *clock
	rd    *sdkmetric.ManualReader
}

// forEachDB runs fn on a fixture of each dialect, with skus a (10 units), b
// (10) and c (3).
func forEachDB(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, tdb := range testDBs(t) {
		t.Run(tdb.d.String(), func(t *testing.T) {
			fn(t, newFixture(t, tdb))
		})
	}
}

func newFixture(t *testing.T, tdb testDB) *fixture {
	t.Helper()
	ctx := t.Context()
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	store, err := sqlstore.New(ctx, tdb.db, tdb.d, mp)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	n := 0
	var mu sync.Mutex
	uc, err := app.New(store, app.Config{MeterProvider: mp, Now: c.now, NewID: func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("rsv_%d", n)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = uc.Close() })
	if added, err := uc.Seed(ctx, map[string]int{"a": 10, "b": 10, "c": 3}); err != nil || added != 3 {
		t.Fatalf("Seed = %d, %v, want 3, nil", added, err)
	}
	return &fixture{uc: uc, store: store, clock: c, rd: rd}
}

// stock returns the stock of skus as "sku on_hand/reserved" strings.
func (f *fixture) stock(t *testing.T, skus ...string) []string {
	t.Helper()
	st, err := f.uc.GetStock(t.Context(), skus)
	if err != nil {
		t.Fatalf("GetStock(%q) = %v", skus, err)
	}
	out := make([]string, len(st))
	for i, s := range st {
		out[i] = fmt.Sprintf("%s %d/%d", s.SKU, s.OnHand, s.Reserved)
	}
	return out
}

func (f *fixture) wantStock(t *testing.T, want ...string) {
	t.Helper()
	skus := make([]string, len(want))
	for i, w := range want {
		skus[i], _, _ = strings.Cut(w, " ")
	}
	if diff := cmp.Diff(want, f.stock(t, skus...)); diff != "" {
		t.Errorf("stock (-want +got):\n%s", diff)
	}
}

// outcomes returns the reservations counter by outcome.
func (f *fixture) outcomes(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := f.rd.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch m.Name {
			case app.ReservationsMetric:
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key("outcome"))
					out[v.AsString()] = dp.Value
				}
			case app.ReservedUnitsMetric:
				for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
					out["units"] = dp.Value
				}
			}
		}
	}
	return out
}

func key(saga string) domain.Key { return domain.Key{SagaID: saga, BranchID: "reserve"} }

func reserve(saga string, lines ...domain.Line) app.ReserveInput {
	return app.ReserveInput{Key: key(saga), OrderID: "order-" + saga, Lines: lines}
}

func line(sku string, q int) domain.Line { return domain.Line{SKU: sku, Quantity: q} }

func TestReserveAndDuplicate(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		r, err := f.uc.Reserve(ctx, reserve("s1", line("a", 2), line("b", 3)))
		if err != nil {
			t.Fatalf("Reserve = %v", err)
		}
		if r.ID != "rsv_1" || r.State != domain.StateActive || !r.ExpireTime.Equal(f.clock.now().Add(domain.DefaultTTL)) {
			t.Errorf("Reserve = %+v, want rsv_1, active, expiring in %v", r, domain.DefaultTTL)
		}
		f.wantStock(t, "a 10/2", "b 10/3", "c 3/0")
		f.clock.advance(time.Minute)
		dup, err := f.uc.Reserve(ctx, reserve("s1", line("a", 2), line("b", 3)))
		if err != nil {
			t.Fatalf("duplicate Reserve = %v", err)
		}
		if dup.ID != r.ID || !dup.ExpireTime.Equal(r.ExpireTime) {
			t.Errorf("duplicate Reserve = %s expiring %v, want %s expiring %v", dup.ID, dup.ExpireTime, r.ID, r.ExpireTime)
		}
		if diff := cmp.Diff(r.Lines, dup.Lines); diff != "" {
			t.Errorf("duplicate's lines (-first +dup):\n%s", diff)
		}
		f.wantStock(t, "a 10/2", "b 10/3")
		if diff := cmp.Diff(map[string]int64{"reserved": 1, "units": 5}, f.outcomes(t)); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	})
}

func TestReserveAllOrNone(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		_, err := f.uc.Reserve(ctx, reserve("s1", line("a", 2), line("nope", 1)))
		var nf *domain.NotFoundError
		if !errors.As(err, &nf) || nf.Kind != "sku" || nf.ID != "nope" {
			t.Errorf("Reserve of an unknown sku = %v, want NotFoundError for sku nope", err)
		}
		_, err = f.uc.Reserve(ctx, reserve("s2", line("a", 2), line("c", 4)))
		var short *domain.InsufficientStockError
		if !errors.As(err, &short) || *short != (domain.InsufficientStockError{SKU: "c", Requested: 4, OnHand: 3}) {
			t.Errorf("Reserve beyond stock = %v, want InsufficientStockError for c", err)
		}
		if err == nil || !strings.Contains(err.Error(), "insufficient stock of c: 4 requested, 3 available") {
			t.Errorf("Reserve beyond stock error = %v, want it to name the sku and numbers", err)
		}
		f.wantStock(t, "a 10/0", "c 3/0")
		// Failures leave no barrier row: a retry with enough stock runs.
		if _, err := f.uc.SetStock(ctx, "c", 4); err != nil {
			t.Fatal(err)
		}
		if _, err := f.uc.Reserve(ctx, reserve("s2", line("a", 2), line("c", 4))); err != nil {
			t.Errorf("retried Reserve = %v", err)
		}
		f.wantStock(t, "a 10/2", "c 4/4")
		if got := f.outcomes(t)["insufficient"]; got != 1 {
			t.Errorf("insufficient outcomes = %d, want 1", got)
		}
	})
}

func TestReleaseAndConfirm(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		r1, err := f.uc.Reserve(ctx, reserve("s1", line("a", 2)))
		if err != nil {
			t.Fatal(err)
		}
		r2, err := f.uc.Reserve(ctx, reserve("s2", line("a", 3), line("b", 1)))
		if err != nil {
			t.Fatal(err)
		}
		f.wantStock(t, "a 10/5", "b 10/1")
		for i := range 2 { // the second is a duplicate
			if st, err := f.uc.Release(ctx, key("s1"), "order-s1"); st != domain.StateReleased || err != nil {
				t.Errorf("Release #%d = %v, %v, want released", i+1, st, err)
			}
		}
		f.wantStock(t, "a 10/3", "b 10/1")
		confirm := domain.Key{SagaID: "s2", BranchID: "confirm"}
		for i := range 2 {
			if st, err := f.uc.Confirm(ctx, confirm, r2.ID); st != domain.StateConfirmed || err != nil {
				t.Errorf("Confirm #%d = %v, %v, want confirmed", i+1, st, err)
			}
		}
		f.wantStock(t, "a 7/0", "b 9/0")
		// Another branch confirming it again is fine too.
		if st, err := f.uc.Confirm(ctx, domain.Key{SagaID: "s2", BranchID: "confirm-2"}, r2.ID); st != domain.StateConfirmed || err != nil {
			t.Errorf("Confirm of a confirmed reservation = %v, %v, want confirmed", st, err)
		}
		// Confirming the released one, releasing the confirmed one: refused.
		if _, err := f.uc.Confirm(ctx, domain.Key{SagaID: "s1", BranchID: "confirm"}, r1.ID); !errors.Is(err, domain.ErrState) {
			t.Errorf("Confirm of a released reservation = %v, want ErrState", err)
		}
		for i := range 2 {
			if _, err := f.uc.Release(ctx, key("s2"), "order-s2"); !errors.Is(err, domain.ErrState) {
				t.Errorf("Release #%d of a confirmed reservation = %v, want ErrState", i+1, err)
			}
		}
		if _, err := f.uc.Confirm(ctx, domain.Key{SagaID: "s3", BranchID: "confirm"}, "rsv_404"); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Confirm of an unknown reservation = %v, want ErrNotFound", err)
		}
		f.wantStock(t, "a 7/0", "b 9/0")
		if diff := cmp.Diff(map[string]int64{"reserved": 2, "released": 1, "confirmed": 1, "units": 0}, f.outcomes(t)); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	})
}

func TestReleaseBeforeReserve(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		for i := range 2 {
			if st, err := f.uc.Release(ctx, key("s1"), "order-s1"); st != domain.StateNone || err != nil {
				t.Errorf("Release #%d before Reserve = %v, %v, want none, nil", i+1, st, err)
			}
		}
		_, err := f.uc.Reserve(ctx, reserve("s1", line("a", 2)))
		if !errors.Is(err, domain.ErrCompensated) {
			t.Errorf("Reserve after its Release = %v, want ErrCompensated", err)
		}
		f.wantStock(t, "a 10/0")
		// A Release of an order the branch did not reserve for releases
		// nothing.
		if _, err := f.uc.Reserve(ctx, reserve("s2", line("a", 2))); err != nil {
			t.Fatal(err)
		}
		if st, err := f.uc.Release(ctx, key("s2"), "order-other"); st != domain.StateNone || err != nil {
			t.Errorf("Release for another order = %v, %v, want none, nil", st, err)
		}
		f.wantStock(t, "a 10/2")
	})
}

func TestExpiry(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		in := reserve("s1", line("a", 2), line("b", 1))
		in.TTL = time.Minute
		r1, err := f.uc.Reserve(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := f.uc.Reserve(ctx, reserve("s2", line("a", 3))) // the default TTL
		if err != nil {
			t.Fatal(err)
		}
		f.clock.advance(59 * time.Second)
		if n, err := f.uc.Sweep(ctx); n != 0 || err != nil {
			t.Errorf("Sweep before expiry = %d, %v, want 0", n, err)
		}
		f.clock.advance(time.Second)
		if n, err := f.uc.Sweep(ctx); n != 1 || err != nil {
			t.Errorf("Sweep at expiry = %d, %v, want 1", n, err)
		}
		f.wantStock(t, "a 10/3", "b 10/0")
		if n, err := f.uc.Sweep(ctx); n != 0 || err != nil {
			t.Errorf("second Sweep = %d, %v, want 0", n, err)
		}
		if st, err := f.uc.Release(ctx, key("s1"), "order-s1"); st != domain.StateExpired || err != nil {
			t.Errorf("Release of an expired reservation = %v, %v, want expired", st, err)
		}
		if _, err := f.uc.Confirm(ctx, domain.Key{SagaID: "s1", BranchID: "confirm"}, r1.ID); !errors.Is(err, domain.ErrState) {
			t.Errorf("Confirm of an expired reservation = %v, want ErrState", err)
		}
		// Overdue but not swept: Confirm expires it and refuses.
		f.clock.advance(domain.DefaultTTL)
		st, err := f.uc.Confirm(ctx, domain.Key{SagaID: "s2", BranchID: "confirm"}, r2.ID)
		if st != domain.StateExpired || !errors.Is(err, domain.ErrState) {
			t.Errorf("Confirm of an overdue reservation = %v, %v, want expired, ErrState", st, err)
		}
		if _, err := f.uc.Confirm(ctx, domain.Key{SagaID: "s2", BranchID: "confirm"}, r2.ID); !errors.Is(err, domain.ErrState) {
			t.Errorf("duplicate Confirm of an overdue reservation = %v, want ErrState", err)
		}
		f.wantStock(t, "a 10/0", "b 10/0")
		if diff := cmp.Diff(map[string]int64{"reserved": 2, "expired": 2, "units": 0}, f.outcomes(t)); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	})
}

func TestOverdueBeforeSweep(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		in := reserve("s1", line("c", 3))
		in.TTL = time.Minute
		if _, err := f.uc.Reserve(ctx, in); err != nil {
			t.Fatal(err)
		}
		if _, err := f.uc.Reserve(ctx, reserve("s2", line("c", 1))); !errors.Is(err, domain.ErrInsufficientStock) {
			t.Fatalf("Reserve of held stock = %v, want ErrInsufficientStock", err)
		}
		f.clock.advance(time.Minute)
		// The overdue reservation's units count as available.
		r, err := f.uc.Reserve(ctx, reserve("s3", line("c", 2)))
		if err != nil {
			t.Fatalf("Reserve of stock held by an overdue reservation = %v", err)
		}
		if !r.ExpireTime.Equal(f.clock.now().Add(domain.DefaultTTL)) {
			t.Errorf("ExpireTime = %v, want %v", r.ExpireTime, f.clock.now().Add(domain.DefaultTTL))
		}
		f.wantStock(t, "c 3/2")
		if st, err := f.uc.Release(ctx, key("s1"), "order-s1"); st != domain.StateExpired || err != nil {
			t.Errorf("Release of the expired reservation = %v, %v, want expired", st, err)
		}
		// Release of an overdue reservation expires it.
		f.clock.advance(domain.DefaultTTL)
		if st, err := f.uc.Release(ctx, key("s3"), "order-s3"); st != domain.StateExpired || err != nil {
			t.Errorf("Release of an overdue reservation = %v, %v, want expired", st, err)
		}
		f.wantStock(t, "c 3/0")
	})
}

// TestConcurrentOversell races Reserves that together exceed the stock:
// exactly one of each pair succeeds, and the stock never goes below zero.
func TestConcurrentOversell(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		const rounds = 10
		for round := range rounds {
			sku := fmt.Sprintf("race-%d", round)
			if _, err := f.uc.SetStock(ctx, sku, 10); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			start := make(chan struct{})
			for i := range errs {
				wg.Go(func() {
					<-start
					_, errs[i] = f.uc.Reserve(ctx, reserve(fmt.Sprintf("%s-%d", sku, i), line(sku, 6)))
				})
			}
			close(start)
			wg.Wait()
			ok, short := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, domain.ErrInsufficientStock):
					short++
				default:
					t.Errorf("round %d: Reserve = %v", round, err)
				}
			}
			if ok != 1 || short != 1 {
				t.Errorf("round %d: %d succeeded, %d short of stock, want 1 and 1", round, ok, short)
			}
			f.wantStock(t, sku+" 10/6")
		}
	})
}

// TestConcurrentDuplicates sends copies of one Reserve at once: one
// reservation is made, and every copy returns it.
func TestConcurrentDuplicates(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		const copies = 8
		ids := make([]string, copies)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range copies {
			wg.Go(func() {
				<-start
				r, err := f.uc.Reserve(ctx, reserve("s1", line("a", 1), line("b", 2)))
				if err != nil {
					t.Errorf("Reserve copy %d = %v", i, err)
				}
				ids[i] = r.ID
			})
		}
		close(start)
		wg.Wait()
		for i, id := range ids {
			if id != ids[0] {
				t.Errorf("copy %d returned %s, copy 0 %s", i, id, ids[0])
			}
		}
		f.wantStock(t, "a 10/1", "b 10/2")
	})
}

func TestSetStockAndSeed(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := t.Context()
		if _, err := f.uc.Reserve(ctx, reserve("s1", line("a", 4))); err != nil {
			t.Fatal(err)
		}
		if _, err := f.uc.SetStock(ctx, "a", 1); err != nil {
			t.Fatal(err)
		}
		f.wantStock(t, "a 4/4")
		if _, err := f.uc.Reserve(ctx, reserve("s2", line("a", 1))); !errors.Is(err, domain.ErrInsufficientStock) {
			t.Errorf("Reserve after a stock-out = %v, want ErrInsufficientStock", err)
		}
		if _, err := f.uc.SetStock(ctx, "new", 7); err != nil {
			t.Fatal(err)
		}
		if added, err := f.uc.Seed(ctx, map[string]int{"a": 100, "new": 100, "d": 5}); added != 1 || err != nil {
			t.Errorf("Seed = %d, %v, want 1 added", added, err)
		}
		f.wantStock(t, "a 4/4", "new 7/0", "d 5/0")
		if _, err := f.uc.GetStock(ctx, []string{"a", "zz"}); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("GetStock of an unknown sku = %v, want ErrNotFound", err)
		}
		if _, err := f.uc.SetStock(ctx, "a", -1); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("SetStock(-1) = %v, want ErrInvalid", err)
		}
	})
}
