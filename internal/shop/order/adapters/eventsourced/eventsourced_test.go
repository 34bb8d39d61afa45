package eventsourced

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
	pgstore "github.com/cairnhq/cairn/eventstore/postgres"
	esqlite "github.com/cairnhq/cairn/eventstore/sqlite"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/internal/testenv"
)

// backend is an event store and a read model database of one kind.
type backend struct {
	events      eventstore.Store
	write, read *sql.DB
	dialect     cqrs.Dialect
}

func backends(t *testing.T) map[string]backend {
	t.Helper()
	out := make(map[string]backend)
	dir := t.TempDir()
	es, err := esqlite.Open(t.Context(), dir+"/events.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = es.Close() })
	w, r, err := OpenSQLite(dir + "/read.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(); _ = w.Close() })
	out["sqlite"] = backend{es, w, r, cqrs.SQLite}

	url := testenv.Require(t, testenv.Postgres)
	if url == "" {
		return out
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "orders_" + hex.EncodeToString(b[:])
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	pes, err := pgstore.New(t.Context(), pool, pgstore.WithSchema(schema+"_events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pes.Close() })
	if _, err := pool.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE; DROP SCHEMA "+schema+"_events CASCADE")
	})
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	db, err := sql.Open("pgx", url+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	out["postgres"] = backend{pes, db, db, cqrs.Postgres}
	return out
}

func order(id string, at time.Time) domain.Order {
	o, err := domain.NewOrder(id, "c-"+id, []domain.Line{{SKU: "SKU-1", Quantity: 2, UnitPrice: 150}, {SKU: "SKU-2", Quantity: 1, UnitPrice: 99}}, at)
	if err != nil {
		panic(err)
	}
	return o
}

func startProjection(t *testing.T, b backend, version int, notify <-chan struct{}) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- RunProjection(ctx, ProjectionConfig{Events: b.events, DB: b.write, Dialect: b.dialect, Version: version,
			Notify: notify, PollInterval: 5 * time.Millisecond})
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunProjection = %v", err)
		}
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRepository(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			rm := NewReadModel(b.read, b.dialect, noop.NewTracerProvider())
			repo := NewRepository(b.events, rm)
			base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			o1 := order("o1", base)
			if err := repo.Save(ctx, o1); err != nil {
				t.Fatal(err)
			}
			// Before any projection runs, Get reads the events.
			got, err := repo.Get(ctx, "o1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(o1, got); diff != "" {
				t.Errorf("Get before the projection (-want +got):\n%s", diff)
			}
			if list, err := repo.List(ctx, 10); err != nil || len(list) != 0 {
				t.Errorf("List before any projection = %v, %v; want empty", list, err)
			}
			// A retried Save of the same order is idempotent; another order
			// with the same ID is refused.
			if err := repo.Save(ctx, o1); err != nil {
				t.Errorf("retried Save = %v, want success", err)
			}
			other := order("o1", base.Add(time.Hour))
			if err := repo.Save(ctx, other); !errors.Is(err, domain.ErrAlreadyExists) {
				t.Errorf("Save of another order o1 = %v, want ErrAlreadyExists", err)
			}
			if _, err := repo.Get(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("Get(nope) = %v, want ErrNotFound", err)
			}

			stop := startProjection(t, b, 1, repo.Notify())
			defer stop()
			for i := 2; i <= 5; i++ {
				if err := repo.Save(ctx, order(fmt.Sprint("o", i), base.Add(time.Duration(i)*time.Minute))); err != nil {
					t.Fatal(err)
				}
			}
			var list []domain.Order
			eventually(t, "5 orders in the read model", func() bool {
				list, err = repo.List(ctx, 10)
				return err == nil && len(list) == 5
			})
			var ids []string
			for _, o := range list {
				ids = append(ids, o.ID)
			}
			if want := []string{"o5", "o4", "o3", "o2", "o1"}; !cmp.Equal(ids, want) {
				t.Errorf("List = %v, want newest first %v", ids, want)
			}
			if diff := cmp.Diff(o1, list[4]); diff != "" {
				t.Errorf("read model's o1 (-want +got):\n%s", diff)
			}
			if list, _ := repo.List(ctx, 2); len(list) != 2 || list[0].ID != "o5" {
				t.Errorf("List(2) = %v", list)
			}
			got, err = rm.Get(ctx, "o3")
			if err != nil || got.ID != "o3" || len(got.Lines) != 2 {
				t.Errorf("read model Get(o3) = %+v, %v", got, err)
			}

			// A corrupt event in an order's stream is reported, naming it.
			if _, err := b.events.Append(ctx, Stream("bad"), eventstore.NoStream, eventstore.Event{ID: "bad-1", Type: "order.teleported", Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			if _, err := repo.Load(ctx, "bad"); err == nil || !strings.Contains(err.Error(), `unknown type "order.teleported"`) {
				t.Errorf("Load of a stream with an unknown event = %v, want an error naming the type", err)
			}
		})
	}
}

// TestRebuild: version 2 of the read model builds beside version 1 while
// orders keep coming, then replaces it; queries never fail.
func TestRebuild(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			rm := NewReadModel(b.read, b.dialect, noop.NewTracerProvider())
			repo := NewRepository(b.events, rm)
			base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			for i := range 20 {
				if err := repo.Save(ctx, order(fmt.Sprint("a", i), base.Add(time.Duration(i)*time.Second))); err != nil {
					t.Fatal(err)
				}
			}
			stop1 := startProjection(t, b, 1, nil)
			defer stop1()
			eventually(t, "v1 active with 20 orders", func() bool {
				l, err := repo.List(ctx, 100)
				return err == nil && len(l) == 20
			})
			queryErrs := make(chan error, 1)
			qctx, qcancel := context.WithCancel(ctx)
			go func() {
				defer close(queryErrs)
				for qctx.Err() == nil {
					if _, err := repo.List(qctx, 100); err != nil && qctx.Err() == nil {
						queryErrs <- err
						return
					}
				}
			}()
			stop2 := startProjection(t, b, 2, nil)
			defer stop2()
			for i := range 10 {
				if err := repo.Save(ctx, order(fmt.Sprint("b", i), base.Add(time.Hour+time.Duration(i)*time.Second))); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, "v2 active", func() bool {
				v, err := cqrs.Active(ctx, b.read, b.dialect, ProjectionName)
				return err == nil && v == 2
			})
			eventually(t, "30 orders from v2", func() bool {
				l, err := repo.List(ctx, 100)
				return err == nil && len(l) == 30
			})
			qcancel()
			if err := <-queryErrs; err != nil {
				t.Errorf("a query failed during the rebuild: %v", err)
			}
		})
	}
}

// TestStatusAndWatch: the checkout's status changes are events that the
// aggregate, the read model and a watcher all follow; a repeated or late
// change changes nothing.
func TestStatusAndWatch(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			rm := NewReadModel(b.read, b.dialect, noop.NewTracerProvider())
			repo := NewRepository(b.events, rm)
			base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			o := order("w1", base)
			o.PaymentMethod = "tok_visa"
			o.ShipTo = domain.Address{Recipient: "Ada", Lines: []string{"1 Main St"}, Locality: "Berlin", RegionCode: "DE"}
			if err := repo.Save(ctx, o); err != nil {
				t.Fatal(err)
			}
			if _, err := repo.SetStatus(ctx, "nope", domain.StatusReserved, "", "s", base); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("SetStatus of an unknown order = %v, want ErrNotFound", err)
			}

			// A watcher sees every status, from the current one to the
			// final one, and returns after it.
			seen := make(chan []domain.Status, 1)
			started := make(chan struct{})
			go func() {
				var got []domain.Status
				err := repo.Watch(ctx, "w1", func(o domain.Order) error {
					if len(got) == 0 {
						close(started)
					}
					got = append(got, o.Status)
					return nil
				})
				if err != nil {
					t.Errorf("Watch = %v", err)
				}
				seen <- got
			}()
			<-started

			steps := []struct {
				st     domain.Status
				reason string
				want   domain.Status
			}{
				{domain.StatusReserved, "", domain.StatusReserved},
				{domain.StatusReserved, "", domain.StatusReserved},  // repeated: nothing
				{domain.StatusPlaced, "", domain.StatusReserved},    // late: nothing
				{domain.StatusConfirmed, "", domain.StatusReserved}, // not from reserved
				{domain.StatusCompensating, "payment declined", domain.StatusCompensating},
				{domain.StatusCancelled, "", domain.StatusCancelled},
				{domain.StatusFailed, "", domain.StatusCancelled}, // final
			}
			for i, s := range steps {
				got, err := repo.SetStatus(ctx, "w1", s.st, s.reason, "checkout-w1", base.Add(time.Duration(i+1)*time.Second))
				if err != nil {
					t.Fatalf("step %d: SetStatus(%s) = %v", i, s.st, err)
				}
				if got.Status != s.want {
					t.Fatalf("step %d: SetStatus(%s) left %s, want %s", i, s.st, got.Status, s.want)
				}
			}
			want := []domain.Status{domain.StatusPlaced, domain.StatusReserved, domain.StatusCompensating, domain.StatusCancelled}
			// The watcher may coalesce changes that came faster than it
			// read; it must see the first and the last, in order.
			got := <-seen
			if got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
				t.Errorf("watcher saw %v, want a subsequence of %v from first to last", got, want)
			}

			loaded, err := repo.Load(ctx, "w1")
			if err != nil {
				t.Fatal(err)
			}
			if loaded.Status != domain.StatusCancelled || loaded.StatusReason != "payment declined" || loaded.SagaID != "checkout-w1" ||
				loaded.PaymentMethod != "tok_visa" || loaded.ShipTo.Locality != "Berlin" {
				t.Errorf("Load = %+v", loaded)
			}

			stop := startProjection(t, b, CurrentVersion, repo.Notify())
			defer stop()
			eventually(t, "the read model to show the cancellation", func() bool {
				o, err := rm.Get(ctx, "w1")
				return err == nil && o.Status == domain.StatusCancelled
			})
			o2, _ := rm.Get(ctx, "w1")
			if o2.StatusReason != "payment declined" || o2.SagaID != "checkout-w1" || !o2.UpdatedAt.Equal(base.Add(6*time.Second)) {
				t.Errorf("read model = reason %q saga %q updated %v", o2.StatusReason, o2.SagaID, o2.UpdatedAt)
			}
			// Find filters by status and customer and pages.
			if err := repo.Save(ctx, order("w2", base.Add(time.Minute))); err != nil {
				t.Fatal(err)
			}
			eventually(t, "w2 in the read model", func() bool {
				l, err := repo.Find(ctx, Filter{Status: domain.StatusPlaced}, 0, 10)
				return err == nil && len(l) == 1 && l[0].ID == "w2"
			})
			if l, err := repo.Find(ctx, Filter{CustomerID: "c-w1"}, 0, 10); err != nil || len(l) != 1 || l[0].ID != "w1" {
				t.Errorf("Find(customer c-w1) = %v, %v", l, err)
			}
			if l, err := repo.Find(ctx, Filter{}, 1, 10); err != nil || len(l) != 1 || l[0].ID != "w1" {
				t.Errorf("Find(offset 1) = %v, %v; want [w1]", l, err)
			}
		})
	}
}

// TestWatchWakesOnlyItsOrder: an append wakes the watchers of its own
// order only, and a finished watch leaves nothing behind.
func TestWatchWakesOnlyItsOrder(t *testing.T) {
	r := NewRepository(nil, nil)
	changes, done := r.watch("a")
	c := changes()
	r.appended("b")
	select {
	case <-c:
		t.Fatal("an append to order b woke a watcher of order a")
	default:
	}
	r.appended("a")
	select {
	case <-c:
	default:
		t.Fatal("an append to order a did not wake its watcher")
	}
	if changes() == c {
		t.Error("the channel was not replaced after it was closed")
	}
	_, done2 := r.watch("a")
	done()
	if len(r.watches) != 1 {
		t.Errorf("%d orders watched after one of two watchers left, want 1", len(r.watches))
	}
	done2()
	if len(r.watches) != 0 {
		t.Errorf("%d orders watched after every watcher left, want 0", len(r.watches))
	}
}
