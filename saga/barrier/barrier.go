package barrier

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/saga"
)

// Table is the default name of the barrier's table.
const Table = "cairn_saga_barrier"

// OutcomesMetric counts the calls of [Barrier.Call] ({call}), with the
// attributes outcome ([Outcome.String]) and op ([Op.String]).
const OutcomesMetric = "cairn.saga.barrier.outcomes"

// Op is the operation of a branch: its action or its compensation.
type Op int

// The operations of a branch.
const (
	// Action is a step's forward operation.
	Action Op = iota + 1
	// Compensate undoes the step's action.
	Compensate
)

// String returns "action" or "compensate", as stored in the table.
func (o Op) String() string {
	switch o {
	case Action:
		return "action"
	case Compensate:
		return "compensate"
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// Outcome is what [Barrier.Call] did with an operation.
type Outcome int

// The outcomes of a call.
const (
	// Executed means the operation was new: fn ran and returned nil.
	Executed Outcome = iota + 1
	// Duplicate means the operation had been recorded by a committed
	// transaction before: fn did not run.
	Duplicate
	// NullCompensation means a compensation arrived before its action:
	// fn did not run, and the action will be refused when it arrives.
	NullCompensation
	// Refused means an action arrived after its compensation: fn did not
	// run and the error is a [*HangingError].
	Refused
	// Failed means fn or the barrier's own statements returned an error,
	// which the call returns: the caller must roll back.
	Failed
)

// String returns the outcome's name in the metric: "executed",
// "duplicate", "null_compensation", "refused" or "failed".
func (o Outcome) String() string {
	switch o {
	case Executed:
		return "executed"
	case Duplicate:
		return "duplicate"
	case NullCompensation:
		return "null_compensation"
	case Refused:
		return "refused"
	case Failed:
		return "failed"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Branch names one operation of one step of a saga. SagaID, BranchID and
// Op are required.
type Branch struct {
	// SagaID is the saga's (DTM's global transaction's) ID.
	SagaID string
	// BranchID is the step's ID, the same for its action and its
	// compensation.
	BranchID string
	// Op is the operation: Action or Compensate.
	Op Op
	// BarrierID tells apart several barriers of one operation, when a
	// branch writes in more than one local transaction (DTM numbers them
	// "01", "02"...); the compensation of each uses the same BarrierID.
	// Empty, the usual case, is one barrier per operation.
	BarrierID string
}

// String returns "saga/branch/op", with "/barrier" when BarrierID is set.
func (b Branch) String() string {
	s := b.SagaID + "/" + b.BranchID + "/" + b.Op.String()
	if b.BarrierID != "" {
		s += "/" + b.BarrierID
	}
	return s
}

// validate returns an error naming the first missing or invalid field.
func (b Branch) validate() error {
	switch {
	case b.SagaID == "":
		return fmt.Errorf("barrier: branch %q: empty SagaID", b.BranchID)
	case b.BranchID == "":
		return fmt.Errorf("barrier: branch of saga %q: empty BranchID", b.SagaID)
	case b.Op != Action && b.Op != Compensate:
		return fmt.Errorf("barrier: branch %s: Op is %v, want barrier.Action or barrier.Compensate", b, b.Op)
	}
	return nil
}

// ErrHanging matches, with errors.Is, the error of an action refused
// because its compensation ran first.
var ErrHanging = errors.New("barrier: action refused: its compensation ran first")

// HangingError is the error of an action that arrived after its
// compensation (a null compensation) and was refused, so that it does not
// leave an effect nothing will undo. It is permanent: the orchestrator
// must not retry the action.
type HangingError struct {
	// Branch is the refused action.
	Branch Branch
}

// Error names the refused branch.
func (e *HangingError) Error() string {
	return "barrier: action " + e.Branch.String() + " refused: its compensation ran first (anti-hanging)"
}

// Is reports whether target is [ErrHanging] or [saga.ErrPermanent]: a
// saga's orchestrator neither retries a refused action nor counts on it.
func (e *HangingError) Is(target error) bool {
	return target == ErrHanging || target == saga.ErrPermanent
}

// Option configures a [Barrier]. There is no tracer provider to set: a
// call adds its event to the span in its context, whichever made it.
type Option func(*config)

type config struct {
	table string
	mp    metric.MeterProvider
}

// WithTable sets the barrier's table: an identifier, optionally qualified
// by a schema ("sales.saga_barrier"). The default is [Table].
func WithTable(name string) Option { return func(c *config) { c.table = name } }

// WithMeterProvider sets the provider of the [OutcomesMetric] counter. The
// default is otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// tableName is what WithTable accepts.
var tableName = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*$`)

// Barrier records the operations of saga branches in a table of the
// participant's database. It is safe for concurrent use.
type Barrier struct {
	db                    *sql.DB
	d                     cqrs.Dialect
	table                 string
	insert, reason, prune string
	outcomes              metric.Int64Counter
	// sets are the counter's attributes, by Outcome and Op.
	sets [Failed + 1][Compensate + 1]metric.AddOption
}

// New returns the barrier of db, creating its table if it is missing. d
// is the database's dialect: cqrs.SQLite (modernc.org/sqlite) or
// cqrs.Postgres (pgx's database/sql driver).
func New(ctx context.Context, db *sql.DB, d cqrs.Dialect, opts ...Option) (*Barrier, error) {
	cfg := config{table: Table}
	for _, o := range opts {
		o(&cfg)
	}
	if !tableName.MatchString(cfg.table) {
		return nil, fmt.Errorf("barrier: table name %q is not an identifier", cfg.table)
	}
	if db == nil {
		return nil, errors.New("barrier: nil *sql.DB")
	}
	b := &Barrier{db: db, d: d, table: cfg.table}
	var create string
	switch d {
	case cqrs.SQLite:
		create = `CREATE TABLE IF NOT EXISTS ` + b.table + ` (
	saga_id    TEXT    NOT NULL,
	branch_id  TEXT    NOT NULL,
	op         TEXT    NOT NULL,
	barrier_id TEXT    NOT NULL,
	reason     TEXT    NOT NULL, -- the operation that inserted the row
	created_at INTEGER NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (saga_id, branch_id, op, barrier_id)
) WITHOUT ROWID`
	case cqrs.Postgres:
		create = `CREATE TABLE IF NOT EXISTS ` + b.table + ` (
	saga_id    text   NOT NULL,
	branch_id  text   NOT NULL,
	op         text   NOT NULL,
	barrier_id text   NOT NULL,
	reason     text   NOT NULL, -- the operation that inserted the row
	created_at bigint NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (saga_id, branch_id, op, barrier_id)
)`
	default:
		return nil, fmt.Errorf("barrier: unknown %v (want cqrs.SQLite or cqrs.Postgres)", d)
	}
	b.insert = d.Rebind(`INSERT INTO ` + b.table + ` (saga_id, branch_id, op, barrier_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	b.reason = d.Rebind(`SELECT reason FROM ` + b.table + ` WHERE saga_id = ? AND branch_id = ? AND op = ? AND barrier_id = ?`)
	b.prune = d.Rebind(`DELETE FROM ` + b.table + ` WHERE created_at < ?`)
	if err := b.createTable(ctx, create); err != nil {
		return nil, fmt.Errorf("barrier: create table %s: %w", b.table, err)
	}

	mp := cfg.mp
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	var err error
	b.outcomes, err = mp.Meter("github.com/cairnhq/cairn/saga/barrier").Int64Counter(OutcomesMetric,
		metric.WithUnit("{call}"), metric.WithDescription("Calls of the saga barrier, by outcome and operation."))
	if err != nil {
		return nil, fmt.Errorf("barrier: counter %s: %w", OutcomesMetric, err)
	}
	for out := Executed; out <= Failed; out++ {
		for op := Action; op <= Compensate; op++ {
			b.sets[out][op] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("outcome", out.String()), attribute.String("op", op.String())))
		}
	}
	return b, nil
}

// createTable runs create, the table's CREATE TABLE IF NOT EXISTS. On
// PostgreSQL, an advisory lock serialises concurrent creations, since
// CREATE TABLE IF NOT EXISTS can fail when two run at once.
func (b *Barrier) createTable(ctx context.Context, create string) (err error) {
	if b.d != cqrs.Postgres {
		_, err := b.db.ExecContext(ctx, create)
		return err
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "cairn.saga.barrier:"+b.table); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return err
	}
	return tx.Commit()
}

// Call runs the operation br with fn in tx, the participant's local
// transaction, at most once: it records br in the barrier's table and
// calls fn(ctx, tx) only if br is new and is not a compensation arriving
// before its action (see the package's table of cases).
//
// With a nil error (Executed, Duplicate or NullCompensation) the caller
// commits tx: the barrier's rows and fn's writes commit together, and a
// null compensation's row is what refuses the late action. With an
// error, the caller rolls back tx: for Refused the error is a
// [*HangingError] (errors.Is(err, ErrHanging), and saga.ErrPermanent), which must not be retried;
// for Failed it is fn's error, returned as is, or the barrier's own, and
// the rollback removes the barrier's rows with fn's writes, so that a
// retry runs fn again.
//
// Call adds an event to the span in ctx and counts the outcome in
// [OutcomesMetric] (except for a Branch with an invalid Op). It is safe
// for concurrent use, with distinct transactions.
func (b *Barrier) Call(ctx context.Context, tx *sql.Tx, br Branch, fn func(ctx context.Context, tx *sql.Tx) error) (Outcome, error) {
	out, err := b.call(ctx, tx, br, fn)
	if br.Op == Action || br.Op == Compensate {
		b.outcomes.Add(ctx, 1, b.sets[out][br.Op])
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("cairn.saga.barrier", trace.WithAttributes(
			attribute.String("cairn.saga.id", br.SagaID),
			attribute.String("cairn.saga.branch_id", br.BranchID),
			attribute.String("op", br.Op.String()),
			attribute.String("outcome", out.String())))
	}
	return out, err
}

// call is Call without the telemetry: it validates the call, claims the
// rows and runs fn when the operation is new.
func (b *Barrier) call(ctx context.Context, tx *sql.Tx, br Branch, fn func(ctx context.Context, tx *sql.Tx) error) (Outcome, error) {
	if err := br.validate(); err != nil {
		return Failed, err
	}
	if tx == nil || fn == nil {
		return Failed, fmt.Errorf("barrier: %s: nil transaction or function", br)
	}
	now := time.Now().UnixNano()
	// A compensation first claims its action's row: if it is new, the
	// action never ran and never will.
	null := false
	if br.Op == Compensate {
		n, err := b.claim(ctx, tx, br, Action, now)
		if err != nil {
			return Failed, err
		}
		null = n
	}
	first, err := b.claim(ctx, tx, br, br.Op, now)
	switch {
	case err != nil:
		return Failed, err
	case !first && br.Op == Compensate:
		return Duplicate, nil
	case !first:
		// The action's row is there: inserted by an earlier copy of the
		// action (a duplicate) or by its compensation (hanging).
		var reason string
		if err := tx.QueryRowContext(ctx, b.reason, br.SagaID, br.BranchID, Action.String(), br.BarrierID).Scan(&reason); err != nil {
			return Failed, fmt.Errorf("barrier: %s: read the row's reason: %w", br, err)
		}
		if reason == Compensate.String() {
			return Refused, &HangingError{Branch: br}
		}
		return Duplicate, nil
	case null:
		return NullCompensation, nil
	}
	if err := fn(ctx, tx); err != nil {
		return Failed, err
	}
	return Executed, nil
}

// claim inserts the row of br's operation op (on behalf of br.Op) unless
// it is there, and reports whether it inserted it.
func (b *Barrier) claim(ctx context.Context, tx *sql.Tx, br Branch, op Op, now int64) (bool, error) {
	res, err := tx.ExecContext(ctx, b.insert, br.SagaID, br.BranchID, op.String(), br.BarrierID, br.Op.String(), now)
	if err != nil {
		return false, fmt.Errorf("barrier: %s: insert the %v row: %w", br, op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("barrier: %s: insert the %v row: %w", br, op, err)
	}
	return n == 1, nil
}

// Do runs br with fn in a new transaction of the barrier's database: it
// begins it, calls [Barrier.Call], and commits when Call returns a nil
// error, else rolls back (also if fn panics). Its results are Call's,
// except that a failed begin or commit returns Failed and the error.
func (b *Barrier) Do(ctx context.Context, br Branch, fn func(ctx context.Context, tx *sql.Tx) error) (out Outcome, err error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return Failed, fmt.Errorf("barrier: %s: begin: %w", br, err)
	}
	defer func() {
		if rerr := ignoreDone(tx.Rollback()); rerr != nil && err != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if out, err = b.Call(ctx, tx, br, fn); err != nil {
		return out, err
	}
	if err := tx.Commit(); err != nil {
		return Failed, fmt.Errorf("barrier: %s: commit: %w", br, err)
	}
	return out, nil
}

// Prune deletes the rows written before t, and returns how many. Keep
// rows for longer than any saga can still send an operation (its
// retries and timeouts): once a branch's rows are gone, a late duplicate
// runs again and a late action is no longer refused. Prune scans the
// table; run it rarely, off peak.
func (b *Barrier) Prune(ctx context.Context, t time.Time) (int64, error) {
	res, err := b.db.ExecContext(ctx, b.prune, t.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("barrier: prune %s: %w", b.table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("barrier: prune %s: %w", b.table, err)
	}
	return n, nil
}

// ignoreDone returns nil for sql.ErrTxDone, the error of a rollback after
// a commit or a rollback.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
