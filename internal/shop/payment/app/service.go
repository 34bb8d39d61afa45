package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/internal/shop/payment/domain"
)

// Metric names of the payment service.
const (
	// ChargesMetric counts payments reaching an outcome ({charge}), with
	// the attribute outcome: "captured", "declined", "refunded", or
	// "failed" for a charge call the provider failed or refused.
	ChargesMetric = "cairn.shop.payment.charges"
	// AmountMetric is the histogram of captured amounts ({cent}, minor
	// units), with the attribute currency.
	AmountMetric = "cairn.shop.payment.amount"
)

// Attribute keys of the payment service's spans and events.
const (
	SagaIDKey    = attribute.Key("cairn.saga.id")
	BranchIDKey  = attribute.Key("cairn.saga.branch.id")
	OrderIDKey   = attribute.Key("cairn.order.id")
	PaymentIDKey = attribute.Key("cairn.payment.id")
	StatusKey    = attribute.Key("cairn.payment.status")
)

// Config configures a Service. Store and Provider are required.
type Config struct {
	// Store keeps the payments and the barrier.
	Store Store
	// Provider is the payment provider.
	Provider Provider
	// TracerProvider receives a span per provider call. Default: the
	// OpenTelemetry global TracerProvider.
	TracerProvider trace.TracerProvider
	// MeterProvider receives ChargesMetric and AmountMetric. Default: the
	// OpenTelemetry global MeterProvider.
	MeterProvider metric.MeterProvider
	// Logger receives a record per change of a payment's status.
	// Default: discarded.
	Logger *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// ReconcileAfter and ReconcileWindow bound the age (since their last
	// change) of the Canceled payments that Reconcile checks at the
	// provider. Defaults: DefaultReconcileAfter and
	// DefaultReconcileWindow.
	ReconcileAfter  time.Duration
	ReconcileWindow time.Duration
}

// Service runs the payment use cases. It is safe for concurrent use.
type Service struct {
	store    Store
	provider Provider
	tracer   trace.Tracer
	logger   *slog.Logger
	now      func() time.Time
	after    time.Duration
	window   time.Duration
	charges  metric.Int64Counter
	amount   metric.Int64Histogram
}

// New returns the service of cfg, or an error if Store or Provider is
// missing or the instruments cannot be made.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Provider == nil {
		return nil, errors.New("payment: Store and Provider are required")
	}
	s := &Service{store: cfg.Store, provider: cfg.Provider, logger: cfg.Logger, now: cfg.Now,
		after: cfg.ReconcileAfter, window: cfg.ReconcileWindow}
	if s.after <= 0 {
		s.after = DefaultReconcileAfter
	}
	if s.window <= 0 {
		s.window = DefaultReconcileWindow
	}
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tracer = tp.Tracer("github.com/cairnhq/cairn/internal/shop/payment")
	meter := mp.Meter("github.com/cairnhq/cairn/internal/shop/payment")
	var err error
	if s.charges, err = meter.Int64Counter(ChargesMetric, metric.WithUnit("{charge}"),
		metric.WithDescription("Payments reaching an outcome, by outcome: captured, declined, refunded or failed.")); err != nil {
		return nil, err
	}
	if s.amount, err = meter.Int64Histogram(AmountMetric, metric.WithUnit("{cent}"),
		metric.WithDescription("Captured amounts, in minor units of the currency."),
		metric.WithExplicitBucketBoundaries(100, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 500000)); err != nil {
		return nil, err
	}
	return s, nil
}

// ChargeCommand asks for a charge of an order, as one saga branch.
type ChargeCommand struct {
	// Key is the saga branch; the payment's id derives from it.
	Key domain.Key
	// OrderID is the order paid.
	OrderID string
	// AmountMinor and Currency are the amount.
	AmountMinor int64
	Currency    string
	// PaymentMethod is the provider's token.
	PaymentMethod string
}

// Charge charges an order once per saga branch, however often it is
// called. It returns the payment, Captured or Declined. Errors:
// domain.ErrAborted when the branch was compensated (before or while the
// charge ran; anything taken is refunded), ErrUnavailable when the
// provider could not answer (call again: the same key is sent), a
// *RejectedError when the provider refused the charge, or a store error.
func (s *Service) Charge(ctx context.Context, c ChargeCommand) (domain.Payment, error) {
	p := domain.NewPayment(c.Key, c.OrderID, c.AmountMinor, c.Currency, c.PaymentMethod, s.now().UTC())
	trace.SpanFromContext(ctx).SetAttributes(SagaIDKey.String(c.Key.SagaID), BranchIDKey.String(c.Key.BranchID),
		OrderIDKey.String(c.OrderID), PaymentIDKey.String(p.ID))
	out, err := s.store.BeginCharge(ctx, p)
	if errors.Is(err, domain.ErrAborted) {
		s.logger.InfoContext(ctx, "charge refused: its compensation ran first", "payment_id", p.ID, "order_id", c.OrderID, "saga_id", c.Key.SagaID)
		return domain.Payment{}, fmt.Errorf("charge %s: %w", p.ID, domain.ErrAborted)
	}
	if err != nil {
		return domain.Payment{}, fmt.Errorf("charge %s: %w", p.ID, err)
	}
	if out == Duplicate {
		if p, err = s.store.Get(ctx, p.ID); err != nil {
			return domain.Payment{}, fmt.Errorf("charge %s: %w", p.ID, err)
		}
	} else {
		s.logger.InfoContext(ctx, "payment pending", "payment_id", p.ID, "order_id", p.OrderID, "saga_id", c.Key.SagaID)
	}
	return s.finishCharge(ctx, p)
}

// finishCharge brings a recorded payment to its charge outcome.
func (s *Service) finishCharge(ctx context.Context, p domain.Payment) (domain.Payment, error) {
	if p.Compensated {
		return s.abort(ctx, p)
	}
	if p.Status != domain.Pending {
		return p, nil
	}
	res, err := s.callCharge(ctx, p)
	if err != nil {
		s.charges.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "failed")))
		return domain.Payment{}, fmt.Errorf("charge %s: %w", p.ID, err)
	}
	// A compensation may have canceled the payment while the provider
	// charged it: record the charge anyway, so that the refund below
	// gives it back.
	if _, err := s.transition(ctx, p, withCharge(p, res, s.now()), domain.Pending, domain.Canceled); err != nil {
		return domain.Payment{}, fmt.Errorf("charge %s: %w", p.ID, err)
	}
	cur, err := s.store.Get(ctx, p.ID)
	if err != nil {
		return domain.Payment{}, fmt.Errorf("charge %s: %w", p.ID, err)
	}
	if cur.Compensated {
		return s.abort(ctx, cur)
	}
	return cur, nil
}

// abort settles the compensation of p and returns ErrAborted.
func (s *Service) abort(ctx context.Context, p domain.Payment) (domain.Payment, error) {
	if _, err := s.settleRefund(ctx, p); err != nil {
		return domain.Payment{}, fmt.Errorf("charge %s: compensated, and its refund failed: %w", p.ID, err)
	}
	return domain.Payment{}, fmt.Errorf("charge %s: %w", p.ID, domain.ErrAborted)
}

// withCharge returns p with the provider's answer to its charge.
func withCharge(p domain.Payment, res ChargeResult, now time.Time) domain.Payment {
	p.ChargeID, p.Updated = res.ChargeID, now.UTC()
	if res.Captured {
		p.Status, p.DeclineReason = domain.Captured, ""
	} else {
		p.Status, p.DeclineReason = domain.Declined, res.DeclineReason
	}
	return p
}

// Refund compensates the charge of branch k: it refunds a captured
// charge, learns from the provider whether a Pending one was charged (and
// refunds it if so), and leaves a declined or refunded one as it is.
// found is false when there was no charge to refund: the compensation
// arrived before the charge (a null compensation, after which the charge
// is refused), or the provider never charged it (Canceled). It is
// idempotent, and resumes where a failed or interrupted call stopped.
// Errors: ErrUnavailable when the provider could not answer, or a store
// error; either way, call again.
func (s *Service) Refund(ctx context.Context, k domain.Key, reason string) (p domain.Payment, found bool, err error) {
	id := k.PaymentID()
	trace.SpanFromContext(ctx).SetAttributes(SagaIDKey.String(k.SagaID), BranchIDKey.String(k.BranchID), PaymentIDKey.String(id))
	out, err := s.store.BeginRefund(ctx, k, reason)
	if err != nil {
		return domain.Payment{}, false, fmt.Errorf("refund %s: %w", id, err)
	}
	if out == NullCompensation {
		s.logger.InfoContext(ctx, "refund before charge: null compensation", "payment_id", id, "saga_id", k.SagaID)
		return domain.Payment{}, false, nil
	}
	p, err = s.store.Get(ctx, id)
	if errors.Is(err, domain.ErrNotFound) { // a repeated null compensation
		return domain.Payment{}, false, nil
	}
	if err != nil {
		return domain.Payment{}, false, fmt.Errorf("refund %s: %w", id, err)
	}
	trace.SpanFromContext(ctx).SetAttributes(OrderIDKey.String(p.OrderID))
	if p, err = s.settleRefund(ctx, p); err != nil {
		return domain.Payment{}, false, fmt.Errorf("refund %s: %w", id, err)
	}
	return p, p.Status != domain.Canceled, nil
}

// settleRefund moves a compensated payment to Refunded, Declined or
// Canceled, calling the provider as needed. It retries the store's
// compare-and-set when a concurrent call changed the payment first.
func (s *Service) settleRefund(ctx context.Context, p domain.Payment) (domain.Payment, error) {
	for range 8 {
		switch p.Status {
		case domain.Captured:
			refundID, err := s.callRefund(ctx, p)
			if err != nil {
				return domain.Payment{}, err
			}
			q := p
			q.Status, q.RefundID, q.Updated = domain.Refunded, refundID, s.now().UTC()
			if ok, err := s.transition(ctx, p, q, domain.Captured); err != nil || ok {
				return q, err
			}
		case domain.Pending:
			res, err := s.callFind(ctx, p)
			q := p
			switch {
			case errors.Is(err, ErrNoCharge):
				q.Status, q.Updated = domain.Canceled, s.now().UTC()
			case err != nil:
				return domain.Payment{}, err
			default:
				q = withCharge(p, res, s.now())
			}
			ok, err := s.transition(ctx, p, q, domain.Pending)
			if err != nil {
				return domain.Payment{}, err
			}
			if ok && q.Status != domain.Captured {
				return q, nil
			}
			if ok {
				p = q // refund it on the next turn
				continue
			}
		default:
			return p, nil
		}
		var err error
		if p, err = s.store.Get(ctx, p.ID); err != nil {
			return domain.Payment{}, err
		}
	}
	return domain.Payment{}, fmt.Errorf("payment %s keeps changing under its refund", p.ID)
}

// Get returns the payment id. A Pending payment is resolved with the
// provider if it was charged; if not, Get fails with domain.ErrPending.
// Errors: domain.ErrNotFound, domain.ErrPending, ErrUnavailable, or a
// store error.
func (s *Service) Get(ctx context.Context, id string) (domain.Payment, error) {
	p, err := s.store.Get(ctx, id)
	if err != nil {
		return domain.Payment{}, fmt.Errorf("get payment %s: %w", id, err)
	}
	if p.Status != domain.Pending {
		return p, nil
	}
	if p.Compensated {
		return domain.Payment{}, fmt.Errorf("get payment %s: %w", id, domain.ErrPending)
	}
	res, err := s.callFind(ctx, p)
	if errors.Is(err, ErrNoCharge) {
		return domain.Payment{}, fmt.Errorf("get payment %s: %w", id, domain.ErrPending)
	}
	if err != nil {
		return domain.Payment{}, fmt.Errorf("get payment %s: %w", id, err)
	}
	if _, err := s.transition(ctx, p, withCharge(p, res, s.now()), domain.Pending); err != nil {
		return domain.Payment{}, fmt.Errorf("get payment %s: %w", id, err)
	}
	if p, err = s.store.Get(ctx, id); err != nil {
		return domain.Payment{}, fmt.Errorf("get payment %s: %w", id, err)
	}
	if p.Status == domain.Pending {
		return domain.Payment{}, fmt.Errorf("get payment %s: %w", id, domain.ErrPending)
	}
	return p, nil
}

// transition stores q if the stored status of p is one of from, and
// records the change in the metrics, the log and the span.
func (s *Service) transition(ctx context.Context, p, q domain.Payment, from ...domain.Status) (bool, error) {
	ok, err := s.store.Update(ctx, q, from...)
	if err != nil || !ok {
		return false, err
	}
	switch q.Status {
	case domain.Captured:
		s.charges.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "captured")))
		s.amount.Record(ctx, q.AmountMinor, metric.WithAttributes(attribute.String("currency", q.Currency)))
	case domain.Declined:
		s.charges.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "declined")))
	case domain.Refunded:
		s.charges.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "refunded")))
	}
	trace.SpanFromContext(ctx).AddEvent("cairn.payment.status", trace.WithAttributes(
		PaymentIDKey.String(q.ID), attribute.String("cairn.payment.status.from", string(p.Status)), StatusKey.String(string(q.Status))))
	s.logger.InfoContext(ctx, "payment "+string(q.Status), "payment_id", q.ID, "order_id", q.OrderID,
		"saga_id", q.Key.SagaID, "from", string(p.Status), "charge_id", q.ChargeID, "refund_id", q.RefundID,
		"decline_reason", q.DeclineReason)
	return true, nil
}

// callCharge charges p at the provider, in a span.
func (s *Service) callCharge(ctx context.Context, p domain.Payment) (ChargeResult, error) {
	ctx, span := s.startCall(ctx, "charge", p)
	defer span.End()
	res, err := s.provider.Charge(ctx, domain.ChargeKey(p.ID), ChargeInput{
		AmountMinor: p.AmountMinor, Currency: p.Currency, PaymentMethod: p.PaymentMethod,
	})
	if err == nil && !res.Captured {
		span.SetAttributes(attribute.String("cairn.payment.decline_reason", res.DeclineReason))
	}
	return res, endCall(span, err)
}

// callRefund refunds p's charge at the provider, in a span.
func (s *Service) callRefund(ctx context.Context, p domain.Payment) (string, error) {
	ctx, span := s.startCall(ctx, "refund", p)
	defer span.End()
	id, err := s.provider.Refund(ctx, domain.RefundKey(p.ID), p.ChargeID)
	return id, endCall(span, err)
}

// callFind looks up p's charge at the provider, in a span.
func (s *Service) callFind(ctx context.Context, p domain.Payment) (ChargeResult, error) {
	ctx, span := s.startCall(ctx, "find_charge", p)
	defer span.End()
	res, err := s.provider.FindCharge(ctx, domain.ChargeKey(p.ID))
	if errors.Is(err, ErrNoCharge) {
		span.SetAttributes(attribute.Bool("cairn.payment.provider.found", false))
		return res, err
	}
	return res, endCall(span, err)
}

func (s *Service) startCall(ctx context.Context, op string, p domain.Payment) (context.Context, trace.Span) {
	return s.tracer.Start(ctx, "payment.provider."+op, trace.WithAttributes(
		PaymentIDKey.String(p.ID), OrderIDKey.String(p.OrderID), SagaIDKey.String(p.Key.SagaID),
		attribute.Int64("cairn.payment.amount_minor", p.AmountMinor), attribute.String("cairn.payment.currency", p.Currency)))
}

func endCall(span trace.Span, err error) error {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
