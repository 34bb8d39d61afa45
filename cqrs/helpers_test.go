package cqrs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"

	"github.com/cairnhq/cairn/eventstore"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
	"github.com/cairnhq/cairn/internal/testenv"
)

// backend is a read-model database that the tests run on.
type backend struct {
	name    string
	dialect Dialect
	open    func(t *testing.T) *sql.DB
}

var backends = []backend{
	{"sqlite", SQLite, openSQLite},
	{"postgres", Postgres, openPostgres},
}

// openSQLite opens a fresh SQLite database in t.TempDir(), with the DSN
// that concurrent writers need, closed at cleanup.
func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "readmodel.db")
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close sqlite: %v", err)
		}
	})
	return db
}

// openPostgres opens a connection pool whose search_path is a fresh
// schema, dropped at cleanup.
func openPostgres(t *testing.T) *sql.DB {
	t.Helper()
	url := testenv.Require(t, testenv.Postgres)
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "cqrs_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	db, err := sql.Open("pgx", url+sep+"search_path="+schema)
	if err != nil {
		admin.Close()
		t.Fatalf("open postgres: %v", err)
	}
	db.SetMaxOpenConns(8)
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close postgres: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return db
}

// openEventStore opens a SQLite event store in t.TempDir().
func openEventStore(t *testing.T) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close event store: %v", err)
		}
	})
	return s
}

// appendN appends n events to stream, one append each, and returns the
// position of the last.
func appendN(t *testing.T, s eventstore.Store, stream string, n int) eventstore.Position {
	t.Helper()
	var last eventstore.Position
	for i := range n {
		res, err := s.Append(t.Context(), stream, eventstore.Any, eventstore.Event{
			ID: fmt.Sprintf("%s-%d", stream, i), Type: "order.placed", Data: []byte(`{"amount":1}`),
		})
		if err != nil {
			t.Fatalf("Append(%s) error = %v", stream, err)
		}
		last = res.LastPosition
	}
	return last
}

// head returns the position of the last event of s.
func head(ctx context.Context, s eventstore.Reader) (eventstore.Position, error) {
	var last eventstore.Position
	for {
		events, err := s.ReadAll(ctx, last, 1000)
		if err != nil {
			return 0, err
		}
		if len(events) == 0 {
			return last, nil
		}
		last = events[len(events)-1].Position
	}
}

// orders is a test projection: one row per applied event in
// orders_v<version>, without a unique constraint, so that an event
// applied twice shows as a duplicate row.
type orders struct {
	version int
	d       Dialect
}

func (o orders) table() string { return Table("orders", o.version) }

func (o orders) Setup(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+o.table()+" (position BIGINT NOT NULL, event_id TEXT NOT NULL)")
	return err
}

func (o orders) Apply(ctx context.Context, tx *sql.Tx, events []eventstore.RecordedEvent) error {
	q := o.d.Rebind("INSERT INTO " + o.table() + " (position, event_id) VALUES (?, ?)")
	for _, e := range events {
		if _, err := tx.ExecContext(ctx, q, int64(e.Position), e.ID); err != nil {
			return err
		}
	}
	return nil
}

func (o orders) Drop(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+o.table())
	return err
}

// counts returns the rows and the distinct event IDs of version's table.
func counts(t *testing.T, db *sql.DB, version int) (rows, distinct int) {
	t.Helper()
	err := db.QueryRowContext(t.Context(), "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM "+Table("orders", version)).Scan(&rows, &distinct)
	if err != nil {
		t.Fatalf("count orders v%d: %v", version, err)
	}
	return rows, distinct
}

// runner runs a Projector in a goroutine until stopped.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func start(t *testing.T, p *Projector) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = p.Run(ctx)
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop ends the run and returns its error, nil for a cancellation.
func (r *runner) stop() error {
	r.cancel()
	<-r.done
	if r.err == context.Canceled {
		return nil
	}
	return r.err
}

// waitFor polls cond until it holds, failing the test after a minute (a
// guard against hanging, not a performance assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
