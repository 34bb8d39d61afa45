package hedge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/resilience/budget"
	"go.opentelemetry.io/otel/trace"
)

// Hedger holds the configuration, latency estimate, budget and metrics
// shared by the calls [Do] hedges. It is safe for concurrent use. Its
// gauge callback stays registered with the MeterProvider until
// [Hedger.Close].
type Hedger struct {
	name       string
	fixed      time.Duration
	minDelay   time.Duration
	maxDelay   time.Duration
	minSamples uint64
	maxHedges  int
	q          *Quantile
	budget     budget.Budget
	inst       instruments
}

// New returns a Hedger configured by cfg whose hedged attempts are drawn
// from b, or the error of cfg.Validate. b may be nil for no budget; it is
// typically shared with the retries to the same dependency.
func New(cfg Config, b budget.Budget) (*Hedger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	q, err := NewQuantile(cfg.Quantile, cfg.HalfLife)
	if err != nil {
		return nil, err
	}
	h := &Hedger{
		name:       cfg.Name,
		fixed:      cfg.Delay,
		minDelay:   cfg.MinDelay,
		maxDelay:   cfg.MaxDelay,
		minSamples: uint64(cfg.MinSamples),
		maxHedges:  cfg.MaxHedges,
		q:          q,
		budget:     b,
	}
	if err := h.inst.init(h, cfg.MeterProvider); err != nil {
		return nil, err
	}
	return h, nil
}

// Name returns the hedger's name.
func (h *Hedger) Name() string { return h.name }

// Close unregisters the hedger's metric callback, so the
// resilience.hedge.delay gauge no longer reports it; the hedger keeps
// working, and counting attempts, without its gauge. Close it when
// replacing it with another hedger of the same name. It is idempotent and
// returns the MeterProvider's error unregistering, if any.
func (h *Hedger) Close() error { return h.inst.close() }

// Quantile returns the estimator of the latencies of winning attempts that
// the adaptive delay follows; with a fixed delay it is kept up to date too.
func (h *Hedger) Quantile() *Quantile { return h.q }

// Delay returns the delay after which the next call would send a hedged
// attempt: the fixed Delay if configured; otherwise MaxDelay until
// MinSamples latencies have been observed, and then the Quantile of the
// recent latencies clamped to [MinDelay, MaxDelay].
func (h *Hedger) Delay() time.Duration {
	if h.fixed > 0 {
		return h.fixed
	}
	if h.q.Count() < h.minSamples {
		return h.maxDelay
	}
	return min(max(h.q.Value(), h.minDelay), h.maxDelay)
}

// Error is the error [Do] returns when no attempt succeeded. It wraps the
// errors of the attempts that failed and, when the caller's context ended
// the call, the context's error.
type Error struct {
	// Name is the hedger's name.
	Name string
	// Attempts is the number of attempts started, the first included.
	Attempts int
	// Errs are the errors of the attempts that failed before Do returned,
	// in the order they failed; attempts still running when the context
	// ended are not included.
	Errs []error
	// Cause is the caller's context's error when it ended the call.
	Cause error
}

// Error describes the failure.
func (e *Error) Error() string {
	msg := fmt.Sprintf("hedge: %s: all %d attempts failed", e.Name, e.Attempts)
	if e.Cause != nil {
		msg = fmt.Sprintf("hedge: %s: %v after %d attempts, %d failed", e.Name, e.Cause, e.Attempts, len(e.Errs))
	}
	if len(e.Errs) > 0 {
		msg += ": " + errors.Join(e.Errs...).Error()
	}
	return msg
}

// Unwrap returns the errors of the failed attempts and, if set, Cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return append(e.Errs[:len(e.Errs):len(e.Errs)], e.Cause)
	}
	return e.Errs
}

// result is the outcome of one attempt.
type result[T any] struct {
	v       T
	err     error
	attempt int // 0 for the primary
	latency time.Duration
}

// Do calls fn and, if it has not returned after h.Delay(), calls it again
// concurrently, up to MaxHedges more times one delay apart, as described
// in Dean and Barroso's "The Tail at Scale" (CACM 2013) and gRPC proposal
// A6 ("hedging policy"). Each attempt gets its own child of ctx.
//
// The first successful attempt wins: Do returns its result at once and
// cancels the contexts of the others, whose goroutines exit when fn
// returns; fn must therefore honour its context's cancellation, or its
// losing calls run on after Do has returned. The latency of the winning
// attempt, from its own start, is fed to the hedger's [Quantile].
//
// If an attempt fails while others are still running, Do waits for them
// (and keeps sending hedges on schedule); once every attempt sent has
// failed it returns an [*Error] wrapping all their errors, without sending
// the hedges not yet due: hedging is for slowness, use retry for failures.
// If ctx ends first, Do cancels every attempt and returns at once an
// [*Error] whose Cause is ctx.Err().
//
// With a budget, Do calls OnRequest once, Withdraw before each hedge (a
// denial stops the hedging of this call), OnSuccess for the winning attempt
// and OnFailure for each failed attempt it sees. Each hedge sent adds the
// span event resilience.hedge.sent to the span of ctx, and a denial by the
// budget the event resilience.budget.denied. Panics of fn are not
// recovered.
func Do[T any](ctx context.Context, h *Hedger, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, &Error{Name: h.name, Cause: err}
	}
	if h.budget != nil {
		h.budget.OnRequest()
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Buffered for every attempt, so that losers never block.
	results := make(chan result[T], h.maxHedges+1)
	var cancels [MaxMaxHedges + 1]context.CancelFunc
	defer func() {
		for _, c := range cancels {
			if c != nil {
				c()
			}
		}
	}()
	launch := func(attempt int) {
		actx, acancel := context.WithCancel(dctx)
		cancels[attempt] = acancel
		kind := kindPrimary
		if attempt > 0 {
			kind = kindHedge
		}
		h.inst.attempts.Add(ctx, 1, h.inst.kindOpts[kind]...)
		start := time.Now()
		go func() {
			v, err := fn(actx)
			results <- result[T]{v: v, err: err, attempt: attempt, latency: time.Since(start)}
		}()
	}

	launch(0)
	sent, pending := 1, 1
	var timer *time.Timer
	var tick <-chan time.Time
	if h.maxHedges > 0 {
		timer = time.NewTimer(h.Delay())
		defer timer.Stop()
		tick = timer.C
	}
	var errs []error
	for {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				kind := kindPrimary
				if r.attempt > 0 {
					kind = kindHedge
				}
				h.inst.wins.Add(ctx, 1, h.inst.kindOpts[kind]...)
				h.q.Observe(r.latency)
				if h.budget != nil {
					h.budget.OnSuccess()
				}
				return r.v, nil
			}
			errs = append(errs, r.err)
			if err := ctx.Err(); err != nil {
				// The caller's context ended the attempt: not a failure
				// of the dependency.
				return zero, &Error{Name: h.name, Attempts: sent, Errs: errs, Cause: err}
			}
			if h.budget != nil {
				h.budget.OnFailure()
			}
			if pending == 0 {
				return zero, &Error{Name: h.name, Attempts: sent, Errs: errs}
			}
		case <-tick:
			if h.budget != nil && !h.budget.Withdraw() {
				h.inst.denied.Add(ctx, 1, h.inst.nameOpts...)
				if span := trace.SpanFromContext(ctx); span.IsRecording() {
					h.budgetDenied(span, sent+1)
				}
				tick = nil
				continue
			}
			launch(sent)
			sent++
			pending++
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				span.AddEvent(SentEventName, trace.WithAttributes(h.inst.nameAttr, AttemptKey.Int(sent)))
			}
			if sent > h.maxHedges {
				tick = nil
			} else {
				timer.Reset(h.Delay())
			}
		case <-ctx.Done():
			return zero, &Error{Name: h.name, Attempts: sent, Errs: errs, Cause: ctx.Err()}
		}
	}
}
