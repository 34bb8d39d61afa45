package sagabench

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/cairnhq/cairn/saga/barrier"
)

// items is the number of stock rows the reserve steps spread over.
const items = 1000

// step is one branch of a saga: a single write in its own transaction.
type step struct {
	branch string
	query  string
	args   func(id string, n int64) []any
}

// env is a participant's database with its business tables and barrier.
type env struct {
	db    *sql.DB
	d     cqrs.Dialect
	b     *barrier.Barrier
	steps []step
	// run prefixes the saga IDs; next numbers the sagas.
	run  string
	next atomic.Int64
}

func newEnv(b *testing.B, db *sql.DB, d cqrs.Dialect) *env {
	b.Helper()
	ctx := b.Context()
	e := &env{db: db, d: d, run: randHex(b)}
	for _, q := range []string{
		"CREATE TABLE stock (item BIGINT PRIMARY KEY, qty BIGINT NOT NULL)",
		"CREATE TABLE payments (saga_id TEXT PRIMARY KEY, amount_cents BIGINT NOT NULL)",
		"CREATE TABLE shipments (saga_id TEXT PRIMARY KEY, due BIGINT NOT NULL)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range items {
		if _, err := tx.ExecContext(ctx, d.Rebind("INSERT INTO stock (item, qty) VALUES (?, ?)"), i, 1_000_000_000); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if e.b, err = barrier.New(ctx, db, d, barrier.WithMeterProvider(metricnoop.NewMeterProvider())); err != nil {
		b.Fatal(err)
	}
	e.steps = []step{
		{"reserve", d.Rebind("UPDATE stock SET qty = qty - 1 WHERE item = ?"),
			func(_ string, n int64) []any { return []any{n % items} }},
		{"charge", d.Rebind("INSERT INTO payments (saga_id, amount_cents) VALUES (?, ?)"),
			func(id string, _ int64) []any { return []any{id, 4999} }},
		{"schedule", d.Rebind("INSERT INTO shipments (saga_id, due) VALUES (?, ?)"),
			func(id string, _ int64) []any { return []any{id, time.Now().Add(48 * time.Hour).Unix()} }},
	}
	return e
}

func randHex(b *testing.B) string {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(r[:])
}

// sagaID returns the ID of the n-th saga.
func (e *env) sagaID(n int64) string { return e.run + "-" + strconv.FormatInt(n, 10) }

// raw runs the n-th saga's three transactions with plain database/sql.
func (e *env) raw(ctx context.Context, n int64) error {
	id := e.sagaID(n)
	for _, s := range e.steps {
		tx, err := e.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.query, s.args(id, n)...); err != nil {
			return errors.Join(fmt.Errorf("saga %s: %s: %w", id, s.branch, err), tx.Rollback())
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("saga %s: %s: commit: %w", id, s.branch, err)
		}
	}
	return nil
}

// withBarrier runs the n-th saga's three transactions through the barrier.
func (e *env) withBarrier(ctx context.Context, n int64) error {
	id := e.sagaID(n)
	for _, s := range e.steps {
		br := barrier.Branch{SagaID: id, BranchID: s.branch, Op: barrier.Action}
		out, err := e.b.Do(ctx, br, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, s.query, s.args(id, n)...)
			return err
		})
		if err != nil || out != barrier.Executed {
			return fmt.Errorf("saga %s: Do(%v) = %v, %v, want executed", id, br, out, err)
		}
	}
	return nil
}

// count returns the rows of table.
func (e *env) count(b *testing.B, table string) int64 {
	var n int64
	if err := e.db.QueryRowContext(b.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// empty deletes the sagas' rows: payments, shipments and barrier rows.
func (e *env) empty(b *testing.B) {
	for _, t := range []string{"payments", "shipments", barrier.Table} {
		q := "DELETE FROM " + t
		if e.d == cqrs.Postgres {
			q = "TRUNCATE " + t
		}
		if _, err := e.db.ExecContext(b.Context(), q); err != nil {
			b.Fatal(err)
		}
	}
}

// check fails b unless the tables hold the rows of sagas sagas, with or
// without their barrier rows, then empties them.
func (e *env) check(b *testing.B, sagas int64, withBarrier bool) {
	b.Helper()
	want := int64(0)
	if withBarrier {
		want = 3 * sagas
	}
	if p, s, r := e.count(b, "payments"), e.count(b, "shipments"), e.count(b, barrier.Table); p != sagas || s != sagas || r != want {
		b.Fatalf("after %d sagas: %d payments, %d shipments, %d barrier rows, want %d, %d, %d", sagas, p, s, r, sagas, sagas, want)
	}
	e.empty(b)
}

// reportSagas reports sagas/s over the benchmark's measured time.
func reportSagas(b *testing.B, sagas int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(sagas)/s, "sagas/s")
	}
}

// serial runs one saga after another.
func (e *env) serial(b *testing.B, saga func(context.Context, int64) error, withBarrier bool) {
	e.empty(b)
	ctx := b.Context()
	var sagas int64
	for b.Loop() {
		if err := saga(ctx, e.next.Add(1)); err != nil {
			b.Fatal(err)
		}
		sagas++
	}
	reportSagas(b, sagas)
	e.check(b, sagas, withBarrier)
}

// parallel runs b.N sagas from workers goroutines, each running whole
// sagas until b.N have started.
func (e *env) parallel(b *testing.B, workers int, saga func(context.Context, int64) error, withBarrier bool) {
	b.StopTimer()
	e.empty(b)
	ctx := b.Context()
	var (
		started atomic.Int64
		mu      sync.Mutex
		first   error
		wg      sync.WaitGroup
	)
	b.ResetTimer()
	b.StartTimer()
	for range workers {
		wg.Go(func() {
			for started.Add(1) <= int64(b.N) {
				if err := saga(ctx, e.next.Add(1)); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if first != nil {
		b.Fatal(first)
	}
	reportSagas(b, int64(b.N))
	e.check(b, int64(b.N), withBarrier)
}

// variants runs the raw and barrier variants, serially when workers is 1,
// else from workers goroutines. raw comes first: it is benchstat's
// baseline.
func (e *env) variants(b *testing.B, workers int) {
	for _, v := range []struct {
		name        string
		saga        func(context.Context, int64) error
		withBarrier bool
	}{
		{"raw", e.raw, false},
		{"barrier", e.withBarrier, true},
	} {
		b.Run("variant="+v.name, func(b *testing.B) {
			if workers == 1 {
				e.serial(b, v.saga, v.withBarrier)
			} else {
				e.parallel(b, workers, v.saga, v.withBarrier)
			}
		})
	}
}

// BenchmarkSagaBarrier measures sagas/s of three local transactions with
// and without the barrier, on SQLite and PostgreSQL.
func BenchmarkSagaBarrier(b *testing.B) {
	b.Run("db=sqlite", func(b *testing.B) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "participant.db")+
			"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		db.SetMaxOpenConns(1)
		newEnv(b, db, cqrs.SQLite).variants(b, 1)
	})
	b.Run("db=postgres", func(b *testing.B) {
		db := postgresDB(b)
		e := newEnv(b, db, cqrs.Postgres)
		b.Run("workers=1", func(b *testing.B) { e.variants(b, 1) })
		b.Run("workers=8", func(b *testing.B) { e.variants(b, 8) })
	})
}

// postgresDB returns a pool on a fresh schema of the test PostgreSQL,
// dropped when b ends.
func postgresDB(b *testing.B) *sql.DB {
	b.Helper()
	addr := testenv.Require(b, testenv.Postgres)
	if addr == "" {
		return nil
	}
	ctx := b.Context()
	schema := "saga_bench_" + randHex(b)
	admin, err := sql.Open("pgx", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		b.Fatal(err)
	}
	u, err := url.Parse(addr)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	// Keep the workers' connections open between transactions.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return db
}
