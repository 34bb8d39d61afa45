package eventstorebench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/postgres"
)

const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// pgEnv is one benchmark's PostgreSQL: a pool, a fresh schema holding the
// store's tables and raw_events, a table of the same shape as the store's
// events (LIKE ... INCLUDING ALL) that the raw variants write.
type pgEnv struct {
	pool  *pgxpool.Pool
	store *postgres.Store
	raw   pgx.Identifier // the raw_events table
	// events is the store's events table, which the raw catch-up reads.
	events pgx.Identifier
	// seq numbers batches, across the repeated runs of a sub-benchmark
	// on the same tables; pos numbers the raw rows' positions.
	seq, pos atomic.Int64
}

// rawColumns are the columns the raw variants write; metadata stays NULL
// and recorded_at takes its default, as in the store's appends of events
// without metadata.
var rawColumns = []string{"position", "stream_id", "version", "event_id", "type", "schema_version", "data"}

// newPostgres connects to the test PostgreSQL and creates a fresh schema,
// dropped when b ends. It skips b when PostgreSQL does not answer (fails
// under CI=true).
func newPostgres(b *testing.B) *pgEnv {
	b.Helper()
	addr := os.Getenv("CAIRN_TEST_POSTGRES")
	if addr == "" {
		addr = defaultPostgresURL
	}
	cfg, err := pgxpool.ParseConfig(addr)
	if err != nil {
		b.Fatalf("CAIRN_TEST_POSTGRES: %v", err)
	}
	cfg.MaxConns = 2 * writers // the parallel benchmark's writers never wait for a connection
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
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
		msg := "PostgreSQL does not answer at " + shown + " (" + err.Error() + "); set CAIRN_TEST_POSTGRES or start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			b.Fatal(msg)
		}
		b.Skip("skipping: " + msg)
	}
	var r [6]byte
	rand.Read(r[:])
	schema := "es_bench_" + hex.EncodeToString(r[:])
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
	e := &pgEnv{pool: pool, store: store, raw: pgx.Identifier{schema, "raw_events"}, events: pgx.Identifier{schema, "events"}}
	if _, err := pool.Exec(ctx, "CREATE TABLE "+e.raw.Sanitize()+" (LIKE "+e.events.Sanitize()+" INCLUDING ALL)"); err != nil {
		b.Fatal(err)
	}
	return e
}

// copyBatch writes batch n, size rows to a new stream, into raw_events
// with CopyFrom in one transaction.
func (e *pgEnv) copyBatch(ctx context.Context, rows [][]any, n int64) error {
	first := e.pos.Add(int64(len(rows))) - int64(len(rows))
	for i := range rows {
		rows[i] = []any{first + int64(i) + 1, streamID("raw", n), int64(i) + 1, eventID("raw", n, i), eventType, int32(1), payload}
	}
	return pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, e.raw, rawColumns, pgx.CopyFromRows(rows))
		return err
	})
}

// appendBatch appends batch n to a new stream of the store.
func (e *pgEnv) appendBatch(ctx context.Context, events []eventstore.Event, n int64) error {
	fill(events, "cairn", n)
	_, err := e.store.Append(ctx, streamID("cairn", n), eventstore.NoStream, events...)
	return err
}

// BenchmarkPostgresAppend100 appends 100 events to a new stream: raw, one
// transaction copying the 100 rows into a table like the store's; cairn,
// Store.Append.
func BenchmarkPostgresAppend100(b *testing.B) {
	e := newPostgres(b)
	b.Run("variant=raw", func(b *testing.B) {
		ctx, rows, events := b.Context(), make([][]any, 100), int64(0)
		for b.Loop() {
			if err := e.copyBatch(ctx, rows, e.seq.Add(1)); err != nil {
				b.Fatal(err)
			}
			events += int64(len(rows))
		}
		reportEvents(b, events)
	})
	b.Run("variant=cairn", func(b *testing.B) {
		ctx, batch, events := b.Context(), make([]eventstore.Event, 100), int64(0)
		for b.Loop() {
			if err := e.appendBatch(ctx, batch, e.seq.Add(1)); err != nil {
				b.Fatal(err)
			}
			events += int64(len(batch))
		}
		reportEvents(b, events)
	})
}

// BenchmarkPostgresAppend1 appends one event to a new stream: raw, an
// INSERT of the row in a transaction; cairn, Store.Append.
func BenchmarkPostgresAppend1(b *testing.B) {
	e := newPostgres(b)
	b.Run("variant=raw", func(b *testing.B) {
		ctx := b.Context()
		insert := "INSERT INTO " + e.raw.Sanitize() + " (position, stream_id, version, event_id, type, schema_version, data) VALUES ($1, $2, $3, $4, $5, $6, $7)"
		events := int64(0)
		for b.Loop() {
			n, pos := e.seq.Add(1), e.pos.Add(1)
			err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, insert, pos, streamID("raw", n), int64(1), eventID("raw", n, 0), eventType, int32(1), payload)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			events++
		}
		reportEvents(b, events)
	})
	b.Run("variant=cairn", func(b *testing.B) {
		ctx, batch, events := b.Context(), make([]eventstore.Event, 1), int64(0)
		for b.Loop() {
			if err := e.appendBatch(ctx, batch, e.seq.Add(1)); err != nil {
				b.Fatal(err)
			}
			events++
		}
		reportEvents(b, events)
	})
}

// BenchmarkPostgresAppend100Parallel is BenchmarkPostgresAppend100 from 8
// concurrent writers, each appending to streams of its own.
func BenchmarkPostgresAppend100Parallel(b *testing.B) {
	e := newPostgres(b)
	// RunParallel starts parallelism × GOMAXPROCS goroutines: 8 at
	// GOMAXPROCS 1, 2, 4 or 8.
	parallelism := max(1, (writers+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0))
	b.Run("variant=raw", func(b *testing.B) {
		var events atomic.Int64
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx, rows := b.Context(), make([][]any, 100)
			for pb.Next() {
				if err := e.copyBatch(ctx, rows, e.seq.Add(1)); err != nil {
					b.Error(err)
					return
				}
				events.Add(int64(len(rows)))
			}
		})
		reportEvents(b, events.Load())
	})
	b.Run("variant=cairn", func(b *testing.B) {
		var events atomic.Int64
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx, batch := b.Context(), make([]eventstore.Event, 100)
			for pb.Next() {
				if err := e.appendBatch(ctx, batch, e.seq.Add(1)); err != nil {
					b.Error(err)
					return
				}
				events.Add(int64(len(batch)))
			}
		})
		reportEvents(b, events.Load())
	})
}

// BenchmarkCatchUpReadPostgres reads a global log of 20,000 events whole,
// in pages of 1000: raw, a keyset SELECT loop over the store's events
// table; cairn, Store.ReadAll.
func BenchmarkCatchUpReadPostgres(b *testing.B) {
	e := newPostgres(b)
	prefill(b, e.store)
	// Wait until the store's watermark passes the prefill: a transaction
	// that another session on the cluster held open meanwhile holds it back.
	for deadline := time.Now().Add(30 * time.Second); catchUp(b, e.store) != catchUpEvents; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the prefilled events are still not readable after 30s")
		}
	}
	b.Run("variant=raw", func(b *testing.B) {
		ctx := b.Context()
		query := "SELECT position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at FROM " +
			e.events.Sanitize() + " WHERE position > $1 ORDER BY position LIMIT " + strconv.Itoa(pageSize)
		type row struct {
			position, version int64
			stream, id, typ   string
			schemaVersion     int32
			data, metadata    []byte
			recordedAt        time.Time
		}
		page := make([]row, 0, pageSize)
		events := int64(0)
		for b.Loop() {
			read, after := 0, int64(0)
			for {
				rows, err := e.pool.Query(ctx, query, after)
				if err != nil {
					b.Fatal(err)
				}
				page = page[:0]
				for rows.Next() {
					var r row
					if err := rows.Scan(&r.position, &r.stream, &r.version, &r.id, &r.typ, &r.schemaVersion, &r.data, &r.metadata, &r.recordedAt); err != nil {
						b.Fatal(err)
					}
					page = append(page, r)
				}
				if err := rows.Err(); err != nil {
					b.Fatal(err)
				}
				read += len(page)
				if len(page) < pageSize {
					break
				}
				after = page[len(page)-1].position
			}
			if read != catchUpEvents {
				b.Fatalf("read %d events, want %d", read, catchUpEvents)
			}
			events += int64(read)
		}
		reportEvents(b, events)
	})
	b.Run("variant=cairn", func(b *testing.B) {
		events := int64(0)
		for b.Loop() {
			if n := catchUp(b, e.store); n != catchUpEvents {
				b.Fatalf("read %d events, want %d", n, catchUpEvents)
			} else {
				events += n
			}
		}
		reportEvents(b, events)
	})
}
