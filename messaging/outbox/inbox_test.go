package outbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/cairnhq/cairn/messaging"
)

// inboxDBs returns an empty database of each dialect: SQLite in a temp
// dir, and a schema of its own on the machine's PostgreSQL.
func inboxDBs(t *testing.T) map[cqrs.Dialect]*sql.DB {
	t.Helper()
	out := make(map[cqrs.Dialect]*sql.DB)
	lite, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "inbox.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	lite.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = lite.Close() })
	out[cqrs.SQLite] = lite

	url := testenv.Require(t, testenv.Postgres)
	if url == "" {
		return out
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "inbox_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	pg, err := sql.Open("pgx", url+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	out[cqrs.Postgres] = pg
	return out
}

func TestInboxHandlesEachMessageOnce(t *testing.T) {
	for d, db := range inboxDBs(t) {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			in, err := NewInbox(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewInbox(ctx, db, d); err != nil {
				t.Fatalf("NewInbox again (table exists) = %v", err)
			}
			if _, err := db.ExecContext(ctx, "CREATE TABLE effects (id TEXT PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
			q := "INSERT INTO effects (id) VALUES (?)"
			if d == cqrs.Postgres {
				q = "INSERT INTO effects (id) VALUES ($1)"
			}
			var calls atomic.Int32
			fail := true
			h := in.Handler("shipping", func(ctx context.Context, tx *sql.Tx, m messaging.Delivery) error {
				calls.Add(1)
				if _, err := tx.ExecContext(ctx, q, m.ID); err != nil {
					return err
				}
				if fail && m.ID == "m2" {
					return errors.New("handler failed after its write")
				}
				return nil
			})
			deliver := func(id string) error {
				return h(ctx, messaging.Delivery{Message: messaging.Message{ID: id, Subject: "s"}, Attempt: 1})
			}
			for _, id := range []string{"m1", "m1", "m1"} {
				if err := deliver(id); err != nil {
					t.Fatal(err)
				}
			}
			if err := deliver("m2"); err == nil {
				t.Fatal("the failing handler's error was not returned")
			}
			fail = false
			// The failed attempt rolled back its claim and its write: the
			// redelivery runs the handler again.
			if err := deliver("m2"); err != nil {
				t.Fatal(err)
			}
			if err := deliver("m2"); err != nil {
				t.Fatal(err)
			}
			if n := calls.Load(); n != 3 {
				t.Errorf("handler ran %d times, want 3 (m1 once, m2 twice: one failure)", n)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM effects").Scan(&n); err != nil || n != 2 {
				t.Errorf("effects = %d, %v, want 2", n, err)
			}
			// Another consumer handles the same messages for itself.
			other := in.Handler("billing", func(context.Context, *sql.Tx, messaging.Delivery) error { calls.Add(1); return nil })
			if err := other(ctx, messaging.Delivery{Message: messaging.Message{ID: "m1"}}); err != nil || calls.Load() != 4 {
				t.Errorf("another consumer: err %v, calls %d, want it to run", err, calls.Load())
			}
			if _, err := in.Claim(ctx, nil, "", "x"); err == nil {
				t.Error("Claim with an empty consumer succeeded")
			}
			pruned, err := in.Prune(ctx, time.Now().Add(time.Minute))
			if err != nil || pruned != 3 {
				t.Errorf("Prune = %d, %v, want 3", pruned, err)
			}
		})
	}
}

// TestInboxConcurrentDuplicates delivers one message to many handlers at
// once: exactly one has its effect.
func TestInboxConcurrentDuplicates(t *testing.T) {
	for d, db := range inboxDBs(t) {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			in, err := NewInbox(ctx, db, d)
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			h := in.Handler("c", func(context.Context, *sql.Tx, messaging.Delivery) error {
				calls.Add(1)
				time.Sleep(time.Millisecond) // widen the window for a race
				return nil
			})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Go(func() {
					errs <- h(ctx, messaging.Delivery{Message: messaging.Message{ID: "dup"}})
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("handler: %v", err)
				}
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("8 concurrent deliveries ran the handler %d times, want 1", n)
			}
		})
	}
}

func TestNewInboxUnknownDialect(t *testing.T) {
	if _, err := NewInbox(t.Context(), nil, cqrs.Dialect(9)); err == nil || !strings.Contains(err.Error(), "Dialect(9)") {
		t.Errorf("NewInbox(Dialect(9)) = %v, want an error naming it", err)
	}
}
