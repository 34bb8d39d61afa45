package adaptive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// ErrLimitExceeded is the error for a call a [Limiter] rejects, for callers
// that turn a false from [Limiter.Acquire] into an error.
var ErrLimitExceeded = errors.New("adaptive: limit exceeded")

// Limiter admits calls while fewer than its current limit are in flight,
// and adapts the limit to the RTTs and drops of completed calls with an
// [Algorithm]. It is safe for concurrent use; create it with [New]. Its
// gauge callbacks stay registered with the MeterProvider until
// [Limiter.Close].
//
// Admission takes one compare-and-swap on an atomic counter and never
// waits; completing a call takes a mutex around the algorithm.
type Limiter struct {
	inflight atomic.Int64
	limit    atomic.Int64

	// Immutable after New.
	name string
	inst instruments

	mu  sync.Mutex
	alg Algorithm // guarded by mu
}

// New returns a Limiter configured by cfg, or the error of cfg.Validate,
// or an error creating its instruments.
func New(cfg Config) (*Limiter, error) {
	return NewWithAlgorithm(cfg, nil)
}

// NewWithAlgorithm is [New] with a caller-built Algorithm, such as a
// [Gradient2] with its own Queue function or a [Vegas] with its own Alpha
// and Beta; cfg's Algorithm and algorithm parameters are then ignored (but
// still validated). A nil alg means the one cfg selects. The Limiter owns
// alg from then on: nothing else may call it.
func NewWithAlgorithm(cfg Config, alg Algorithm) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if alg == nil {
		alg = cfg.algorithm()
	}
	l := &Limiter{name: cfg.Name, alg: alg}
	l.limit.Store(int64(l.alg.Limit()))
	if err := l.inst.init(l, cfg.MeterProvider); err != nil {
		return nil, fmt.Errorf("adaptive: creating instruments: %w", err)
	}
	return l, nil
}

// Permit is one call admitted by [Limiter.Acquire]. The zero Permit holds
// none. Exactly one of [Permit.Done] and [Permit.Dropped] must be called
// per admitted permit.
type Permit struct {
	l        *Limiter
	start    time.Time
	inflight int
}

// Limit returns the current limit.
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// InFlight returns the number of admitted calls not yet done.
func (l *Limiter) InFlight() int { return int(l.inflight.Load()) }

// Close unregisters the limiter's metric callbacks, so the
// resilience.adaptive.limit and resilience.adaptive.inflight gauges no
// longer report it; the limiter keeps working, and counting calls, without
// its gauges. Close it when replacing it with another limiter of the same
// name. It is idempotent and returns the MeterProvider's error
// unregistering, if any.
func (l *Limiter) Close() error { return l.inst.close() }

// Acquire admits a call and returns its Permit and true if fewer than
// Limit calls are in flight, or the zero Permit and false at once. It does
// not allocate. It is AcquireContext with context.Background().
func (l *Limiter) Acquire() (Permit, bool) { return l.AcquireContext(context.Background()) }

// AcquireContext is Acquire with a context for metric recording and for
// the span event [RejectedEventName], added to the span of ctx when it is
// recording and the call is rejected. Admitting a call does not allocate.
func (l *Limiter) AcquireContext(ctx context.Context) (Permit, bool) {
	for {
		n := l.inflight.Load()
		if limit := l.limit.Load(); n >= limit {
			l.inst.calls.Add(ctx, 1, l.inst.addOpts[outRejected]...)
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				span.AddEvent(RejectedEventName, trace.WithAttributes(
					l.inst.nameAttr, LimitKey.Int64(limit)))
			}
			return Permit{}, false
		}
		if l.inflight.CompareAndSwap(n, n+1) {
			l.inst.calls.Add(ctx, 1, l.inst.addOpts[outAdmitted]...)
			return Permit{l: l, start: time.Now(), inflight: int(n + 1)}, true
		}
	}
}

// Done ends the call. With a nil err its RTT, measured from Acquire, is
// fed to the algorithm. An err matching context.DeadlineExceeded counts
// as a drop, as [Permit.Dropped]; any other error releases the permit
// without a sample, since a failing call's RTT says little about load
// (Netflix's onIgnore). Done of the zero Permit does nothing.
func (p Permit) Done(err error) {
	switch {
	case p.l == nil:
	case err == nil:
		p.l.finish(p, false)
	case errors.Is(err, context.DeadlineExceeded):
		p.l.finish(p, true)
	default:
		p.l.release()
	}
}

// Dropped ends the call as dropped: timed out, rejected or shed
// downstream, a sign of overload that makes the algorithm shrink the
// limit. Dropped of the zero Permit does nothing.
func (p Permit) Dropped() {
	if p.l != nil {
		p.l.finish(p, true)
	}
}

func (l *Limiter) finish(p Permit, dropped bool) {
	s := Sample{RTT: time.Since(p.start), InFlight: p.inflight, Dropped: dropped}
	l.mu.Lock()
	l.limit.Store(int64(l.alg.Update(s)))
	l.mu.Unlock()
	if dropped {
		l.inst.calls.Add(context.Background(), 1, l.inst.addOpts[outDropped]...)
	}
	l.release()
}

func (l *Limiter) release() {
	if l.inflight.Add(-1) < 0 {
		panic("adaptive: Permit done more than once")
	}
}
