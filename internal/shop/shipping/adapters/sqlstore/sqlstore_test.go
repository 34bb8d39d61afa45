package sqlstore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/shipping/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/shipping/app"
	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/barrier"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testDB is an empty database of one dialect.
type testDB struct {
	d  cqrs.Dialect
	db *sql.DB
}

// testDBs returns an empty database of each dialect: SQLite in a temp
// file, and a schema of its own on the machine's PostgreSQL (skipped when
// it does not answer, except under CI=true).
func testDBs(t *testing.T) []testDB {
	t.Helper()
	lite, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "shipping.db")+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	out := []testDB{{d: cqrs.SQLite, db: lite}}
	pg := testenv.PostgresSchema(t, "shipping_")
	return append(out, testDB{d: cqrs.Postgres, db: pg})
}

// eachDB runs f on a new store of each dialect.
func eachDB(t *testing.T, f func(t *testing.T, s *sqlstore.Store, tdb testDB)) {
	for _, tdb := range testDBs(t) {
		t.Run(tdb.d.String(), func(t *testing.T) {
			s, err := sqlstore.New(t.Context(), tdb.db, tdb.d, nil)
			if err != nil {
				t.Fatal(err)
			}
			f(t, s, tdb)
		})
	}
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 123456789, time.UTC)

// newShipment returns a valid shipment of branch saga/"shipping" at t0.
func newShipment(t *testing.T, id, saga string) domain.Shipment {
	t.Helper()
	a := domain.Address{Recipient: "Ada", Lines: []string{"Hauptstr. 1", "2. OG"}, Locality: "Berlin", PostalCode: "10115", AdministrativeArea: "BE", RegionCode: "DE"}
	sh, err := domain.NewShipment(id, saga, "shipping", "order-"+saga, a, []domain.Line{{SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 1}}, domain.DefaultRegions(), t0)
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

func key(saga string) app.Key { return app.Key{SagaID: saga, BranchID: "shipping"} }

// count returns the number of shipments stored.
func count(t *testing.T, tdb testDB) int {
	t.Helper()
	var n int
	if err := tdb.db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+sqlstore.ShipmentsTable).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestScheduleAndGet(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		ctx := t.Context()
		sh := newShipment(t, "shp-1", "saga-1")
		got, isNew, err := s.Schedule(ctx, sh)
		if err != nil || !isNew {
			t.Fatalf("Schedule = %v, %v; want new", isNew, err)
		}
		if diff := cmp.Diff(sh, got); diff != "" {
			t.Errorf("Schedule (-want +got):\n%s", diff)
		}
		read, err := s.Get(ctx, "shp-1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sh, read); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
		if _, err := s.Get(ctx, "shp-unknown"); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
		}
	})
}

func TestScheduleDuplicate(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		ctx := t.Context()
		first := newShipment(t, "shp-1", "saga-1")
		if _, _, err := s.Schedule(ctx, first); err != nil {
			t.Fatal(err)
		}
		// A retry gets a fresh id and a later time from the service:
		// the store returns the first call's shipment.
		retry := first
		retry.ID = "shp-2"
		retry.EstimatedDelivery = retry.EstimatedDelivery.Add(24 * time.Hour)
		got, isNew, err := s.Schedule(ctx, retry)
		if err != nil || isNew {
			t.Fatalf("Schedule(duplicate) = %v, %v; want not new", isNew, err)
		}
		if got.ID != "shp-1" || !got.EstimatedDelivery.Equal(first.EstimatedDelivery) {
			t.Errorf("Schedule(duplicate) = %s due %v, want shp-1 due %v", got.ID, got.EstimatedDelivery, first.EstimatedDelivery)
		}
		if n := count(t, tdb); n != 1 {
			t.Errorf("%d shipments stored, want 1", n)
		}
	})
}

func TestScheduleConcurrentDuplicates(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		const n = 8
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			ids  = map[string]int{}
			news int
			errs []error
		)
		for i := range n {
			sh := newShipment(t, fmt.Sprintf("shp-%d", i), "saga-1")
			wg.Go(func() {
				got, isNew, err := s.Schedule(t.Context(), sh)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				ids[got.ID]++
				if isNew {
					news++
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("Schedule errors: %v", errors.Join(errs...))
		}
		if len(ids) != 1 || news != 1 {
			t.Errorf("%d concurrent Schedules returned ids %v with %d new, want one id and one new", n, ids, news)
		}
		if c := count(t, tdb); c != 1 {
			t.Errorf("%d shipments stored, want 1", c)
		}
	})
}

func TestCancel(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		ctx := t.Context()
		sh := newShipment(t, "shp-1", "saga-1")
		if _, _, err := s.Schedule(ctx, sh); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Hour)
		got, changed, err := s.Cancel(ctx, key("saga-1"), sh.OrderID, at)
		if err != nil || !changed || got == nil {
			t.Fatalf("Cancel = %v, %v, %v; want the shipment, changed", got, changed, err)
		}
		want := sh
		want.Status, want.UpdatedAt = domain.Cancelled, at
		if diff := cmp.Diff(want, *got); diff != "" {
			t.Errorf("Cancel (-want +got):\n%s", diff)
		}
		// A duplicate compensation returns the cancelled shipment.
		again, changed, err := s.Cancel(ctx, key("saga-1"), sh.OrderID, at.Add(time.Hour))
		if err != nil || changed || again == nil {
			t.Fatalf("Cancel(duplicate) = %v, %v, %v; want the shipment, unchanged", again, changed, err)
		}
		if diff := cmp.Diff(want, *again); diff != "" {
			t.Errorf("Cancel(duplicate) (-want +got):\n%s", diff)
		}
		if read, err := s.Get(ctx, sh.ID); err != nil || read.Status != domain.Cancelled {
			t.Errorf("Get = %v, %v; want cancelled", read.Status, err)
		}
		// A cancelled shipment is never dispatched.
		if shipped, err := s.Dispatch(ctx, at.Add(time.Hour), at.Add(time.Hour)); err != nil || len(shipped) != 0 {
			t.Errorf("Dispatch = %v, %v; want nothing shipped", shipped, err)
		}
	})
}

func TestCancelWrongOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		ctx := t.Context()
		sh := newShipment(t, "shp-1", "saga-1")
		if _, _, err := s.Schedule(ctx, sh); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Cancel(ctx, key("saga-1"), "order-other", t0)
		var inv *domain.InvalidError
		if !errors.As(err, &inv) || inv.Field != "order_id" {
			t.Fatalf("Cancel(other order) = %v, want an *InvalidError for order_id", err)
		}
		// Nothing was recorded: the right compensation still runs.
		if got, changed, err := s.Cancel(ctx, key("saga-1"), sh.OrderID, t0); err != nil || !changed || got.Status != domain.Cancelled {
			t.Errorf("Cancel = %v, %v, %v; want cancelled", got, changed, err)
		}
	})
}

func TestCancelBeforeSchedule(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		ctx := t.Context()
		got, changed, err := s.Cancel(ctx, key("saga-1"), "order-saga-1", t0)
		if err != nil || changed || got != nil {
			t.Fatalf("Cancel before Schedule = %v, %v, %v; want nil, false, nil (a null compensation)", got, changed, err)
		}
		// A duplicate of the null compensation is one too.
		if got, changed, err := s.Cancel(ctx, key("saga-1"), "order-saga-1", t0); err != nil || changed || got != nil {
			t.Fatalf("Cancel again = %v, %v, %v; want nil, false, nil", got, changed, err)
		}
		for range 2 { // the late action, and its retry
			_, _, err = s.Schedule(ctx, newShipment(t, "shp-1", "saga-1"))
			if !errors.Is(err, app.ErrAborted) || !errors.Is(err, barrier.ErrHanging) || !errors.Is(err, saga.ErrPermanent) {
				t.Fatalf("Schedule after Cancel = %v, want ErrAborted, ErrHanging and ErrPermanent", err)
			}
		}
		if n := count(t, tdb); n != 0 {
			t.Errorf("%d shipments stored, want 0", n)
		}
		// Other branches are not affected.
		if _, isNew, err := s.Schedule(ctx, newShipment(t, "shp-2", "saga-2")); err != nil || !isNew {
			t.Errorf("Schedule(saga-2) = %v, %v; want new", isNew, err)
		}
	})
}

func TestDispatch(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		ctx := t.Context()
		early := newShipment(t, "shp-early", "saga-1")
		late := newShipment(t, "shp-late", "saga-2")
		late.CreatedAt, late.UpdatedAt = t0.Add(time.Minute), t0.Add(time.Minute)
		for _, sh := range []domain.Shipment{early, late} {
			if _, _, err := s.Schedule(ctx, sh); err != nil {
				t.Fatal(err)
			}
		}
		now := t0.Add(time.Hour)
		shipped, err := s.Dispatch(ctx, t0, now) // created at or before t0
		if err != nil {
			t.Fatal(err)
		}
		want := early
		want.Status, want.UpdatedAt = domain.Shipped, now
		if diff := cmp.Diff([]domain.Shipment{want}, shipped); diff != "" {
			t.Errorf("Dispatch (-want +got):\n%s", diff)
		}
		if shipped, err := s.Dispatch(ctx, t0, now); err != nil || len(shipped) != 0 {
			t.Errorf("Dispatch again = %v, %v; want nothing", shipped, err)
		}
		if got, err := s.Get(ctx, late.ID); err != nil || got.Status != domain.Scheduled {
			t.Errorf("Get(late) = %v, %v; want scheduled", got.Status, err)
		}

		// Cancelling the shipped one fails, and keeps failing: the
		// barrier's row rolled back with the refusal.
		for range 2 {
			_, _, err := s.Cancel(ctx, key("saga-1"), early.OrderID, now)
			var nc *domain.NotCancellableError
			if !errors.As(err, &nc) || nc.ID != early.ID || nc.Status != domain.Shipped {
				t.Fatalf("Cancel after Dispatch = %v, want a *NotCancellableError", err)
			}
		}
		if got, err := s.Get(ctx, early.ID); err != nil || got.Status != domain.Shipped {
			t.Errorf("Get(early) = %v, %v; want shipped", got.Status, err)
		}
	})
}

func TestCancelRacesDispatch(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		ctx := t.Context()
		const n = 10
		for i := range n {
			if _, _, err := s.Schedule(ctx, newShipment(t, fmt.Sprintf("shp-%d", i), fmt.Sprintf("saga-%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			cancelled = map[string]bool{}
			shipped   []domain.Shipment
			errs      []error
		)
		wg.Go(func() {
			got, err := s.Dispatch(ctx, t0, t0.Add(time.Hour))
			mu.Lock()
			defer mu.Unlock()
			shipped = got
			if err != nil {
				errs = append(errs, err)
			}
		})
		for i := range n {
			wg.Go(func() {
				saga := fmt.Sprintf("saga-%d", i)
				got, _, err := s.Cancel(ctx, key(saga), "order-"+saga, t0.Add(time.Hour))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, domain.ErrNotCancellable):
				case err != nil:
					errs = append(errs, err)
				default:
					cancelled[got.ID] = true
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		for _, sh := range shipped {
			if cancelled[sh.ID] {
				t.Errorf("shipment %s was both shipped and cancelled", sh.ID)
			}
		}
		if len(shipped)+len(cancelled) != n {
			t.Errorf("%d shipped + %d cancelled, want %d in all", len(shipped), len(cancelled), n)
		}
	})
}

func TestNewIdempotent(t *testing.T) {
	eachDB(t, func(t *testing.T, s *sqlstore.Store, tdb testDB) {
		if _, _, err := s.Schedule(t.Context(), newShipment(t, "shp-1", "saga-1")); err != nil {
			t.Fatal(err)
		}
		s2, err := sqlstore.New(t.Context(), tdb.db, tdb.d, nil)
		if err != nil {
			t.Fatalf("New on an existing schema = %v", err)
		}
		if _, err := s2.Get(t.Context(), "shp-1"); err != nil {
			t.Errorf("Get = %v", err)
		}
	})
	if _, err := sqlstore.New(t.Context(), nil, cqrs.Dialect(0), nil); err == nil {
		t.Error("New with no dialect = nil error")
	}
}
