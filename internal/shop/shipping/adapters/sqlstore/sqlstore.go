// Package sqlstore is the shipping service's [app.Store] on database/sql,
// for SQLite (modernc.org/sqlite) and PostgreSQL (pgx's database/sql
// driver) with one code path: the queries are written with ? placeholders
// and rebound for the dialect.
//
// It keeps the shipments in the table shipping_shipments (the address and
// the lines as JSON, times as Unix nanoseconds in UTC) and the saga barrier
// of their branches in shipping_barrier (package saga/barrier), in the same
// database: each ScheduleShipment or CancelShipment writes its barrier rows
// and its change of shipping_shipments in one transaction.
//
// On SQLite, open the database with _txlock=immediate and a busy_timeout
// (or a single connection), as package saga/barrier asks.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/shipping/app"
	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
	"github.com/cairnhq/cairn/saga/barrier"
)

// Table names of the store.
const (
	// ShipmentsTable holds one row per shipment.
	ShipmentsTable = "shipping_shipments"
	// BarrierTable holds the saga barrier's rows of the service's
	// branches.
	BarrierTable = "shipping_barrier"
)

// Store is an [app.Store] on a *sql.DB. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	d  cqrs.Dialect
	b  *barrier.Barrier
	q  queries
}

var _ app.Store = (*Store)(nil)

// queries are the store's statements, rebound for the dialect.
type queries struct {
	insert, byID, byBranch, byBranchForUpdate, cancel, dispatch string
}

const columns = `id, saga_id, branch_id, order_id, status, address, lines, estimated_delivery, created_at, updated_at`

// schema creates the store's table and index if they are missing. BIGINT
// and TEXT mean the same on both databases.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS ` + ShipmentsTable + ` (
	id                 TEXT PRIMARY KEY,
	saga_id            TEXT NOT NULL,
	branch_id          TEXT NOT NULL,
	order_id           TEXT NOT NULL,
	status             TEXT NOT NULL,
	address            TEXT NOT NULL,
	lines              TEXT NOT NULL,
	estimated_delivery BIGINT NOT NULL,
	created_at         BIGINT NOT NULL,
	updated_at         BIGINT NOT NULL,
	UNIQUE (saga_id, branch_id)
)`,
	`CREATE INDEX IF NOT EXISTS ` + ShipmentsTable + `_status_created ON ` + ShipmentsTable + ` (status, created_at)`,
}

// New returns the store of db, whose dialect is d (cqrs.SQLite or
// cqrs.Postgres), after creating its tables if they are missing. mp
// provides the barrier's metric (barrier.OutcomesMetric); nil selects the
// OpenTelemetry global MeterProvider. The caller closes db after the
// store's last use.
func New(ctx context.Context, db *sql.DB, d cqrs.Dialect, mp metric.MeterProvider) (*Store, error) {
	if d != cqrs.SQLite && d != cqrs.Postgres {
		return nil, fmt.Errorf("shipping: sqlstore: unsupported dialect %v", d)
	}
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("shipping: sqlstore: create schema: %w", err)
		}
	}
	opts := []barrier.Option{barrier.WithTable(BarrierTable)}
	if mp != nil {
		opts = append(opts, barrier.WithMeterProvider(mp))
	}
	b, err := barrier.New(ctx, db, d, opts...)
	if err != nil {
		return nil, fmt.Errorf("shipping: sqlstore: %w", err)
	}
	forUpdate := ""
	if d == cqrs.Postgres {
		// SQLite runs one write transaction at a time; PostgreSQL
		// needs the row lock so that Dispatch cannot ship a shipment
		// between Cancel's read and its write.
		forUpdate = " FOR UPDATE"
	}
	byBranch := `SELECT ` + columns + ` FROM ` + ShipmentsTable + ` WHERE saga_id = ? AND branch_id = ?`
	return &Store{db: db, d: d, b: b, q: queries{
		insert: d.Rebind(`INSERT INTO ` + ShipmentsTable + ` (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		byID:   d.Rebind(`SELECT ` + columns + ` FROM ` + ShipmentsTable + ` WHERE id = ?`),

		byBranch:          d.Rebind(byBranch),
		byBranchForUpdate: d.Rebind(byBranch + forUpdate),
		cancel:            d.Rebind(`UPDATE ` + ShipmentsTable + ` SET status = ?, updated_at = ? WHERE id = ? AND status = ?`),
		dispatch:          d.Rebind(`UPDATE ` + ShipmentsTable + ` SET status = ?, updated_at = ? WHERE status = ? AND created_at <= ? RETURNING ` + columns),
	}}, nil
}

// Schedule implements [app.Store.Schedule].
func (s *Store) Schedule(ctx context.Context, sh domain.Shipment) (_ domain.Shipment, isNew bool, err error) {
	br := barrier.Branch{SagaID: sh.SagaID, BranchID: sh.BranchID, Op: barrier.Action}
	addr, lines, err := encode(sh)
	if err != nil {
		return domain.Shipment{}, false, err
	}
	var stored domain.Shipment
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out, err := s.b.Call(ctx, tx, br, func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, s.q.insert, sh.ID, sh.SagaID, sh.BranchID, sh.OrderID, sh.Status.String(),
				addr, lines, sh.EstimatedDelivery.UnixNano(), sh.CreatedAt.UnixNano(), sh.UpdatedAt.UnixNano())
			return err
		})
		switch {
		case errors.Is(err, barrier.ErrHanging):
			return fmt.Errorf("%w: %w", app.ErrAborted, err)
		case err != nil:
			return err
		case out == barrier.Executed:
			stored, isNew = sh, true
			return nil
		}
		got, err := s.scanOne(tx.QueryRowContext(ctx, s.q.byBranch, sh.SagaID, sh.BranchID))
		if err != nil {
			return fmt.Errorf("read back the shipment of %s (%v): %w", br, out, err)
		}
		stored = got
		return nil
	})
	if err != nil {
		return domain.Shipment{}, false, fmt.Errorf("shipping: sqlstore: schedule %s/%s: %w", sh.SagaID, sh.BranchID, err)
	}
	return stored, isNew, nil
}

// Cancel implements [app.Store.Cancel].
func (s *Store) Cancel(ctx context.Context, k app.Key, orderID string, now time.Time) (sh *domain.Shipment, changed bool, err error) {
	br := barrier.Branch{SagaID: k.SagaID, BranchID: k.BranchID, Op: barrier.Compensate}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		out, err := s.b.Call(ctx, tx, br, func(ctx context.Context, tx *sql.Tx) error {
			got, err := s.branchShipment(ctx, tx, s.q.byBranchForUpdate, k, orderID)
			if err != nil || got == nil {
				return err
			}
			from := got.Status
			if changed, err = got.Cancel(now); err != nil || !changed {
				sh = got
				return err
			}
			res, err := tx.ExecContext(ctx, s.q.cancel, got.Status.String(), got.UpdatedAt.UnixNano(), got.ID, from.String())
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("shipment %s changed while being cancelled (%d rows, %v)", got.ID, n, err)
			}
			sh = got
			return nil
		})
		if err != nil || out != barrier.Duplicate {
			return err // Executed set sh; a null compensation has none
		}
		sh, err = s.branchShipment(ctx, tx, s.q.byBranch, k, orderID)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("shipping: sqlstore: cancel %s/%s: %w", k.SagaID, k.BranchID, err)
	}
	return sh, changed, nil
}

// branchShipment returns the shipment of branch k with query, nil if it
// has none, or an *InvalidError if it is not of order orderID.
func (s *Store) branchShipment(ctx context.Context, tx *sql.Tx, query string, k app.Key, orderID string) (*domain.Shipment, error) {
	got, err := s.scanOne(tx.QueryRowContext(ctx, query, k.SagaID, k.BranchID))
	if errors.Is(err, domain.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if got.OrderID != orderID {
		return nil, &domain.InvalidError{Field: "order_id",
			Reason: fmt.Sprintf("is %q, but the shipment of saga %s branch %s is of order %q", orderID, k.SagaID, k.BranchID, got.OrderID)}
	}
	return &got, nil
}

// Get implements [app.Store.Get].
func (s *Store) Get(ctx context.Context, id string) (domain.Shipment, error) {
	sh, err := s.scanOne(s.db.QueryRowContext(ctx, s.q.byID, id))
	if err != nil {
		return domain.Shipment{}, fmt.Errorf("shipping: sqlstore: get %s: %w", id, err)
	}
	return sh, nil
}

// Dispatch implements [app.Store.Dispatch] with one UPDATE ... RETURNING.
func (s *Store) Dispatch(ctx context.Context, createdBy, now time.Time) ([]domain.Shipment, error) {
	var out []domain.Shipment
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q.dispatch, domain.Shipped.String(), now.UTC().UnixNano(),
			domain.Scheduled.String(), createdBy.UnixNano())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sh, err := s.scan(rows)
			if err != nil {
				return err
			}
			out = append(out, sh)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("shipping: sqlstore: dispatch: %w", err)
	}
	return out, nil
}

// inTx runs fn in a new transaction, which it commits if fn returns nil
// and rolls back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// address and line are the JSON of domain.Address and domain.Line.
type (
	address struct {
		Recipient          string   `json:"recipient"`
		Lines              []string `json:"address_lines"`
		Locality           string   `json:"locality"`
		PostalCode         string   `json:"postal_code,omitempty"`
		AdministrativeArea string   `json:"administrative_area,omitempty"`
		RegionCode         string   `json:"region_code"`
	}
	line struct {
		SKU      string `json:"sku"`
		Quantity int32  `json:"quantity"`
	}
)

// encode returns the JSON of sh's address and lines.
func encode(sh domain.Shipment) (addr, lines string, err error) {
	a, err := json.Marshal(address(sh.Address))
	if err != nil {
		return "", "", fmt.Errorf("shipping: sqlstore: encode address: %w", err)
	}
	ls := make([]line, len(sh.Lines))
	for i, l := range sh.Lines {
		ls[i] = line(l)
	}
	b, err := json.Marshal(ls)
	if err != nil {
		return "", "", fmt.Errorf("shipping: sqlstore: encode lines: %w", err)
	}
	return string(a), string(b), nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanOne scans the row of a query for at most one shipment, returning an
// error matching domain.ErrNotFound if there is none.
func (s *Store) scanOne(r *sql.Row) (domain.Shipment, error) {
	sh, err := s.scan(r)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Shipment{}, domain.ErrNotFound
	}
	return sh, err
}

// scan reads a row of columns.
func (s *Store) scan(r scanner) (domain.Shipment, error) {
	var (
		sh                   domain.Shipment
		st, addr, lines      string
		eta, created, update int64
	)
	if err := r.Scan(&sh.ID, &sh.SagaID, &sh.BranchID, &sh.OrderID, &st, &addr, &lines, &eta, &created, &update); err != nil {
		return domain.Shipment{}, err
	}
	var err error
	if sh.Status, err = domain.ParseStatus(st); err != nil {
		return domain.Shipment{}, fmt.Errorf("shipment %s: %w", sh.ID, err)
	}
	var a address
	if err := json.Unmarshal([]byte(addr), &a); err != nil {
		return domain.Shipment{}, fmt.Errorf("shipment %s: decode address: %w", sh.ID, err)
	}
	sh.Address = domain.Address(a)
	var ls []line
	if err := json.Unmarshal([]byte(lines), &ls); err != nil {
		return domain.Shipment{}, fmt.Errorf("shipment %s: decode lines: %w", sh.ID, err)
	}
	sh.Lines = make([]domain.Line, len(ls))
	for i, l := range ls {
		sh.Lines[i] = domain.Line(l)
	}
	sh.EstimatedDelivery = time.Unix(0, eta).UTC()
	sh.CreatedAt = time.Unix(0, created).UTC()
	sh.UpdatedAt = time.Unix(0, update).UTC()
	return sh, nil
}
