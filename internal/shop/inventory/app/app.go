// Package app holds the use cases of the inventory service: reserving stock
// for an order as a saga action, releasing it as the compensation,
// confirming it as a sale, reading stock levels, and expiring reservations
// whose time ran out. It declares its port, [Store], which the sqlstore
// adapter implements with the saga barrier, and records the service's logs
// and metrics through the providers it is given.
//
// Metrics:
//
//   - cairn.shop.inventory.reservations ({reservation}), a counter with the
//     attribute outcome: "reserved" (a new reservation), "insufficient" (a
//     Reserve refused for lack of stock), "released", "confirmed" or
//     "expired" (a reservation changed state). Duplicates are not counted.
//   - cairn.shop.inventory.reserved_units ({unit}), an observable gauge: the
//     units held by active reservations, summed over all skus, as stored.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/internal/shop/inventory/domain"
)

// The service's metric names.
const (
	// ReservationsMetric counts reservations by outcome.
	ReservationsMetric = "cairn.shop.inventory.reservations"
	// ReservedUnitsMetric is the gauge of units held by active
	// reservations.
	ReservedUnitsMetric = "cairn.shop.inventory.reserved_units"
)

// The values of the outcome attribute of ReservationsMetric.
const (
	OutcomeReserved     = "reserved"
	OutcomeInsufficient = "insufficient"
	OutcomeReleased     = "released"
	OutcomeConfirmed    = "confirmed"
	OutcomeExpired      = "expired"
)

// instrumentationName names the meter and tracer of this package.
const instrumentationName = "github.com/cairnhq/cairn/internal/shop/inventory/app"

// sweepBatch is how many overdue reservations Sweep looks up at a time.
const sweepBatch = 500

// Store is the inventory's persistence port. Its mutating methods run one
// operation of a saga branch at most once, in one transaction with the
// branch's barrier record (package saga/barrier): a duplicate has no
// second effect and returns what is stored, and an action whose
// compensation ran first is refused with an error matching
// [domain.ErrCompensated].
//
// Implementations must be safe for concurrent use, including concurrent
// operations on the same skus, and must never let a sku's reserved units
// exceed its units on hand.
type Store interface {
	// Reserve runs r, a new active reservation, as the action of the
	// branch r.Key: it reserves every line's units or none, and stores r.
	// first is true when this call made the reservation; for a duplicate
	// it is false and the stored reservation is returned (the same ID and
	// expire time). It returns a *domain.NotFoundError for an unknown sku
	// and a *domain.InsufficientStockError for the first line short of
	// stock; then nothing is stored.
	Reserve(ctx context.Context, r domain.Reservation) (_ domain.Reservation, first bool, _ error)
	// Release runs the compensation of branch k: it applies
	// [domain.Reservation.Release] at now to the reservation that k made
	// for orderID, and returns its stock if its state changed. It returns
	// the reservation after the call (State domain.StateNone when k
	// reserved nothing, including a compensation that arrived before its
	// action) and whether this call changed its state. A confirmed
	// reservation is returned unchanged, with no error: the caller
	// decides.
	Release(ctx context.Context, k domain.Key, orderID string, now time.Time) (_ domain.Reservation, changed bool, _ error)
	// Confirm runs the action of branch k: it applies
	// [domain.Reservation.Confirm] at now to reservation id, selling its
	// stock when it is confirmed, returning it when it expired. It returns
	// the reservation after the call and whether this call changed its
	// state; a released or expired reservation is returned unchanged, with
	// no error. An unknown id gives a *domain.NotFoundError.
	Confirm(ctx context.Context, k domain.Key, id string, now time.Time) (_ domain.Reservation, changed bool, _ error)
	// Overdue returns the ids of at most limit active reservations
	// overdue at now; with skus, only those holding one of them.
	Overdue(ctx context.Context, now time.Time, skus []string, limit int) ([]string, error)
	// Expire expires reservation id if it is overdue at now, returning its
	// stock, and reports whether it did.
	Expire(ctx context.Context, id string, now time.Time) (_ domain.Reservation, expired bool, _ error)
	// Stocks returns the stock of each sku, in order, or a
	// *domain.NotFoundError for the first unknown one.
	Stocks(ctx context.Context, skus []string) ([]domain.Stock, error)
	// SetStock sets sku's units on hand with [domain.Stock.SetOnHand],
	// adding the sku if it is missing, and returns its stock.
	SetStock(ctx context.Context, sku string, onHand int, now time.Time) (domain.Stock, error)
	// Seed adds the skus of stock (sku -> units on hand) that are
	// missing, leaving the others alone, and returns how many it added.
	Seed(ctx context.Context, stock map[string]int, now time.Time) (int, error)
	// ReservedUnits returns the units reserved over all skus.
	ReservedUnits(ctx context.Context) (int64, error)
}

// Config configures a [Service]. The zero value of every field selects the
// documented default.
type Config struct {
	// Logger receives a record per state change of a reservation and per
	// stock change. Default: logs are discarded.
	Logger *slog.Logger
	// MeterProvider provides the service's metrics. Default: the
	// OpenTelemetry global MeterProvider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the span of a sweep that expires
	// reservations. Default: the OpenTelemetry global TracerProvider.
	TracerProvider trace.TracerProvider
	// Now returns the current time, for expire times and expiry. Default:
	// [time.Now].
	Now func() time.Time
	// DefaultTTL is how long a reservation made without a TTL holds its
	// stock. Default: [domain.DefaultTTL] (15 minutes).
	DefaultTTL time.Duration
	// NewID returns a fresh reservation id; it must be safe for concurrent
	// use. Default: "rsv_" and 128 random bits in hex.
	NewID func() string
}

// Service runs the inventory use cases against a [Store]. It is safe for
// concurrent use. Call Close to unregister its gauge.
type Service struct {
	store    Store
	log      *slog.Logger
	tracer   trace.Tracer
	now      func() time.Time
	ttl      time.Duration
	newID    func() string
	outcomes metric.Int64Counter
	sets     map[string]metric.AddOption
	gauge    metric.Registration
}

// New returns the use cases on store. It returns an error if a metric
// instrument cannot be made.
func New(store Store, cfg Config) (*Service, error) {
	if store == nil {
		return nil, errors.New("inventory: nil Store")
	}
	s := &Service{store: store, log: cfg.Logger, now: cfg.Now, ttl: cfg.DefaultTTL, newID: cfg.NewID}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl <= 0 {
		s.ttl = domain.DefaultTTL
	}
	if s.newID == nil {
		s.newID = randomID
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s.tracer = tp.Tracer(instrumentationName)
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(instrumentationName)
	var err error
	s.outcomes, err = meter.Int64Counter(ReservationsMetric, metric.WithUnit("{reservation}"),
		metric.WithDescription("Reservations by outcome: reserved, insufficient (refused for lack of stock), released, confirmed, expired."))
	if err != nil {
		return nil, fmt.Errorf("inventory: counter %s: %w", ReservationsMetric, err)
	}
	s.sets = make(map[string]metric.AddOption)
	for _, o := range []string{OutcomeReserved, OutcomeInsufficient, OutcomeReleased, OutcomeConfirmed, OutcomeExpired} {
		s.sets[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", o)))
	}
	units, err := meter.Int64ObservableGauge(ReservedUnitsMetric, metric.WithUnit("{unit}"),
		metric.WithDescription("Units held by active reservations, over all skus."))
	if err != nil {
		return nil, fmt.Errorf("inventory: gauge %s: %w", ReservedUnitsMetric, err)
	}
	s.gauge, err = meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		n, err := s.store.ReservedUnits(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(units, n)
		return nil
	}, units)
	if err != nil {
		return nil, fmt.Errorf("inventory: gauge %s: %w", ReservedUnitsMetric, err)
	}
	return s, nil
}

// Close unregisters the reserved-units gauge, so that no collection reads
// the store any more. It is safe to call more than once.
func (s *Service) Close() error {
	if s.gauge == nil {
		return nil
	}
	err := s.gauge.Unregister()
	s.gauge = nil
	return err
}

// randomID returns "rsv_" and 32 random hex digits.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return "rsv_" + hex.EncodeToString(b[:])
}

// count adds one to the outcome's counter.
func (s *Service) count(ctx context.Context, outcome string, n int) {
	s.outcomes.Add(ctx, int64(n), s.sets[outcome])
}

// ReserveInput is the input of [Service.Reserve].
type ReserveInput struct {
	// Key is the saga branch the reservation is made for.
	Key domain.Key
	// OrderID is the order the stock is held for.
	OrderID string
	// Lines are the quantities to reserve, at most one per sku.
	Lines []domain.Line
	// TTL is how long the reservation holds its stock; zero selects the
	// service's default, negative is invalid.
	TTL time.Duration
}

// Reserve reserves every line's units for the order, or none, as the
// action of the saga branch in.Key. A duplicate returns the first call's
// reservation (the same ID and expire time) and has no second effect.
//
// Errors: a *domain.ValidationError (ErrInvalid) for invalid input; a
// *domain.NotFoundError for an unknown sku; a
// *domain.InsufficientStockError for a line short of stock, counting units
// of reservations that are overdue as available (Reserve expires them
// first); an error matching domain.ErrCompensated when the branch's
// compensation ran first.
func (s *Service) Reserve(ctx context.Context, in ReserveInput) (domain.Reservation, error) {
	annotate(ctx, in.Key, in.OrderID)
	if in.TTL == 0 {
		in.TTL = s.ttl
	}
	r, err := domain.NewReservation(s.newID(), in.Key, in.OrderID, in.Lines, in.TTL, s.now())
	if err != nil {
		return domain.Reservation{}, err
	}
	got, first, err := s.store.Reserve(ctx, r)
	if errors.Is(err, domain.ErrInsufficientStock) {
		// Reservations that are overdue but not swept yet may hold the
		// missing units: expire them, and try once more if any went.
		skus := make([]string, len(in.Lines))
		for i, l := range in.Lines {
			skus[i] = l.SKU
		}
		if n, xerr := s.expireOverdue(ctx, skus); xerr == nil && n > 0 {
			now := s.now().Round(0).UTC()
			r.CreateTime, r.UpdateTime, r.ExpireTime = now, now, now.Add(in.TTL)
			got, first, err = s.store.Reserve(ctx, r)
		}
	}
	if err != nil {
		if errors.Is(err, domain.ErrInsufficientStock) {
			s.count(ctx, OutcomeInsufficient, 1)
			s.log.InfoContext(ctx, "inventory: reservation refused", "order_id", in.OrderID, "saga_id", in.Key.SagaID, "err", err)
		}
		return domain.Reservation{}, fmt.Errorf("reserve for order %s: %w", in.OrderID, err)
	}
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("cairn.inventory.reservation.id", got.ID))
	if first {
		s.count(ctx, OutcomeReserved, 1)
		span.AddEvent("inventory.reserved", trace.WithAttributes(attribute.Int("cairn.inventory.units", got.Units())))
		s.log.InfoContext(ctx, "inventory: reserved", "reservation_id", got.ID, "order_id", got.OrderID,
			"saga_id", got.Key.SagaID, "units", got.Units(), "expire_time", got.ExpireTime)
	}
	return got, nil
}

// Release releases the reservation that the saga branch k made for the
// order: the compensation of Reserve. It returns the reservation's state
// after the call: StateReleased; StateExpired when it had expired (or was
// overdue: it expires now); StateNone when nothing was reserved, which
// includes a compensation that arrived before its action, whose action
// will be refused. A duplicate returns the same state with no second
// effect.
//
// Errors: a *domain.ValidationError for an invalid key or an empty order
// id; a *domain.StateError (ErrState) when the reservation was confirmed.
func (s *Service) Release(ctx context.Context, k domain.Key, orderID string) (domain.State, error) {
	annotate(ctx, k, orderID)
	if err := k.Validate(); err != nil {
		return domain.StateNone, err
	}
	if orderID == "" {
		return domain.StateNone, &domain.ValidationError{Field: "order_id", Reason: "is required"}
	}
	r, changed, err := s.store.Release(ctx, k, orderID, s.now())
	if err != nil {
		return domain.StateNone, fmt.Errorf("release for order %s: %w", orderID, err)
	}
	if r.State == domain.StateConfirmed {
		return r.State, &domain.StateError{ID: r.ID, State: r.State, Op: "release"}
	}
	if changed {
		outcome := OutcomeReleased
		if r.State == domain.StateExpired {
			outcome = OutcomeExpired
		}
		s.count(ctx, outcome, 1)
		trace.SpanFromContext(ctx).AddEvent("inventory."+outcome, trace.WithAttributes(attribute.String("cairn.inventory.reservation.id", r.ID)))
		s.log.InfoContext(ctx, "inventory: "+outcome, "reservation_id", r.ID, "order_id", orderID, "saga_id", k.SagaID, "units", r.Units())
	}
	return r.State, nil
}

// Confirm turns reservation id into a sale, as the action of the saga
// branch k: its units leave both reserved and on hand. A duplicate, or a
// confirmation of a confirmed reservation, returns StateConfirmed with no
// second effect.
//
// Errors: a *domain.ValidationError for an invalid key or an empty id; a
// *domain.NotFoundError for an unknown reservation; a *domain.StateError
// when it was released or has expired (an overdue reservation expires
// now and returns its stock); an error matching domain.ErrCompensated when
// the branch's compensation ran first.
func (s *Service) Confirm(ctx context.Context, k domain.Key, id string) (domain.State, error) {
	annotate(ctx, k, "")
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("cairn.inventory.reservation.id", id))
	if err := k.Validate(); err != nil {
		return domain.StateNone, err
	}
	if id == "" {
		return domain.StateNone, &domain.ValidationError{Field: "reservation_id", Reason: "is required"}
	}
	r, changed, err := s.store.Confirm(ctx, k, id, s.now())
	if err != nil {
		return domain.StateNone, fmt.Errorf("confirm reservation %s: %w", id, err)
	}
	if changed {
		outcome := OutcomeConfirmed
		if r.State == domain.StateExpired {
			outcome = OutcomeExpired
		}
		s.count(ctx, outcome, 1)
		trace.SpanFromContext(ctx).AddEvent("inventory."+outcome, trace.WithAttributes(attribute.String("cairn.order.id", r.OrderID)))
		s.log.InfoContext(ctx, "inventory: "+outcome, "reservation_id", r.ID, "order_id", r.OrderID, "saga_id", k.SagaID, "units", r.Units())
	}
	return r.State, r.ConfirmErr()
}

// GetStock returns the stock of each sku, in order. Errors: a
// *domain.ValidationError for no skus, more than domain.MaxSKUs or an empty
// one; a *domain.NotFoundError for the first unknown sku.
func (s *Service) GetStock(ctx context.Context, skus []string) ([]domain.Stock, error) {
	if err := domain.ValidateSKUs(skus); err != nil {
		return nil, err
	}
	return s.store.Stocks(ctx, skus)
}

// SetStock sets sku's units on hand, adding the sku if it is missing. The
// units held by active reservations stay held: on hand never drops below
// them (see domain.Stock.SetOnHand). It is meant for operators and the
// demo's scenarios (a stock-out), not for the saga.
func (s *Service) SetStock(ctx context.Context, sku string, onHand int) (domain.Stock, error) {
	if sku == "" {
		return domain.Stock{}, &domain.ValidationError{Field: "sku", Reason: "is required"}
	}
	if onHand < 0 {
		return domain.Stock{}, &domain.ValidationError{Field: "on_hand", Value: onHand, Reason: "must not be negative"}
	}
	st, err := s.store.SetStock(ctx, sku, onHand, s.now())
	if err != nil {
		return domain.Stock{}, fmt.Errorf("set stock of %s: %w", sku, err)
	}
	s.log.InfoContext(ctx, "inventory: stock set", "sku", sku, "on_hand", st.OnHand, "reserved", st.Reserved)
	return st, nil
}

// Seed adds the skus of stock (sku -> units on hand) that are missing and
// returns how many it added.
func (s *Service) Seed(ctx context.Context, stock map[string]int) (int, error) {
	for sku, n := range stock {
		if sku == "" || n < 0 {
			return 0, &domain.ValidationError{Field: "seed", Value: fmt.Sprintf("%q: %d", sku, n), Reason: "needs a sku and units on hand >= 0"}
		}
	}
	n, err := s.store.Seed(ctx, stock, s.now())
	if err != nil {
		return 0, fmt.Errorf("seed stock: %w", err)
	}
	if n > 0 {
		s.log.InfoContext(ctx, "inventory: catalog seeded", "skus", n)
	}
	return n, nil
}

// Sweep expires the active reservations that are overdue now, returning
// their stock, and returns how many it expired. A background sweeper
// calls it periodically; it is safe to call concurrently with everything
// else (each reservation expires exactly once).
func (s *Service) Sweep(ctx context.Context) (int, error) {
	return s.expireOverdue(ctx, nil)
}

// expireOverdue expires the reservations overdue now, those holding one
// of skus when skus is not nil, in a span when there are any.
func (s *Service) expireOverdue(ctx context.Context, skus []string) (total int, err error) {
	now := s.now()
	var span trace.Span
	defer func() {
		if span != nil {
			span.SetAttributes(attribute.Int("cairn.inventory.expired", total))
			if err != nil {
				span.RecordError(err)
			}
			span.End()
		}
	}()
	for {
		ids, err := s.store.Overdue(ctx, now, skus, sweepBatch)
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
		if len(ids) == 0 {
			return total, nil
		}
		if span == nil {
			ctx, span = s.tracer.Start(ctx, "inventory.expire_overdue")
		}
		n := 0
		for _, id := range ids {
			r, ok, err := s.store.Expire(ctx, id, now)
			if err != nil {
				return total, fmt.Errorf("sweep: expire %s: %w", id, err)
			}
			if ok {
				n++
				s.count(ctx, OutcomeExpired, 1)
				s.log.InfoContext(ctx, "inventory: expired", "reservation_id", r.ID, "order_id", r.OrderID,
					"saga_id", r.Key.SagaID, "units", r.Units(), "expire_time", r.ExpireTime)
			}
		}
		total += n
		if len(ids) < sweepBatch || n == 0 {
			return total, nil
		}
	}
}

// annotate sets the saga's and the order's ids on the span in ctx.
func annotate(ctx context.Context, k domain.Key, orderID string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("cairn.saga.id", k.SagaID), attribute.String("cairn.saga.branch_id", k.BranchID))
	if orderID != "" {
		span.SetAttributes(attribute.String("cairn.order.id", orderID))
	}
}
