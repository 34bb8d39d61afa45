// Package resilient guards the order service's repository with resilience
// policies: every database call runs through a pipeline (typically a retry,
// a circuit breaker, a bulkhead and a timeout), and optionally through a
// fault injector first, so that the demo can make the database fail and
// show the policies reacting.
//
// A call the policies refuse (an open breaker, a full bulkhead, a rate
// limit, a timeout) fails with an [app.UnavailableError], which the HTTP
// API answers with 503 and Retry-After. The repository's domain outcomes
// (an order that does not exist, or already does) are answers, not
// failures: they pass through the pipeline
// as successes so that a circuit breaker does not open on them, and reach
// the caller unchanged.
package resilient

import (
	"context"
	"errors"
	"time"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/ratelimit"
)

// Executor runs a call through resilience policies and returns its error or
// the error of the policy that stopped it. *resilience.Pipeline[struct{}]
// implements it, and so does resilienceconfig's hot-reloadable handle.
// Implementations must be safe for concurrent use.
type Executor interface {
	Execute(ctx context.Context, fn func(context.Context) (struct{}, error)) (struct{}, error)
}

// Repository is an [app.Repository] whose calls go through Executors. It
// is safe for concurrent use.
type Repository struct {
	next   app.Repository
	reads  Executor
	writes Executor
	faults *fault.Injector
}

var _ app.Repository = (*Repository)(nil)

// New returns a Repository that runs next's Get and List through reads and
// its Save through writes. A nil Executor runs calls directly. faults, if
// not nil, is consulted inside the pipeline before each call, as if the
// database itself failed.
func New(next app.Repository, reads, writes Executor, faults *fault.Injector) *Repository {
	return &Repository{next: next, reads: reads, writes: writes, faults: faults}
}

// isAnswer reports whether err is a domain outcome rather than a failure
// of the database.
func isAnswer(err error) bool {
	return errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrAlreadyExists) || errors.Is(err, domain.ErrInvalid)
}

// run calls fn through e, injecting faults first and carrying domain
// outcomes past the policies.
func (r *Repository) run(ctx context.Context, e Executor, fn func(context.Context) error) error {
	var answer error
	call := func(ctx context.Context) (struct{}, error) {
		answer = nil
		if r.faults != nil {
			if err := r.faults.Inject(ctx); err != nil {
				return struct{}{}, err
			}
		}
		err := fn(ctx)
		if isAnswer(err) {
			answer = err
			return struct{}{}, nil
		}
		return struct{}{}, err
	}
	if e == nil {
		_, err := call(ctx)
		if err != nil {
			return err
		}
		return answer
	}
	if _, err := e.Execute(ctx, call); err != nil {
		return unavailable(err)
	}
	return answer
}

// unavailable marks a policy's rejection of a call (an open breaker, a full
// bulkhead, a rate limit, a timeout) as an [app.UnavailableError], so that
// the service answers "retry later" rather than a server fault. Other
// errors, the database's own, are returned as they are.
func unavailable(err error) error {
	var open *circuitbreaker.OpenError
	var limited *ratelimit.LimitedError
	switch {
	case errors.As(err, &open):
		return &app.UnavailableError{RetryAfter: open.RetryAfter, Err: err}
	case errors.As(err, &limited):
		return &app.UnavailableError{RetryAfter: max(limited.RetryAfter, 0), Err: err}
	case errors.Is(err, bulkhead.ErrFull), errors.Is(err, resilience.ErrTimeout):
		return &app.UnavailableError{Err: err}
	}
	return err
}

// Save stores o through the writes Executor. When a retried attempt finds
// the order already stored, an earlier attempt stored it and only its
// answer was lost (a timeout after the commit, say), so Save succeeds: the
// order IDs the service saves are fresh, never a client's.
func (r *Repository) Save(ctx context.Context, o domain.Order) error {
	attempts := 0
	return r.run(ctx, r.writes, func(ctx context.Context) error {
		attempts++
		err := r.next.Save(ctx, o)
		if attempts > 1 && errors.Is(err, domain.ErrAlreadyExists) {
			return nil
		}
		return err
	})
}

// Get loads an order through the reads Executor.
func (r *Repository) Get(ctx context.Context, id string) (domain.Order, error) {
	var o domain.Order
	err := r.run(ctx, r.reads, func(ctx context.Context) error {
		var err error
		o, err = r.next.Get(ctx, id)
		return err
	})
	return o, err
}

// List loads the newest orders through the reads Executor.
func (r *Repository) List(ctx context.Context, limit int) ([]domain.Order, error) {
	var os []domain.Order
	err := r.run(ctx, r.reads, func(ctx context.Context) error {
		var err error
		os, err = r.next.List(ctx, limit)
		return err
	})
	return os, err
}

// Watch follows an order through the next repository, which must
// implement app.Watcher. A watch is long-lived and mostly waits, so it
// does not go through the policies.
func (r *Repository) Watch(ctx context.Context, id string, fn func(domain.Order) error) error {
	w, ok := r.next.(app.Watcher)
	if !ok {
		return app.ErrUnsupported
	}
	return w.Watch(ctx, id, fn)
}

// StatusSetter is the port of the checkout that records an order's
// status; the event-sourced repository implements it.
type StatusSetter interface {
	SetStatus(ctx context.Context, id string, st domain.Status, reason, sagaID string, at time.Time) (domain.Order, error)
}

// SetStatus records an order's status change through the writes Executor
// (and the fault injector): the checkout's steps retry it.
func (r *Repository) SetStatus(ctx context.Context, id string, st domain.Status, reason, sagaID string, at time.Time) (domain.Order, error) {
	s, ok := r.next.(StatusSetter)
	if !ok {
		return domain.Order{}, app.ErrUnsupported
	}
	var o domain.Order
	err := r.run(ctx, r.writes, func(ctx context.Context) error {
		var err error
		o, err = s.SetStatus(ctx, id, st, reason, sagaID, at)
		return err
	})
	return o, err
}
