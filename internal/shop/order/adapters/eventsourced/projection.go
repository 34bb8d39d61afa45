package eventsourced

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

// ProjectionName names the orders read model in cqrs's tables.
const ProjectionName = "orders"

// Projection builds one version of the orders read model: the tables
// orders_v<N> and order_lines_v<N>. It implements cqrs.Projection.
type Projection struct {
	// Version is the read model's version, 1 or more.
	Version int
	// Dialect is the read model database's dialect.
	Dialect cqrs.Dialect
}

var _ cqrs.Projection = Projection{}

func (p Projection) tables() (orders, lines string) {
	return cqrs.Table("orders", p.Version), cqrs.Table("order_lines", p.Version)
}

// Setup creates the version's tables if they are missing.
func (p Projection) Setup(ctx context.Context, tx *sql.Tx) error {
	orders, lines := p.tables()
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS ` + orders + ` (
	id          TEXT   PRIMARY KEY,
	customer_id TEXT   NOT NULL,
	status      TEXT   NOT NULL,
	total       BIGINT NOT NULL,
	created_at  BIGINT NOT NULL, -- Unix nanoseconds, UTC
	position    BIGINT NOT NULL, -- of the event that placed the order
	updated_at  BIGINT NOT NULL, -- Unix nanoseconds, UTC, of the last status change
	status_reason TEXT NOT NULL DEFAULT '',
	saga_id     TEXT   NOT NULL DEFAULT ''
)`,
		`CREATE INDEX IF NOT EXISTS ` + orders + `_by_created_at ON ` + orders + ` (created_at, position)`,
		`CREATE TABLE IF NOT EXISTS ` + lines + ` (
	order_id   TEXT    NOT NULL,
	line_no    INTEGER NOT NULL,
	sku        TEXT    NOT NULL,
	quantity   INTEGER NOT NULL,
	unit_price BIGINT  NOT NULL,
	PRIMARY KEY (order_id, line_no)
)`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("orders read model v%d: setup: %w", p.Version, err)
		}
	}
	return nil
}

// Apply applies the order events among events; it skips other streams'.
func (p Projection) Apply(ctx context.Context, tx *sql.Tx, events []eventstore.RecordedEvent) error {
	orders, lines := p.tables()
	insOrder := p.Dialect.Rebind(`INSERT INTO ` + orders + ` (id, customer_id, status, total, created_at, position, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	// Every stored status change is one the order's status allowed when
	// it was appended (Repository.SetStatus checks it against the
	// stream's version), so the projection applies them as they come.
	setStatus := p.Dialect.Rebind(`UPDATE ` + orders + ` SET status = ?, updated_at = ?,
	status_reason = CASE WHEN ? <> '' OR ? = 'compensating' THEN ? ELSE status_reason END,
	saga_id = CASE WHEN ? <> '' THEN ? ELSE saga_id END WHERE id = ?`)
	insLine := p.Dialect.Rebind(`INSERT INTO ` + lines + ` (order_id, line_no, sku, quantity, unit_price) VALUES (?, ?, ?, ?, ?)`)
	for _, e := range events {
		if len(e.StreamID) <= len(StreamPrefix) || e.StreamID[:len(StreamPrefix)] != StreamPrefix {
			continue
		}
		if e.Type == EventStatusChanged {
			c, err := decodeStatusChanged(e)
			if err != nil {
				return fmt.Errorf("orders read model v%d: %w", p.Version, err)
			}
			if _, err := tx.ExecContext(ctx, setStatus, c.Status, c.At.UnixNano(), c.Reason, c.Status, c.Reason, c.SagaID, c.SagaID, c.OrderID); err != nil {
				return fmt.Errorf("orders read model v%d: order %s status %s: %w", p.Version, c.OrderID, c.Status, err)
			}
			continue
		}
		o, err := apply(domain.Order{}, e)
		if err != nil {
			return fmt.Errorf("orders read model v%d: %w", p.Version, err)
		}
		if _, err := tx.ExecContext(ctx, insOrder, o.ID, o.CustomerID, o.Status.String(), o.Total, o.CreatedAt.UnixNano(), int64(e.Position), o.CreatedAt.UnixNano()); err != nil {
			return fmt.Errorf("orders read model v%d: order %s: %w", p.Version, o.ID, err)
		}
		for i, l := range o.Lines {
			if _, err := tx.ExecContext(ctx, insLine, o.ID, i+1, l.SKU, l.Quantity, l.UnitPrice); err != nil {
				return fmt.Errorf("orders read model v%d: order %s line %d: %w", p.Version, o.ID, i+1, err)
			}
		}
	}
	return nil
}

// Drop drops the version's tables.
func (p Projection) Drop(ctx context.Context, tx *sql.Tx) error {
	orders, lines := p.tables()
	for _, t := range []string{lines, orders} {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t); err != nil {
			return fmt.Errorf("orders read model v%d: drop %s: %w", p.Version, t, err)
		}
	}
	return nil
}
