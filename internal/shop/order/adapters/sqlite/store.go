// Package sqlitestore stores orders in SQLite through database/sql and the
// pure-Go driver modernc.org/sqlite. [Store] implements app.Repository and
// makes one OpenTelemetry CLIENT span per call, following the database
// semantic conventions.
//
// A file database runs in WAL mode with one writer connection, so concurrent
// writers queue in database/sql instead of failing with SQLITE_BUSY, and a
// pool of read-only connections that never block the writer.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

// instrumentationName names the tracer of this package.
const instrumentationName = "github.com/cairnhq/cairn/internal/shop/order/adapters/sqlite"

// MemoryPath is the path that opens a private in-memory database, which lives
// as long as the [Store]. It is served by a single connection.
const MemoryPath = ":memory:"

// busyTimeoutMillis is how long a connection waits for a lock held by another
// connection (or process) before failing with SQLITE_BUSY.
const busyTimeoutMillis = 5000

// migrations are applied in order; migration i brings the schema to
// PRAGMA user_version i+1. Append only: never edit a released migration.
var migrations = [][]string{
	{
		`CREATE TABLE orders (
			seq         INTEGER PRIMARY KEY,
			id          TEXT    NOT NULL UNIQUE,
			customer_id TEXT    NOT NULL,
			status      TEXT    NOT NULL,
			total       INTEGER NOT NULL,
			created_at  INTEGER NOT NULL -- Unix nanoseconds, UTC
		)`,
		`CREATE INDEX orders_by_created_at ON orders (created_at, seq)`,
		`CREATE TABLE order_lines (
			order_id   TEXT    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
			line_no    INTEGER NOT NULL,
			sku        TEXT    NOT NULL,
			quantity   INTEGER NOT NULL,
			unit_price INTEGER NOT NULL,
			PRIMARY KEY (order_id, line_no)
		) WITHOUT ROWID`,
	},
}

// The statements the repository runs. They are parameterized, so they are
// also what the spans report as db.query.text.
const (
	insertOrderSQL = `INSERT INTO orders (id, customer_id, status, total, created_at) VALUES (?, ?, ?, ?, ?)`
	insertLineSQL  = `INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price) VALUES (?, ?, ?, ?, ?)`
	selectOrderSQL = `SELECT o.id, o.customer_id, o.status, o.total, o.created_at, l.sku, l.quantity, l.unit_price ` +
		`FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.id = ? ORDER BY l.line_no`
	listOrdersSQL = `SELECT o.id, o.customer_id, o.status, o.total, o.created_at, l.sku, l.quantity, l.unit_price ` +
		`FROM (SELECT seq, id, customer_id, status, total, created_at FROM orders ORDER BY created_at DESC, seq DESC LIMIT ?) o ` +
		`JOIN order_lines l ON l.order_id = o.id ORDER BY o.created_at DESC, o.seq DESC, l.line_no`
)

// Store is an app.Repository backed by SQLite. It is safe for concurrent use
// by multiple goroutines. Close it when done.
type Store struct {
	write  *sql.DB // one connection; every write goes through it
	read   *sql.DB // read-only pool; the same as write for an in-memory database
	tracer trace.Tracer
}

var _ app.Repository = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path, brings its
// schema up to date and returns a Store on it. path is a file name, or
// [MemoryPath] for a private in-memory database. Spans go to tp; nil selects
// the OpenTelemetry global TracerProvider.
//
// Migrations are idempotent: opening a database that is already up to date
// changes nothing. Open returns an error if path is empty or contains '?',
// or if the database cannot be opened or migrated.
func Open(ctx context.Context, path string, tp trace.TracerProvider) (*Store, error) {
	if path == "" || strings.Contains(path, "?") {
		return nil, fmt.Errorf("sqlitestore: open %q: path must be a file name or %s", path, MemoryPath)
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s := &Store{tracer: tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL))}

	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busyTimeoutMillis)
	var err error
	s.write, err = sql.Open("sqlite", path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	// One writer connection: SQLite admits a single writer at a time, so
	// writers queue here (honouring ctx) rather than spin on SQLITE_BUSY.
	// It is never closed while idle, which an in-memory database needs.
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxIdleTime(0)
	s.write.SetConnMaxLifetime(0)
	if err := s.migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlitestore: migrate %s: %w", path, err), s.write.Close())
	}

	if path == MemoryPath {
		s.read = s.write
		return s, nil
	}
	s.read, err = sql.Open("sqlite", path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlitestore: open %s for reading: %w", path, err), s.write.Close())
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.read.SetMaxOpenConns(n)
	s.read.SetMaxIdleConns(n)
	if err := s.read.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlitestore: open %s for reading: %w", path, err), s.read.Close(), s.write.Close())
	}
	return s, nil
}

// migrate applies the pending migrations in one immediate transaction, so two
// processes opening the same file do not race.
func (s *Store) migrate(ctx context.Context) (err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("read user_version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		for _, stmt := range migrations[i] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
		}
	}
	if version < len(migrations) {
		// PRAGMA does not take bind parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, `PRAGMA user_version = `+strconv.Itoa(len(migrations))); err != nil {
			return fmt.Errorf("set user_version: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Close closes the database connections. It waits for nothing: calls still
// running fail. Close returns the errors of closing each pool, joined.
func (s *Store) Close() error {
	if s.read == s.write {
		return s.write.Close()
	}
	return errors.Join(s.read.Close(), s.write.Close())
}

// Save stores o and its lines in one transaction. Its span, "INSERT orders",
// reports both statements in db.query.text. It returns an error wrapping
// [domain.ErrAlreadyExists] if an order with the same ID is stored.
func (s *Store) Save(ctx context.Context, o domain.Order) (err error) {
	ctx, span := s.start(ctx, "INSERT", "orders", insertOrderSQL+"; "+insertLineSQL)
	defer func() { end(span, err) }()

	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save order %s: begin: %w", o.ID, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	_, err = tx.ExecContext(ctx, insertOrderSQL, o.ID, o.CustomerID, o.Status.String(), o.Total, o.CreatedAt.UnixNano())
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("save order %s: %w: %w", o.ID, domain.ErrAlreadyExists, err)
		}
		return fmt.Errorf("save order %s: %w", o.ID, err)
	}
	stmt, err := tx.PrepareContext(ctx, insertLineSQL)
	if err != nil {
		return fmt.Errorf("save order %s: prepare lines: %w", o.ID, err)
	}
	defer stmt.Close()
	for i, l := range o.Lines {
		if _, err := stmt.ExecContext(ctx, o.ID, i+1, l.SKU, l.Quantity, l.UnitPrice); err != nil {
			return fmt.Errorf("save order %s: line %d: %w", o.ID, i+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save order %s: commit: %w", o.ID, err)
	}
	return nil
}

// Get returns the order with the given id and its lines. It returns an error
// wrapping [domain.ErrNotFound] if there is none.
func (s *Store) Get(ctx context.Context, id string) (o domain.Order, err error) {
	ctx, span := s.start(ctx, "SELECT", "orders", selectOrderSQL)
	defer func() { end(span, err) }()

	orders, err := s.query(ctx, selectOrderSQL, id)
	if err != nil {
		return domain.Order{}, fmt.Errorf("load order %s: %w", id, err)
	}
	if len(orders) == 0 {
		return domain.Order{}, fmt.Errorf("load order %s: %w", id, domain.ErrNotFound)
	}
	return orders[0], nil
}

// List returns at most limit orders, newest first, each with its lines. It
// returns an error if limit is not positive.
func (s *Store) List(ctx context.Context, limit int) (orders []domain.Order, err error) {
	ctx, span := s.start(ctx, "SELECT", "orders", listOrdersSQL)
	defer func() { end(span, err) }()

	if limit <= 0 {
		return nil, fmt.Errorf("list orders: limit %d is not positive", limit)
	}
	orders, err = s.query(ctx, listOrdersSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("list orders (limit %d): %w", limit, err)
	}
	return orders, nil
}

// query runs a statement returning one row per order line, grouped by order,
// and assembles the orders in row order.
func (s *Store) query(ctx context.Context, query string, args ...any) (_ []domain.Order, err error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	orders := []domain.Order{}
	for rows.Next() {
		var (
			o       domain.Order
			status  string
			created int64
			l       domain.Line
		)
		if err := rows.Scan(&o.ID, &o.CustomerID, &status, &o.Total, &created, &l.SKU, &l.Quantity, &l.UnitPrice); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		if n := len(orders); n > 0 && orders[n-1].ID == o.ID {
			orders[n-1].Lines = append(orders[n-1].Lines, l)
			continue
		}
		if o.Status, err = domain.ParseStatus(status); err != nil {
			return nil, fmt.Errorf("order %s: %w", o.ID, err)
		}
		o.CreatedAt = time.Unix(0, created).UTC()
		o.UpdatedAt = o.CreatedAt
		o.Lines = []domain.Line{l}
		orders = append(orders, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return orders, nil
}

// start starts a CLIENT span named "{operation} {table}" with the database
// semantic-convention attributes.
func (s *Store) start(ctx context.Context, op, table, query string) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, op+" "+table,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNameSQLite,
			semconv.DBOperationName(op),
			semconv.DBCollectionName(table),
			semconv.DBQueryText(query),
		))
}

// end ends span, recording err unless it is nil or only reports a missing
// order, which is an answer, not a failure of the database.
func end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorType(err))
		var se *sqlite.Error
		if errors.As(err, &se) {
			span.SetAttributes(semconv.DBResponseStatusCode(strconv.Itoa(se.Code())))
		}
	}
	span.End()
}

// isUniqueViolation reports whether err is SQLite rejecting a duplicate key.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// ignoreDone drops sql.ErrTxDone, which Rollback returns after a failed
// Commit has already ended the transaction.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
