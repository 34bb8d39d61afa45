// Package app holds the use cases of the order service: placing, getting and
// listing orders. It declares the ports it needs ([Repository]) as small
// interfaces that adapters implement, and records the service's logs and
// metrics through the providers it is given.
//
// The use cases run through a command bus (placing) and a query bus
// (getting and listing), from package cqrs, with tracing, metrics and
// validation middleware: each command and query is a span
// ("command order.place", "query order.get") and a measurement of
// cqrs.command.duration or cqrs.query.duration.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"

	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

// Limits applied by [Service.ListOrders].
const (
	// DefaultListLimit is the number of orders ListOrders returns when
	// asked for zero or fewer.
	DefaultListLimit = 50
	// MaxListLimit is the most orders ListOrders returns; larger limits are
	// clamped to it.
	MaxListLimit = 500
)

// instrumentationName names the meter of this package.
const instrumentationName = "github.com/cairnhq/cairn/internal/shop/order/app"

// Repository stores orders. It is the order service's only persistence port.
//
// Implementations must be safe for concurrent use by multiple goroutines, and
// must honour ctx cancellation where the backend allows it.
type Repository interface {
	// Save stores a new order atomically: afterwards either the order and all
	// its lines are stored, or nothing is. It returns an error wrapping
	// [domain.ErrAlreadyExists] when an order with the same ID is stored.
	Save(ctx context.Context, o domain.Order) error
	// Get returns the order with the given ID, with its lines in their
	// original order. It returns an error wrapping [domain.ErrNotFound] when
	// there is none.
	Get(ctx context.Context, id string) (domain.Order, error)
	// List returns at most limit orders, newest first (by CreatedAt, ties in
	// insertion order, latest first), each with all its lines. limit is
	// always positive. It returns an empty slice, not an error, when there
	// are no orders.
	List(ctx context.Context, limit int) ([]domain.Order, error)
}

// StatsReader reads the customer statistics read model. It is an
// optional port: a service without one answers [Service.CustomerStats]
// with [domain.ErrNotFound].
type StatsReader interface {
	// CustomerStats returns the statistics of customer id, or an error
	// wrapping [domain.ErrNotFound] if the customer has no orders (yet:
	// the read model follows the event bus).
	CustomerStats(ctx context.Context, id string) (domain.CustomerStats, error)
}

// Config configures a [Service]. The zero value of every field selects the
// documented default.
type Config struct {
	// Logger receives one record per placed order. Default: a logger that
	// discards everything.
	Logger *slog.Logger
	// MeterProvider provides the meter for the service's metrics. Default:
	// the OpenTelemetry global MeterProvider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the spans of commands and queries. Default:
	// the OpenTelemetry global TracerProvider.
	TracerProvider trace.TracerProvider
	// Stats reads the customer statistics. Default nil: none.
	Stats StatsReader
	// Now returns the current time, stamped on new orders. Default:
	// [time.Now].
	Now func() time.Time
	// NewID returns a fresh, unique order ID. It must be safe for concurrent
	// use. Default: 128 random bits from crypto/rand as 32 hex digits.
	NewID func() string
	// Checkout starts the checkout of each placed order. Default nil:
	// orders stay placed.
	Checkout Checkout
}

// Checkout starts the checkout saga of a placed order. It is an optional
// port, implemented by package checkout.
type Checkout interface {
	// Start starts the checkout of o; starting it again does nothing.
	Start(ctx context.Context, o domain.Order) error
}

// Watcher follows an order's status changes. It is an optional port: a
// repository that implements it serves [Service.WatchOrder].
type Watcher interface {
	// Watch calls fn with the order now and after each status change,
	// until a final status, an error from fn, or ctx's end.
	Watch(ctx context.Context, id string, fn func(domain.Order) error) error
}

// DefaultPaymentMethod is the payment method of an order placed without
// one: the reference shop has no customer accounts holding a default
// method, so it uses the simulated provider's test token that succeeds.
const DefaultPaymentMethod = "tok_visa"

// DefaultShipTo returns the address of an order placed without one, for
// the same reason as DefaultPaymentMethod.
func DefaultShipTo(customer string) domain.Address {
	return domain.Address{Recipient: customer, Lines: []string{"1 Example Street"}, Locality: "Berlin", PostalCode: "10115", RegionCode: "DE"}
}

// PlaceOrder is the input of [Service.PlaceOrder].
type PlaceOrder struct {
	// CustomerID identifies the customer placing the order.
	CustomerID string
	// Lines are the order lines, validated by [domain.NewOrder].
	Lines []domain.Line
	// PaymentMethod is the payment method's token; empty selects
	// [DefaultPaymentMethod].
	PaymentMethod string
	// ShipTo is where to ship; the zero Address selects [DefaultShipTo].
	ShipTo domain.Address
}

// Service runs the order use cases against a [Repository]. It is safe for
// concurrent use by multiple goroutines; it holds no state of its own beyond
// its configuration and metric instruments.
type Service struct {
	repo     Repository
	checkout Checkout
	log      *slog.Logger
	now      func() time.Time
	newID    func() string
	placed   metric.Int64Counter
	value    metric.Int64Histogram

	commands *cqrs.CommandBus
	queries  *cqrs.QueryBus
}

// The commands and queries of the service's buses.
type (
	// placeOrder stores a new order, validated by domain.NewOrder.
	placeOrder struct{ order domain.Order }
	// getOrder asks for one order.
	getOrder struct{ id string }
	// listOrders asks for the newest orders.
	listOrders struct{ limit int }
	// customerStats asks for one customer's statistics.
	customerStats struct{ id string }
)

func (c placeOrder) CommandID() string { return c.order.ID }
func (placeOrder) CommandName() string { return "order.place" }
func (getOrder) QueryName() string     { return "order.get" }
func (listOrders) QueryName() string   { return "order.list" }

// New returns a Service storing orders in repo. It returns an error if repo is
// nil or a metric instrument cannot be created.
//
// It records two metrics on cfg.MeterProvider:
//   - cairn.shop.orders.placed, a counter of placed orders ({order});
//   - cairn.shop.order.value, a histogram of order totals in cents ({cent}).
func New(repo Repository, cfg Config) (*Service, error) {
	if repo == nil {
		return nil, fmt.Errorf("app: new service: nil repository")
	}
	s := &Service{repo: repo, checkout: cfg.Checkout, log: cfg.Logger, now: cfg.Now, newID: cfg.NewID}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.newID == nil {
		s.newID = randomID
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(instrumentationName)
	var err error
	s.placed, err = meter.Int64Counter("cairn.shop.orders.placed",
		metric.WithDescription("Number of orders placed."),
		metric.WithUnit("{order}"))
	if err != nil {
		return nil, fmt.Errorf("app: create counter cairn.shop.orders.placed: %w", err)
	}
	s.value, err = meter.Int64Histogram("cairn.shop.order.value",
		metric.WithDescription("Total value of placed orders, in cents."),
		metric.WithUnit("{cent}"),
		metric.WithExplicitBucketBoundaries(100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000))
	if err != nil {
		return nil, fmt.Errorf("app: create histogram cairn.shop.order.value: %w", err)
	}
	metrics, err := cqrs.Metrics(mp)
	if err != nil {
		return nil, fmt.Errorf("app: command metrics: %w", err)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s.commands = cqrs.NewCommandBus(cqrs.Tracing(tp), metrics)
	s.queries = cqrs.NewQueryBus(cqrs.Tracing(tp), metrics)
	cqrs.Handle(s.commands, func(ctx context.Context, c placeOrder) error { return s.repo.Save(ctx, c.order) })
	cqrs.HandleQuery(s.queries, func(ctx context.Context, q getOrder) (domain.Order, error) { return s.repo.Get(ctx, q.id) })
	cqrs.HandleQuery(s.queries, func(ctx context.Context, q listOrders) ([]domain.Order, error) { return s.repo.List(ctx, q.limit) })
	cqrs.HandleQuery(s.queries, func(ctx context.Context, q customerStats) (domain.CustomerStats, error) {
		if cfg.Stats == nil {
			return domain.CustomerStats{}, fmt.Errorf("customer %s: %w (no statistics read model)", q.id, domain.ErrNotFound)
		}
		return cfg.Stats.CustomerStats(ctx, q.id)
	})
	return s, nil
}

// CustomerStats returns the statistics of customer id, from a read model
// that follows the event bus, so it lags the orders placed by the time
// the outbox relay and the bus take. It returns an error wrapping
// [domain.ErrNotFound] for a customer it knows nothing of.
func (s *Service) CustomerStats(ctx context.Context, id string) (domain.CustomerStats, error) {
	st, err := cqrs.Ask[customerStats, domain.CustomerStats](ctx, s.queries, customerStats{id})
	if err != nil {
		return domain.CustomerStats{}, fmt.Errorf("customer stats %s: %w", id, err)
	}
	return st, nil
}

// PlaceOrder validates cmd, stores a new placed order and returns it. It
// returns an error matching [domain.ErrInvalid] (and holding a
// *[domain.ValidationError]) when cmd breaks an invariant, and the
// repository's error, wrapped, when the order cannot be saved.
//
// On success it logs "order placed" with ctx, so a trace-aware handler can
// correlate the record with the caller's span, and records the order metrics.
func (s *Service) PlaceOrder(ctx context.Context, cmd PlaceOrder) (domain.Order, error) {
	o, err := domain.NewOrder(s.newID(), cmd.CustomerID, cmd.Lines, s.now())
	if err != nil {
		return domain.Order{}, fmt.Errorf("place order for customer %q: %w", cmd.CustomerID, err)
	}
	if s.checkout != nil {
		o.PaymentMethod, o.ShipTo = cmd.PaymentMethod, cmd.ShipTo
		if o.PaymentMethod == "" {
			o.PaymentMethod = DefaultPaymentMethod
		}
		if o.ShipTo.RegionCode == "" && o.ShipTo.Recipient == "" {
			o.ShipTo = DefaultShipTo(o.CustomerID)
		}
	}
	if err := cqrs.Dispatch(ctx, s.commands, placeOrder{o}); err != nil {
		return domain.Order{}, fmt.Errorf("place order %s: %w", o.ID, err)
	}
	s.placed.Add(ctx, 1)
	s.value.Record(ctx, o.Total)
	if s.checkout != nil {
		// The order is stored: a failed start leaves it placed, and the
		// checkout's reconciler starts it later.
		if err := s.checkout.Start(ctx, o); err != nil {
			s.log.WarnContext(ctx, "checkout not started; the reconciler will retry", slog.String("order_id", o.ID), slog.Any("error", err))
		}
	}
	s.log.InfoContext(ctx, "order placed",
		slog.String("order_id", o.ID),
		slog.String("customer_id", o.CustomerID),
		slog.Int("lines", len(o.Lines)),
		slog.Int64("total", o.Total))
	return o, nil
}

// GetOrder returns the order with the given id. It returns an error wrapping
// [domain.ErrNotFound] when there is none.
func (s *Service) GetOrder(ctx context.Context, id string) (domain.Order, error) {
	o, err := cqrs.Ask[getOrder, domain.Order](ctx, s.queries, getOrder{id})
	if err != nil {
		return domain.Order{}, fmt.Errorf("get order %s: %w", id, err)
	}
	return o, nil
}

// WatchOrder calls fn with order id now and after each status change,
// until its status is final, fn returns an error or ctx ends. It returns
// an error wrapping [domain.ErrNotFound] for an unknown order, and
// [ErrUnsupported] when the repository cannot watch.
func (s *Service) WatchOrder(ctx context.Context, id string, fn func(domain.Order) error) error {
	w, ok := s.repo.(Watcher)
	if !ok {
		return fmt.Errorf("watch order %s: %w", id, ErrUnsupported)
	}
	if err := w.Watch(ctx, id, fn); err != nil {
		return fmt.Errorf("watch order %s: %w", id, err)
	}
	return nil
}

// ListOrders returns up to limit orders, newest first. A limit of zero or less
// selects [DefaultListLimit]; a limit above [MaxListLimit] is clamped to it.
func (s *Service) ListOrders(ctx context.Context, limit int) ([]domain.Order, error) {
	switch {
	case limit <= 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	orders, err := cqrs.Ask[listOrders, []domain.Order](ctx, s.queries, listOrders{limit})
	if err != nil {
		return nil, fmt.Errorf("list orders (limit %d): %w", limit, err)
	}
	return orders, nil
}

// randomID returns 128 random bits as 32 lower-case hex digits.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead.
	return hex.EncodeToString(b[:])
}
