// Package app holds the payment service's use cases, Charge, Refund and
// Get, and the reconciliation of late captures (Reconcile), and declares the ports they need: a Store for the payments and the
// saga barrier, and a Provider, the external payment provider.
//
// The use cases never hold a database transaction across a call to the
// provider. A charge commits its barrier row and a Pending payment first,
// then calls the provider with the payment's id as the idempotency key,
// then records the outcome; every step can be repeated after a crash or
// by a duplicate request, with one effect at the provider.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/internal/shop/payment/domain"
)

// Store keeps payments and the saga barrier of the payment service in one
// database. Implementations must be safe for concurrent use.
type Store interface {
	// BeginCharge runs the action of branch p.Key through the saga
	// barrier and, when it is new (Executed), inserts p in the same
	// transaction. An action refused because its compensation ran first
	// returns an error matching domain.ErrAborted.
	BeginCharge(ctx context.Context, p domain.Payment) (Outcome, error)
	// BeginRefund runs the compensation of branch k through the saga
	// barrier and, when it is Executed, marks the branch's payment
	// Compensated with reason, in the same transaction. A compensation
	// that arrives before its action is a NullCompensation.
	BeginRefund(ctx context.Context, k domain.Key, reason string) (Outcome, error)
	// Get returns the payment id, or an error matching domain.ErrNotFound.
	Get(ctx context.Context, id string) (domain.Payment, error)
	// Update writes p's Status, DeclineReason, ChargeID, RefundID and
	// Updated if the stored payment's status is one of from, and reports
	// whether it did (a compare-and-set).
	Update(ctx context.Context, p domain.Payment, from ...domain.Status) (bool, error)
	// Canceled returns up to limit Canceled payments whose Updated is in
	// [from, to), ordered by Updated then ID, starting after the payment
	// after (its Updated and ID; a zero after starts at from): the pages
	// of the reconciliation.
	Canceled(ctx context.Context, from, to time.Time, after domain.Payment, limit int) ([]domain.Payment, error)
}

// Outcome is what the saga barrier did with an operation of a branch.
type Outcome int

// The outcomes of a barrier call that succeeded.
const (
	// Executed means the operation was new, and its writes committed.
	Executed Outcome = iota + 1
	// Duplicate means the operation had been recorded before: nothing was
	// written.
	Duplicate
	// NullCompensation means a compensation arrived before its action:
	// nothing was written, and the action will be refused.
	NullCompensation
)

// Provider is the external payment provider. Its writes are idempotent by
// key: sent again with the same key, a charge or a refund returns the
// first result and has no second effect. Implementations must be safe for
// concurrent use.
type Provider interface {
	// Charge charges the payment method with key. A declined charge is
	// a ChargeResult, not an error.
	Charge(ctx context.Context, key string, c ChargeInput) (ChargeResult, error)
	// Refund refunds the charge chargeID in full with key, returning the
	// refund's id.
	Refund(ctx context.Context, key, chargeID string) (string, error)
	// FindCharge returns the charge made with key, or an error matching
	// ErrNoCharge when the provider made none.
	FindCharge(ctx context.Context, key string) (ChargeResult, error)
}

// ChargeInput is what a charge takes.
type ChargeInput struct {
	// AmountMinor and Currency are the amount.
	AmountMinor int64
	Currency    string
	// PaymentMethod is the provider's token.
	PaymentMethod string
}

// ChargeResult is the provider's answer to a charge.
type ChargeResult struct {
	// ChargeID is the provider's id of the charge.
	ChargeID string
	// Captured reports whether the amount was taken; false means declined.
	Captured bool
	// DeclineReason says why it was declined.
	DeclineReason string
	// Refunded reports whether a captured charge was refunded since, by
	// the refund RefundID (FindCharge only).
	Refunded bool
	RefundID string
}

// Errors a Provider returns.
var (
	// ErrNoCharge is the error of FindCharge when the provider made no
	// charge with the key.
	ErrNoCharge = errors.New("payment: provider: no charge with this key")
	// ErrUnavailable matches the errors of a provider that could not be
	// reached, failed, or whose circuit breaker is open: the call may be
	// repeated later with the same key.
	ErrUnavailable = errors.New("payment: provider unavailable")
)

// RejectedError is the error of a call the provider refused for a reason
// that a retry will not change (an HTTP 4xx status), such as an expired
// payment method.
type RejectedError struct {
	// Status is the provider's HTTP status code.
	Status int
	// Detail is the provider's explanation.
	Detail string
}

// Error names the status and the provider's explanation.
func (e *RejectedError) Error() string {
	return fmt.Sprintf("payment: provider refused the call (%d): %s", e.Status, e.Detail)
}

// InvalidRequest reports whether the provider rejected the request itself
// (400 or 422) rather than the state of the payment method or charge.
func (e *RejectedError) InvalidRequest() bool { return e.Status == 400 || e.Status == 422 }
