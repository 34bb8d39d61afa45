// Package testdb gives the payment service's tests an empty database of
// each dialect: SQLite in a temporary file, and a fresh schema on the
// machine's PostgreSQL (skipped when it does not answer, except under
// CI=true).
package testdb

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver
	_ "modernc.org/sqlite"             // the SQLite driver

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/testenv"
)

// DB is an empty database.
type DB struct {
	// Name is "sqlite" or "postgres", for t.Run.
	Name string
	// Dialect is the database's dialect.
	Dialect cqrs.Dialect
	// DB is the database, closed when the test ends.
	DB *sql.DB
}

// SQLite returns a database in a fresh SQLite file (WAL, immediate
// transactions, a busy timeout), closed when t ends.
func SQLite(t testing.TB) DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "payment.db")+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return DB{Name: "sqlite", Dialect: cqrs.SQLite, DB: db}
}

// All returns an empty database of each dialect. Without PostgreSQL, t is
// skipped (failed under CI=true), as testenv.Require does.
func All(t *testing.T) []DB {
	t.Helper()
	out := []DB{SQLite(t)}
	pg := testenv.PostgresSchema(t, "payment_")
	return append(out, DB{Name: "postgres", Dialect: cqrs.Postgres, DB: pg})
}
