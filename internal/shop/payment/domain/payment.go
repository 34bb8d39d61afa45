// Package domain holds the payment service's entities and their rules: a
// Payment, the states it moves through between the local database and the
// external payment provider, and the ids derived from a saga branch. It
// does no I/O.
package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Status is where a payment is. A charge moves Pending -> Captured or
// Declined; a compensation moves Captured -> Refunded, and a Pending one
// to Canceled when the provider never charged it.
type Status string

// The statuses of a payment.
const (
	// Pending: the payment is recorded, and the provider's answer to its
	// charge is not (the call is in flight, failed, or the process
	// stopped before recording it).
	Pending Status = "PENDING"
	// Captured: the provider took the amount.
	Captured Status = "CAPTURED"
	// Declined: the provider declined the charge; nothing was taken.
	Declined Status = "DECLINED"
	// Refunded: the captured amount was given back in full.
	Refunded Status = "REFUNDED"
	// Canceled: the charge was compensated before the provider charged
	// anything; nothing was taken.
	Canceled Status = "CANCELED"
)

// Terminal reports whether s is final for the charge: every status but
// Pending.
func (s Status) Terminal() bool { return s != Pending }

// Key identifies a saga branch: the barrier's key of a Charge and of its
// Refund.
type Key struct {
	// SagaID is the saga's id.
	SagaID string
	// BranchID is the branch's id within the saga.
	BranchID string
}

// PaymentID returns the id of the payment of branch k: "pay_" and 24 hex
// digits of a hash of the saga and branch ids, so that every retry of the
// branch, and its compensation, finds the same payment.
func (k Key) PaymentID() string {
	h := sha256.Sum256([]byte(k.SagaID + "\x00" + k.BranchID))
	return "pay_" + hex.EncodeToString(h[:12])
}

// ChargeKey returns the idempotency key of the payment's charge at the
// provider: its id.
func ChargeKey(paymentID string) string { return paymentID }

// RefundKey returns the idempotency key of the payment's refund at the
// provider.
func RefundKey(paymentID string) string { return paymentID + "/refund" }

// Payment is one charge of one order, and its compensation.
type Payment struct {
	// ID is Key.PaymentID of the branch that charges it.
	ID string
	// Key is the saga branch of the charge.
	Key Key
	// OrderID is the order paid.
	OrderID string
	// AmountMinor and Currency are the amount, in minor units of an ISO
	// 4217 currency.
	AmountMinor int64
	Currency    string
	// PaymentMethod is the provider's token of the payment method.
	PaymentMethod string
	// Status is where the payment is.
	Status Status
	// DeclineReason says why the provider declined the charge, for
	// Declined.
	DeclineReason string
	// ChargeID and RefundID are the provider's ids of the charge and the
	// refund, once known.
	ChargeID string
	RefundID string
	// Compensated reports that the saga compensated the charge: the
	// payment must end Refunded, Declined or Canceled, never Captured.
	Compensated bool
	// RefundReason is the reason the compensation gave, if any.
	RefundReason string
	// Created and Updated are when the payment was recorded and last
	// changed status.
	Created time.Time
	Updated time.Time
}

// NewPayment returns the Pending payment of branch k.
func NewPayment(k Key, orderID string, amountMinor int64, currency, method string, now time.Time) Payment {
	return Payment{
		ID: k.PaymentID(), Key: k, OrderID: orderID, AmountMinor: amountMinor, Currency: currency,
		PaymentMethod: method, Status: Pending, Created: now, Updated: now,
	}
}

// Errors of the payment service's use cases.
var (
	// ErrNotFound is the error of a payment that does not exist.
	ErrNotFound = errors.New("payment: not found")
	// ErrAborted is the error of a Charge whose branch was compensated
	// (its Refund arrived first, or while it ran): the charge has no
	// effect, and must not be retried.
	ErrAborted = errors.New("payment: aborted: the charge was compensated")
	// ErrPending is the error of reading a payment whose charge outcome is
	// not known yet.
	ErrPending = errors.New("payment: pending: the charge's outcome is not known yet")
)

// currencies are the ISO 4217 codes the shop accepts, sorted.
var currencies = []string{
	"AED", "ARS", "AUD", "BRL", "CAD", "CHF", "CLP", "CNY", "COP", "CZK", "DKK", "EGP", "EUR", "GBP",
	"HKD", "HUF", "IDR", "ILS", "INR", "ISK", "JPY", "KRW", "MXN", "MYR", "NOK", "NZD", "PEN", "PHP",
	"PLN", "RON", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "VND", "ZAR",
}

// KnownCurrency reports whether code is an ISO 4217 code the shop accepts.
func KnownCurrency(code string) bool {
	_, ok := slices.BinarySearch(currencies, code)
	return ok
}

// ValidateCharge checks a charge's amount, currency and payment method,
// returning an error that names the first invalid field.
func ValidateCharge(amountMinor int64, currency, method string) error {
	switch {
	case amountMinor <= 0:
		return fmt.Errorf("amount.amount_minor must be positive, got %d", amountMinor)
	case !KnownCurrency(currency):
		return fmt.Errorf("amount.currency_code %q is not a known ISO 4217 code", currency)
	case method == "":
		return errors.New("payment_method_token is required")
	}
	return nil
}
