package circuitbreaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// State is the state of a [Breaker].
type State int

// States of a [Breaker]; the values are those of the
// resilience.circuitbreaker.state gauge.
const (
	// StateClosed lets every call through and records its outcome.
	StateClosed State = iota
	// StateOpen rejects every call until the open duration has passed.
	StateOpen
	// StateHalfOpen lets HalfOpenProbes calls through to decide between
	// closed and open.
	StateHalfOpen
	// StateForcedOpen rejects every call until [Breaker.Reset].
	StateForcedOpen
	// StateDisabled lets every call through and records nothing until
	// [Breaker.Reset].
	StateDisabled
	numStates
)

var stateNames = [numStates]string{"closed", "open", "half-open", "forced-open", "disabled"}

// String returns the state's lowercase name, such as "half-open".
func (s State) String() string {
	if s >= 0 && s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ErrOpen is matched (errors.Is) by every error a [Breaker] returns when it
// rejects a call.
var ErrOpen = errors.New("circuitbreaker: open")

// OpenError is the error [Breaker.Allow] and [Breaker.Execute] return when
// they reject a call: the breaker is open, forced open, or half-open with
// all its probes admitted. It matches [ErrOpen].
type OpenError struct {
	// Name is the breaker's Config.Name.
	Name string
	// State is the state that rejected the call.
	State State
	// RetryAfter is how long until the breaker turns half-open, when State
	// is StateOpen; 0 otherwise, as it is not known when a forced-open
	// breaker is reset or a half-open one has a free slot.
	RetryAfter time.Duration
}

// Error describes the rejection, such as
// `circuitbreaker "db": open, retry after 12s`.
func (e *OpenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "circuitbreaker %q: %s", e.Name, e.State)
	if e.State == StateHalfOpen {
		b.WriteString(", too many probes")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, ", retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Is reports whether target is [ErrOpen].
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

var _ error = (*OpenError)(nil)

// errPanicked is the outcome Execute records when fn panics or exits the
// goroutine.
var errPanicked = errors.New("circuitbreaker: function panicked")

const stateBits = 3

// Breaker is a circuit breaker. It is safe for concurrent use; create it
// with [New]. Its gauge callback stays registered with the MeterProvider
// until [Breaker.Close].
//
// Allow in the closed and disabled states reads one atomic word; Done,
// and Allow in the other states, take a mutex. OnStateChange and metric
// recording run outside it.
type Breaker struct {
	// st packs generation<<stateBits | state. The generation changes on
	// every transition and Reset, so permits from before it are ignored.
	// It is written only with mu held.
	st atomic.Uint64

	// Immutable after New.
	name       string
	minCalls   int
	failThr    float64
	slowThr    float64
	slowDur    time.Duration
	timed      bool
	probes     int
	openDur    time.Duration
	openFunc   func(int, error) time.Duration
	isFailure  func(error) bool
	isExcluded func(error) bool
	onChange   func(from, to State)
	epoch      time.Time
	errHalf    *OpenError
	errForced  *OpenError
	inst       instruments

	mu        sync.Mutex
	win       window    // closed-state outcomes; guarded by mu
	opens     int       // consecutive openings; guarded by mu
	openUntil time.Time // end of the open period; guarded by mu
	probe     counts    // half-open outcomes; guarded by mu
	inflight  int       // admitted half-open probes without outcome; guarded by mu
	pending   []change  // transitions not yet given to onChange; guarded by mu
	draining  bool      // a goroutine is delivering pending; guarded by mu
}

// change is a state transition.
type change struct {
	from, to State
	ok       bool
}

// New returns a closed Breaker configured by cfg, or the error of
// cfg.Validate, or an error creating its instruments.
func New(cfg Config) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Breaker{
		name:       cfg.Name,
		minCalls:   cfg.MinimumCalls,
		failThr:    cfg.FailureRateThreshold,
		slowThr:    cfg.SlowCallRateThreshold,
		slowDur:    cfg.SlowCallDuration,
		timed:      cfg.Window == WindowTime,
		probes:     cfg.HalfOpenProbes,
		openDur:    cfg.OpenDuration,
		openFunc:   cfg.OpenDurationFunc,
		isFailure:  cfg.IsFailure,
		isExcluded: cfg.IsExcluded,
		onChange:   cfg.OnStateChange,
		epoch:      time.Now(),
		win:        newWindow(cfg),
	}
	if !b.timed && b.minCalls > cfg.WindowSize {
		b.minCalls = cfg.WindowSize
	}
	if b.isExcluded == nil {
		b.isExcluded = func(err error) bool { return errors.Is(err, context.Canceled) }
	}
	b.errHalf = &OpenError{Name: b.name, State: StateHalfOpen}
	b.errForced = &OpenError{Name: b.name, State: StateForcedOpen}
	if err := b.inst.init(b, cfg.MeterProvider); err != nil {
		return nil, err
	}
	return b, nil
}

// Name returns the breaker's Config.Name.
func (b *Breaker) Name() string { return b.name }

// Close unregisters the breaker's metric callback, so the
// resilience.circuitbreaker.state gauge no longer reports it; the breaker
// keeps working, and counting calls and transitions, without its gauge.
// Close it when replacing it with another breaker of the same name. It is
// idempotent and returns the MeterProvider's error unregistering, if any.
func (b *Breaker) Close() error { return b.inst.close() }

// State returns the current state. An open breaker whose open duration has
// passed reports StateOpen until the next Allow moves it to half-open.
func (b *Breaker) State() State { return State(b.st.Load() & (1<<stateBits - 1)) }

// Permit is the permission to make one call, returned by [Breaker.Allow].
// Its outcome must be reported with exactly one call to Done or
// DoneContext: a half-open breaker waits for the outcomes of the probes it
// admitted. The zero Permit, which Allow returns with an error or while the
// breaker is disabled, records nothing.
type Permit struct {
	b     *Breaker
	gen   uint64
	start time.Time // set only when slow calls are tracked
}

// Allow returns a Permit if the breaker lets a call through, or an
// [*OpenError] if it rejects it. It moves an open breaker whose open
// duration has passed to half-open. It does not allocate unless it rejects
// a call in the open state.
func (b *Breaker) Allow() (Permit, error) { return b.AllowContext(context.Background()) }

// AllowContext is Allow with a context for metric recording and for span
// events: [StateChangeEventName] should the call move the breaker to
// half-open, [RejectedEventName] should the breaker reject it.
func (b *Breaker) AllowContext(ctx context.Context) (Permit, error) {
	v := b.st.Load()
	switch State(v & (1<<stateBits - 1)) {
	case StateClosed:
		p := Permit{b: b, gen: v >> stateBits}
		if b.slowDur > 0 {
			p.start = time.Now()
		}
		return p, nil
	case StateDisabled:
		return Permit{}, nil
	case StateForcedOpen:
		b.rejected(ctx, StateForcedOpen)
		return Permit{}, b.errForced
	}
	return b.allowSlow(ctx)
}

// rejected records a call rejected in state st in metrics and on the span
// of ctx.
func (b *Breaker) rejected(ctx context.Context, st State) {
	b.inst.calls.Add(ctx, 1, b.inst.outcomeOpts[outRejected]...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(RejectedEventName, trace.WithAttributes(
			PolicyNameKey.String(b.name), StateKey.String(st.String())))
	}
}

// allowSlow is Allow in the open and half-open states, and when the state
// changed after AllowContext loaded it.
func (b *Breaker) allowSlow(ctx context.Context) (Permit, error) {
	var ch change
	var err error
	p := Permit{b: b}
	b.mu.Lock()
	switch b.State() {
	case StateOpen:
		now := time.Now()
		if now.Before(b.openUntil) {
			err = &OpenError{Name: b.name, State: StateOpen, RetryAfter: b.openUntil.Sub(now)}
			break
		}
		b.probe, b.inflight = counts{}, 0
		ch = b.setState(StateHalfOpen)
		fallthrough
	case StateHalfOpen:
		if b.inflight+b.probe.calls >= b.probes {
			err = b.errHalf
			break
		}
		b.inflight++
	case StateForcedOpen:
		err = b.errForced
	case StateDisabled:
		p.b = nil
	}
	p.gen = b.st.Load() >> stateBits
	b.mu.Unlock()
	b.changed(ctx, ch)
	if err != nil {
		st := StateOpen
		if oe, ok := err.(*OpenError); ok {
			st = oe.State
		}
		b.rejected(ctx, st)
		return Permit{}, err
	}
	if p.b != nil && b.slowDur > 0 {
		p.start = time.Now()
	}
	return p, nil
}

// Done reports the outcome of the permitted call: err is nil on success.
// Its latency is the time since Allow. An outcome is ignored if the state
// changed since Allow (a transition or Reset), so calls admitted before the
// breaker opened or closed do not count in the new state. Calling Done
// twice is a misuse that records the outcome twice.
func (p Permit) Done(err error) { p.DoneContext(context.Background(), err) }

// DoneContext is Done with a context for metric recording and for a span
// event should the outcome change the breaker's state.
func (p Permit) DoneContext(ctx context.Context, err error) {
	b := p.b
	if b == nil {
		return
	}
	o := outSuccess
	if err != nil {
		if b.isExcluded(err) {
			o = outExcluded
		} else if b.isFailure == nil || b.isFailure(err) {
			o = outFailure
		}
	}
	var elapsed time.Duration
	if b.slowDur > 0 || b.timed {
		now := time.Now()
		if b.slowDur > 0 && o != outExcluded && now.Sub(p.start) >= b.slowDur {
			o |= outSlow
		}
		elapsed = now.Sub(b.epoch)
	}
	b.mu.Lock()
	ch := b.record(p.gen, o, err, elapsed)
	b.mu.Unlock()
	b.inst.calls.Add(ctx, 1, b.inst.outcomeOpts[o]...)
	b.changed(ctx, ch)
}

// record records o for a permit of generation gen. b.mu must be held.
func (b *Breaker) record(gen uint64, o outcome, err error, elapsed time.Duration) change {
	v := b.st.Load()
	if v>>stateBits != gen {
		return change{}
	}
	switch State(v & (1<<stateBits - 1)) {
	case StateClosed:
		if o == outExcluded {
			return change{}
		}
		b.win.record(o, elapsed)
		if c := b.win.total; c.calls >= b.minCalls && b.exceeds(c) {
			b.opens = 1
			return b.open(err)
		}
	case StateHalfOpen:
		if b.inflight > 0 {
			b.inflight--
		}
		if o == outExcluded {
			return change{}
		}
		b.probe.add(o, 1)
		if b.probe.calls >= b.probes {
			if b.exceeds(b.probe) {
				b.opens++
				return b.open(err)
			}
			b.opens = 0
			b.win.reset()
			return b.setState(StateClosed)
		}
	}
	return change{}
}

// exceeds reports whether c's failure or slow-call rate reaches its
// threshold.
func (b *Breaker) exceeds(c counts) bool {
	if c.calls == 0 {
		return false
	}
	n := float64(c.calls)
	return float64(c.failures)/n >= b.failThr || float64(c.slow)/n >= b.slowThr
}

// open moves the breaker to open for the opens-th time. b.mu must be held.
func (b *Breaker) open(cause error) change {
	d := b.openDur
	if b.openFunc != nil {
		d = max(b.openFunc(b.opens, cause), 0)
	}
	b.openUntil = time.Now().Add(d)
	return b.setState(StateOpen)
}

// setState moves the breaker to state to and starts a new generation.
// b.mu must be held.
func (b *Breaker) setState(to State) change {
	v := b.st.Load()
	from := State(v & (1<<stateBits - 1))
	b.st.Store((v>>stateBits+1)<<stateBits | uint64(to))
	if from == to {
		return change{}
	}
	ch := change{from: from, to: to, ok: true}
	if b.onChange != nil {
		b.pending = append(b.pending, ch)
	}
	return ch
}

// changed reports ch, made by this goroutine, to metrics and the span in
// ctx, and delivers pending transitions to OnStateChange. b.mu must not be
// held.
func (b *Breaker) changed(ctx context.Context, ch change) {
	if !ch.ok {
		return
	}
	b.inst.transitions.Add(ctx, 1, b.inst.transitionOpts[ch.from][ch.to]...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent(StateChangeEventName, trace.WithAttributes(
			PolicyNameKey.String(b.name),
			FromStateKey.String(ch.from.String()),
			ToStateKey.String(ch.to.String()),
		))
	}
	if b.onChange == nil {
		return
	}
	b.mu.Lock()
	if b.draining {
		b.mu.Unlock()
		return
	}
	b.draining = true
	finished := false
	defer func() {
		if !finished { // onChange panicked
			b.mu.Lock()
			b.draining = false
			b.mu.Unlock()
		}
	}()
	for len(b.pending) > 0 {
		next := b.pending[0]
		b.pending = b.pending[1:]
		b.mu.Unlock()
		b.onChange(next.from, next.to)
		b.mu.Lock()
	}
	b.pending = nil
	b.draining = false
	finished = true
	b.mu.Unlock()
}

// Execute calls fn if the breaker allows it and records its outcome; it
// returns fn's error, or an [*OpenError] without calling fn. If ctx is
// already done it returns ctx.Err() unwrapped without calling fn or
// recording anything. A panic in fn is recorded as a failure and goes on
// unwinding.
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.AllowContext(ctx)
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			p.DoneContext(ctx, errPanicked)
		}
	}()
	err = fn(ctx)
	finished = true
	p.DoneContext(ctx, err)
	return err
}

// ForceOpen moves the breaker to forced-open: it rejects every call until
// Reset.
func (b *Breaker) ForceOpen() { b.set(StateForcedOpen) }

// Disable moves the breaker to disabled: it lets every call through and
// records nothing until Reset.
func (b *Breaker) Disable() { b.set(StateDisabled) }

// Reset moves the breaker to closed from any state, with an empty window
// and the count of consecutive openings at zero. Outcomes of calls
// admitted before Reset are ignored.
func (b *Breaker) Reset() {
	b.mu.Lock()
	b.win.reset()
	b.opens = 0
	ch := b.setState(StateClosed)
	b.mu.Unlock()
	b.changed(context.Background(), ch)
}

func (b *Breaker) set(s State) {
	b.mu.Lock()
	ch := b.setState(s)
	b.mu.Unlock()
	b.changed(context.Background(), ch)
}

// Snapshot is the breaker's state and window at one instant.
type Snapshot struct {
	// State is the breaker's state.
	State State
	// Calls, Failures and SlowCalls count the recorded outcomes: those of
	// the half-open probes in StateHalfOpen, those of the sliding window
	// otherwise (kept from the closed state while open).
	Calls, Failures, SlowCalls int
	// FailureRate and SlowCallRate are Failures/Calls and SlowCalls/Calls,
	// or 0 without calls.
	FailureRate, SlowCallRate float64
}

// Metrics returns a snapshot of the breaker's state and window.
func (b *Breaker) Metrics() Snapshot {
	var elapsed time.Duration
	if b.timed {
		elapsed = time.Since(b.epoch)
	}
	b.mu.Lock()
	s := Snapshot{State: b.State()}
	var c counts
	if s.State == StateHalfOpen {
		c = b.probe
	} else {
		b.win.advance(elapsed)
		c = b.win.total
	}
	b.mu.Unlock()
	s.Calls, s.Failures, s.SlowCalls = c.calls, c.failures, c.slow
	if c.calls > 0 {
		s.FailureRate = float64(c.failures) / float64(c.calls)
		s.SlowCallRate = float64(c.slow) / float64(c.calls)
	}
	return s
}
