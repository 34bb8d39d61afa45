package domain

import "time"

// CustomerStats sums up a customer's orders: a read model built from the
// order events, not an aggregate.
type CustomerStats struct {
	// CustomerID identifies the customer.
	CustomerID string
	// Orders is how many orders the customer has placed.
	Orders int64
	// Total is the sum of their totals, in cents.
	Total int64
	// LastOrderAt is when the customer last placed an order (UTC).
	LastOrderAt time.Time
}
