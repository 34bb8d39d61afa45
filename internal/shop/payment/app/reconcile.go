package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/cairnhq/cairn/internal/shop/payment/domain"
)

// Defaults of Config.ReconcileAfter and Config.ReconcileWindow.
const (
	// DefaultReconcileAfter is how long a Canceled payment is left alone
	// before Reconcile checks it: by then a Charge call that was in flight
	// when its Refund canceled the payment has ended, having recorded the
	// charge (and refunded it itself) or stopped for good. The provider
	// client's writes are bounded well below it (provider.DefaultPipelines:
	// three attempts of at most 2s each, with at most 1s of backoff
	// between them), and so is the saga's deadline of a Charge RPC. A
	// sooner check would only race that call (safely: both refund with the
	// same idempotency key, and the compare-and-set picks one writer), or
	// find nothing yet and leave the payment for a later pass.
	DefaultReconcileAfter = 30 * time.Second
	// DefaultReconcileWindow is how old a Canceled payment may be and
	// still be checked: past it, no charge of it can still land at the
	// provider, and the checks would only grow with the payments' history.
	DefaultReconcileWindow = 24 * time.Hour
)

// reconcilePage is how many payments Reconcile reads from the store at a
// time.
const reconcilePage = 100

// Reconcile closes the one window the use cases leave open: a Refund
// canceled a Pending payment while its charge was at the provider, and the
// Charge call that made it stopped between the provider's capture and
// recording it. For every Canceled payment whose last change is older than
// ReconcileAfter and younger than ReconcileWindow, it looks the charge up
// at the provider by the payment's idempotency key; a captured charge not
// refunded yet is refunded (with the key Refund uses), one refunded
// already is recorded, and the payment becomes Refunded by a
// compare-and-set from Canceled. A payment the provider never charged is
// left as it is. It returns how many payments it moved to Refunded.
//
// It is safe to run at once in several processes: the provider refunds
// once per key, and one compare-and-set wins. It stops at the first error
// (the provider unavailable, or a store error), returning the count so far;
// the next pass resumes. Each call is a span "payment.reconcile" with the
// count as the attribute cairn.payment.reconciled.
func (s *Service) Reconcile(ctx context.Context) (n int, err error) {
	ctx, span := s.tracer.Start(ctx, "payment.reconcile")
	defer func() {
		span.SetAttributes(attribute.Int("cairn.payment.reconciled", n))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	now := s.now()
	from, to := now.Add(-s.window), now.Add(-s.after)
	var after domain.Payment
	for {
		page, err := s.store.Canceled(ctx, from, to, after, reconcilePage)
		if err != nil {
			return n, fmt.Errorf("reconcile: %w", err)
		}
		for _, p := range page {
			ok, err := s.reconcile(ctx, p)
			if err != nil {
				return n, fmt.Errorf("reconcile %s: %w", p.ID, err)
			}
			if ok {
				n++
			}
		}
		if len(page) < reconcilePage {
			return n, nil
		}
		after = page[len(page)-1]
	}
}

// reconcile refunds the late capture of the Canceled payment p, if any,
// and reports whether it recorded p Refunded.
func (s *Service) reconcile(ctx context.Context, p domain.Payment) (bool, error) {
	res, err := s.callFind(ctx, p)
	if errors.Is(err, ErrNoCharge) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !res.Captured {
		return false, nil // declined: nothing was taken
	}
	q := p
	q.ChargeID, q.RefundID = res.ChargeID, res.RefundID
	if !res.Refunded {
		if q.RefundID, err = s.callRefund(ctx, q); err != nil {
			return false, err
		}
	}
	q.Status, q.Updated = domain.Refunded, s.now().UTC()
	ok, err := s.transition(ctx, p, q, domain.Canceled)
	if err != nil || !ok {
		return false, err
	}
	s.logger.WarnContext(ctx, "late capture refunded by reconciliation", "order_id", q.OrderID, "payment_id", q.ID,
		"saga_id", q.Key.SagaID, "charge_id", q.ChargeID, "refund_id", q.RefundID)
	return true, nil
}
