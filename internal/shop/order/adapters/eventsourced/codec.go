// Package eventsourced stores the order service's orders as events: the
// write side appends an order's events to its stream in an event store
// (SQLite in the demo, PostgreSQL in production), and the read side
// queries a read model that a cqrs projection builds from the store's
// global log, in SQLite or PostgreSQL.
//
// [Repository] implements the service's app.Repository port over both: Save
// appends, Get reads the read model and falls back to the event stream
// when the projection has not caught up yet (so an order is readable as
// soon as it is placed), and List reads the read model alone (eventually
// consistent, by a few milliseconds).
package eventsourced

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
)

// The order service's event types.
const (
	// EventPlaced is the event of a placed order; its data is [Placed].
	EventPlaced = "order.placed"
	// EventStatusChanged is the event of an order's status change, made
	// by the checkout saga; its data is [StatusChanged].
	EventStatusChanged = "order.status_changed"
)

// SubjectPlaced is the bus subject of [EventPlaced] events, as the outbox
// relay names it (outbox.DefaultSubject).
const SubjectPlaced = "events." + EventPlaced

// StreamPrefix prefixes the ID of an order's stream: "order-" + order ID.
const StreamPrefix = "order-"

// Stream returns the stream of order id.
func Stream(id string) string { return StreamPrefix + id }

// Placed is the JSON data of an [EventPlaced] event, schema version 1.
type Placed struct {
	OrderID    string    `json:"order_id"`
	CustomerID string    `json:"customer_id"`
	Lines      []Line    `json:"lines"`
	Total      int64     `json:"total"`
	PlacedAt   time.Time `json:"placed_at"`
	// PaymentMethod and ShipTo were added to schema version 1 without a
	// new version: they are optional, and an event without them decodes
	// as before.
	PaymentMethod string   `json:"payment_method,omitempty"`
	ShipTo        *Address `json:"ship_to,omitempty"`
}

// Address is a shipping address in an event.
type Address struct {
	Recipient  string   `json:"recipient"`
	Lines      []string `json:"lines"`
	Locality   string   `json:"locality"`
	PostalCode string   `json:"postal_code,omitempty"`
	RegionCode string   `json:"region_code"`
}

// StatusChanged is the JSON data of an [EventStatusChanged] event,
// schema version 1.
type StatusChanged struct {
	OrderID string    `json:"order_id"`
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	SagaID  string    `json:"saga_id,omitempty"`
	At      time.Time `json:"at"`
}

// Line is an order line in an event.
type Line struct {
	SKU       string `json:"sku"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

func encodePlaced(o domain.Order) ([]byte, error) {
	p := Placed{OrderID: o.ID, CustomerID: o.CustomerID, Total: o.Total, PlacedAt: o.CreatedAt, Lines: make([]Line, len(o.Lines))}
	for i, l := range o.Lines {
		p.Lines[i] = Line(l)
	}
	p.PaymentMethod = o.PaymentMethod
	if a := o.ShipTo; a.RegionCode != "" || a.Recipient != "" {
		p.ShipTo = &Address{Recipient: a.Recipient, Lines: a.Lines, Locality: a.Locality, PostalCode: a.PostalCode, RegionCode: a.RegionCode}
	}
	return json.Marshal(p)
}

// decode returns the order that e, an event of an order's stream, leaves:
// applied to o, the order its earlier events built. It returns an error
// naming the event for an unknown type or schema version, or bad data.
func apply(o domain.Order, e eventstore.RecordedEvent) (domain.Order, error) {
	switch {
	case e.Type == EventPlaced && e.SchemaVersion <= 1:
		var p Placed
		if err := json.Unmarshal(e.Data, &p); err != nil {
			return o, fmt.Errorf("event %s (%s at position %d): %w", e.ID, e.Type, e.Position, err)
		}
		if p.OrderID == "" {
			return o, fmt.Errorf("event %s (%s at position %d): no order_id", e.ID, e.Type, e.Position)
		}
		o = domain.Order{ID: p.OrderID, CustomerID: p.CustomerID, Total: p.Total, Status: domain.StatusPlaced,
			CreatedAt: p.PlacedAt.UTC(), UpdatedAt: p.PlacedAt.UTC(), Lines: make([]domain.Line, len(p.Lines)),
			PaymentMethod: p.PaymentMethod}
		for i, l := range p.Lines {
			o.Lines[i] = domain.Line(l)
		}
		if a := p.ShipTo; a != nil {
			o.ShipTo = domain.Address{Recipient: a.Recipient, Lines: a.Lines, Locality: a.Locality, PostalCode: a.PostalCode, RegionCode: a.RegionCode}
		}
		return o, nil
	}
	if e.Type == EventStatusChanged && e.SchemaVersion <= 1 {
		c, err := decodeStatusChanged(e)
		if err != nil {
			return o, err
		}
		return applyStatus(o, c)
	}
	return o, fmt.Errorf("event %s at position %d: unknown type %q, schema version %d", e.ID, e.Position, e.Type, e.SchemaVersion)
}

// decodeStatusChanged decodes the data of an [EventStatusChanged] event.
func decodeStatusChanged(e eventstore.RecordedEvent) (StatusChanged, error) {
	var c StatusChanged
	if err := json.Unmarshal(e.Data, &c); err != nil {
		return c, fmt.Errorf("event %s (%s at position %d): %w", e.ID, e.Type, e.Position, err)
	}
	if _, err := domain.ParseStatus(c.Status); err != nil {
		return c, fmt.Errorf("event %s (%s at position %d): %w", e.ID, e.Type, e.Position, err)
	}
	return c, nil
}

// applyStatus applies a status change to o. A change that the status
// does not allow (a duplicate, or one that arrived after a later one)
// leaves o as it is: the appender checks too, but two appenders may race.
func applyStatus(o domain.Order, c StatusChanged) (domain.Order, error) {
	if o.ID == "" {
		return o, fmt.Errorf("status %s of order %s before the order was placed", c.Status, c.OrderID)
	}
	st, _ := domain.ParseStatus(c.Status)
	if !o.Status.CanMove(st) {
		return o, nil
	}
	o.Status, o.UpdatedAt = st, c.At.UTC()
	if c.Reason != "" || st == domain.StatusCompensating {
		o.StatusReason = c.Reason
	}
	if c.SagaID != "" {
		o.SagaID = c.SagaID
	}
	return o, nil
}
