package eventsourced

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

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

	mu      sync.Mutex
	notify  []chan struct{}
	watches map[string]*watchers // by order ID
}

// watchers are the Watch calls of one order: ch is closed, and replaced,
// at each append to the order's stream.
type watchers struct {
	ch chan struct{}
	n  int
}

var _ app.Repository = (*Repository)(nil)

// NewRepository returns a repository that appends to events and reads
// from read.
func NewRepository(events eventstore.Store, read *ReadModel) *Repository {
	return &Repository{events: events, read: read, watches: make(map[string]*watchers)}
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
	r.appended(o.ID)
	return nil
}

// appended wakes the followers of the store, and the watchers of order
// id, after an append to its stream. Only that order's watchers wake: a
// broadcast to every watcher on every append made the cost of watching
// grow with the square of the orders in flight.
func (r *Repository) appended(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.notify {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	if w := r.watches[id]; w != nil {
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

// watch registers a watcher of order id and returns the function that
// returns the channel closed at the order's next append, and the one that
// unregisters the watcher.
func (r *Repository) watch(id string) (changes func() <-chan struct{}, done func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.watches[id]
	if w == nil {
		w = &watchers{ch: make(chan struct{})}
		r.watches[id] = w
	}
	w.n++
	changes = func() <-chan struct{} {
		r.mu.Lock()
		defer r.mu.Unlock()
		return w.ch
	}
	done = func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if w.n--; w.n == 0 {
			delete(r.watches, id)
		}
	}
	return changes, done
}

// maxStatusAttempts bounds the retries of a status change that keeps
// meeting concurrent appends to its order's stream.
const maxStatusAttempts = 5

// SetStatus moves order id to status st, for reason (kept for the
// compensating, cancelled and failed statuses) in saga sagaID, and
// returns the order as it is afterwards. A change that
// [domain.Status.CanMove] does not allow, such as a repeated one or one
// that arrives after a later status, changes nothing and returns the
// order unchanged, without an error: the saga's steps run at least once.
// It returns an error wrapping [domain.ErrNotFound] for an unknown order.
func (r *Repository) SetStatus(ctx context.Context, id string, st domain.Status, reason, sagaID string, at time.Time) (domain.Order, error) {
	for range maxStatusAttempts {
		o, version, err := r.load(ctx, id)
		if err != nil {
			return domain.Order{}, err
		}
		if !o.Status.CanMove(st) {
			return o, nil
		}
		c := StatusChanged{OrderID: id, Status: st.String(), Reason: reason, SagaID: sagaID, At: at.Round(0).UTC()}
		data, err := json.Marshal(c)
		if err != nil {
			return domain.Order{}, fmt.Errorf("order %s: status %s: %w", id, st, err)
		}
		e := eventstore.Event{
			// One event per status of an order: a retry whose first
			// append was stored is recognised by its ID.
			ID:            "order-status-" + id + "-" + st.String(),
			Type:          EventStatusChanged,
			SchemaVersion: 1,
			Data:          data,
			Metadata:      metadata(ctx, id),
		}
		_, err = r.events.Append(ctx, Stream(id), eventstore.Exact(version), e)
		var conflict *eventstore.VersionConflictError
		switch {
		case errors.As(err, &conflict), errors.Is(err, eventstore.ErrDuplicateEvent):
			continue // another append won; look again
		case err != nil:
			return domain.Order{}, fmt.Errorf("order %s: status %s: %w", id, st, err)
		}
		r.appended(id)
		return applyStatus(o, c)
	}
	return domain.Order{}, fmt.Errorf("order %s: status %s: %d attempts met concurrent changes", id, st, maxStatusAttempts)
}

// watchPoll is how often Watch looks at the event store when no append of
// this process woke it: another process may change the order.
const watchPoll = 500 * time.Millisecond

// Watch calls fn with order id as it is now, and then each time its status
// changes, until the order's status is final (after fn saw it), fn returns
// an error, or ctx ends. It reads the order's events, not the read model,
// so it sees a change as soon as it is stored. It returns fn's error,
// ctx's, or an error wrapping [domain.ErrNotFound] for an unknown order;
// nil after a final status.
func (r *Repository) Watch(ctx context.Context, id string, fn func(domain.Order) error) error {
	var last domain.Status
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	changes, done := r.watch(id)
	defer done()
	for {
		wake := changes()
		o, _, err := r.load(ctx, id)
		if err != nil {
			return err
		}
		if o.Status != last {
			if err := fn(o); err != nil {
				return err
			}
			last = o.Status
		}
		if o.Status.Final() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
	}
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
	o, _, err := r.load(ctx, id)
	return o, err
}

// load rebuilds order id from its events and returns it with its stream's
// version.
func (r *Repository) load(ctx context.Context, id string) (domain.Order, int64, error) {
	events, err := r.events.ReadStream(ctx, Stream(id), 0, eventstore.Forwards, maxOrderEvents)
	if err != nil {
		return domain.Order{}, 0, fmt.Errorf("load order %s: %w", id, err)
	}
	if len(events) == 0 {
		return domain.Order{}, 0, fmt.Errorf("load order %s: %w", id, domain.ErrNotFound)
	}
	var o domain.Order
	for _, e := range events {
		if o, err = apply(o, e); err != nil {
			return domain.Order{}, 0, fmt.Errorf("load order %s: %w", id, err)
		}
	}
	return o, events[len(events)-1].Version, nil
}

// List returns at most limit orders, newest first, from the read model.
func (r *Repository) List(ctx context.Context, limit int) ([]domain.Order, error) {
	return r.read.List(ctx, limit)
}

// Find returns the orders f selects, newest first, from the read model.
func (r *Repository) Find(ctx context.Context, f Filter, offset, limit int) ([]domain.Order, error) {
	return r.read.Find(ctx, f, offset, limit)
}
