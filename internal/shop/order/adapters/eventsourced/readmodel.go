package eventsourced

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

// ReadModel answers the order queries from the active version of the
// orders read model.
type ReadModel struct {
	db      *sql.DB
	dialect cqrs.Dialect
	tracer  trace.Tracer
	system  attribute.KeyValue

	mu      sync.Mutex
	version int
	checked time.Time
}

// activeTTL is how long ReadModel trusts the active version it read.
const activeTTL = time.Second

// NewReadModel returns the read model in db, whose spans go to tp.
func NewReadModel(db *sql.DB, d cqrs.Dialect, tp trace.TracerProvider) *ReadModel {
	system := semconv.DBSystemNameSQLite
	if d == cqrs.Postgres {
		system = semconv.DBSystemNamePostgreSQL
	}
	return &ReadModel{db: db, dialect: d, tracer: tp.Tracer(instrumentationName), system: system}
}

// active returns the active version, 0 if none is active yet.
func (m *ReadModel) active(ctx context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.version > 0 && time.Since(m.checked) < activeTTL {
		return m.version, nil
	}
	v, err := cqrs.Active(ctx, m.db, m.dialect, ProjectionName)
	if errors.Is(err, cqrs.ErrNoActiveVersion) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	m.version, m.checked = v, time.Now()
	return v, nil
}

const selectCols = `o.id, o.customer_id, o.status, o.total, o.created_at, o.updated_at, o.status_reason, o.saga_id, l.sku, l.quantity, l.unit_price`

// Get returns order id, or an error wrapping [domain.ErrNotFound].
func (m *ReadModel) Get(ctx context.Context, id string) (o domain.Order, err error) {
	v, err := m.active(ctx)
	if err != nil {
		return domain.Order{}, fmt.Errorf("read order %s: %w", id, err)
	}
	if v == 0 {
		return domain.Order{}, fmt.Errorf("read order %s: %w (no read model yet)", id, domain.ErrNotFound)
	}
	q := m.dialect.Rebind(`SELECT ` + selectCols + ` FROM ` + cqrs.Table("orders", v) + ` o JOIN ` + cqrs.Table("order_lines", v) +
		` l ON l.order_id = o.id WHERE o.id = ? ORDER BY l.line_no`)
	ctx, span := m.start(ctx, cqrs.Table("orders", v), q)
	defer func() { end(span, err) }()
	orders, err := m.query(ctx, q, id)
	if err != nil {
		return domain.Order{}, fmt.Errorf("read order %s: %w", id, err)
	}
	if len(orders) == 0 {
		return domain.Order{}, fmt.Errorf("read order %s: %w", id, domain.ErrNotFound)
	}
	return orders[0], nil
}

// List returns at most limit orders, newest first.
func (m *ReadModel) List(ctx context.Context, limit int) (orders []domain.Order, err error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list orders: limit %d is not positive", limit)
	}
	v, err := m.active(ctx)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	if v == 0 {
		return []domain.Order{}, nil
	}
	table := cqrs.Table("orders", v)
	q := m.dialect.Rebind(`SELECT ` + selectCols + ` FROM (SELECT * FROM ` + table + ` ORDER BY created_at DESC, position DESC LIMIT ?) o JOIN ` +
		cqrs.Table("order_lines", v) + ` l ON l.order_id = o.id ORDER BY o.created_at DESC, o.position DESC, l.line_no`)
	ctx, span := m.start(ctx, table, q)
	defer func() { end(span, err) }()
	list, err := m.query(ctx, q, limit)
	if err != nil {
		return nil, fmt.Errorf("list orders (limit %d): %w", limit, err)
	}
	return list, nil
}

// Filter selects orders in [ReadModel.Find]. Its zero value selects all.
type Filter struct {
	// CustomerID, if not empty, selects one customer's orders.
	CustomerID string
	// Status, if not StatusUnknown, selects the orders in that status.
	Status domain.Status
}

// Find returns at most limit orders matching f, newest first, skipping
// the first offset of them.
func (m *ReadModel) Find(ctx context.Context, f Filter, offset, limit int) (orders []domain.Order, err error) {
	if limit <= 0 || offset < 0 {
		return nil, fmt.Errorf("find orders: limit %d or offset %d out of range", limit, offset)
	}
	v, err := m.active(ctx)
	if err != nil {
		return nil, fmt.Errorf("find orders: %w", err)
	}
	if v == 0 {
		return []domain.Order{}, nil
	}
	table := cqrs.Table("orders", v)
	where, args := "", []any{}
	if f.CustomerID != "" {
		where, args = " WHERE customer_id = ?", append(args, f.CustomerID)
	}
	if f.Status != domain.StatusUnknown {
		if where == "" {
			where = " WHERE status = ?"
		} else {
			where += " AND status = ?"
		}
		args = append(args, f.Status.String())
	}
	args = append(args, limit, offset)
	q := m.dialect.Rebind(`SELECT ` + selectCols + ` FROM (SELECT * FROM ` + table + where + ` ORDER BY created_at DESC, position DESC LIMIT ? OFFSET ?) o JOIN ` +
		cqrs.Table("order_lines", v) + ` l ON l.order_id = o.id ORDER BY o.created_at DESC, o.position DESC, l.line_no`)
	ctx, span := m.start(ctx, table, q)
	defer func() { end(span, err) }()
	list, err := m.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("find orders: %w", err)
	}
	return list, nil
}

// query runs a statement returning one row per order line, grouped by
// order, and assembles the orders in row order.
func (m *ReadModel) query(ctx context.Context, query string, args ...any) (_ []domain.Order, err error) {
	rows, err := m.db.QueryContext(ctx, query, args...)
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
			updated int64
			l       domain.Line
		)
		if err := rows.Scan(&o.ID, &o.CustomerID, &status, &o.Total, &created, &updated, &o.StatusReason, &o.SagaID, &l.SKU, &l.Quantity, &l.UnitPrice); err != nil {
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
		o.UpdatedAt = time.Unix(0, updated).UTC()
		o.Lines = []domain.Line{l}
		orders = append(orders, o)
	}
	return orders, rows.Err()
}

// start starts a CLIENT span "SELECT {table}" with the database semantic
// conventions.
func (m *ReadModel) start(ctx context.Context, table, query string) (context.Context, trace.Span) {
	return m.tracer.Start(ctx, "SELECT "+table,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(m.system, semconv.DBOperationName("SELECT"), semconv.DBCollectionName(table), semconv.DBQueryText(query)))
}

// end ends span, recording err unless it only reports a missing order.
func end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
