// Package sqlstore is the [saga.Store] on database/sql that saga/sqlite and
// saga/postgres configure: one row per instance, the data as JSON, the
// step states as a JSON array, a version column for optimistic
// concurrency and the lease's owner and expiry.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/saga"
)

// DefaultTable is the table of a store without a table name.
const DefaultTable = "cairn_saga_instances"

// Dialect says which database a Store talks to.
type Dialect int

const (
	// SQLite is modernc.org/sqlite: the store's clock (time.Now) judges
	// leases, and timestamps are Unix nanoseconds.
	SQLite Dialect = iota + 1
	// Postgres is PostgreSQL through pgx's database/sql driver: the
	// database's now() judges leases.
	Postgres
)

// Store is a [saga.Store] on a *sql.DB.
type Store struct {
	db      *sql.DB
	dialect Dialect
	table   string
	q       queries
	// stmts holds the statements prepared on db, by query, on SQLite
	// only: modernc.org/sqlite parses every query it is given, which
	// costs more than running a small one, while pgx caches its prepared
	// statements itself. They are released when db closes.
	stmts map[string]*sql.Stmt
}

var _ saga.Store = (*Store)(nil)

// queries are the store's statements, with the dialect's placeholders.
type queries struct {
	create, get, update, renew, claim string
}

// tableName matches the table names a store accepts: an identifier. On
// PostgreSQL, the table is in the connection's search_path.
var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

const columns = `id, definition, status, input, data, steps, error, trace_parent, trace_state, owner, lease_until, version, created_at, updated_at`

// updated are the columns that Update returns: those it did not just write
// with the caller's values (id and owner are the caller's too, by its
// condition), so that it need not decode the steps again.
const updated = `definition, input, trace_parent, trace_state, ` + stamped

// stamped are the columns that the store sets, which Create returns.
const stamped = `lease_until, version, created_at, updated_at`

const final = `('completed', 'compensated')`

// New returns a store on db in table (DefaultTable when empty), after
// creating the table and its index if they are missing.
func New(ctx context.Context, db *sql.DB, d Dialect, table string) (*Store, error) {
	if table == "" {
		table = DefaultTable
	}
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("saga: invalid table name %q (want letters, digits and underscores)", table)
	}
	if db == nil {
		return nil, errors.New("saga: nil *sql.DB")
	}
	s := &Store{db: db, dialect: d, table: table}
	s.q = queries{
		create: s.bind(`INSERT INTO ` + table + ` (` + columns + `)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, {until}, 1, {now}, {now})
ON CONFLICT (id) DO NOTHING RETURNING ` + stamped),
		get: s.bind(`SELECT ` + columns + ` FROM ` + table + ` WHERE id = $1`),
		update: s.bind(`UPDATE ` + table + ` SET status = $1, data = $2, steps = $3, error = $4,
	version = version + 1, updated_at = {now}, lease_until = {until}
WHERE id = $5 AND version = $6 AND owner = $7 AND lease_until > {now}
RETURNING ` + updated),
		renew: s.bind(`UPDATE ` + table + ` SET lease_until = {until} WHERE id = $1 AND owner = $2 AND lease_until > {now}`),
	}
	claimable := `status NOT IN ` + final + ` AND lease_until <= {now}`
	switch d {
	case SQLite:
		s.q.claim = s.bind(`UPDATE ` + table + ` SET owner = $1, lease_until = {until}, version = version + 1, updated_at = {now}
WHERE id IN (SELECT id FROM ` + table + ` WHERE definition IN (SELECT value FROM json_each($2)) AND ` + claimable + `
	ORDER BY lease_until LIMIT $3)
RETURNING ` + columns)
	case Postgres:
		s.q.claim = s.bind(`UPDATE ` + table + ` SET owner = $1, lease_until = {until}, version = version + 1, updated_at = {now}
WHERE id IN (SELECT id FROM ` + table + ` WHERE definition IN (SELECT jsonb_array_elements_text($2::jsonb)) AND ` + claimable + `
	ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED)
	AND ` + claimable + `
RETURNING ` + columns)
	default:
		return nil, fmt.Errorf("saga: unknown SQL dialect %d", int(d))
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	if d == SQLite {
		s.stmts = make(map[string]*sql.Stmt)
		for _, q := range []string{s.q.create, s.q.get, s.q.update, s.q.renew} {
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				s.close()
				return nil, fmt.Errorf("saga: prepare the statements on table %s: %w", table, err)
			}
			s.stmts[q] = st
		}
	}
	return s, nil
}

// close closes the prepared statements.
func (s *Store) close() {
	for _, st := range s.stmts {
		st.Close()
	}
}

// stmt returns the prepared statement of query for q, or nil when there
// is none: the statement itself on the pool, its copy for a transaction.
func (s *Store) stmt(ctx context.Context, q querier, query string) *sql.Stmt {
	st := s.stmts[query]
	if tx, ok := q.(*sql.Tx); ok && st != nil {
		return tx.StmtContext(ctx, st) // closed with the transaction
	}
	return st
}

// queryRow runs query on q, prepared if it was.
func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	if st := s.stmt(ctx, q, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, query, args...)
}

// exec runs query on q, prepared if it was.
func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	if st := s.stmt(ctx, q, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, query, args...)
}

// bind rewrites a statement template for the dialect. Its caller arguments
// are $1...$k; {now} and {until} are the current time and the end of a
// lease from now. On SQLite they are the arguments k+1 and k+2 (the store
// passes them), and "$n" becomes "?n"; on PostgreSQL {now} is now() and
// {until} adds argument k+1, the lease in microseconds, to it.
func (s *Store) bind(tmpl string) string {
	k := 0
	for i := 1; strings.Contains(tmpl, "$"+strconv.Itoa(i)); i++ {
		k = i
	}
	var q string
	switch s.dialect {
	case SQLite:
		q = strings.ReplaceAll(tmpl, "$", "?")
		q = strings.ReplaceAll(q, "{now}", "?"+strconv.Itoa(k+1))
		q = strings.ReplaceAll(q, "{until}", "?"+strconv.Itoa(k+2))
	default:
		q = strings.ReplaceAll(tmpl, "{now}", "now()")
		q = strings.ReplaceAll(q, "{until}", "(now() + $"+strconv.Itoa(k+1)+" * interval '1 microsecond')")
	}
	return q
}

// args appends the dialect's time arguments for a lease of d to args.
func (s *Store) args(d time.Duration, args ...any) []any {
	if s.dialect == SQLite {
		now := time.Now()
		return append(args, now.UnixNano(), now.Add(d).UnixNano())
	}
	return append(args, d.Microseconds())
}

func (s *Store) migrate(ctx context.Context) error {
	var stmts []string
	idx := s.table + "_claim"
	switch s.dialect {
	case SQLite:
		stmts = []string{`CREATE TABLE IF NOT EXISTS ` + s.table + ` (
	id           TEXT    PRIMARY KEY,
	definition   TEXT    NOT NULL,
	status       TEXT    NOT NULL,
	input        BLOB    NOT NULL,
	data         BLOB    NOT NULL,
	steps        TEXT    NOT NULL, -- JSON array of saga.StepState
	error        TEXT    NOT NULL,
	trace_parent TEXT    NOT NULL,
	trace_state  TEXT    NOT NULL,
	owner        TEXT    NOT NULL,
	lease_until  INTEGER NOT NULL, -- Unix nanoseconds
	version      INTEGER NOT NULL,
	created_at   INTEGER NOT NULL, -- Unix nanoseconds
	updated_at   INTEGER NOT NULL  -- Unix nanoseconds
)`, `CREATE INDEX IF NOT EXISTS ` + idx + ` ON ` + s.table + ` (lease_until) WHERE status NOT IN ` + final}
	case Postgres:
		stmts = []string{`SELECT pg_advisory_xact_lock(hashtext('cairn.saga:' || current_schema() || '.' || '` + s.table + `'))`,
			`CREATE TABLE IF NOT EXISTS ` + s.table + ` (
	id           text        PRIMARY KEY,
	definition   text        NOT NULL,
	status       text        NOT NULL,
	input        bytea       NOT NULL,
	data         bytea       NOT NULL,
	steps        text        NOT NULL, -- JSON array of saga.StepState
	error        text        NOT NULL,
	trace_parent text        NOT NULL,
	trace_state  text        NOT NULL,
	owner        text        NOT NULL,
	lease_until  timestamptz NOT NULL,
	version      bigint      NOT NULL,
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL
)`, `CREATE INDEX IF NOT EXISTS ` + idx + ` ON ` + s.table + ` (lease_until) WHERE status NOT IN ` + final}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("saga: create table %s: %w", s.table, err)
	}
	defer tx.Rollback()
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("saga: create table %s: %w", s.table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("saga: create table %s: %w", s.table, err)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// timestamp scans an INTEGER of Unix nanoseconds or a timestamptz.
type timestamp struct{ t *time.Time }

func (ts timestamp) Scan(v any) error {
	switch v := v.(type) {
	case int64:
		*ts.t = time.Unix(0, v).UTC()
	case time.Time:
		*ts.t = v.UTC()
	default:
		return fmt.Errorf("saga: timestamp of type %T", v)
	}
	return nil
}

func scan(r scanner) (saga.Instance, error) {
	var inst saga.Instance
	var status, steps string
	var input, data []byte // copied by Scan, unlike a json.RawMessage
	err := r.Scan(&inst.ID, &inst.Definition, &status, &input, &data, &steps, &inst.Error,
		&inst.TraceParent, &inst.TraceState, &inst.Owner, timestamp{&inst.LeaseExpires}, &inst.Version,
		timestamp{&inst.CreatedAt}, timestamp{&inst.UpdatedAt})
	if err != nil {
		return saga.Instance{}, err
	}
	inst.Status, inst.Input, inst.Data = saga.Status(status), input, data
	if err := json.Unmarshal([]byte(steps), &inst.Steps); err != nil {
		return saga.Instance{}, fmt.Errorf("saga: instance %q: decode steps: %w", inst.ID, err)
	}
	return inst, nil
}

// nonNil returns b, or an empty slice for nil: the columns are NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs f, the writes of one method that reads before it writes
// (Create, Claim). On SQLite it runs them in a transaction, which takes
// the write lock first when the DSN has _txlock=immediate, so that a
// writer waits for another (busy_timeout) instead of failing to upgrade
// its read lock. On PostgreSQL every statement is atomic on its own: f
// runs on the pool, saving the round trips of BEGIN and COMMIT.
//
// Update and Renew are one UPDATE statement each, which runs on the pool
// on SQLite too: a statement that writes asks for the write lock before
// it reads anything, and SQLite waits for it with the busy handler when
// no transaction is open (autocommit), so it cannot fail to upgrade a
// read lock; it commits, atomically, when it ends.
func (s *Store) write(ctx context.Context, f func(q querier) error) error {
	if s.dialect != SQLite {
		return f(s.db)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Create implements [saga.Store].
func (s *Store) Create(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, bool, error) {
	steps, err := json.Marshal(inst.Steps)
	if err != nil {
		return saga.Instance{}, false, fmt.Errorf("saga: create %q: encode steps: %w", inst.ID, err)
	}
	var out saga.Instance
	created := true
	err = s.write(ctx, func(tx querier) error {
		// The stored instance is inst with the columns the store sets:
		// copy what the caller may change.
		out = inst
		out.Steps, out.Input, out.Data = slices.Clone(inst.Steps), slices.Clone(nonNil(inst.Input)), slices.Clone(nonNil(inst.Data))
		err := s.queryRow(ctx, tx, s.q.create, s.args(lease, inst.ID, inst.Definition, string(inst.Status),
			nonNil(inst.Input), nonNil(inst.Data), string(steps), inst.Error, inst.TraceParent, inst.TraceState, inst.Owner)...).Scan(
			timestamp{&out.LeaseExpires}, &out.Version, timestamp{&out.CreatedAt}, timestamp{&out.UpdatedAt})
		if errors.Is(err, sql.ErrNoRows) {
			created = false
			out, err = scan(s.queryRow(ctx, tx, s.q.get, inst.ID))
		}
		return err
	})
	if err != nil {
		return saga.Instance{}, false, fmt.Errorf("saga: create %q: %w", inst.ID, err)
	}
	return out, created, nil
}

// Get implements [saga.Store].
func (s *Store) Get(ctx context.Context, id string) (saga.Instance, error) {
	inst, err := scan(s.queryRow(ctx, s.db, s.q.get, id))
	if errors.Is(err, sql.ErrNoRows) {
		return saga.Instance{}, fmt.Errorf("%w: %q", saga.ErrNotFound, id)
	}
	if err != nil {
		return saga.Instance{}, fmt.Errorf("saga: get %q: %w", id, err)
	}
	return inst, nil
}

// Update implements [saga.Store].
func (s *Store) Update(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, error) {
	steps, err := json.Marshal(inst.Steps)
	if err != nil {
		return saga.Instance{}, fmt.Errorf("saga: update %q: encode steps: %w", inst.ID, err)
	}
	// The stored instance is inst with the columns the statement returns:
	// copy what the caller may change.
	out := inst
	out.Steps, out.Data = slices.Clone(inst.Steps), slices.Clone(nonNil(inst.Data))
	var input []byte
	err = s.queryRow(ctx, s.db, s.q.update, s.args(lease, string(inst.Status), nonNil(inst.Data), string(steps),
		inst.Error, inst.ID, inst.Version, inst.Owner)...).Scan(&out.Definition, &input, &out.TraceParent, &out.TraceState,
		timestamp{&out.LeaseExpires}, &out.Version, timestamp{&out.CreatedAt}, timestamp{&out.UpdatedAt})
	out.Input = input
	if errors.Is(err, sql.ErrNoRows) {
		return saga.Instance{}, fmt.Errorf("%w: update %q at version %d by %s", saga.ErrLeaseLost, inst.ID, inst.Version, inst.Owner)
	}
	if err != nil {
		return saga.Instance{}, fmt.Errorf("saga: update %q: %w", inst.ID, err)
	}
	return out, nil
}

// Renew implements [saga.Store].
func (s *Store) Renew(ctx context.Context, id, owner string, lease time.Duration) error {
	res, err := s.exec(ctx, s.db, s.q.renew, s.args(lease, id, owner)...)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return fmt.Errorf("saga: renew %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: renew %q by %s", saga.ErrLeaseLost, id, owner)
	}
	return nil
}

// Claim implements [saga.Store].
func (s *Store) Claim(ctx context.Context, owner string, definitions []string, lease time.Duration, limit int) ([]saga.Instance, error) {
	if len(definitions) == 0 || limit <= 0 {
		return nil, nil
	}
	defs, err := json.Marshal(definitions)
	if err != nil {
		return nil, err
	}
	var out []saga.Instance
	err = s.write(ctx, func(tx querier) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, s.q.claim, s.args(lease, owner, string(defs), limit)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			inst, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, inst)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("saga: claim for %s: %w", owner, err)
	}
	return out, nil
}
