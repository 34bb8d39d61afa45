package eventsourced

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/messaging"
)

const instrumentationName = "github.com/cairnhq/cairn/internal/shop/order/adapters/eventsourced"

// maxOrderEvents bounds the events read to rebuild one order.
const maxOrderEvents = 1000

// Repository is the order service's app.Repository on an event store and
// a read model. It is safe for concurrent use.
type Repository struct {
	events eventstore.Store
	read   *ReadModel

	mu     sync.Mutex
	notify []chan struct{}
}

var _ app.Repository = (*Repository)(nil)

// NewRepository returns a repository that appends to events and reads
// from read.
func NewRepository(events eventstore.Store, read *ReadModel) *Repository {
	return &Repository{events: events, read: read}
}

// Save appends the order.placed event of o to the new stream order-<id>.
// The event's ID derives from the order's, so a retried Save whose first
// attempt was stored succeeds without storing twice; another order with
// the same ID fails with an error wrapping [domain.ErrAlreadyExists]. The
// event carries the caller's trace context, and the order ID as its
// correlation ID.
func (r *Repository) Save(ctx context.Context, o domain.Order) error {
	data, err := encodePlaced(o)
	if err != nil {
		return fmt.Errorf("save order %s: %w", o.ID, err)
	}
	e := eventstore.Event{
		ID:            "order-placed-" + o.ID,
		Type:          EventPlaced,
		SchemaVersion: 1,
		Data:          data,
		Metadata:      metadata(ctx, o.ID),
	}
	_, err = r.events.Append(ctx, Stream(o.ID), eventstore.NoStream, e)
	var conflict *eventstore.VersionConflictError
	switch {
	case errors.As(err, &conflict), errors.Is(err, eventstore.ErrDuplicateEvent):
		return fmt.Errorf("save order %s: %w", o.ID, domain.ErrAlreadyExists)
	case err != nil:
		return fmt.Errorf("save order %s: %w", o.ID, err)
	}
	r.mu.Lock()
	for _, c := range r.notify {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
	return nil
}

// Notify returns a channel that receives (without blocking Save; a burst
// of appends may send once) after each successful Save: pass it as the
// Notify of a projector or an outbox relay, so that they follow appends
// without waiting for their poll interval.
func (r *Repository) Notify() <-chan struct{} {
	c := make(chan struct{}, 1)
	r.mu.Lock()
	r.notify = append(r.notify, c)
	r.mu.Unlock()
	return c
}

// metadata returns the metadata of an event appended with ctx.
func metadata(ctx context.Context, correlation string) eventstore.Metadata {
	m := eventstore.Metadata{CorrelationID: correlation}
	if trace.SpanContextFromContext(ctx).IsValid() {
		h := messaging.InjectTraceContext(ctx, make(map[string]string, 2))
		m.TraceParent, m.TraceState = h["traceparent"], h["tracestate"]
	}
	return m
}

// Get returns order id from the read model, or, if the projection has not
// applied it yet, from its events.
func (r *Repository) Get(ctx context.Context, id string) (domain.Order, error) {
	o, err := r.read.Get(ctx, id)
	if !errors.Is(err, domain.ErrNotFound) {
		return o, err
	}
	return r.Load(ctx, id)
}

// Load rebuilds order id from its events. It returns an error wrapping
// [domain.ErrNotFound] for an order without events.
func (r *Repository) Load(ctx context.Context, id string) (domain.Order, error) {
	events, err := r.events.ReadStream(ctx, Stream(id), 0, eventstore.Forwards, maxOrderEvents)
	if err != nil {
		return domain.Order{}, fmt.Errorf("load order %s: %w", id, err)
	}
	if len(events) == 0 {
		return domain.Order{}, fmt.Errorf("load order %s: %w", id, domain.ErrNotFound)
	}
	var o domain.Order
	for _, e := range events {
		if o, err = apply(o, e); err != nil {
			return domain.Order{}, fmt.Errorf("load order %s: %w", id, err)
		}
	}
	return o, nil
}

// List returns at most limit orders, newest first, from the read model.
func (r *Repository) List(ctx context.Context, limit int) ([]domain.Order, error) {
	return r.read.List(ctx, limit)
}
