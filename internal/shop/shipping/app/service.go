// Package app holds the use cases of the shipping service: scheduling a
// shipment (a saga action), cancelling it (its compensation), reading it,
// and dispatching the shipments that are due. It declares the one port it
// needs, [Store], and records the service's logs, metrics and span
// attributes through the providers it is given.
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
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
)

// instrumentationName names the meter and tracer of this package.
const instrumentationName = "github.com/cairnhq/cairn/internal/shop/shipping/app"

// ShipmentsMetric counts shipments by what happened to them ({shipment}),
// with the attribute outcome: "scheduled" (a new shipment; duplicates are
// not counted), "cancelled" (a scheduled shipment cancelled; duplicate and
// null compensations are not counted), "shipped" (dispatched) or
// "rejected" (a ScheduleShipment refused because the shop does not ship to
// the region or because the branch was compensated first).
const ShipmentsMetric = "cairn.shop.shipping.shipments"

// The values of the outcome attribute of [ShipmentsMetric].
const (
	OutcomeScheduled = "scheduled"
	OutcomeCancelled = "cancelled"
	OutcomeShipped   = "shipped"
	OutcomeRejected  = "rejected"
)

// Attribute keys of the business facts that the use cases add to the span
// in their context (the gRPC server span).
const (
	AttrOrderID    = attribute.Key("cairn.order.id")
	AttrSagaID     = attribute.Key("cairn.saga.id")
	AttrBranchID   = attribute.Key("cairn.saga.branch.id")
	AttrShipmentID = attribute.Key("cairn.shipment.id")
)

// ErrAborted is matched by the error of a ScheduleShipment whose branch was
// compensated first (CancelShipment arrived before it): nothing was
// scheduled and the orchestrator must not retry. Stores return it joined
// with the barrier's *barrier.HangingError.
var ErrAborted = errors.New("shipping: branch already compensated")

// Key is the idempotency key of a saga branch: its action
// (ScheduleShipment) and its compensation (CancelShipment) share it.
type Key struct {
	// SagaID is the saga's id, unique per run. Required.
	SagaID string
	// BranchID is the branch's id within the saga. Required.
	BranchID string
}

// validate returns a *domain.InvalidError when a field of k is missing.
func (k Key) validate() error {
	switch {
	case k.SagaID == "":
		return &domain.InvalidError{Field: "idempotency.saga_id", Reason: "is required"}
	case k.BranchID == "":
		return &domain.InvalidError{Field: "idempotency.branch_id", Reason: "is required"}
	}
	return nil
}

// Store stores shipments, and the saga barrier of their branches in the
// same database, so that a branch's barrier row and its effect commit in
// one transaction.
//
// Implementations must be safe for concurrent use, and must serialise
// concurrent operations of one branch (a duplicate waits for, then sees,
// the first).
type Store interface {
	// Schedule stores s, a new Scheduled shipment, as the action of the
	// branch (s.SagaID, s.BranchID), and returns it with true. If the
	// action ran before, it stores nothing and returns the shipment the
	// first call stored, with false. If the branch's compensation ran
	// first, it stores nothing and returns an error matching ErrAborted.
	Schedule(ctx context.Context, s domain.Shipment) (domain.Shipment, bool, error)
	// Cancel runs the compensation of branch k at now: it cancels the
	// branch's shipment with domain.Shipment.Cancel and returns it, with
	// true if the shipment changed. For a compensation that ran before it
	// returns the shipment as stored (or nil), with false; for one whose
	// action never ran (a null compensation) nil and false, and the
	// action, if it comes later, is aborted. It returns the error of
	// Shipment.Cancel (a *domain.NotCancellableError) when the shipment
	// has left, and a *domain.InvalidError for field "order_id" when the
	// branch's shipment is of another order than orderID; either leaves
	// nothing changed, so that a retry runs again.
	Cancel(ctx context.Context, k Key, orderID string, now time.Time) (*domain.Shipment, bool, error)
	// Get returns the shipment id, or an error matching
	// domain.ErrNotFound.
	Get(ctx context.Context, id string) (domain.Shipment, error)
	// Dispatch marks Shipped, at now, every Scheduled shipment created at
	// or before createdBy, and returns them as they are after the change,
	// in no particular order.
	Dispatch(ctx context.Context, createdBy, now time.Time) ([]domain.Shipment, error)
}

// Config configures a [Service]. The zero value of every field but Store
// selects the documented default.
type Config struct {
	// Store stores the shipments. Required.
	Store Store
	// Regions are the regions the shop ships to, with their delivery
	// times. Default: domain.DefaultRegions. New copies it.
	Regions domain.Regions
	// DispatchAfter is how long after it is scheduled a shipment leaves
	// the warehouse, when Dispatch runs. Default 0: Dispatch ships every
	// scheduled shipment.
	DispatchAfter time.Duration
	// Logger receives a record per change of a shipment's status. Default:
	// logs are discarded.
	Logger *slog.Logger
	// MeterProvider provides the meter of [ShipmentsMetric]. Default: the
	// OpenTelemetry global MeterProvider.
	MeterProvider metric.MeterProvider
	// TracerProvider provides the span of each Dispatch pass, which has
	// no caller's span to join. Default: the OpenTelemetry global
	// TracerProvider.
	TracerProvider trace.TracerProvider
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
	// NewID returns a new, unique shipment id; it must be safe for
	// concurrent use. Default: "shp_" and 96 random bits in hex.
	NewID func() string
}

// Service runs the shipping use cases against a [Store]. It is safe for
// concurrent use; it holds no state beyond its configuration.
type Service struct {
	store         Store
	regions       domain.Regions
	dispatchAfter time.Duration
	log           *slog.Logger
	tracer        trace.Tracer
	now           func() time.Time
	newID         func() string
	shipments     metric.Int64Counter
}

// New returns the Service of cfg. It returns an error if cfg.Store is nil
// or the metric cannot be created.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("shipping: app: nil store")
	}
	s := &Service{
		store: cfg.Store, regions: cfg.Regions.Clone(), dispatchAfter: cfg.DispatchAfter,
		log: cfg.Logger, now: cfg.Now, newID: cfg.NewID,
	}
	if s.regions == nil {
		s.regions = domain.DefaultRegions()
	}
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
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s.tracer = tp.Tracer(instrumentationName)
	var err error
	s.shipments, err = mp.Meter(instrumentationName).Int64Counter(ShipmentsMetric,
		metric.WithDescription("Shipments scheduled, cancelled, shipped, or rejected when scheduled."),
		metric.WithUnit("{shipment}"))
	if err != nil {
		return nil, fmt.Errorf("shipping: app: create counter %s: %w", ShipmentsMetric, err)
	}
	return s, nil
}

// Schedule is the input of [Service.ScheduleShipment].
type Schedule struct {
	// Key is the saga branch's idempotency key. Required.
	Key Key
	// OrderID is the order to ship. Required.
	OrderID string
	// Address is where to ship; see domain.Address.Validate.
	Address domain.Address
	// Lines are what to ship: 1 to domain.MaxLines lines.
	Lines []domain.Line
}

// ScheduleShipment books a shipment of in.Lines to in.Address, as the action
// of the saga branch in.Key, and returns it. A duplicate (the branch's
// action ran before) returns the shipment the first call booked, with the
// same id and estimated delivery, and books nothing.
//
// It returns a *domain.InvalidError for an invalid request, a
// *domain.UnservedRegionError for a region not in the Service's Regions,
// an error matching [ErrAborted] when the branch's compensation ran first,
// or the store's error.
func (s *Service) ScheduleShipment(ctx context.Context, in Schedule) (domain.Shipment, error) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(AttrSagaID.String(in.Key.SagaID), AttrBranchID.String(in.Key.BranchID), AttrOrderID.String(in.OrderID))
	if err := in.Key.validate(); err != nil {
		return domain.Shipment{}, err
	}
	sh, err := domain.NewShipment(s.newID(), in.Key.SagaID, in.Key.BranchID, in.OrderID, in.Address, in.Lines, s.regions, s.now())
	if err != nil {
		if unserved := (*domain.UnservedRegionError)(nil); errors.As(err, &unserved) {
			s.reject(ctx, in, "unserved_region", err)
		}
		return domain.Shipment{}, err
	}
	stored, isNew, err := s.store.Schedule(ctx, sh)
	if err != nil {
		if errors.Is(err, ErrAborted) {
			s.reject(ctx, in, "compensated", err)
		}
		return domain.Shipment{}, fmt.Errorf("schedule shipment of order %s: %w", in.OrderID, err)
	}
	span.SetAttributes(AttrShipmentID.String(stored.ID))
	if !isNew {
		span.AddEvent("shipment already scheduled", trace.WithAttributes(AttrShipmentID.String(stored.ID)))
		return stored, nil
	}
	s.shipments.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", OutcomeScheduled)))
	span.AddEvent("shipment scheduled", trace.WithAttributes(AttrShipmentID.String(stored.ID),
		attribute.String("cairn.shipment.region_code", stored.Address.RegionCode),
		attribute.String("cairn.shipment.estimated_delivery", stored.EstimatedDelivery.Format(time.RFC3339))))
	s.log.InfoContext(ctx, "shipment scheduled",
		slog.String("shipment_id", stored.ID), slog.String("order_id", stored.OrderID),
		slog.String("saga_id", stored.SagaID), slog.String("branch_id", stored.BranchID),
		slog.String("region_code", stored.Address.RegionCode), slog.Time("estimated_delivery", stored.EstimatedDelivery))
	return stored, nil
}

// reject counts and logs a refused ScheduleShipment.
func (s *Service) reject(ctx context.Context, in Schedule, reason string, err error) {
	s.shipments.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", OutcomeRejected)))
	trace.SpanFromContext(ctx).AddEvent("shipment rejected", trace.WithAttributes(attribute.String("reason", reason)))
	s.log.InfoContext(ctx, "shipment rejected", slog.String("order_id", in.OrderID),
		slog.String("saga_id", in.Key.SagaID), slog.String("branch_id", in.Key.BranchID),
		slog.String("reason", reason), slog.String("error", err.Error()))
}

// Cancel is the input of [Service.CancelShipment].
type Cancel struct {
	// Key is the idempotency key of the ScheduleShipment to compensate.
	// Required.
	Key Key
	// OrderID is the order whose shipment is cancelled. Required.
	OrderID string
}

// CancelShipment cancels the shipment that the branch in.Key scheduled,
// its compensation, and returns it. It returns nil and no error when the
// branch scheduled nothing (the compensation arrived first: the action is
// aborted when it comes), and the shipment as it is when it was cancelled
// before.
//
// It returns a *domain.InvalidError for an invalid request (or an order id
// other than the shipment's), a *domain.NotCancellableError when the
// shipment has left the warehouse, or the store's error.
func (s *Service) CancelShipment(ctx context.Context, in Cancel) (*domain.Shipment, error) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(AttrSagaID.String(in.Key.SagaID), AttrBranchID.String(in.Key.BranchID), AttrOrderID.String(in.OrderID))
	if err := in.Key.validate(); err != nil {
		return nil, err
	}
	if in.OrderID == "" {
		return nil, &domain.InvalidError{Field: "order_id", Reason: "is required"}
	}
	sh, changed, err := s.store.Cancel(ctx, in.Key, in.OrderID, s.now())
	if err != nil {
		return nil, fmt.Errorf("cancel shipment of order %s: %w", in.OrderID, err)
	}
	switch {
	case sh == nil:
		span.AddEvent("nothing to cancel")
		s.log.InfoContext(ctx, "shipment cancellation without shipment", slog.String("order_id", in.OrderID),
			slog.String("saga_id", in.Key.SagaID), slog.String("branch_id", in.Key.BranchID))
	case changed:
		span.SetAttributes(AttrShipmentID.String(sh.ID))
		span.AddEvent("shipment cancelled", trace.WithAttributes(AttrShipmentID.String(sh.ID)))
		s.shipments.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", OutcomeCancelled)))
		s.log.InfoContext(ctx, "shipment cancelled", slog.String("shipment_id", sh.ID),
			slog.String("order_id", sh.OrderID), slog.String("saga_id", sh.SagaID), slog.String("branch_id", sh.BranchID))
	default:
		span.SetAttributes(AttrShipmentID.String(sh.ID))
		span.AddEvent("shipment already cancelled", trace.WithAttributes(AttrShipmentID.String(sh.ID)))
	}
	return sh, nil
}

// GetShipment returns the shipment id. It returns a *domain.InvalidError
// for an empty id and an error matching domain.ErrNotFound for an unknown
// one.
func (s *Service) GetShipment(ctx context.Context, id string) (domain.Shipment, error) {
	if id == "" {
		return domain.Shipment{}, &domain.InvalidError{Field: "shipment_id", Reason: "is required"}
	}
	trace.SpanFromContext(ctx).SetAttributes(AttrShipmentID.String(id))
	sh, err := s.store.Get(ctx, id)
	if err != nil {
		return domain.Shipment{}, fmt.Errorf("get shipment %s: %w", id, err)
	}
	trace.SpanFromContext(ctx).SetAttributes(AttrOrderID.String(sh.OrderID))
	return sh, nil
}

// Dispatch does one pass of the dispatcher: it marks Shipped every
// scheduled shipment created at least Config.DispatchAfter before now (all
// of them when DispatchAfter is zero), and returns how many. Cancelled
// shipments are never shipped, and a shipment that was shipped can no
// longer be cancelled. It runs in a span of its own, "shipping.dispatch".
func (s *Service) Dispatch(ctx context.Context) (n int, err error) {
	ctx, span := s.tracer.Start(ctx, "shipping.dispatch")
	defer func() {
		span.SetAttributes(attribute.Int("cairn.shipment.count", n))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	now := s.now()
	shipped, err := s.store.Dispatch(ctx, now.Add(-s.dispatchAfter), now)
	if err != nil {
		return 0, fmt.Errorf("shipping: dispatch: %w", err)
	}
	if len(shipped) > 0 {
		s.shipments.Add(ctx, int64(len(shipped)), metric.WithAttributes(attribute.String("outcome", OutcomeShipped)))
	}
	for _, sh := range shipped {
		s.log.InfoContext(ctx, "shipment shipped", slog.String("shipment_id", sh.ID),
			slog.String("order_id", sh.OrderID), slog.String("saga_id", sh.SagaID))
	}
	return len(shipped), nil
}

// RunDispatcher calls Dispatch every interval until ctx is done, then
// returns ctx's error. A failed pass is logged and the next one tries
// again. interval must be positive.
func (s *Service) RunDispatcher(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("shipping: dispatcher interval %v is not positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := s.Dispatch(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "dispatch failed", slog.String("error", err.Error()))
			}
		}
	}
}

// randomID returns "shp_" and 96 random bits as 24 lower-case hex digits.
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead.
	return "shp_" + hex.EncodeToString(b[:])
}
