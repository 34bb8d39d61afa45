package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"

	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

// openDB opens a pool whose search_path is a fresh schema, dropped at
// cleanup.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	return openDBs(t, 1)[0]
}

// openDBs opens n pools whose search_path is one fresh schema, dropped at
// cleanup.
func openDBs(t testing.TB, n int) []*sql.DB {
	t.Helper()
	url := testenv.Require(t, testenv.Postgres)
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "saga_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	var dbs []*sql.DB
	t.Cleanup(func() {
		for _, db := range dbs {
			if err := db.Close(); err != nil {
				t.Errorf("close postgres: %v", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	for range n {
		db, err := sql.Open("pgx", url+sep+"search_path="+schema)
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		db.SetMaxOpenConns(8)
		dbs = append(dbs, db)
	}
	return dbs
}

func TestConformance(t *testing.T) {
	sagatest.Run(t, func(t *testing.T) saga.Store {
		s, err := New(t.Context(), openDB(t))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	})
}

// TestNewConcurrent creates the table from several stores at once, as
// processes starting together do.
func TestNewConcurrent(t *testing.T) {
	db := openDB(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := New(t.Context(), db, WithTable("sagas"))
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("New: %v", err)
		}
	}
	if _, err := New(t.Context(), db, WithTable("bad-name")); err == nil {
		t.Error(`New(WithTable("bad-name")) succeeded, want an error`)
	}
}

// TestTwoProcesses runs the crash check with each orchestrator on its own
// connection pool to one schema, as two processes would.
func TestTwoProcesses(t *testing.T) {
	var stores []saga.Store
	for _, db := range openDBs(t, 2) {
		s, err := New(t.Context(), db)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		stores = append(stores, s)
	}
	sagatest.CrashTakeover(t, stores[0], stores[1])
}
