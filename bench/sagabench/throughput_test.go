package sagabench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/barrier"
	"github.com/cairnhq/cairn/saga/postgres"
	"github.com/cairnhq/cairn/saga/sqlite"
)

// instances is the orchestrator's table, on either database.
const instances = sqlite.DefaultTable

// checkout is the data of a throughput saga: the number of the saga, which
// picks its stock row as in the raw variant.
type checkout struct {
	N int64 `json:"n"`
}

// orchestrated is an env with an orchestrator of the checkout saga whose
// store is in the participant's database.
type orchestrated struct {
	*env
	o *saga.Orchestrator[checkout]
	// reserved counts the sagas of every variant run so far: each took one
	// unit of stock.
	reserved int64
}

// compensations undo the steps' writes, in the order of env.steps.
var compensations = []string{
	"UPDATE stock SET qty = qty + 1 WHERE item = ?",
	"DELETE FROM payments WHERE saga_id = ?",
	"DELETE FROM shipments WHERE saga_id = ?",
}

// newOrchestrated returns the participant env of db with an orchestrator
// of the saga "checkout": reserve, charge and schedule, one after the
// other, each a local transaction through barrier.Do whose branch is the
// step of saga.StepInfoFrom. Telemetry is off.
func newOrchestrated(b *testing.B, db *sql.DB, d cqrs.Dialect) *orchestrated {
	b.Helper()
	e := newEnv(b, db, d)
	var (
		store saga.Store
		err   error
	)
	if d == cqrs.SQLite {
		store, err = sqlite.New(b.Context(), db)
	} else {
		store, err = postgres.New(b.Context(), db)
	}
	if err != nil {
		b.Fatal(err)
	}
	def := saga.Definition[checkout]{Name: "checkout"}
	for i, s := range e.steps {
		undo := d.Rebind(compensations[i])
		def.Stages = append(def.Stages, saga.Stage[checkout]{{
			Name: s.branch,
			Action: func(ctx context.Context, c *checkout) error {
				return e.branch(ctx, s.query, func(id string) []any { return s.args(id, c.N) })
			},
			Compensate: func(ctx context.Context, c *checkout) error {
				return e.branch(ctx, undo, func(id string) []any {
					if s.branch == "reserve" {
						return []any{c.N % items}
					}
					return []any{id}
				})
			},
		}})
	}
	o, err := saga.New(store, []saga.Definition[checkout]{def},
		saga.WithTracerProvider(tracenoop.NewTracerProvider()), saga.WithMeterProvider(metricnoop.NewMeterProvider()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := o.Close(); err != nil {
			b.Errorf("close orchestrator: %v", err)
		}
	})
	return &orchestrated{env: e, o: o}
}

// branch runs query with args(saga ID) in a local transaction through the
// barrier, as the branch of ctx's step: its action or its compensation.
func (e *env) branch(ctx context.Context, query string, args func(id string) []any) error {
	info, ok := saga.StepInfoFrom(ctx)
	if !ok {
		return errors.New("sagabench: no saga.StepInfo in the step's context")
	}
	br := barrier.Branch{SagaID: info.InstanceID, BranchID: info.Step, Op: barrier.Action}
	if info.Compensation {
		br.Op = barrier.Compensate
	}
	_, err := e.b.Do(ctx, br, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, query, args(info.InstanceID)...)
		return err
	})
	if errors.Is(err, barrier.ErrHanging) {
		return saga.Permanent(err)
	}
	return err
}

// saga starts the n-th saga and waits for it to complete.
func (e *orchestrated) saga(ctx context.Context, n int64) error {
	id := e.sagaID(n)
	if _, err := e.o.Start(ctx, "checkout", id, checkout{N: n}); err != nil {
		return err
	}
	inst, err := e.o.Wait(ctx, id)
	if err != nil {
		return err
	}
	if inst.Status != saga.StatusCompleted {
		return fmt.Errorf("saga %s: Wait = %s (%s), want completed", id, inst.Status, inst.Error)
	}
	return nil
}

// checkStore fails b unless the saga store holds sagas instances, all
// completed, and the stock has lost one unit per saga of every run so
// far; then it empties the store.
func (e *orchestrated) checkStore(b *testing.B, sagas int64, withStore bool) {
	b.Helper()
	ctx := b.Context()
	e.reserved += sagas
	var total, completed int64
	err := e.db.QueryRowContext(ctx, e.d.Rebind("SELECT count(*), count(CASE WHEN status = ? THEN 1 END) FROM "+instances),
		string(saga.StatusCompleted)).Scan(&total, &completed)
	if err != nil {
		b.Fatal(err)
	}
	want := int64(0)
	if withStore {
		want = sagas
	}
	if total != want || completed != want {
		b.Fatalf("after %d sagas: %d instances, %d completed, want %d", sagas, total, completed, want)
	}
	var stock int64
	if err := e.db.QueryRowContext(ctx, "SELECT sum(qty) FROM stock").Scan(&stock); err != nil {
		b.Fatal(err)
	}
	if want := items*1_000_000_000 - e.reserved; stock != want {
		b.Fatalf("after %d sagas in all: stock %d, want %d", e.reserved, stock, want)
	}
	if _, err := e.db.ExecContext(ctx, "DELETE FROM "+instances); err != nil {
		b.Fatal(err)
	}
}

// throughput runs the variants raw and saga with conc sagas in flight.
// raw comes first: it is benchstat's baseline.
func (e *orchestrated) throughput(b *testing.B, conc int) {
	for _, v := range []struct {
		name string
		saga func(context.Context, int64) error
		orch bool
	}{
		{"raw", e.raw, false},
		{"saga", e.saga, true},
	} {
		b.Run("variant="+v.name, func(b *testing.B) {
			before := e.next.Load()
			if conc == 1 {
				e.serial(b, v.saga, v.orch)
			} else {
				e.parallel(b, conc, v.saga, v.orch)
			}
			e.checkStore(b, e.next.Load()-before, v.orch)
		})
	}
}

// BenchmarkSagaThroughput measures sagas/s of the checkout saga (three
// steps, barrier on, the orchestrator's store in the participant's
// database) against the same three local transactions without barrier
// or orchestrator, with 1 and 32 sagas in flight, on SQLite and
// PostgreSQL.
//
// variant=saga starts each saga with Orchestrator.Start and waits for it
// with Orchestrator.Wait; with conc=32, 32 goroutines do so at once.
// variant=raw runs env.raw from as many goroutines. SQLite is one file
// (WAL, synchronous=FULL, immediate transactions, one connection, as in
// BenchmarkSagaBarrier); PostgreSQL a fresh schema of the test database,
// with a pool of 64 connections. After each sub-benchmark, outside the
// timer, it checks that every saga completed (Wait, and the store's
// rows), that each left its payment, shipment and three barrier rows and
// took one unit of stock, then empties the tables. Telemetry is off.
//
// The anchor, DTM with its barrier on MySQL, 531 global
// transactions/s on 4 cores, was measured on DTM's hardware, with its
// server and HTTP calls; compare the ratios to raw, not the rates.
func BenchmarkSagaThroughput(b *testing.B) {
	b.Run("db=sqlite", func(b *testing.B) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "saga.db")+
			"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		// One writer: SQLite runs one write transaction at a time anyway.
		db.SetMaxOpenConns(1)
		e := newOrchestrated(b, db, cqrs.SQLite)
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { e.throughput(b, conc) })
		}
	})
	b.Run("db=postgres", func(b *testing.B) {
		db := postgresDB(b)
		// A connection for each saga in flight, and its Wait.
		db.SetMaxOpenConns(64)
		db.SetMaxIdleConns(64)
		e := newOrchestrated(b, db, cqrs.Postgres)
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) { e.throughput(b, conc) })
		}
	})
}
