package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// PostgresSchema returns a database/sql pool (driver "pgx") on the
// machine's PostgreSQL whose search_path is a new, empty schema named
// prefix and 12 random hex digits, dropped with everything in it when t
// ends. It skips t (fails it when InCI) as [Require] does when
// PostgreSQL does not answer.
func PostgresSchema(t testing.TB, prefix string) *sql.DB {
	t.Helper()
	addr := Require(t, Postgres)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := prefix + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", addr)
	if err != nil {
		t.Fatalf("testenv: open %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("testenv: create schema %s: %v", schema, err)
	}
	t.Cleanup(func() { _, _ = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatalf("testenv: PostgreSQL address %q: %v", addr, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatalf("testenv: open %s: %v", schema, err)
	}
	// Registered after the admin's cleanups, so it runs before them: the
	// pool closes before its schema is dropped.
	t.Cleanup(func() { _ = db.Close() })
	return db
}
