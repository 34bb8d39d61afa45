package cqrs

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// Dialect is the SQL dialect of a read model's database: what differs
// between the drivers that [Projector], [Active] and
// [SQLIdempotencyStore] use.
type Dialect int

// The supported dialects.
const (
	// SQLite is SQLite through modernc.org/sqlite (driver name "sqlite"):
	// placeholders are "?".
	SQLite Dialect = iota + 1
	// Postgres is PostgreSQL through github.com/jackc/pgx/v5/stdlib
	// (driver name "pgx"): placeholders are "$1", "$2"...
	Postgres
)

// String returns "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// validate returns an error for a dialect that is not one of the constants.
func (d Dialect) validate() error {
	if d != SQLite && d != Postgres {
		return fmt.Errorf("cqrs: unknown dialect %d (want cqrs.SQLite or cqrs.Postgres)", int(d))
	}
	return nil
}

// Rebind rewrites the "?" placeholders of query for d: unchanged for
// SQLite, "$1", "$2"... for PostgreSQL. It does not look inside string
// literals: write queries whose only question marks are placeholders.
func (d Dialect) Rebind(query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// lock serializes, until tx ends, the transactions that create the
// package's tables: PostgreSQL's CREATE TABLE IF NOT EXISTS can fail when
// run concurrently. SQLite transactions are serialized already.
func (d Dialect) lock(ctx context.Context, tx *sql.Tx, key string) error {
	if d != Postgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "cairn.cqrs:"+key)
	return err
}

// Querier is what [Active] needs: a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Execer runs statements: a *sql.DB, *sql.Conn or *sql.Tx.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
