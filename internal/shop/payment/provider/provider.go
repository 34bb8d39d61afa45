// Package provider simulates an external payment service provider (a PSP,
// such as Stripe) that the payment service calls over HTTP with JSON bodies,
// and holds the typed client that calls it.
//
// The provider is "someone else's system": [Server] keeps its charges and
// refunds in memory, deduplicates writes by their Idempotency-Key header as
// real PSPs do, and can be made to fail, slow down or decline through
// [ServerConfig]. Its API:
//
//	POST /v1/charges                    {"amount_minor","currency","payment_method"}, Idempotency-Key required
//	POST /v1/refunds                    {"charge_id"}, Idempotency-Key required
//	GET  /v1/charges/{id}               a charge
//	GET  /v1/charges?idempotency_key=K  the charge made with key K, 404 if none
//
// Errors are RFC 9457 problem details (package problem). Writes are
// idempotent: the same key with the same body returns the first result, and
// with a different body 422 naming the difference.
//
// [Client] calls it through two resilience pipelines the caller chooses,
// one for writes and one for reads, and returns a [*ProviderError] for
// every failure; [DefaultPipelines] builds sensible ones in code.
package provider

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Charge statuses.
const (
	// StatusCaptured is a charge whose amount was taken.
	StatusCaptured = "captured"
	// StatusDeclined is a charge the issuer declined: nothing was taken.
	StatusDeclined = "declined"
)

// Test payment method tokens with fixed behaviour. Any other token that
// starts with "tok_" behaves like TokenVisa.
const (
	// TokenVisa succeeds, unless ServerConfig.DeclineRate declines it.
	TokenVisa = "tok_visa"
	// TokenDecline is always declined, with reason "card declined".
	TokenDecline = "tok_decline"
	// TokenExpired is refused with 402: the payment method has expired.
	TokenExpired = "tok_expired"
	// TokenRevoked is refused with 402: the payment method was revoked.
	TokenRevoked = "tok_revoked"
)

// ChargeRequest is the body of POST /v1/charges.
type ChargeRequest struct {
	// AmountMinor is the amount in the currency's minor unit; positive.
	AmountMinor int64 `json:"amount_minor"`
	// Currency is an ISO 4217 code of three upper-case letters.
	Currency string `json:"currency"`
	// PaymentMethod is a payment method token, such as TokenVisa.
	PaymentMethod string `json:"payment_method"`
}

// Charge is a charge the provider made, captured or declined.
type Charge struct {
	// ID is the provider's id of the charge, "ch_" and a number.
	ID string `json:"id"`
	// Status is StatusCaptured or StatusDeclined.
	Status string `json:"status"`
	// DeclineReason says why a declined charge was declined; empty
	// otherwise.
	DeclineReason string `json:"decline_reason,omitempty"`
	// AmountMinor and Currency are the charged amount.
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	// PaymentMethod is the token charged.
	PaymentMethod string `json:"payment_method"`
	// IdempotencyKey is the key of the request that made the charge.
	IdempotencyKey string `json:"idempotency_key"`
	// Refunded reports whether the charge was refunded, by RefundID.
	Refunded bool   `json:"refunded"`
	RefundID string `json:"refund_id,omitempty"`
	// Created is when the charge was made.
	Created time.Time `json:"created"`
}

// Refund is a refund of a captured charge, in full.
type Refund struct {
	// ID is the provider's id of the refund, "re_" and a number.
	ID string `json:"id"`
	// ChargeID is the refunded charge.
	ChargeID string `json:"charge_id"`
	// Status is always "succeeded".
	Status string `json:"status"`
	// AmountMinor and Currency are the refunded amount: the charge's.
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	// IdempotencyKey is the key of the request that made the refund.
	IdempotencyKey string `json:"idempotency_key"`
	// Created is when the refund was made.
	Created time.Time `json:"created"`
}

// refundRequest is the body of POST /v1/refunds.
type refundRequest struct {
	ChargeID string `json:"charge_id"`
}

// ErrNotFound matches, with errors.Is, the *ProviderError of a 404: no
// such charge, or no charge made with the key looked up.
var ErrNotFound = errors.New("provider: not found")

// ProviderError is the error of a failed call to the provider: an error
// status (Status, with the problem details' Title and Detail) or, with
// Status 0, a failure to get any response (Err: a transport error, a
// timeout, an open circuit breaker).
type ProviderError struct {
	// Op names the call, such as "POST /v1/charges".
	Op string
	// Status is the response's HTTP status code, or 0 when there was no
	// response.
	Status int
	// Title and Detail are the problem details of the response, if any.
	Title  string
	Detail string
	// Err is the cause when there was no response; nil otherwise.
	Err error
}

// Error names the call, then the status and detail or the cause.
func (e *ProviderError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("provider: %s: %v", e.Op, e.Err)
	}
	if e.Detail == "" {
		return fmt.Sprintf("provider: %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("provider: %s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Detail)
}

// Unwrap returns the cause of a call without a response.
func (e *ProviderError) Unwrap() error { return e.Err }

// Is reports whether target is ErrNotFound and the status 404.
func (e *ProviderError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Retryable reports whether the call may succeed if sent again with the
// same idempotency key: no response, 429 or a 5xx status. A 4xx other than
// 429 will fail again.
func (e *ProviderError) Retryable() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Overloaded reports whether the provider refused the call for overload
// (429 or 503), for resilience.IsOverload.
func (e *ProviderError) Overloaded() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
}

// Retryable reports whether err is a *ProviderError that is retryable.
func Retryable(err error) bool {
	pe, ok := errors.AsType[*ProviderError](err)
	return ok && pe.Retryable()
}
