// Package domain holds the model of the shop's inventory service: the stock
// of a sku (on hand, reserved, available), reservations that hold stock for
// an order until they are confirmed, released or expire, and the invariants
// both keep.
//
// The package imports nothing of the project and does no I/O. Its values are
// plain data, safe to copy; methods never modify their receiver but return
// the changed value.
package domain

import (
	"errors"
	"fmt"
	"time"
)

// Limits enforced by the validation functions.
const (
	// MaxLines is the most lines one reservation may hold.
	MaxLines = 100
	// MaxSKUs is the most skus one stock query may ask for.
	MaxSKUs = 100
	// DefaultTTL is how long a reservation holds its stock when no TTL
	// is given.
	DefaultTTL = 15 * time.Minute
)

// Key is the idempotency key of one saga branch: the saga's id and the
// branch's id, the same for an action and its compensation.
type Key struct {
	// SagaID is the saga's id, unique per saga run.
	SagaID string
	// BranchID is the branch's id within the saga.
	BranchID string
}

// Validate returns a *[ValidationError] naming the first empty field, as
// the field is named on the wire ("idempotency.saga_id").
func (k Key) Validate() error {
	switch {
	case k.SagaID == "":
		return &ValidationError{Field: "idempotency.saga_id", Reason: "is required"}
	case k.BranchID == "":
		return &ValidationError{Field: "idempotency.branch_id", Reason: "is required"}
	}
	return nil
}

// String returns "saga/branch".
func (k Key) String() string { return k.SagaID + "/" + k.BranchID }

// Stock is the stock level of one sku. A valid Stock keeps
// 0 <= Reserved <= OnHand.
type Stock struct {
	// SKU is the stock keeping unit, e.g. "SKU-0042".
	SKU string
	// OnHand is the number of units in the warehouse, including the
	// reserved ones.
	OnHand int
	// Reserved is the number of units held by active reservations.
	Reserved int
}

// Available returns the units that can be reserved: OnHand - Reserved.
func (s Stock) Available() int { return s.OnHand - s.Reserved }

// Reserve returns s with q more units reserved, or an
// *[InsufficientStockError] naming the sku and the numbers if fewer than q
// units are available. q must be positive.
func (s Stock) Reserve(q int) (Stock, error) {
	if q <= 0 {
		return s, &ValidationError{Field: "quantity", Value: q, Reason: "must be positive"}
	}
	if s.Available() < q {
		return s, &InsufficientStockError{SKU: s.SKU, Requested: q, OnHand: s.OnHand, Reserved: s.Reserved}
	}
	s.Reserved += q
	return s, nil
}

// Release returns s with q reserved units made available again. Reserved
// never drops below zero.
func (s Stock) Release(q int) Stock {
	s.Reserved = max(s.Reserved-q, 0)
	return s
}

// Sell returns s with q reserved units sold: they leave both Reserved and
// OnHand. Neither drops below zero.
func (s Stock) Sell(q int) Stock {
	s.Reserved = max(s.Reserved-q, 0)
	s.OnHand = max(s.OnHand-q, 0)
	return s
}

// SetOnHand returns s with onHand units on hand, but never fewer than
// Reserved: the units of active reservations stay held, so setting a sku
// to zero (a stock-out) leaves nothing available but breaks no
// reservation. It returns a *[ValidationError] for a negative onHand.
func (s Stock) SetOnHand(onHand int) (Stock, error) {
	if onHand < 0 {
		return s, &ValidationError{Field: "on_hand", Value: onHand, Reason: "must not be negative"}
	}
	s.OnHand = max(onHand, s.Reserved)
	return s, nil
}

// State is where a reservation is in its life. The zero value, StateNone,
// means there is no reservation.
type State int

// The states of a reservation.
const (
	// StateNone is the zero State: no reservation (Release answers it
	// when nothing was reserved).
	StateNone State = iota
	// StateActive holds stock until the expire time.
	StateActive
	// StateConfirmed means the stock is sold.
	StateConfirmed
	// StateReleased means the reservation was compensated; its stock is
	// available again.
	StateReleased
	// StateExpired means the reservation expired before it was
	// confirmed; its stock is available again.
	StateExpired
)

// String returns the state's lower-case name, as stored: "active",
// "confirmed", "released", "expired", or "none".
func (s State) String() string {
	switch s {
	case StateNone:
		return "none"
	case StateActive:
		return "active"
	case StateConfirmed:
		return "confirmed"
	case StateReleased:
		return "released"
	case StateExpired:
		return "expired"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState returns the State whose String is s, or an error.
func ParseState(s string) (State, error) {
	for st := StateActive; st <= StateExpired; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return StateNone, fmt.Errorf("inventory: unknown reservation state %q", s)
}

// Line is a quantity of one sku in a reservation.
type Line struct {
	// SKU is the stock keeping unit.
	SKU string
	// Quantity is the number of units, positive.
	Quantity int
}

// ValidateLines returns a *[ValidationError] naming the first invalid line
// ("lines[2].quantity"): no lines, more than [MaxLines], an empty sku, a
// non-positive quantity or a sku that appears twice.
func ValidateLines(lines []Line) error {
	if len(lines) == 0 {
		return &ValidationError{Field: "lines", Reason: "must not be empty"}
	}
	if len(lines) > MaxLines {
		return &ValidationError{Field: "lines", Value: len(lines), Reason: fmt.Sprintf("lines given, want at most %d", MaxLines)}
	}
	seen := make(map[string]int, len(lines))
	for i, l := range lines {
		if l.SKU == "" {
			return &ValidationError{Field: fmt.Sprintf("lines[%d].sku", i), Reason: "is required"}
		}
		if l.Quantity <= 0 {
			return &ValidationError{Field: fmt.Sprintf("lines[%d].quantity", i), Value: l.Quantity, Reason: "must be positive"}
		}
		if j, ok := seen[l.SKU]; ok {
			return &ValidationError{Field: fmt.Sprintf("lines[%d].sku", i), Value: l.SKU, Reason: fmt.Sprintf("repeats lines[%d]: at most one line per sku", j)}
		}
		seen[l.SKU] = i
	}
	return nil
}

// ValidateSKUs returns a *[ValidationError] unless skus holds 1 to
// [MaxSKUs] non-empty skus.
func ValidateSKUs(skus []string) error {
	if len(skus) == 0 {
		return &ValidationError{Field: "skus", Reason: "must not be empty"}
	}
	if len(skus) > MaxSKUs {
		return &ValidationError{Field: "skus", Value: len(skus), Reason: fmt.Sprintf("skus given, want at most %d", MaxSKUs)}
	}
	for i, s := range skus {
		if s == "" {
			return &ValidationError{Field: fmt.Sprintf("skus[%d]", i), Reason: "must not be empty"}
		}
	}
	return nil
}

// Reservation holds stock for an order's lines, on behalf of one saga
// branch, until it is confirmed, released or expires.
type Reservation struct {
	// ID identifies the reservation (for Confirm).
	ID string
	// Key is the saga branch that made the reservation.
	Key Key
	// OrderID is the order the stock is held for.
	OrderID string
	// Lines are the reserved quantities, at most one per sku.
	Lines []Line
	// State is where the reservation is in its life.
	State State
	// ExpireTime is when an active reservation expires.
	ExpireTime time.Time
	// CreateTime and UpdateTime are when the reservation was made and
	// last changed state.
	CreateTime, UpdateTime time.Time
}

// NewReservation returns an active reservation made at now for ttl (or
// [DefaultTTL] when ttl is zero). It returns a *[ValidationError] for an
// invalid key, an empty id or order id, a negative ttl or invalid lines.
// Times are in UTC, without a monotonic reading.
func NewReservation(id string, key Key, orderID string, lines []Line, ttl time.Duration, now time.Time) (Reservation, error) {
	if err := key.Validate(); err != nil {
		return Reservation{}, err
	}
	if orderID == "" {
		return Reservation{}, &ValidationError{Field: "order_id", Reason: "is required"}
	}
	if err := ValidateLines(lines); err != nil {
		return Reservation{}, err
	}
	if ttl < 0 {
		return Reservation{}, &ValidationError{Field: "ttl", Value: ttl, Reason: "must not be negative"}
	}
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if id == "" {
		return Reservation{}, &ValidationError{Field: "id", Reason: "is required"}
	}
	now = now.Round(0).UTC()
	return Reservation{
		ID: id, Key: key, OrderID: orderID,
		Lines:      append([]Line(nil), lines...),
		State:      StateActive,
		ExpireTime: now.Add(ttl), CreateTime: now, UpdateTime: now,
	}, nil
}

// Overdue reports whether r is active but past its expire time at now: it
// counts as expired, whether or not a sweeper has marked it yet.
func (r Reservation) Overdue(now time.Time) bool {
	return r.State == StateActive && !now.Before(r.ExpireTime)
}

// Units returns the total quantity of r's lines.
func (r Reservation) Units() int {
	n := 0
	for _, l := range r.Lines {
		n += l.Quantity
	}
	return n
}

// Expire returns r expired at now if it is overdue; ok reports whether it
// changed. The caller returns its stock with [Stock.Release].
func (r Reservation) Expire(now time.Time) (_ Reservation, ok bool) {
	if !r.Overdue(now) {
		return r, false
	}
	r.State, r.UpdateTime = StateExpired, now.Round(0).UTC()
	return r, true
}

// Release returns r released at now (the compensation of its Reserve).
// An overdue reservation expires instead. Releasing a released or expired
// reservation changes nothing. changed reports whether the state changed
// (the caller then returns the stock with [Stock.Release]); a confirmed
// reservation gives a *[StateError].
func (r Reservation) Release(now time.Time) (_ Reservation, changed bool, err error) {
	if r, ok := r.Expire(now); ok {
		return r, true, nil
	}
	switch r.State {
	case StateActive:
		r.State, r.UpdateTime = StateReleased, now.Round(0).UTC()
		return r, true, nil
	case StateReleased, StateExpired:
		return r, false, nil
	}
	return r, false, &StateError{ID: r.ID, State: r.State, Op: "release"}
}

// Confirm returns r confirmed at now: its stock is sold (the caller sells
// it with [Stock.Sell]). Confirming a confirmed reservation changes
// nothing. An overdue reservation expires instead: changed is true, and
// the caller, after returning its stock with [Stock.Release], reports
// [Reservation.ConfirmErr]. A released or expired reservation gives a
// *[StateError].
func (r Reservation) Confirm(now time.Time) (_ Reservation, changed bool, err error) {
	if r, ok := r.Expire(now); ok {
		return r, true, nil
	}
	switch r.State {
	case StateActive:
		r.State, r.UpdateTime = StateConfirmed, now.Round(0).UTC()
		return r, true, nil
	case StateConfirmed:
		return r, false, nil
	}
	return r, false, &StateError{ID: r.ID, State: r.State, Op: "confirm"}
}

// ConfirmErr returns nil if r is confirmed, else a *[StateError] naming
// its state: the error of a Confirm that found r released or expired.
func (r Reservation) ConfirmErr() error {
	if r.State == StateConfirmed {
		return nil
	}
	return &StateError{ID: r.ID, State: r.State, Op: "confirm"}
}

// Errors, matched with errors.Is.
var (
	// ErrInvalid is matched by every *[ValidationError].
	ErrInvalid = errors.New("inventory: invalid argument")
	// ErrNotFound is matched by every *[NotFoundError].
	ErrNotFound = errors.New("inventory: not found")
	// ErrInsufficientStock is matched by every *[InsufficientStockError].
	ErrInsufficientStock = errors.New("inventory: insufficient stock")
	// ErrState is matched by every *[StateError]: the reservation is not
	// in a state that allows the operation.
	ErrState = errors.New("inventory: reservation state does not allow the operation")
	// ErrCompensated reports an action refused because its branch was
	// already compensated (its compensation arrived first). It is
	// permanent: the saga has moved on.
	ErrCompensated = errors.New("inventory: branch already compensated")
)

// ValidationError reports an invalid input, naming the field as it is
// named on the wire. Its message is safe to show to clients. It matches
// [ErrInvalid].
type ValidationError struct {
	// Field is the offending field, e.g. "lines[2].quantity".
	Field string
	// Value is the rejected value, or nil for a missing one.
	Value any
	// Reason says what is wrong, e.g. "must be positive".
	Reason string
}

// Error returns "inventory: FIELD [VALUE] REASON".
func (e *ValidationError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("inventory: %s %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("inventory: %s %v %s", e.Field, e.Value, e.Reason)
}

// Is reports whether target is [ErrInvalid].
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// NotFoundError reports an unknown sku or reservation. It matches
// [ErrNotFound].
type NotFoundError struct {
	// Kind is "sku" or "reservation".
	Kind string
	// ID is the unknown sku or reservation id.
	ID string
}

// Error names the kind and the id.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("inventory: unknown %s %q", e.Kind, e.ID)
}

// Is reports whether target is [ErrNotFound].
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// InsufficientStockError reports a line that asks for more units of a sku
// than are available. It matches [ErrInsufficientStock].
type InsufficientStockError struct {
	// SKU is the short sku.
	SKU string
	// Requested is the line's quantity.
	Requested int
	// OnHand and Reserved are the sku's stock when the line was refused.
	OnHand, Reserved int
}

// Error names the sku and the numbers.
func (e *InsufficientStockError) Error() string {
	return fmt.Sprintf("inventory: insufficient stock of %s: %d requested, %d available (%d on hand, %d reserved)",
		e.SKU, e.Requested, e.OnHand-e.Reserved, e.OnHand, e.Reserved)
}

// Is reports whether target is [ErrInsufficientStock].
func (e *InsufficientStockError) Is(target error) bool { return target == ErrInsufficientStock }

// StateError reports an operation that the reservation's state does not
// allow, such as confirming a released reservation. It matches [ErrState].
type StateError struct {
	// ID is the reservation's id.
	ID string
	// State is the reservation's state.
	State State
	// Op is the refused operation: "release" or "confirm".
	Op string
}

// Error names the reservation, its state and the operation.
func (e *StateError) Error() string {
	return fmt.Sprintf("inventory: cannot %s reservation %s: it is %s", e.Op, e.ID, e.State)
}

// Is reports whether target is [ErrState].
func (e *StateError) Is(target error) bool { return target == ErrState }
