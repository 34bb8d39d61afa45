// Package checkout is the order service's checkout saga: it reserves an
// order's stock, charges its payment, schedules its shipment and confirms
// it, and when a step fails it undoes the completed ones in reverse order.
// The saga is orchestrated ([saga.Orchestrator]): its state is durable in
// the order service's saga store, so that another process resumes it after
// a crash, and each call to a participant carries an idempotency key
// (the saga's and the step's ids) that the participant's barrier checks.
//
// The package is the application layer of the checkout: it declares the
// ports it needs of the participants ([Inventory], [Payment], [Shipping])
// and of the order ([Orders]); adapters implement them over gRPC
// (internal/shop/order/adapters/grpcclients) or in memory (tests).
//
// An order's status follows the saga: placed, reserved, paid, scheduled
// and confirmed; or compensating and cancelled (or failed, when a
// compensation is impossible, such as a shipment that already left).
package checkout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/saga"
)

// SagaName is the checkout saga's definition name.
const SagaName = "checkout"

// The checkout's steps, in order. They are also the branch ids of the
// participants' barriers.
const (
	StepReserve = "reserve"
	StepCharge  = "charge"
	StepShip    = "ship"
	StepConfirm = "confirm"
)

// SagaID returns the id of order id's checkout saga.
func SagaID(orderID string) string { return "checkout-" + orderID }

// Currency is the currency of the shop's prices.
const Currency = "EUR"

// Key is the idempotency key of one participant call: the saga's and the
// step's ids. An action and its compensation share it.
type Key struct {
	SagaID   string
	BranchID string
}

// Line is a quantity of a SKU at a unit price, in cents.
type Line struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// Address is where an order ships.
type Address struct {
	Recipient  string   `json:"recipient"`
	Lines      []string `json:"lines"`
	Locality   string   `json:"locality"`
	PostalCode string   `json:"postal_code,omitempty"`
	RegionCode string   `json:"region_code"`
}

// Data is the saga's data: the order, as Start received it, and what the
// steps record for the later ones and for the compensations.
type Data struct {
	OrderID       string  `json:"order_id"`
	CustomerID    string  `json:"customer_id"`
	Lines         []Line  `json:"lines"`
	Total         int64   `json:"total"`
	Currency      string  `json:"currency"`
	PaymentMethod string  `json:"payment_method"`
	ShipTo        Address `json:"ship_to"`

	ReservationID string `json:"reservation_id,omitempty"`
	PaymentID     string `json:"payment_id,omitempty"`
	ShipmentID    string `json:"shipment_id,omitempty"`
}

// Inventory is what the checkout needs of the inventory service.
type Inventory interface {
	// Reserve holds the lines' stock for the order and returns the
	// reservation's id.
	Reserve(ctx context.Context, k Key, orderID string, lines []Line) (reservationID string, err error)
	// Release releases the order's reservation made under k, if any.
	Release(ctx context.Context, k Key, orderID string) error
	// Confirm turns a reservation into a sale.
	Confirm(ctx context.Context, k Key, reservationID string) error
}

// Payment is what the checkout needs of the payment service.
type Payment interface {
	// Charge charges amount (in cents of currency) to the payment method.
	// A declined charge returns the decline's reason and a nil error.
	Charge(ctx context.Context, k Key, orderID string, amount int64, currency, method string) (paymentID, declined string, err error)
	// Refund refunds the charge made under k, if any.
	Refund(ctx context.Context, k Key, orderID, reason string) error
}

// Shipping is what the checkout needs of the shipping service.
type Shipping interface {
	// Schedule books the shipment of the lines to an address.
	Schedule(ctx context.Context, k Key, orderID string, to Address, lines []Line) (shipmentID string, err error)
	// Cancel cancels the shipment made under k, if any. It returns an
	// error matching [ErrCannotUndo] when the shipment has left.
	Cancel(ctx context.Context, k Key, orderID string) error
}

// Orders records the order's status as the saga moves it.
type Orders interface {
	// SetStatus moves order id to st (a move [domain.Status.CanMove]
	// refuses changes nothing and is no error).
	SetStatus(ctx context.Context, id string, st domain.Status, reason, sagaID string, at time.Time) (domain.Order, error)
}

// ErrCannotUndo reports a compensation that can no longer be made, such as
// cancelling a shipment that has left the warehouse: the order ends
// failed, for an operator.
var ErrCannotUndo = errors.New("checkout: cannot be undone")

// Config configures a [Checkout].
type Config struct {
	Inventory Inventory
	Payment   Payment
	Shipping  Shipping
	Orders    Orders
	// StepTimeout bounds each step's action (with its retries) and each
	// attempt of a compensation. Default 10 seconds.
	StepTimeout time.Duration
	// Executor runs every action and compensation attempt, typically a
	// retry (with [saga.Retryable] as its RetryIf) around a timeout.
	// Default nil: one attempt per action run; the orchestrator still
	// retries compensations with backoff.
	Executor resilience.Executor[struct{}]
	// Logger receives the checkouts' state changes. Default: discarded.
	Logger *slog.Logger
	// Now stamps status changes. Default [time.Now].
	Now func() time.Time
}

// Checkout is the checkout saga's definition, bound to its participants.
type Checkout struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	orch *saga.Orchestrator[Data]
}

// New returns the checkout of cfg. Its [Checkout.Definition] goes to a
// [saga.New]; then call [Checkout.Bind] with the orchestrator before
// starting any saga.
func New(cfg Config) (*Checkout, error) {
	if cfg.Inventory == nil || cfg.Payment == nil || cfg.Shipping == nil || cfg.Orders == nil {
		return nil, errors.New("checkout: Inventory, Payment, Shipping and Orders are required")
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 10 * time.Second
	}
	c := &Checkout{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Bind gives c the orchestrator that runs its definition, which it uses to
// start sagas and to read why one compensates.
func (c *Checkout) Bind(o *saga.Orchestrator[Data]) { c.orch = o }

// Start starts the checkout of order o. It is idempotent: starting an
// order's checkout again returns without running anything twice.
func (c *Checkout) Start(ctx context.Context, o domain.Order) error {
	if c.orch == nil {
		return errors.New("checkout: start: no orchestrator bound")
	}
	d := Data{
		OrderID: o.ID, CustomerID: o.CustomerID, Total: o.Total, Currency: Currency, PaymentMethod: o.PaymentMethod,
		ShipTo: Address{Recipient: o.ShipTo.Recipient, Lines: o.ShipTo.Lines, Locality: o.ShipTo.Locality,
			PostalCode: o.ShipTo.PostalCode, RegionCode: o.ShipTo.RegionCode},
	}
	for _, l := range o.Lines {
		d.Lines = append(d.Lines, Line{SKU: l.SKU, Quantity: l.Quantity, UnitPrice: l.UnitPrice})
	}
	if _, err := c.orch.Start(ctx, SagaName, SagaID(o.ID), d); err != nil {
		return fmt.Errorf("checkout of order %s: %w", o.ID, err)
	}
	return nil
}

// perSKU returns lines with one line per SKU, in the order of their first
// appearance, quantities summed: an order may list a SKU twice, and the
// inventory reserves (and the warehouse ships) per SKU.
func perSKU(lines []Line) []Line {
	out := make([]Line, 0, len(lines))
	at := make(map[string]int, len(lines))
	for _, l := range lines {
		if i, ok := at[l.SKU]; ok {
			out[i].Quantity += l.Quantity
			continue
		}
		at[l.SKU] = len(out)
		out = append(out, l)
	}
	return out
}

// key returns the idempotency key of the step running in ctx.
func key(ctx context.Context, d *Data, step string) Key {
	if info, ok := saga.StepInfoFrom(ctx); ok {
		return Key{SagaID: info.InstanceID, BranchID: info.Step}
	}
	return Key{SagaID: SagaID(d.OrderID), BranchID: step}
}

// status records the order's status; an error fails the step, which is
// then retried (every participant call before it is idempotent).
func (c *Checkout) status(ctx context.Context, d *Data, st domain.Status, reason string) error {
	o, err := c.cfg.Orders.SetStatus(ctx, d.OrderID, st, reason, SagaID(d.OrderID), c.now())
	if err != nil {
		return fmt.Errorf("order %s: record status %s: %w", d.OrderID, st, err)
	}
	if o.Status == st {
		c.log.InfoContext(ctx, "order status changed", slog.String("order_id", d.OrderID), slog.String("status", st.String()),
			slog.String("reason", reason))
	}
	return nil
}

// reason returns why the order's saga compensates.
func (c *Checkout) reason(ctx context.Context, d *Data) string {
	if c.orch == nil {
		return ""
	}
	inst, err := c.orch.Get(ctx, SagaID(d.OrderID))
	if err != nil {
		return ""
	}
	return inst.Error
}

// compensating records, at the first compensation to run, that the order
// is being undone and why.
func (c *Checkout) compensating(ctx context.Context, d *Data) error {
	return c.status(ctx, d, domain.StatusCompensating, c.reason(ctx, d))
}

// Definition returns the saga: four sequential steps.
//
//	reserve  Inventory.Reserve           undo: Inventory.Release, order cancelled
//	charge   Payment.Charge              undo: Payment.Refund
//	ship     Shipping.Schedule           undo: Shipping.Cancel
//	confirm  Inventory.Confirm, order confirmed
//
// A declined payment, insufficient stock or an address the shop does not
// ship to fail their step permanently, and the saga compensates; a
// participant that is unavailable fails the step's attempt, which the
// executor retries.
func (c *Checkout) Definition() saga.Definition[Data] {
	step := func(name string, action, compensate func(context.Context, *Data) error) saga.Stage[Data] {
		return saga.Stage[Data]{{Name: name, Action: action, Compensate: compensate, Timeout: c.cfg.StepTimeout, Executor: c.cfg.Executor}}
	}
	return saga.Definition[Data]{Name: SagaName, Stages: []saga.Stage[Data]{
		step(StepReserve, func(ctx context.Context, d *Data) error {
			id, err := c.cfg.Inventory.Reserve(ctx, key(ctx, d, StepReserve), d.OrderID, perSKU(d.Lines))
			if err != nil {
				return err
			}
			d.ReservationID = id
			return c.status(ctx, d, domain.StatusReserved, "")
		}, func(ctx context.Context, d *Data) error {
			if err := c.compensating(ctx, d); err != nil {
				return err
			}
			if err := c.cfg.Inventory.Release(ctx, key(ctx, d, StepReserve), d.OrderID); err != nil {
				return err
			}
			// The first step's compensation runs last: the order is
			// undone (unless a compensation already failed it).
			return c.status(ctx, d, domain.StatusCancelled, c.reason(ctx, d))
		}),
		step(StepCharge, func(ctx context.Context, d *Data) error {
			id, declined, err := c.cfg.Payment.Charge(ctx, key(ctx, d, StepCharge), d.OrderID, d.Total, d.Currency, d.PaymentMethod)
			if err != nil {
				return err
			}
			d.PaymentID = id
			if declined != "" {
				return saga.Permanent(fmt.Errorf("payment declined: %s", declined))
			}
			return c.status(ctx, d, domain.StatusPaid, "")
		}, func(ctx context.Context, d *Data) error {
			if err := c.compensating(ctx, d); err != nil {
				return err
			}
			return c.cfg.Payment.Refund(ctx, key(ctx, d, StepCharge), d.OrderID, "checkout compensated: "+c.reason(ctx, d))
		}),
		step(StepShip, func(ctx context.Context, d *Data) error {
			id, err := c.cfg.Shipping.Schedule(ctx, key(ctx, d, StepShip), d.OrderID, d.ShipTo, perSKU(d.Lines))
			if err != nil {
				return err
			}
			d.ShipmentID = id
			return c.status(ctx, d, domain.StatusScheduled, "")
		}, func(ctx context.Context, d *Data) error {
			if err := c.compensating(ctx, d); err != nil {
				return err
			}
			err := c.cfg.Shipping.Cancel(ctx, key(ctx, d, StepShip), d.OrderID)
			if errors.Is(err, ErrCannotUndo) {
				// Nothing the saga can do: the order is failed, and the
				// other compensations still run.
				return c.status(ctx, d, domain.StatusFailed, err.Error())
			}
			return err
		}),
		step(StepConfirm, func(ctx context.Context, d *Data) error {
			if err := c.cfg.Inventory.Confirm(ctx, key(ctx, d, StepConfirm), d.ReservationID); err != nil {
				return err
			}
			return c.status(ctx, d, domain.StatusConfirmed, "")
		}, nil),
	}}
}
