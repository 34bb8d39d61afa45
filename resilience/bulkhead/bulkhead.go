package bulkhead

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// ErrFull is matched (errors.Is) by every error a [Bulkhead] returns when
// it rejects a call.
var ErrFull = errors.New("bulkhead: full")

// Reasons for a rejection, the values of [RejectedError.Reason].
const (
	ReasonQueueFull = "queue full"
	ReasonMaxWait   = "max wait"
	ReasonContext   = "context"
)

// RejectedError is the error [Bulkhead.Acquire] and [Bulkhead.Execute]
// return when they reject a call. It matches [ErrFull] and, when Reason is
// [ReasonContext], the context's error.
type RejectedError struct {
	// Name is the bulkhead's Config.Name.
	Name string
	// Reason is why the call was rejected: [ReasonQueueFull],
	// [ReasonMaxWait] or [ReasonContext].
	Reason string
	// Waited is how long the caller was queued; 0 for ReasonQueueFull.
	Waited time.Duration
	// Err is the context's error when Reason is ReasonContext; nil
	// otherwise.
	Err error
}

// Error describes the rejection, such as `bulkhead "db": max wait, after
// 250ms`.
func (e *RejectedError) Error() string {
	s := fmt.Sprintf("bulkhead %q: %s", e.Name, e.Reason)
	if e.Reason != ReasonQueueFull {
		s += fmt.Sprintf(", after %s", e.Waited)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is [ErrFull].
func (e *RejectedError) Is(target error) bool { return target == ErrFull }

// Unwrap returns Err: the context's error when Reason is ReasonContext.
func (e *RejectedError) Unwrap() error { return e.Err }

var _ error = (*RejectedError)(nil)

// The state word packs waiters<<waitShift | inflight.
const (
	waitShift = 32
	inMask    = 1<<waitShift - 1
	oneWaiter = 1 << waitShift
)

// Bulkhead limits concurrent calls. It is safe for concurrent use; create
// it with [New]. Its gauge callbacks stay registered with the
// MeterProvider until [Bulkhead.Close].
//
// Acquiring a free slot and releasing a slot nobody waits for each take
// one compare-and-swap on an atomic word; queueing and handing a slot to a
// waiter take a mutex.
type Bulkhead struct {
	// state packs the number of queued waiters (high 32 bits) and of
	// admitted calls holding a slot (low 32 bits). The waiter count only
	// changes with mu held, together with the queue.
	state atomic.Uint64

	// Immutable after New.
	name       string
	max        uint64
	maxQueue   uint64
	maxWait    time.Duration
	errQueue   *RejectedError
	inst       instruments
	waiterPool sync.Pool

	mu         sync.Mutex
	head, tail *waiter // FIFO queue; guarded by mu
}

// waiter is a queued caller.
type waiter struct {
	prev, next *waiter       // guarded by Bulkhead.mu
	granted    bool          // a slot was handed over; guarded by Bulkhead.mu
	ready      chan struct{} // receives once when granted
	timer      *time.Timer   // MaxWait timer, reused
}

// New returns a Bulkhead configured by cfg, or the error of cfg.Validate,
// or an error creating its instruments.
func New(cfg Config) (*Bulkhead, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Bulkhead{
		name:     cfg.Name,
		max:      uint64(cfg.MaxConcurrent),
		maxQueue: uint64(cfg.MaxQueue),
		maxWait:  cfg.MaxWait,
	}
	b.errQueue = &RejectedError{Name: b.name, Reason: ReasonQueueFull}
	if err := b.inst.init(b, cfg.MeterProvider); err != nil {
		return nil, fmt.Errorf("bulkhead: creating instruments: %w", err)
	}
	return b, nil
}

// Permit holds one slot of a [Bulkhead], returned by [Bulkhead.Acquire]
// and [Bulkhead.TryAcquire]. The zero Permit holds none.
type Permit struct {
	b *Bulkhead
}

// Release returns the permit's slot, handing it to the oldest queued
// caller if there is one. It must be called exactly once per acquired
// permit; it panics if the bulkhead has no slot in use. Release of the
// zero Permit does nothing.
func (p Permit) Release() {
	if p.b != nil {
		p.b.release()
	}
}

// InFlight returns the number of slots in use.
func (b *Bulkhead) InFlight() int { return int(b.state.Load() & inMask) }

// QueueLen returns the number of queued callers.
func (b *Bulkhead) QueueLen() int { return int(b.state.Load() >> waitShift) }

// Close unregisters the bulkhead's metric callbacks, so the
// resilience.bulkhead.inflight and resilience.bulkhead.queue gauges no
// longer report it; the bulkhead keeps working, and counting calls,
// without its gauges. Close it when replacing it with another bulkhead of
// the same name. It is idempotent and returns the MeterProvider's error
// unregistering, if any.
func (b *Bulkhead) Close() error { return b.inst.close() }

// tryFast takes a free slot if there is one and nobody is queued.
func (b *Bulkhead) tryFast() bool {
	for {
		s := b.state.Load()
		if s>>waitShift != 0 || s&inMask >= b.max {
			return false
		}
		if b.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// TryAcquire returns a Permit and true if a slot is free and no caller is
// queued, or the zero Permit and false without waiting. It records an
// admission but not a rejection: it is a probe, not a call.
func (b *Bulkhead) TryAcquire() (Permit, bool) {
	if !b.tryFast() {
		return Permit{}, false
	}
	b.inst.calls.Add(context.Background(), 1, b.inst.addOpts[outAdmitted]...)
	return Permit{b}, true
}

// Acquire returns a Permit for a slot, queueing for one if none is free,
// or a [*RejectedError] if the queue is full, the caller has waited
// MaxWait, or ctx ends while it waits. A slot handed to a caller whose
// MaxWait expires at the same moment is kept (the call is admitted); one
// handed to a caller whose ctx ended is passed on and the call rejected.
// A free slot is granted without looking at ctx; ctx is only checked
// before and while queueing.
func (b *Bulkhead) Acquire(ctx context.Context) (Permit, error) {
	if b.tryFast() {
		b.inst.calls.Add(ctx, 1, b.inst.addOpts[outAdmitted]...)
		return Permit{b}, nil
	}
	return b.acquireSlow(ctx)
}

func (b *Bulkhead) acquireSlow(ctx context.Context) (Permit, error) {
	if b.maxQueue == 0 {
		return b.reject(ctx, outQueueFull, 0, nil)
	}
	if err := ctx.Err(); err != nil {
		return b.reject(ctx, outContext, 0, err)
	}
	start := time.Now()
	b.mu.Lock()
	for {
		s := b.state.Load()
		if s>>waitShift == 0 && s&inMask < b.max {
			if b.state.CompareAndSwap(s, s+1) {
				b.mu.Unlock()
				b.inst.calls.Add(ctx, 1, b.inst.addOpts[outAdmitted]...)
				return Permit{b}, nil
			}
			continue
		}
		if s>>waitShift >= b.maxQueue {
			b.mu.Unlock()
			return b.reject(ctx, outQueueFull, 0, nil)
		}
		if b.state.CompareAndSwap(s, s+oneWaiter) {
			break
		}
	}
	w := b.getWaiter()
	b.push(w)
	b.mu.Unlock()

	var expired <-chan time.Time
	if b.maxWait > 0 {
		if w.timer == nil {
			w.timer = time.NewTimer(b.maxWait)
		} else {
			w.timer.Reset(b.maxWait)
		}
		expired = w.timer.C
	}
	var why outcome
	select {
	case <-w.ready:
		b.stopTimer(w)
		b.waiterPool.Put(w)
		return b.admitQueued(ctx, start)
	case <-expired:
		why = outMaxWait
	case <-ctx.Done():
		why = outContext
	}
	b.stopTimer(w)
	waited := time.Since(start)
	b.mu.Lock()
	if w.granted {
		b.mu.Unlock()
		<-w.ready // sent with mu held
		b.waiterPool.Put(w)
		if why == outMaxWait {
			return b.admitQueued(ctx, start)
		}
		b.release()
	} else {
		b.remove(w)
		b.state.Add(^uint64(oneWaiter - 1)) // one waiter fewer
		b.mu.Unlock()
		b.waiterPool.Put(w)
	}
	b.inst.wait.Record(ctx, waited.Seconds(), b.inst.waitOpts[why]...)
	var err error
	if why == outContext {
		err = ctx.Err()
	}
	return b.reject(ctx, why, waited, err)
}

// admitQueued records the admission of a queued caller.
func (b *Bulkhead) admitQueued(ctx context.Context, start time.Time) (Permit, error) {
	waited := time.Since(start).Seconds()
	b.inst.calls.Add(ctx, 1, b.inst.addOpts[outAdmitted]...)
	b.inst.wait.Record(ctx, waited, b.inst.waitOpts[outAdmitted]...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(QueuedEventName, trace.WithAttributes(PolicyNameKey.String(b.name), WaitKey.Float64(waited)))
	}
	return Permit{b}, nil
}

func (b *Bulkhead) reject(ctx context.Context, why outcome, waited time.Duration, err error) (Permit, error) {
	b.inst.calls.Add(ctx, 1, b.inst.addOpts[why]...)
	reason := ReasonQueueFull
	switch why {
	case outMaxWait:
		reason = ReasonMaxWait
	case outContext:
		reason = ReasonContext
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{PolicyNameKey.String(b.name), ReasonKey.String(eventReasons[why])}
		if why != outQueueFull {
			attrs = append(attrs, WaitKey.Float64(waited.Seconds()))
		}
		span.AddEvent(RejectedEventName, trace.WithAttributes(attrs...))
	}
	if why == outQueueFull {
		return Permit{}, b.errQueue
	}
	return Permit{}, &RejectedError{Name: b.name, Reason: reason, Waited: waited, Err: err}
}

func (b *Bulkhead) stopTimer(w *waiter) {
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (b *Bulkhead) getWaiter() *waiter {
	if w, ok := b.waiterPool.Get().(*waiter); ok {
		w.granted = false
		return w
	}
	return &waiter{ready: make(chan struct{}, 1)}
}

// push appends w to the queue; mu must be held.
func (b *Bulkhead) push(w *waiter) {
	w.prev, w.next = b.tail, nil
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
}

// remove unlinks w from the queue; mu must be held.
func (b *Bulkhead) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.tail = w.prev
	}
	w.prev, w.next = nil, nil
}

// release returns a slot, or hands it to the oldest waiter.
func (b *Bulkhead) release() {
	for {
		s := b.state.Load()
		if s&inMask == 0 {
			panic("bulkhead: Release without a slot in use")
		}
		if s>>waitShift != 0 {
			break
		}
		if b.state.CompareAndSwap(s, s-1) {
			return
		}
	}
	b.mu.Lock()
	w := b.head
	if w == nil {
		// The waiters gave up meanwhile; none can join without mu.
		b.state.Add(^uint64(0))
		b.mu.Unlock()
		return
	}
	b.remove(w)
	w.granted = true
	// The slot passes to w: one waiter fewer, as many in flight.
	b.state.Add(^uint64(oneWaiter - 1))
	w.ready <- struct{}{}
	b.mu.Unlock()
}

// Execute calls fn holding a slot, queueing for one if none is free, and
// returns fn's error, or a [*RejectedError] without calling fn. The slot
// is released when fn returns or panics.
func (b *Bulkhead) Execute(ctx context.Context, fn func(context.Context) error) error {
	p, err := b.Acquire(ctx)
	if err != nil {
		return err
	}
	defer p.Release()
	return fn(ctx)
}
