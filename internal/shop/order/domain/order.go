// Package domain holds the order aggregate of the shop's order service: the
// Order entity, its lines and status, and the invariants a valid order keeps.
//
// The package imports nothing of the project and does no I/O; it is pure and
// safe for concurrent use, since every value it hands out is a copy.
package domain

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Limits enforced by [NewOrder].
const (
	// MinQuantity is the smallest quantity a line may order.
	MinQuantity = 1
	// MaxQuantity is the largest quantity a line may order.
	MaxQuantity = 1000
)

// ErrNotFound reports that no order has the requested ID. Repositories and use
// cases wrap it, so test for it with [errors.Is].
var ErrNotFound = errors.New("order: not found")

// ErrAlreadyExists reports that an order with the same ID has already been
// stored. Repositories wrap it, so test for it with [errors.Is].
var ErrAlreadyExists = errors.New("order: already exists")

// ErrInvalid is the sentinel every [ValidationError] matches with
// [errors.Is], for callers that only need to know that input was rejected.
var ErrInvalid = errors.New("order: invalid")

// ValidationError reports input that violates an invariant of [Order]. Its
// message names the field and the offending value, for example
// "order: line 2: quantity 0 out of range [1,1000]", and is safe to show to
// clients. It matches [ErrInvalid] with [errors.Is].
type ValidationError struct {
	// Line is the 1-based number of the offending line, or 0 when the error
	// concerns the order as a whole.
	Line int
	// Field is the name of the offending field as it appears on the wire,
	// for example "customer_id", "lines", "sku", "quantity" or "unit_price".
	Field string
	// Value is the rejected value.
	Value any
	// Reason says what is wrong with Value, for example
	// "out of range [1,1000]".
	Reason string
}

// Error implements error.
func (e *ValidationError) Error() string {
	prefix := "order: "
	if e.Line > 0 {
		prefix = fmt.Sprintf("order: line %d: ", e.Line)
	}
	if s, ok := e.Value.(string); ok {
		return fmt.Sprintf("%s%s %q %s", prefix, e.Field, s, e.Reason)
	}
	return fmt.Sprintf("%s%s %v %s", prefix, e.Field, e.Value, e.Reason)
}

// Is reports whether target is [ErrInvalid].
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Status is the lifecycle state of an [Order]. The zero value is
// [StatusUnknown], which no valid order has.
//
// An order is placed, and the checkout saga then moves it forward
// (reserved, paid, scheduled, confirmed) or, when a step fails, through
// compensating to cancelled; an order whose compensation cannot finish
// is failed. Confirmed, cancelled and failed are final.
type Status int

// The statuses an order can be in.
const (
	// StatusUnknown is the zero Status; no valid order has it.
	StatusUnknown Status = iota
	// StatusPlaced is the status of an order that has been accepted and
	// waits for its checkout saga to reserve its stock.
	StatusPlaced
	// StatusReserved: the order's stock is reserved.
	StatusReserved
	// StatusPaid: the order is paid.
	StatusPaid
	// StatusScheduled: the order's shipment is scheduled.
	StatusScheduled
	// StatusConfirmed: the checkout completed. Final.
	StatusConfirmed
	// StatusCompensating: a checkout step failed and the completed ones
	// are being undone.
	StatusCompensating
	// StatusCancelled: the checkout undid every completed step. Final.
	StatusCancelled
	// StatusFailed: the checkout could neither complete nor fully
	// compensate; an operator must look. Final.
	StatusFailed
)

var statusNames = [...]string{
	StatusUnknown:      "unknown",
	StatusPlaced:       "placed",
	StatusReserved:     "reserved",
	StatusPaid:         "paid",
	StatusScheduled:    "scheduled",
	StatusConfirmed:    "confirmed",
	StatusCompensating: "compensating",
	StatusCancelled:    "cancelled",
	StatusFailed:       "failed",
}

// String returns the lower-case name of s, such as "placed", as stored and
// sent on the wire.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Final reports whether s is a status an order never leaves: confirmed,
// cancelled or failed.
func (s Status) Final() bool {
	return s == StatusConfirmed || s == StatusCancelled || s == StatusFailed
}

// rank orders the statuses of the forward path and of the compensation
// path, so that a late or repeated change never moves an order back.
func (s Status) rank() int {
	switch s {
	case StatusPlaced:
		return 1
	case StatusReserved:
		return 2
	case StatusPaid:
		return 3
	case StatusScheduled:
		return 4
	case StatusCompensating:
		return 5
	case StatusConfirmed, StatusCancelled, StatusFailed:
		return 6
	}
	return 0
}

// CanMove reports whether an order in status s may change to next: only
// forward (placed, reserved, paid, scheduled, then confirmed; or from any
// of those to compensating, and from compensating to cancelled or
// failed), never from a final status, never to the same status. The
// checkout saga's steps are retried and resumed after crashes, so a
// change may arrive twice or late; CanMove is what makes applying it
// idempotent.
func (s Status) CanMove(next Status) bool {
	if s.Final() || next.rank() <= s.rank() {
		return false
	}
	switch next {
	case StatusConfirmed:
		return s == StatusScheduled
	case StatusCancelled, StatusFailed:
		return s == StatusCompensating
	}
	return true
}

// ParseStatus returns the Status whose [Status.String] is s. It returns an
// error wrapping [ErrInvalid] for any other string, including "unknown".
func ParseStatus(s string) (Status, error) {
	for i, name := range statusNames {
		if i > 0 && name == s {
			return Status(i), nil
		}
	}
	return StatusUnknown, &ValidationError{Field: "status", Value: s, Reason: "is not a known status"}
}

// Line is one line of an order: a quantity of one stock-keeping unit at a
// unit price.
type Line struct {
	// SKU identifies the product; it must not be empty.
	SKU string
	// Quantity is the number of units, in [MinQuantity, MaxQuantity].
	Quantity int
	// UnitPrice is the price of one unit in cents; it must not be negative.
	UnitPrice int64
}

// Order is the order aggregate. Build new orders with [NewOrder], which
// enforces the invariants; repositories rebuild stored orders field by field.
// An Order is a value: copying it copies the header but shares Lines, so
// treat Lines as read-only.
type Order struct {
	// ID identifies the order; it is never empty.
	ID string
	// CustomerID identifies the customer who placed the order.
	CustomerID string
	// Lines holds at least one line, in the order the customer gave them.
	Lines []Line
	// Total is the sum of Quantity*UnitPrice over Lines, in cents. It is
	// derived by NewOrder and never overflows int64.
	Total int64
	// Status is the lifecycle state of the order.
	Status Status
	// CreatedAt is when the order was placed, in UTC without a monotonic
	// clock reading, so it survives a round trip through storage unchanged.
	CreatedAt time.Time
	// UpdatedAt is when Status last changed; CreatedAt for a new order.
	UpdatedAt time.Time
	// StatusReason says why the order is compensating, cancelled or
	// failed; empty otherwise.
	StatusReason string
	// SagaID identifies the checkout saga of the order; empty before it
	// started.
	SagaID string
	// PaymentMethod is the opaque token of the customer's payment method
	// that the checkout charges.
	PaymentMethod string
	// ShipTo is where the order is shipped.
	ShipTo Address
}

// Address is a postal address to ship to.
type Address struct {
	// Recipient is the name on the parcel.
	Recipient string
	// Lines are the street lines, most specific first.
	Lines []string
	// Locality is the city.
	Locality string
	// PostalCode is the postal code, where the country uses them.
	PostalCode string
	// RegionCode is the ISO 3166-1 alpha-2 country code, such as "DE".
	RegionCode string
}

// NewOrder returns a placed order with the given ID, customer and lines,
// created at now. It copies lines and derives the total.
//
// NewOrder returns a *[ValidationError] (matching [ErrInvalid]) naming the
// first field that is wrong: an empty id or customer, no lines, an empty
// SKU, a quantity outside [MinQuantity, MaxQuantity], a negative unit price,
// or a total that overflows int64.
func NewOrder(id, customer string, lines []Line, now time.Time) (Order, error) {
	if id == "" {
		return Order{}, &ValidationError{Field: "id", Value: id, Reason: "must not be empty"}
	}
	if customer == "" {
		return Order{}, &ValidationError{Field: "customer_id", Value: customer, Reason: "must not be empty"}
	}
	if len(lines) == 0 {
		return Order{}, &ValidationError{Field: "lines", Value: 0, Reason: "lines given, want at least 1"}
	}
	var total int64
	for i, l := range lines {
		n := i + 1
		if l.SKU == "" {
			return Order{}, &ValidationError{Line: n, Field: "sku", Value: l.SKU, Reason: "must not be empty"}
		}
		if l.Quantity < MinQuantity || l.Quantity > MaxQuantity {
			return Order{}, &ValidationError{Line: n, Field: "quantity", Value: l.Quantity,
				Reason: fmt.Sprintf("out of range [%d,%d]", MinQuantity, MaxQuantity)}
		}
		if l.UnitPrice < 0 {
			return Order{}, &ValidationError{Line: n, Field: "unit_price", Value: l.UnitPrice, Reason: "must not be negative"}
		}
		q := int64(l.Quantity)
		if l.UnitPrice > (math.MaxInt64-total)/q {
			return Order{}, &ValidationError{Line: n, Field: "unit_price", Value: l.UnitPrice,
				Reason: fmt.Sprintf("times quantity %d overflows the order total", l.Quantity)}
		}
		total += q * l.UnitPrice
	}
	return Order{
		ID:         id,
		CustomerID: customer,
		Lines:      append([]Line(nil), lines...),
		Total:      total,
		Status:     StatusPlaced,
		CreatedAt:  now.Round(0).UTC(),
		UpdatedAt:  now.Round(0).UTC(),
	}, nil
}
