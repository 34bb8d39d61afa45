// Package sqlstore is the inventory service's [app.Store] on database/sql,
// for SQLite (modernc.org/sqlite) and PostgreSQL (pgx's database/sql
// driver), with one code path whose placeholders are rebound for the
// dialect. Its tables are inventory_stock, inventory_reservations and
// inventory_reservation_lines, created if missing, next to the saga
// barrier's table (package saga/barrier), whose row commits in the same
// transaction as the business writes.
//
// # Concurrency
//
// Every transaction takes its locks in one order: a branch's barrier row,
// then a reservation's row, then stock rows in ascending sku order. On
// PostgreSQL (READ COMMITTED) stock and reservation rows are read with
// SELECT ... FOR UPDATE, so two Reserves of the same sku are serialised
// and never oversell; on SQLite every transaction writes first (a barrier
// row or a conditional UPDATE) and so holds the database's write lock
// before it reads. Open SQLite with a busy_timeout (and WAL) as for any
// concurrent writers; _txlock=immediate does no harm.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/inventory/app"
	"github.com/cairnhq/cairn/internal/shop/inventory/domain"
	"github.com/cairnhq/cairn/saga/barrier"
)

// The tables of the store.
const (
	// StockTable holds a row per sku: on_hand, reserved.
	StockTable = "inventory_stock"
	// ReservationsTable holds a row per reservation.
	ReservationsTable = "inventory_reservations"
	// LinesTable holds the lines of the reservations.
	LinesTable = "inventory_reservation_lines"
	// BarrierTable is the saga barrier's table in the store's database.
	BarrierTable = "inventory_saga_barrier"
)

// Store is the inventory's [app.Store] on a *sql.DB. It is safe for
// concurrent use. It does not own the database: the caller closes it.
type Store struct {
	db      *sql.DB
	d       cqrs.Dialect
	barrier *barrier.Barrier
	// forUpdate is " FOR UPDATE" on PostgreSQL, empty on SQLite.
	forUpdate string
}

var _ app.Store = (*Store)(nil)

// New returns the store on db, whose dialect is d (cqrs.SQLite or
// cqrs.Postgres), after creating its tables and the barrier's if they are
// missing. mp provides the barrier's outcome counter (nil: the
// OpenTelemetry global MeterProvider).
func New(ctx context.Context, db *sql.DB, d cqrs.Dialect, mp metric.MeterProvider) (*Store, error) {
	if db == nil {
		return nil, errors.New("inventory: sqlstore: nil *sql.DB")
	}
	s := &Store{db: db, d: d}
	switch d {
	case cqrs.SQLite:
	case cqrs.Postgres:
		s.forUpdate = " FOR UPDATE"
	default:
		return nil, fmt.Errorf("inventory: sqlstore: unknown %v (want cqrs.SQLite or cqrs.Postgres)", d)
	}
	if err := s.createTables(ctx); err != nil {
		return nil, fmt.Errorf("inventory: sqlstore: create tables: %w", err)
	}
	opts := []barrier.Option{barrier.WithTable(BarrierTable)}
	if mp != nil {
		opts = append(opts, barrier.WithMeterProvider(mp))
	}
	b, err := barrier.New(ctx, db, d, opts...)
	if err != nil {
		return nil, fmt.Errorf("inventory: sqlstore: %w", err)
	}
	s.barrier = b
	return s, nil
}

// schema creates the tables. Times are Unix nanoseconds. The CHECK keeps
// the stock invariant 0 <= reserved <= on_hand in the database too.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS ` + StockTable + ` (
	sku        TEXT   NOT NULL PRIMARY KEY,
	on_hand    BIGINT NOT NULL,
	reserved   BIGINT NOT NULL DEFAULT 0,
	updated_at BIGINT NOT NULL,
	CHECK (reserved >= 0 AND reserved <= on_hand)
)`,
	`CREATE TABLE IF NOT EXISTS ` + ReservationsTable + ` (
	id          TEXT   NOT NULL PRIMARY KEY,
	saga_id     TEXT   NOT NULL,
	branch_id   TEXT   NOT NULL,
	order_id    TEXT   NOT NULL,
	state       TEXT   NOT NULL,
	expire_time BIGINT NOT NULL,
	create_time BIGINT NOT NULL,
	update_time BIGINT NOT NULL,
	UNIQUE (saga_id, branch_id)
)`,
	`CREATE INDEX IF NOT EXISTS ` + ReservationsTable + `_state_expire ON ` + ReservationsTable + ` (state, expire_time)`,
	`CREATE TABLE IF NOT EXISTS ` + LinesTable + ` (
	reservation_id TEXT   NOT NULL,
	line_no        BIGINT NOT NULL,
	sku            TEXT   NOT NULL,
	quantity       BIGINT NOT NULL,
	PRIMARY KEY (reservation_id, line_no)
)`,
	`CREATE INDEX IF NOT EXISTS ` + LinesTable + `_sku ON ` + LinesTable + ` (sku)`,
}

// createTables runs schema in one transaction; on PostgreSQL an advisory
// lock serialises concurrent creations, since CREATE TABLE IF NOT EXISTS
// can fail when two run at once.
func (s *Store) createTables(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d == cqrs.Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "cairn.shop.inventory.schema"); err != nil {
				return err
			}
		}
		for _, q := range schema {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// inTx runs fn in a transaction, committing if it returns nil and rolling
// back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				err = errors.Join(err, rerr)
			}
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// q rebinds query for the store's dialect.
func (s *Store) q(query string) string { return s.d.Rebind(query) }

// branch returns the barrier branch of k's op.
func branch(k domain.Key, op barrier.Op) barrier.Branch {
	return barrier.Branch{SagaID: k.SagaID, BranchID: k.BranchID, Op: op}
}

// call runs fn as the operation br in tx through the barrier, turning a
// refusal into an error matching domain.ErrCompensated.
func (s *Store) call(ctx context.Context, tx *sql.Tx, br barrier.Branch, fn func(ctx context.Context, tx *sql.Tx) error) (barrier.Outcome, error) {
	out, err := s.barrier.Call(ctx, tx, br, fn)
	if errors.Is(err, barrier.ErrHanging) {
		return out, fmt.Errorf("%w: %w", domain.ErrCompensated, err)
	}
	return out, err
}

// Reserve implements [app.Store.Reserve].
func (s *Store) Reserve(ctx context.Context, r domain.Reservation) (got domain.Reservation, first bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out, err := s.call(ctx, tx, branch(r.Key, barrier.Action), func(ctx context.Context, tx *sql.Tx) error {
			return s.reserve(ctx, tx, r)
		})
		switch {
		case err != nil:
			return err
		case out == barrier.Executed:
			got, first = r, true
			return nil
		}
		got, err = s.reservationByKey(ctx, tx, r.Key, "", false)
		if errors.Is(err, domain.ErrNotFound) {
			return fmt.Errorf("inventory: branch %s recorded but its reservation is missing", r.Key)
		}
		return err
	})
	return got, first, err
}

// reserve locks the lines' stock in sku order, reserves every line and
// stores r.
func (s *Store) reserve(ctx context.Context, tx *sql.Tx, r domain.Reservation) error {
	lines := slices.SortedFunc(slices.Values(r.Lines), func(a, b domain.Line) int { return cmp.Compare(a.SKU, b.SKU) })
	now := r.CreateTime.UnixNano()
	for _, l := range lines {
		st, err := s.lockStock(ctx, tx, l.SKU)
		if err != nil {
			return err
		}
		if st, err = st.Reserve(l.Quantity); err != nil {
			return err
		}
		if err := s.writeStock(ctx, tx, st, now); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+ReservationsTable+
		` (id, saga_id, branch_id, order_id, state, expire_time, create_time, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.Key.SagaID, r.Key.BranchID, r.OrderID, r.State.String(),
		r.ExpireTime.UnixNano(), now, r.UpdateTime.UnixNano()); err != nil {
		return fmt.Errorf("insert reservation %s: %w", r.ID, err)
	}
	for i, l := range r.Lines {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+LinesTable+` (reservation_id, line_no, sku, quantity) VALUES (?, ?, ?, ?)`),
			r.ID, i, l.SKU, l.Quantity); err != nil {
			return fmt.Errorf("insert line %d of reservation %s: %w", i, r.ID, err)
		}
	}
	return nil
}

// lockStock reads sku's stock, locking its row on PostgreSQL. It returns
// a *domain.NotFoundError for an unknown sku.
func (s *Store) lockStock(ctx context.Context, tx *sql.Tx, sku string) (domain.Stock, error) {
	st := domain.Stock{SKU: sku}
	err := tx.QueryRowContext(ctx, s.q(`SELECT on_hand, reserved FROM `+StockTable+` WHERE sku = ?`+s.forUpdate), sku).
		Scan(&st.OnHand, &st.Reserved)
	if errors.Is(err, sql.ErrNoRows) {
		return st, &domain.NotFoundError{Kind: "sku", ID: sku}
	}
	if err != nil {
		return st, fmt.Errorf("read stock of %s: %w", sku, err)
	}
	return st, nil
}

// writeStock stores st.
func (s *Store) writeStock(ctx context.Context, tx *sql.Tx, st domain.Stock, now int64) error {
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE `+StockTable+` SET on_hand = ?, reserved = ?, updated_at = ? WHERE sku = ?`),
		st.OnHand, st.Reserved, now, st.SKU); err != nil {
		return fmt.Errorf("write stock of %s: %w", st.SKU, err)
	}
	return nil
}

// moveStock applies op to the stock of each of r's lines, in sku order.
func (s *Store) moveStock(ctx context.Context, tx *sql.Tx, r domain.Reservation, now time.Time, op func(domain.Stock, int) domain.Stock) error {
	lines := slices.SortedFunc(slices.Values(r.Lines), func(a, b domain.Line) int { return cmp.Compare(a.SKU, b.SKU) })
	for _, l := range lines {
		st, err := s.lockStock(ctx, tx, l.SKU)
		if err != nil {
			return err
		}
		if err := s.writeStock(ctx, tx, op(st, l.Quantity), now.UnixNano()); err != nil {
			return err
		}
	}
	return nil
}

// release is the move of a released or expired reservation.
func release(st domain.Stock, q int) domain.Stock { return st.Release(q) }

// sell is the move of a confirmed reservation.
func sell(st domain.Stock, q int) domain.Stock { return st.Sell(q) }

const reservationColumns = `id, saga_id, branch_id, order_id, state, expire_time, create_time, update_time`

// reservationByKey reads the reservation of branch k (and orderID, unless
// empty) with its lines, locking it if lock is set, or returns a
// *domain.NotFoundError.
func (s *Store) reservationByKey(ctx context.Context, tx *sql.Tx, k domain.Key, orderID string, lock bool) (domain.Reservation, error) {
	q := `SELECT ` + reservationColumns + ` FROM ` + ReservationsTable + ` WHERE saga_id = ? AND branch_id = ?`
	args := []any{k.SagaID, k.BranchID}
	if orderID != "" {
		q += ` AND order_id = ?`
		args = append(args, orderID)
	}
	if lock {
		q += s.forUpdate
	}
	return s.readReservation(ctx, tx, "of branch "+k.String(), q, args...)
}

// reservationByID reads reservation id with its lines, locking it if lock
// is set, or returns a *domain.NotFoundError.
func (s *Store) reservationByID(ctx context.Context, tx *sql.Tx, id string, lock bool) (domain.Reservation, error) {
	q := `SELECT ` + reservationColumns + ` FROM ` + ReservationsTable + ` WHERE id = ?`
	if lock {
		q += s.forUpdate
	}
	return s.readReservation(ctx, tx, id, q, id)
}

// readReservation runs q, which selects reservationColumns, and reads the
// lines of the reservation it finds.
func (s *Store) readReservation(ctx context.Context, tx *sql.Tx, name, q string, args ...any) (domain.Reservation, error) {
	var (
		r                         domain.Reservation
		state                     string
		expire, created, modified int64
	)
	err := tx.QueryRowContext(ctx, s.q(q), args...).Scan(&r.ID, &r.Key.SagaID, &r.Key.BranchID, &r.OrderID, &state, &expire, &created, &modified)
	if errors.Is(err, sql.ErrNoRows) {
		return r, &domain.NotFoundError{Kind: "reservation", ID: name}
	}
	if err != nil {
		return r, fmt.Errorf("read reservation %s: %w", name, err)
	}
	if r.State, err = domain.ParseState(state); err != nil {
		return r, err
	}
	r.ExpireTime, r.CreateTime, r.UpdateTime = fromNanos(expire), fromNanos(created), fromNanos(modified)
	rows, err := tx.QueryContext(ctx, s.q(`SELECT sku, quantity FROM `+LinesTable+` WHERE reservation_id = ? ORDER BY line_no`), r.ID)
	if err != nil {
		return r, fmt.Errorf("read lines of reservation %s: %w", r.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var l domain.Line
		if err := rows.Scan(&l.SKU, &l.Quantity); err != nil {
			return r, fmt.Errorf("read lines of reservation %s: %w", r.ID, err)
		}
		r.Lines = append(r.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("read lines of reservation %s: %w", r.ID, err)
	}
	return r, nil
}

// fromNanos returns the UTC time of Unix nanoseconds n.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// writeState stores r's state and update time.
func (s *Store) writeState(ctx context.Context, tx *sql.Tx, r domain.Reservation) error {
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE `+ReservationsTable+` SET state = ?, update_time = ? WHERE id = ?`),
		r.State.String(), r.UpdateTime.UnixNano(), r.ID); err != nil {
		return fmt.Errorf("write reservation %s: %w", r.ID, err)
	}
	return nil
}

// Release implements [app.Store.Release].
func (s *Store) Release(ctx context.Context, k domain.Key, orderID string, now time.Time) (got domain.Reservation, changed bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out, err := s.call(ctx, tx, branch(k, barrier.Compensate), func(ctx context.Context, tx *sql.Tx) error {
			r, err := s.reservationByKey(ctx, tx, k, orderID, true)
			if errors.Is(err, domain.ErrNotFound) {
				return nil // the action failed or was for another order: nothing to release
			}
			if err != nil {
				return err
			}
			got = r
			r, changed, err = r.Release(now)
			if errors.Is(err, domain.ErrState) || !changed {
				return nil // confirmed, or released already: the caller judges got
			}
			if err != nil {
				return err
			}
			if err := s.writeState(ctx, tx, r); err != nil {
				return err
			}
			got = r
			return s.moveStock(ctx, tx, r, now, release)
		})
		switch {
		case err != nil:
			return err
		case out != barrier.Duplicate:
			return nil // executed (got is set) or null compensation (nothing)
		}
		got, err = s.reservationByKey(ctx, tx, k, orderID, false)
		if errors.Is(err, domain.ErrNotFound) {
			got, err = domain.Reservation{}, nil
		}
		return err
	})
	if err != nil {
		return domain.Reservation{}, false, err
	}
	return got, changed, nil
}

// Confirm implements [app.Store.Confirm].
func (s *Store) Confirm(ctx context.Context, k domain.Key, id string, now time.Time) (got domain.Reservation, changed bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out, err := s.call(ctx, tx, branch(k, barrier.Action), func(ctx context.Context, tx *sql.Tx) error {
			r, err := s.reservationByID(ctx, tx, id, true)
			if err != nil {
				return err
			}
			got = r
			r, changed, err = r.Confirm(now)
			if errors.Is(err, domain.ErrState) || !changed {
				return nil // released or expired, or confirmed already: the caller judges got
			}
			if err != nil {
				return err
			}
			if err := s.writeState(ctx, tx, r); err != nil {
				return err
			}
			got = r
			if r.State == domain.StateExpired {
				return s.moveStock(ctx, tx, r, now, release)
			}
			return s.moveStock(ctx, tx, r, now, sell)
		})
		switch {
		case err != nil:
			return err
		case out == barrier.Executed:
			return nil
		}
		got, err = s.reservationByID(ctx, tx, id, false)
		return err
	})
	if err != nil {
		return domain.Reservation{}, false, err
	}
	return got, changed, nil
}

// Overdue implements [app.Store.Overdue].
func (s *Store) Overdue(ctx context.Context, now time.Time, skus []string, limit int) ([]string, error) {
	q := `SELECT id FROM ` + ReservationsTable + ` WHERE state = ? AND expire_time <= ?`
	args := []any{domain.StateActive.String(), now.UnixNano()}
	if skus != nil {
		if len(skus) == 0 {
			return nil, nil
		}
		q += ` AND id IN (SELECT reservation_id FROM ` + LinesTable + ` WHERE sku IN (` + placeholders(len(skus)) + `))`
		for _, sku := range skus {
			args = append(args, sku)
		}
	}
	q += ` ORDER BY expire_time LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("find overdue reservations: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find overdue reservations: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find overdue reservations: %w", err)
	}
	return ids, nil
}

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// Expire implements [app.Store.Expire]. Its first statement is the
// conditional UPDATE of the reservation's state, so that of concurrent
// expirations (or a Release or Confirm) exactly one returns the stock.
func (s *Store) Expire(ctx context.Context, id string, now time.Time) (got domain.Reservation, expired bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE `+ReservationsTable+` SET state = ?, update_time = ? WHERE id = ? AND state = ? AND expire_time <= ?`),
			domain.StateExpired.String(), now.UnixNano(), id, domain.StateActive.String(), now.UnixNano())
		if err != nil {
			return fmt.Errorf("expire reservation %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("expire reservation %s: %w", id, err)
		}
		if n == 0 {
			return nil
		}
		if got, err = s.reservationByID(ctx, tx, id, false); err != nil {
			return err
		}
		expired = true
		return s.moveStock(ctx, tx, got, now, release)
	})
	if err != nil {
		return domain.Reservation{}, false, err
	}
	return got, expired, nil
}

// Stocks implements [app.Store.Stocks].
func (s *Store) Stocks(ctx context.Context, skus []string) ([]domain.Stock, error) {
	args := make([]any, len(skus))
	for i, sku := range skus {
		args[i] = sku
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT sku, on_hand, reserved FROM `+StockTable+` WHERE sku IN (`+placeholders(len(skus))+`)`), args...)
	if err != nil {
		return nil, fmt.Errorf("read stock: %w", err)
	}
	defer rows.Close()
	found := make(map[string]domain.Stock, len(skus))
	for rows.Next() {
		var st domain.Stock
		if err := rows.Scan(&st.SKU, &st.OnHand, &st.Reserved); err != nil {
			return nil, fmt.Errorf("read stock: %w", err)
		}
		found[st.SKU] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stock: %w", err)
	}
	out := make([]domain.Stock, len(skus))
	for i, sku := range skus {
		st, ok := found[sku]
		if !ok {
			return nil, &domain.NotFoundError{Kind: "sku", ID: sku}
		}
		out[i] = st
	}
	return out, nil
}

// SetStock implements [app.Store.SetStock]. It inserts the sku first (a
// write, which on SQLite takes the write lock before the read), then
// locks and updates it.
func (s *Store) SetStock(ctx context.Context, sku string, onHand int, now time.Time) (st domain.Stock, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO `+StockTable+` (sku, on_hand, reserved, updated_at) VALUES (?, ?, 0, ?) ON CONFLICT DO NOTHING`),
			sku, onHand, now.UnixNano())
		if err != nil {
			return fmt.Errorf("insert stock of %s: %w", sku, err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			st = domain.Stock{SKU: sku, OnHand: onHand}
			return nil
		}
		if st, err = s.lockStock(ctx, tx, sku); err != nil {
			return err
		}
		if st, err = st.SetOnHand(onHand); err != nil {
			return err
		}
		return s.writeStock(ctx, tx, st, now.UnixNano())
	})
	return st, err
}

// Seed implements [app.Store.Seed], in one transaction, in sku order.
func (s *Store) Seed(ctx context.Context, stock map[string]int, now time.Time) (added int, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		added = 0
		q := s.q(`INSERT INTO ` + StockTable + ` (sku, on_hand, reserved, updated_at) VALUES (?, ?, 0, ?) ON CONFLICT DO NOTHING`)
		for _, sku := range slices.Sorted(maps.Keys(stock)) {
			res, err := tx.ExecContext(ctx, q, sku, stock[sku], now.UnixNano())
			if err != nil {
				return fmt.Errorf("seed stock of %s: %w", sku, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("seed stock of %s: %w", sku, err)
			}
			added += int(n)
		}
		return nil
	})
	return added, err
}

// ReservedUnits implements [app.Store.ReservedUnits].
func (s *Store) ReservedUnits(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(reserved), 0) AS BIGINT) FROM `+StockTable).Scan(&n); err != nil {
		return 0, fmt.Errorf("sum reserved units: %w", err)
	}
	return n, nil
}
