// Package domain holds the shipping service's entities and their invariants:
// a [Shipment] of an order's lines to an [Address], its [Status] and the
// moves between them, the [Regions] the shop ships to with their delivery
// times, and the errors that break those rules. It does no I/O and imports
// nothing of the project.
package domain

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// MaxLines is the most lines a shipment holds.
const MaxLines = 100

// Status is where a shipment is in its life. The zero value is not a valid
// status.
type Status int

// The statuses of a shipment. A shipment starts Scheduled; it moves to
// Cancelled (compensated) or to Shipped, and from Shipped to Delivered.
// Cancelled and Delivered are final.
const (
	// Scheduled means the shipment is booked and waits in the warehouse.
	Scheduled Status = iota + 1
	// Shipped means the shipment left the warehouse: it can no longer be
	// cancelled.
	Shipped
	// Delivered means the shipment reached its recipient.
	Delivered
	// Cancelled means the shipment was cancelled before it left.
	Cancelled
)

var statusNames = [...]string{Scheduled: "scheduled", Shipped: "shipped", Delivered: "delivered", Cancelled: "cancelled"}

// String returns the status's lower-case name ("scheduled", ...), as the
// stores write it, or "Status(n)" for an invalid one.
func (s Status) String() string {
	if s > 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// ParseStatus returns the status named name (as [Status.String] writes
// it), or an error.
func ParseStatus(name string) (Status, error) {
	for i, n := range statusNames {
		if n != "" && n == name {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("shipping: unknown status %q", name)
}

// Address is a postal address.
type Address struct {
	// Recipient is the recipient's name. Required.
	Recipient string
	// Lines are the street lines, most specific first. At least one.
	Lines []string
	// Locality is the city or locality. Required.
	Locality string
	// PostalCode is the postal code, where the country uses them.
	PostalCode string
	// AdministrativeArea is the state, province or region, where the
	// country uses them.
	AdministrativeArea string
	// RegionCode is the two-letter CLDR region code (ISO 3166-1 alpha-2)
	// in upper case, e.g. "DE". Required; NewShipment upper-cases it.
	RegionCode string
}

// Line is a quantity of one sku in a shipment.
type Line struct {
	// SKU is the stock keeping unit. Required.
	SKU string
	// Quantity is the number of units; positive.
	Quantity int32
}

// Shipment is the delivery of one order's lines, booked by one saga
// branch.
type Shipment struct {
	// ID is the shipment's id.
	ID string
	// SagaID and BranchID are the saga branch that scheduled the
	// shipment: its idempotency key. One branch books at most one
	// shipment.
	SagaID, BranchID string
	// OrderID is the order shipped.
	OrderID string
	// Address is where the shipment goes.
	Address Address
	// Lines are what the shipment holds, in the order given.
	Lines []Line
	// Status is the shipment's status.
	Status Status
	// EstimatedDelivery is when the shipment should reach its recipient.
	EstimatedDelivery time.Time
	// CreatedAt is when the shipment was scheduled.
	CreatedAt time.Time
	// UpdatedAt is when the shipment last changed status.
	UpdatedAt time.Time
}

// Errors of the domain. Each is matched, with errors.Is, by the typed
// errors that carry the details.
var (
	// ErrInvalid is matched by an *InvalidError: a request breaks an
	// invariant of its fields.
	ErrInvalid = errors.New("shipping: invalid request")
	// ErrUnservedRegion is matched by an *UnservedRegionError: the shop
	// does not ship to the address's region.
	ErrUnservedRegion = errors.New("shipping: region not served")
	// ErrNotCancellable is matched by a *NotCancellableError: the
	// shipment left the warehouse.
	ErrNotCancellable = errors.New("shipping: shipment cannot be cancelled")
	// ErrNotFound means there is no such shipment.
	ErrNotFound = errors.New("shipping: shipment not found")
)

// InvalidError is a request field that breaks an invariant. It matches
// [ErrInvalid].
type InvalidError struct {
	// Field is the field's path, as the API names it:
	// "address.region_code", "lines[2].quantity".
	Field string
	// Reason says what is wrong with it: "is required", ...
	Reason string
}

// Error returns "shipping: invalid <field>: <reason>".
func (e *InvalidError) Error() string { return "shipping: invalid " + e.Field + ": " + e.Reason }

// Is reports whether target is [ErrInvalid].
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// UnservedRegionError is an address in a region the shop does not ship
// to. It matches [ErrUnservedRegion].
type UnservedRegionError struct {
	// RegionCode is the address's region code.
	RegionCode string
}

// Error names the region.
func (e *UnservedRegionError) Error() string {
	return fmt.Sprintf("shipping: the shop does not ship to region %q", e.RegionCode)
}

// Is reports whether target is [ErrUnservedRegion].
func (e *UnservedRegionError) Is(target error) bool { return target == ErrUnservedRegion }

// NotCancellableError is the cancellation of a shipment that has left the
// warehouse. It matches [ErrNotCancellable].
type NotCancellableError struct {
	// ID is the shipment's id.
	ID string
	// Status is its status: Shipped or Delivered.
	Status Status
}

// Error names the shipment and its status.
func (e *NotCancellableError) Error() string {
	return fmt.Sprintf("shipping: shipment %s is %s and can no longer be cancelled", e.ID, e.Status)
}

// Is reports whether target is [ErrNotCancellable].
func (e *NotCancellableError) Is(target error) bool { return target == ErrNotCancellable }

// NewShipment returns a Scheduled shipment of lines of order orderID to
// addr, booked by the saga branch sagaID/branchID at now, with the delivery
// estimated by regions. It upper-cases the region code and stamps times in
// UTC.
//
// It returns an *InvalidError for a missing id, order id, saga or branch
// id, an incomplete address, no lines or more than [MaxLines], or a line
// without sku or with a non-positive quantity; and an *UnservedRegionError
// when regions does not hold the address's region.
func NewShipment(id, sagaID, branchID, orderID string, addr Address, lines []Line, regions Regions, now time.Time) (Shipment, error) {
	switch {
	case id == "":
		return Shipment{}, &InvalidError{Field: "shipment_id", Reason: "is required"}
	case sagaID == "":
		return Shipment{}, &InvalidError{Field: "idempotency.saga_id", Reason: "is required"}
	case branchID == "":
		return Shipment{}, &InvalidError{Field: "idempotency.branch_id", Reason: "is required"}
	case orderID == "":
		return Shipment{}, &InvalidError{Field: "order_id", Reason: "is required"}
	}
	addr.RegionCode = strings.ToUpper(addr.RegionCode)
	if err := addr.Validate(); err != nil {
		return Shipment{}, err
	}
	if err := ValidateLines(lines); err != nil {
		return Shipment{}, err
	}
	days, ok := regions[addr.RegionCode]
	if !ok {
		return Shipment{}, &UnservedRegionError{RegionCode: addr.RegionCode}
	}
	now = now.UTC()
	return Shipment{
		ID: id, SagaID: sagaID, BranchID: branchID, OrderID: orderID,
		Address: addr, Lines: lines, Status: Scheduled,
		EstimatedDelivery: AddBusinessDays(now, days),
		CreatedAt:         now, UpdatedAt: now,
	}, nil
}

// Validate returns an *InvalidError, naming the field, when a is
// incomplete: no recipient, no street line or an empty one, no locality,
// or a region code that is not two ASCII letters.
func (a Address) Validate() error {
	if strings.TrimSpace(a.Recipient) == "" {
		return &InvalidError{Field: "address.recipient", Reason: "is required"}
	}
	if len(a.Lines) == 0 {
		return &InvalidError{Field: "address.address_lines", Reason: "needs at least one line"}
	}
	for i, l := range a.Lines {
		if strings.TrimSpace(l) == "" {
			return &InvalidError{Field: fmt.Sprintf("address.address_lines[%d]", i), Reason: "is empty"}
		}
	}
	if strings.TrimSpace(a.Locality) == "" {
		return &InvalidError{Field: "address.locality", Reason: "is required"}
	}
	if a.RegionCode == "" {
		return &InvalidError{Field: "address.region_code", Reason: "is required"}
	}
	if !isRegionCode(a.RegionCode) {
		return &InvalidError{Field: "address.region_code", Reason: fmt.Sprintf("%q is not a two-letter region code", a.RegionCode)}
	}
	return nil
}

// isRegionCode reports whether s is two ASCII letters.
func isRegionCode(s string) bool {
	if len(s) != 2 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// ValidateLines returns an *InvalidError, naming the field, when lines is
// empty, longer than [MaxLines], or holds a line without sku or with a
// non-positive quantity.
func ValidateLines(lines []Line) error {
	if len(lines) == 0 {
		return &InvalidError{Field: "lines", Reason: "needs at least one line"}
	}
	if len(lines) > MaxLines {
		return &InvalidError{Field: "lines", Reason: fmt.Sprintf("has %d lines, more than %d", len(lines), MaxLines)}
	}
	for i, l := range lines {
		if l.SKU == "" {
			return &InvalidError{Field: fmt.Sprintf("lines[%d].sku", i), Reason: "is required"}
		}
		if l.Quantity <= 0 {
			return &InvalidError{Field: fmt.Sprintf("lines[%d].quantity", i), Reason: fmt.Sprintf("is %d, want a positive number", l.Quantity)}
		}
	}
	return nil
}

// Cancel cancels s at now. A Scheduled shipment becomes Cancelled and
// Cancel reports true; a Cancelled one stays as it is and Cancel reports
// false; a Shipped or Delivered one returns a *NotCancellableError.
func (s *Shipment) Cancel(now time.Time) (bool, error) {
	switch s.Status {
	case Scheduled:
		s.Status, s.UpdatedAt = Cancelled, now.UTC()
		return true, nil
	case Cancelled:
		return false, nil
	default:
		return false, &NotCancellableError{ID: s.ID, Status: s.Status}
	}
}

// Ship marks a Scheduled shipment Shipped at now and reports true; a
// shipment in any other status is left as it is (false).
func (s *Shipment) Ship(now time.Time) bool {
	if s.Status != Scheduled {
		return false
	}
	s.Status, s.UpdatedAt = Shipped, now.UTC()
	return true
}
