// Package sqlstore is the payment service's app.Store on database/sql, for
// SQLite (modernc.org/sqlite) and PostgreSQL (pgx's database/sql driver)
// with one code path: a table payment_payments and the saga barrier's
// table in the same database, so that a barrier row and the payment write
// it guards commit in one transaction.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/payment/app"
	"github.com/cairnhq/cairn/internal/shop/payment/domain"
	"github.com/cairnhq/cairn/saga/barrier"
)

// Table is the table of the payments.
const Table = "payment_payments"

const schema = `CREATE TABLE IF NOT EXISTS ` + Table + ` (
	payment_id     TEXT PRIMARY KEY,
	saga_id        TEXT NOT NULL,
	branch_id      TEXT NOT NULL,
	order_id       TEXT NOT NULL,
	amount_minor   BIGINT NOT NULL,
	currency       TEXT NOT NULL,
	payment_method TEXT NOT NULL,
	status         TEXT NOT NULL,
	decline_reason TEXT NOT NULL DEFAULT '',
	charge_id      TEXT NOT NULL DEFAULT '',
	refund_id      TEXT NOT NULL DEFAULT '',
	compensated    INTEGER NOT NULL DEFAULT 0,
	refund_reason  TEXT NOT NULL DEFAULT '',
	created_at     BIGINT NOT NULL,
	updated_at     BIGINT NOT NULL
)`

// index serves the reconciliation's scan of Canceled payments by age.
const index = `CREATE INDEX IF NOT EXISTS ` + Table + `_status_updated ON ` + Table + ` (status, updated_at, payment_id)`

const columns = `payment_id, saga_id, branch_id, order_id, amount_minor, currency, payment_method, status,
	decline_reason, charge_id, refund_id, compensated, refund_reason, created_at, updated_at`

// Store keeps payments in a SQL database. It is safe for concurrent use.
// Timestamps are stored as Unix nanoseconds.
type Store struct {
	db *sql.DB
	d  cqrs.Dialect
	b  *barrier.Barrier
}

var _ app.Store = (*Store)(nil)

// New returns the store of db, creating its table and the barrier's if
// they are missing. d is db's dialect; mp receives the barrier's metric
// (nil: the OpenTelemetry global MeterProvider). On SQLite, open db with
// _txlock=immediate and a busy_timeout (or one connection), as the
// barrier requires.
func New(ctx context.Context, db *sql.DB, d cqrs.Dialect, mp metric.MeterProvider) (*Store, error) {
	if db == nil {
		return nil, errors.New("payment: sqlstore: nil *sql.DB")
	}
	if d != cqrs.SQLite && d != cqrs.Postgres {
		return nil, fmt.Errorf("payment: sqlstore: unknown dialect %v", d)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return nil, fmt.Errorf("payment: sqlstore: create table: %w", err)
	}
	if _, err := db.ExecContext(ctx, index); err != nil {
		return nil, fmt.Errorf("payment: sqlstore: create index: %w", err)
	}
	var opts []barrier.Option
	if mp != nil {
		opts = append(opts, barrier.WithMeterProvider(mp))
	}
	b, err := barrier.New(ctx, db, d, opts...)
	if err != nil {
		return nil, fmt.Errorf("payment: sqlstore: %w", err)
	}
	return &Store{db: db, d: d, b: b}, nil
}

func branch(k domain.Key, op barrier.Op) barrier.Branch {
	return barrier.Branch{SagaID: k.SagaID, BranchID: k.BranchID, Op: op}
}

// outcome converts the barrier's outcome. A refused action's error matches
// domain.ErrAborted, and still barrier.ErrHanging.
func outcome(out barrier.Outcome, err error) (app.Outcome, error) {
	switch {
	case errors.Is(err, barrier.ErrHanging):
		return 0, fmt.Errorf("%w: %w", domain.ErrAborted, err)
	case err != nil:
		return 0, err
	case out == barrier.Duplicate:
		return app.Duplicate, nil
	case out == barrier.NullCompensation:
		return app.NullCompensation, nil
	}
	return app.Executed, nil
}

// BeginCharge inserts p under the barrier of its branch's action.
func (s *Store) BeginCharge(ctx context.Context, p domain.Payment) (app.Outcome, error) {
	q := s.d.Rebind(`INSERT INTO ` + Table + ` (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	return outcome(s.b.Do(ctx, branch(p.Key, barrier.Action), func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, q, p.ID, p.Key.SagaID, p.Key.BranchID, p.OrderID, p.AmountMinor, p.Currency,
			p.PaymentMethod, string(p.Status), p.DeclineReason, p.ChargeID, p.RefundID, boolInt(p.Compensated),
			p.RefundReason, p.Created.UnixNano(), p.Updated.UnixNano())
		if err != nil {
			return fmt.Errorf("insert payment %s: %w", p.ID, err)
		}
		return nil
	}))
}

// BeginRefund marks the payment of k compensated under the barrier of its
// branch's compensation.
func (s *Store) BeginRefund(ctx context.Context, k domain.Key, reason string) (app.Outcome, error) {
	q := s.d.Rebind(`UPDATE ` + Table + ` SET compensated = 1, refund_reason = ? WHERE payment_id = ?`)
	return outcome(s.b.Do(ctx, branch(k, barrier.Compensate), func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, q, reason, k.PaymentID()); err != nil {
			return fmt.Errorf("mark payment %s compensated: %w", k.PaymentID(), err)
		}
		return nil
	}))
}

// Get returns the payment id.
func (s *Store) Get(ctx context.Context, id string) (domain.Payment, error) {
	row := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT `+columns+` FROM `+Table+` WHERE payment_id = ?`), id)
	p, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Payment{}, fmt.Errorf("payment %s: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Payment{}, fmt.Errorf("read payment %s: %w", id, err)
	}
	return p, nil
}

// Canceled returns a page of the Canceled payments updated in [from, to).
func (s *Store) Canceled(ctx context.Context, from, to time.Time, after domain.Payment, limit int) ([]domain.Payment, error) {
	// (updated_at, payment_id) > (afterAt, afterID); with afterID "" and
	// afterAt = from, every row updated at or after from.
	afterAt, afterID := from.UnixNano(), ""
	if after.ID != "" {
		afterAt, afterID = after.Updated.UnixNano(), after.ID
	}
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT `+columns+` FROM `+Table+`
WHERE status = ? AND updated_at >= ? AND updated_at < ? AND (updated_at > ? OR (updated_at = ? AND payment_id > ?))
ORDER BY updated_at, payment_id LIMIT ?`),
		string(domain.Canceled), from.UnixNano(), to.UnixNano(), afterAt, afterAt, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list canceled payments: %w", err)
	}
	defer rows.Close()
	var out []domain.Payment
	for rows.Next() {
		p, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list canceled payments: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list canceled payments: %w", err)
	}
	return out, nil
}

// scan reads a payment of columns from row.
func scan(row interface{ Scan(...any) error }) (domain.Payment, error) {
	var (
		p                domain.Payment
		status           string
		comp             int64
		created, updated int64
	)
	err := row.Scan(&p.ID, &p.Key.SagaID, &p.Key.BranchID, &p.OrderID, &p.AmountMinor, &p.Currency, &p.PaymentMethod,
		&status, &p.DeclineReason, &p.ChargeID, &p.RefundID, &comp, &p.RefundReason, &created, &updated)
	if err != nil {
		return domain.Payment{}, err
	}
	p.Status, p.Compensated = domain.Status(status), comp != 0
	p.Created, p.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return p, nil
}

// Update writes p's status fields if its stored status is one of from.
func (s *Store) Update(ctx context.Context, p domain.Payment, from ...domain.Status) (bool, error) {
	if len(from) == 0 {
		return false, errors.New("payment: sqlstore: Update without a from status")
	}
	args := []any{string(p.Status), p.DeclineReason, p.ChargeID, p.RefundID, p.Updated.UnixNano(), p.ID}
	for _, f := range from {
		args = append(args, string(f))
	}
	q := s.d.Rebind(`UPDATE ` + Table + ` SET status = ?, decline_reason = ?, charge_id = ?, refund_id = ?, updated_at = ?
WHERE payment_id = ? AND status IN (?` + strings.Repeat(", ?", len(from)-1) + `)`)
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("update payment %s: %w", p.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("update payment %s: %w", p.ID, err)
	}
	return n == 1, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
