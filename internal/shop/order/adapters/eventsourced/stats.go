package eventsourced

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/outbox"
)

// StatsConsumer is the group that builds [CustomerStats] from the bus.
const StatsConsumer = "customer-stats"

// CustomerStats is a read model of each customer's orders, built from the
// order events as they arrive on the message bus (not from the event
// store): the consuming side of the outbox. Each message has its effect
// once, whatever the redeliveries, through an [outbox.Inbox] in the same
// database.
type CustomerStats struct {
	write, read *sql.DB
	dialect     cqrs.Dialect
	inbox       *outbox.Inbox
	upsert, get string
	tracer      trace.Tracer
}

var _ app.StatsReader = (*CustomerStats)(nil)

// NewCustomerStats returns the read model in the database written through
// write and read through read (the same *sql.DB, or a writer and a reader
// pool on one SQLite file), creating its tables if missing.
func NewCustomerStats(ctx context.Context, write, read *sql.DB, d cqrs.Dialect, tp trace.TracerProvider) (*CustomerStats, error) {
	latest := "max"
	if d == cqrs.Postgres {
		latest = "greatest"
	}
	in, err := outbox.NewInbox(ctx, write, d)
	if err != nil {
		return nil, err
	}
	if _, err := write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS customer_stats (
	customer_id   TEXT   PRIMARY KEY,
	orders        BIGINT NOT NULL,
	total         BIGINT NOT NULL,
	last_order_at BIGINT NOT NULL -- Unix nanoseconds, UTC
)`); err != nil {
		return nil, fmt.Errorf("customer stats: create table: %w", err)
	}
	return &CustomerStats{
		write: write, read: read, dialect: d, inbox: in, tracer: tp.Tracer(instrumentationName),
		upsert: d.Rebind(`INSERT INTO customer_stats (customer_id, orders, total, last_order_at) VALUES (?, 1, ?, ?)
ON CONFLICT (customer_id) DO UPDATE SET orders = customer_stats.orders + 1, total = customer_stats.total + excluded.total,
last_order_at = ` + latest + `(customer_stats.last_order_at, excluded.last_order_at)`),
		get: d.Rebind(`SELECT orders, total, last_order_at FROM customer_stats WHERE customer_id = ?`),
	}, nil
}

// Handler returns the messaging handler that applies order events to the
// read model, exactly once each. A message that is not an order event, or
// whose data does not decode, fails with a permanent error: it goes to the
// dead-letter subject, and is not retried.
func (c *CustomerStats) Handler() messaging.Handler {
	return c.inbox.Handler(StatsConsumer, func(ctx context.Context, tx *sql.Tx, d messaging.Delivery) error {
		e, err := outbox.Event(d.Message)
		if err != nil {
			return messaging.Permanent(err)
		}
		if e.Type != EventPlaced {
			return nil
		}
		var p Placed
		if err := json.Unmarshal(e.Data, &p); err != nil || p.CustomerID == "" {
			return messaging.Permanent(fmt.Errorf("customer stats: event %s (%s): bad data: %v", e.ID, e.Type, err))
		}
		if _, err := tx.ExecContext(ctx, c.upsert, p.CustomerID, p.Total, p.PlacedAt.UnixNano()); err != nil {
			return fmt.Errorf("customer stats: customer %s: %w", p.CustomerID, err)
		}
		return nil
	})
}

// CustomerStats returns customer id's statistics, or an error wrapping
// [domain.ErrNotFound].
func (c *CustomerStats) CustomerStats(ctx context.Context, id string) (domain.CustomerStats, error) {
	ctx, span := c.tracer.Start(ctx, "SELECT customer_stats", trace.WithSpanKind(trace.SpanKindClient))
	var (
		st   = domain.CustomerStats{CustomerID: id}
		last int64
	)
	err := c.read.QueryRowContext(ctx, c.get, id).Scan(&st.Orders, &st.Total, &last)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("customer %s: %w", id, domain.ErrNotFound)
	} else if err != nil {
		err = fmt.Errorf("customer stats %s: %w", id, err)
	}
	end(span, err)
	if err != nil {
		return domain.CustomerStats{}, err
	}
	st.LastOrderAt = time.Unix(0, last).UTC()
	return st, nil
}
