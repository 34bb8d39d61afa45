package projectionbench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx" of the PostgreSQL read model
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite" of the SQLite read model

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/postgres"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
)

const (
	// numEvents events, in appends of appendSize to new streams, make the
	// log every variant reads whole, in batches of batchSize.
	numEvents  = 20000
	appendSize = 100
	batchSize  = 256
	eventType  = "order.placed"
	// projection names the Projector's projection, rawCheckpoint the raw
	// loop's checkpoint row.
	projection    = "orders"
	rawCheckpoint = "raw"

	defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
)

var payload = []byte(`{"order":"order-0001","sku":"SKU-12345","quantity":2,"amount_cents":1999,"currency":"EUR"}`)

// env is one benchmark's event store, filled with numEvents events, and
// read-model database.
type env struct {
	store eventstore.Store
	db    *sql.DB
	d     cqrs.Dialect
	// blob is the read models' column type of event data.
	blob string
}

func (e *env) q(query string) string { return e.d.Rebind(query) }

// insert is the INSERT of one event into a read-model table.
func (e *env) insert(table string) string {
	return e.q("INSERT INTO " + table + " (position, stream_id, event_id, type, data) VALUES (?, ?, ?, ?, ?)")
}

func (e *env) createTable(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, table string) error {
	_, err := ex.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (position BIGINT PRIMARY KEY, stream_id TEXT NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, data "+e.blob+" NOT NULL)")
	return err
}

// exec runs statements on e.db, failing b on error.
func (e *env) exec(b *testing.B, stmts ...string) {
	b.Helper()
	for _, s := range stmts {
		if _, err := e.db.ExecContext(b.Context(), s); err != nil {
			b.Fatalf("%s: %v", s, err)
		}
	}
}

// prefill appends numEvents events to e.store, appendSize at a time to
// new streams.
func (e *env) prefill(b *testing.B) {
	b.Helper()
	events := make([]eventstore.Event, appendSize)
	for n := range numEvents / appendSize {
		for i := range events {
			events[i] = eventstore.Event{ID: "evt-" + strconv.Itoa(n) + "-" + strconv.Itoa(i), Type: eventType, Data: payload}
		}
		if _, err := e.store.Append(b.Context(), "order-"+strconv.Itoa(n), eventstore.NoStream, events...); err != nil {
			b.Fatal(err)
		}
	}
}

// reportEvents reports events/s over the benchmark's measured time.
func reportEvents(b *testing.B, events int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(events)/s, "events/s")
	}
}

// ordersProjection inserts one row per event into table.
type ordersProjection struct {
	e     *env
	table string
}

func (p ordersProjection) Setup(ctx context.Context, tx *sql.Tx) error {
	return p.e.createTable(ctx, tx, p.table)
}

func (p ordersProjection) Apply(ctx context.Context, tx *sql.Tx, events []eventstore.RecordedEvent) error {
	insert := p.e.insert(p.table)
	for _, ev := range events {
		if _, err := tx.ExecContext(ctx, insert, int64(ev.Position), ev.StreamID, ev.ID, ev.Type, ev.Data); err != nil {
			return err
		}
	}
	return nil
}

func (p ordersProjection) Drop(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+p.table)
	return err
}

// run runs the three variants on e.
func run(b *testing.B, e *env) {
	// last is the position of the last event; positions need not be
	// dense (PostgreSQL's sequence), so the log is read to find it.
	var last eventstore.Position
	for read := 0; ; {
		page, err := e.store.ReadAll(b.Context(), last, 1000)
		if err != nil {
			b.Fatal(err)
		}
		if len(page) == 0 {
			if read != numEvents {
				b.Fatalf("the log holds %d events, want %d", read, numEvents)
			}
			break
		}
		read += len(page)
		last = page[len(page)-1].Position
	}

	b.Run("variant=subscribe", func(b *testing.B) {
		events := int64(0)
		for b.Loop() {
			ctx, cancel := context.WithCancel(b.Context())
			err := eventstore.Subscribe(ctx, e.store, 0, func(_ context.Context, ev eventstore.RecordedEvent) error {
				events++
				if ev.Position == last {
					cancel()
				}
				return nil
			}, eventstore.SubscribeOptions{BatchSize: batchSize})
			cancel()
			if !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
		}
		reportEvents(b, events)
	})

	b.Run("variant=projector", func(b *testing.B) {
		const table = "rm_projector"
		events := int64(0)
		for b.Loop() {
			b.StopTimer()
			if _, err := e.db.ExecContext(b.Context(), "DELETE FROM "+table); err == nil {
				e.exec(b, e.q("UPDATE cqrs_checkpoints SET position = 0 WHERE name = '"+projection+"'"))
			} // else the first iteration: Run creates the tables.
			p, err := cqrs.NewProjector(e.db, e.d, e.store, ordersProjection{e, table}, cqrs.ProjectorOptions{
				Name: projection, BatchSize: batchSize,
				TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider(),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			ctx, cancel := context.WithCancel(b.Context())
			done := make(chan error, 1)
			go func() { done <- p.Run(ctx) }()
			tick := time.NewTicker(time.Millisecond)
			for p.Checkpoint() < last {
				select {
				case <-tick.C:
				case err := <-done:
					tick.Stop()
					cancel()
					b.Fatalf("projector stopped at position %d: %v", p.Checkpoint(), err)
				}
			}
			tick.Stop()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
			events += numEvents
		}
		reportEvents(b, events)
	})

	b.Run("variant=raw", func(b *testing.B) {
		const table = "rm_raw"
		ctx := b.Context()
		if err := e.createTable(ctx, e.db, table); err != nil {
			b.Fatal(err)
		}
		e.exec(b, "CREATE TABLE IF NOT EXISTS raw_checkpoints (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
			e.q("INSERT INTO raw_checkpoints (name, position) VALUES ('"+rawCheckpoint+"', 0) ON CONFLICT (name) DO NOTHING"))
		insert, advance := e.insert(table), e.q("UPDATE raw_checkpoints SET position = ? WHERE name = ?")
		events := int64(0)
		for b.Loop() {
			b.StopTimer()
			e.exec(b, "DELETE FROM "+table, e.q("UPDATE raw_checkpoints SET position = 0 WHERE name = '"+rawCheckpoint+"'"))
			b.StartTimer()
			var after eventstore.Position
			if err := e.db.QueryRowContext(ctx, e.q("SELECT position FROM raw_checkpoints WHERE name = ?"), rawCheckpoint).Scan(&after); err != nil {
				b.Fatal(err)
			}
			for {
				batch, err := e.store.ReadAll(ctx, after, batchSize)
				if err != nil {
					b.Fatal(err)
				}
				if len(batch) == 0 {
					break
				}
				tx, err := e.db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				for _, ev := range batch {
					if _, err := tx.ExecContext(ctx, insert, int64(ev.Position), ev.StreamID, ev.ID, ev.Type, ev.Data); err != nil {
						b.Fatal(err)
					}
				}
				after = batch[len(batch)-1].Position
				if _, err := tx.ExecContext(ctx, advance, int64(after), rawCheckpoint); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				events += int64(len(batch))
				if len(batch) < batchSize {
					break
				}
			}
		}
		reportEvents(b, events)
	})
}

// BenchmarkProjectionSQLite runs the variants on a SQLite event store and
// read model.
func BenchmarkProjectionSQLite(b *testing.B) {
	ctx, dir := b.Context(), b.TempDir()
	store, err := sqlitestore.Open(ctx, filepath.Join(dir, "store.db"),
		sqlitestore.WithMeterProvider(metricnoop.NewMeterProvider()), sqlitestore.WithTracerProvider(tracenoop.NewTracerProvider()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := store.Close(); err != nil {
			b.Error(err)
		}
	})
	db, err := sql.Open("sqlite", filepath.Join(dir, "readmodel.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	e := &env{store: store, db: db, d: cqrs.SQLite, blob: "BLOB"}
	e.prefill(b)
	run(b, e)
}

// BenchmarkProjectionPostgres runs the variants on a PostgreSQL event
// store and read model, in one fresh schema.
func BenchmarkProjectionPostgres(b *testing.B) {
	addr := os.Getenv("CAIRN_TEST_POSTGRES")
	if addr == "" {
		addr = defaultPostgresURL
	}
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, addr)
	if err == nil {
		if err = pool.Ping(ctx); err != nil {
			pool.Close()
		}
	}
	if err != nil {
		shown := addr
		if u, perr := url.Parse(addr); perr == nil {
			shown = u.Redacted()
		}
		msg := "PostgreSQL does not answer at " + shown + " (" + err.Error() + "); set CAIRN_TEST_POSTGRES or start it"
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			b.Fatal(msg)
		}
		b.Skip("skipping: " + msg)
	}
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		b.Fatal(err)
	}
	schema := "proj_bench_" + hex.EncodeToString(r[:])
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
		}
		pool.Close()
	})
	store, err := postgres.New(ctx, pool, postgres.WithSchema(schema),
		postgres.WithMeterProvider(metricnoop.NewMeterProvider()), postgres.WithTracerProvider(tracenoop.NewTracerProvider()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	// The read model lives in the same schema: unknown URL parameters
	// are run-time parameters for pgx.
	u, err := url.Parse(addr)
	if err != nil {
		b.Fatal(err)
	}
	qs := u.Query()
	qs.Set("search_path", schema)
	u.RawQuery = qs.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	e := &env{store: store, db: db, d: cqrs.Postgres, blob: "BYTEA"}
	e.prefill(b)
	run(b, e)
}
