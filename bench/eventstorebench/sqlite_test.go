package eventstorebench

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	_ "modernc.org/sqlite" // the database/sql driver "sqlite" of the raw variants

	"github.com/cairnhq/cairn/eventstore"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
)

// sqliteEnv is one benchmark's SQLite: a store in a temporary file and the
// path of that file.
type sqliteEnv struct {
	store *sqlitestore.Store
	path  string
	// seq numbers batches across the repeated runs (-count) of a
	// sub-benchmark on the same tables: a repeated batch would be an
	// idempotent retry for the store, and a unique violation for raw.
	seq int64
}

func newSQLite(b *testing.B) *sqliteEnv {
	b.Helper()
	path := filepath.Join(b.TempDir(), "store.db")
	store, err := sqlitestore.Open(b.Context(), path,
		sqlitestore.WithMeterProvider(metricnoop.NewMeterProvider()), sqlitestore.WithTracerProvider(tracenoop.NewTracerProvider()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := store.Close(); err != nil {
			b.Error(err)
		}
	})
	return &sqliteEnv{store: store, path: path}
}

// openSQL opens path through database/sql with modernc's driver and the
// given query parameters, on one connection, closed when b ends.
func openSQL(b *testing.B, path, params string) *sql.DB {
	b.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&"+params)
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	return db
}

// BenchmarkSQLiteAppend100 appends 100 events to a new stream: raw, one
// transaction inserting the rows with a prepared INSERT into a table of the
// same shape as the store's events, in another file opened as the store
// opens its own (WAL, synchronous=FULL, BEGIN IMMEDIATE); cairn,
// Store.Append.
func BenchmarkSQLiteAppend100(b *testing.B) {
	e := newSQLite(b)
	// The raw table is created from the store's own DDL.
	var ddl string
	if err := openSQL(b, e.path, "_pragma=query_only(1)").QueryRowContext(b.Context(),
		"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'").Scan(&ddl); err != nil {
		b.Fatal(err)
	}
	raw := openSQL(b, filepath.Join(filepath.Dir(e.path), "raw.db"), "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if _, err := raw.ExecContext(b.Context(), ddl); err != nil {
		b.Fatal(err)
	}
	b.Run("variant=raw", func(b *testing.B) {
		ctx := b.Context()
		insert, err := raw.PrepareContext(ctx, "INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
		if err != nil {
			b.Fatal(err)
		}
		defer insert.Close()
		events := int64(0)
		for b.Loop() {
			e.seq++
			n := e.seq
			tx, err := raw.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			stmt, now := tx.StmtContext(ctx, insert), time.Now().UnixNano()
			for i := range 100 {
				if _, err := stmt.ExecContext(ctx, streamID("raw", n), int64(i)+1, eventID("raw", n, i), eventType, int64(1), payload, "{}", now); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			events += 100
		}
		reportEvents(b, events)
	})
	b.Run("variant=cairn", func(b *testing.B) {
		ctx, batch, events := b.Context(), make([]eventstore.Event, 100), int64(0)
		for b.Loop() {
			e.seq++
			n := e.seq
			fill(batch, "cairn", n)
			if _, err := e.store.Append(ctx, streamID("cairn", n), eventstore.NoStream, batch...); err != nil {
				b.Fatal(err)
			}
			events += int64(len(batch))
		}
		reportEvents(b, events)
	})
}

// BenchmarkCatchUpReadSQLite reads a global log of 20,000 events whole, in
// pages of 1000: raw, a keyset SELECT loop over the store's events table
// on a read-only connection of its own; cairn, Store.ReadAll.
func BenchmarkCatchUpReadSQLite(b *testing.B) {
	e := newSQLite(b)
	prefill(b, e.store)
	b.Run("variant=raw", func(b *testing.B) {
		ctx := b.Context()
		db := openSQL(b, e.path, "_pragma=query_only(1)")
		query := "SELECT position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at FROM events WHERE position > ? ORDER BY position LIMIT " + strconv.Itoa(pageSize)
		type row struct {
			position, version, schemaVersion, recordedAt int64
			stream, id, typ, metadata                    string
			data                                         []byte
		}
		page := make([]row, 0, pageSize)
		events := int64(0)
		for b.Loop() {
			read, after := 0, int64(0)
			for {
				rows, err := db.QueryContext(ctx, query, after)
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
				rows.Close()
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
