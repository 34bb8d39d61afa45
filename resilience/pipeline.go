// Package resilience composes the policies of its subpackages (circuit
// breaker, bulkhead, rate limiter, retry, timeout, fallback, adaptive
// concurrency limiter, load shedder, client-side throttle, hedging and
// policies of your own) into a Pipeline that runs a call through them in an explicit
// outer-to-inner order:
//
//	p, err := resilience.New[Order](
//		resilience.Fallback(cached),     // outermost
//		resilience.Retry(retryPolicy),
//		resilience.CircuitBreaker(breaker),
//		resilience.Timeout(2*time.Second), // innermost
//	)
//	order, err := p.Execute(ctx, fetchOrder)
//
// A Pipeline interprets its stages rather than nesting closures (see
// docs/adr/0001-resilience-pipeline.md): the built-in stages are handled by
// concrete type, so running a call through a circuit breaker, a bulkhead, a
// rate limiter, a retry, an adaptive limiter, a load shedder and a throttle
// allocates nothing when the call succeeds. A hedge stage allocates what
// [hedge.Do] does (a goroutine, a channel and a context per attempt). A
// timeout allocates the one derived context it must give the callee, and
// starts a timer only if the callee waits on the context's Done channel.
//
// Every error a stage produces is its policy's typed error, matching the
// policy package's sentinel ([circuitbreaker.ErrOpen], [bulkhead.ErrFull],
// [ratelimit.ErrLimited], [adaptive.ErrLimitExceeded], [shed.ErrShed],
// [ErrThrottled], [ErrTimeout]) and wrapping the context's error
// where the context ended the call.
//
// When the span of the call's context is recording, the stages add span
// events to it: each policy its own (see the policy packages), a rate limit
// stage resilience.ratelimit.rejected, a timeout stage
// resilience.timeout.exceeded and a fallback stage resilience.fallback.used.
// docs/resilience-telemetry.md lists them all.
//
// A Pipeline is immutable and safe for concurrent use. To change policies at
// runtime, keep it in an atomic.Pointer and swap in a new one; policy state
// (a breaker's window, a limiter's tokens) lives in the policy objects, which
// the new pipeline may reuse.
package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/internal/deadline"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

// Span event names and attribute keys of the stages that have no policy
// package of their own.
const (
	// TimeoutEventName is added when a [Timeout] stage ends the call, with
	// [TimeoutKey].
	TimeoutEventName = "resilience.timeout.exceeded"
	// FallbackEventName is added when a [Fallback] stage answers a failed
	// call, with the replaced error ([ErrorTypeKey], [ErrorMessageKey]) and
	// [OutcomeKey]: "success" when the fallback returned no error,
	// "failure" otherwise.
	FallbackEventName = "resilience.fallback.used"

	// TimeoutKey is the timeout of the stage, in seconds.
	TimeoutKey      = attribute.Key("resilience.timeout.duration")
	OutcomeKey      = attribute.Key("resilience.outcome")
	ErrorTypeKey    = attribute.Key("error.type")
	ErrorMessageKey = attribute.Key("error.message")
)

// maxMessage bounds the error messages recorded on span events.
const maxMessage = 256

// errorAttrs returns the error.type and error.message attributes of err.
func errorAttrs(err error) (attribute.KeyValue, attribute.KeyValue) {
	msg := err.Error()
	if len(msg) > maxMessage {
		n := maxMessage
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n]
	}
	return ErrorTypeKey.String(fmt.Sprintf("%T", err)), ErrorMessageKey.String(msg)
}

// rateLimited adds the rate limiter's rejected event to the span of ctx.
func rateLimited(ctx context.Context, name string, retryAfter time.Duration) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	reason := ratelimit.ReasonLimited
	after := retryAfter.Seconds()
	if retryAfter == ratelimit.Never {
		reason, after = ratelimit.ReasonExceedsBurst, -1
	}
	span.AddEvent(ratelimit.RejectedEventName, trace.WithAttributes(
		ratelimit.PolicyNameKey.String(name),
		ratelimit.ReasonKey.String(reason),
		ratelimit.RetryAfterKey.Float64(after)))
}

// kind is what a stage does.
type kind int

const (
	kindBreaker kind = iota + 1
	kindBulkhead
	kindRateLimit
	kindRetry
	kindTimeout
	kindFallback
	kindPolicy
	kindAdaptive
	kindShed
	kindThrottle
	kindHedge
	kindKeyedRateLimit
)

// Stage is one step of a Pipeline, made by [CircuitBreaker], [Bulkhead],
// [RateLimit], [KeyedRateLimit], [Retry], [RetryResult], [Timeout],
// [Fallback], [FallbackValue], [Adaptive], [Shed], [Throttle], [Hedge] or
// [Custom]. The zero Stage is invalid.
type Stage struct {
	kind     kind
	breaker  *circuitbreaker.Breaker
	bulkhead *bulkhead.Bulkhead
	limiter  ratelimit.Limiter
	adaptive *adaptive.Limiter
	shedder  *shed.Shedder
	throttle *adaptive.Throttle
	hedger   *hedge.Hedger
	keyed    KeyedLimiter
	keyOf    func(context.Context) string
	limit    string // the limiter's name, for its errors
	retry    retry.Policy
	timeout  time.Duration
	typed    any    // Fallback's func or Custom's Policy, of the pipeline's T
	typeName string // for the error when typed does not match T
}

// CircuitBreaker is a stage that lets calls through b: a call the breaker
// rejects fails with its [*circuitbreaker.OpenError], and the outcome of
// every admitted call is recorded.
func CircuitBreaker(b *circuitbreaker.Breaker) Stage {
	return Stage{kind: kindBreaker, breaker: b}
}

// Bulkhead is a stage that holds one of b's slots for the rest of the
// pipeline, queueing as b is configured; a rejected call fails with b's
// [*bulkhead.RejectedError].
func Bulkhead(b *bulkhead.Bulkhead) Stage {
	return Stage{kind: kindBulkhead, bulkhead: b}
}

// RateLimit is a stage that takes one token from l; a refused call fails
// with a [*ratelimit.LimitedError] named name, carrying the decision's
// RetryAfter.
func RateLimit(name string, l ratelimit.Limiter) Stage {
	return Stage{kind: kindRateLimit, limiter: l, limit: name}
}

// KeyedLimiter is a rate limiter that keeps one budget per key and may
// need a round trip to decide, such as the distributed GCRA limiter of
// resilience/ratelimit/redis. AllowN counts n events for key if they are
// allowed now. Its error, if any, is the call's: a Redis limiter returns one
// when Redis is out and its outage policy is "closed", or when ctx ends. It
// must be safe for concurrent use.
type KeyedLimiter interface {
	AllowN(ctx context.Context, key string, n int) (ratelimit.Decision, error)
}

// KeyedRateLimit is a stage that takes one token from l for the key that
// key returns for the call's context (a tenant, an API key, a client
// address): a refused call fails with a [*ratelimit.LimitedError] named
// name, carrying the decision's RetryAfter, and an error of l fails the
// call as it is.
func KeyedRateLimit(name string, l KeyedLimiter, key func(ctx context.Context) string) Stage {
	return Stage{kind: kindKeyedRateLimit, keyed: l, keyOf: key, limit: name}
}

// Retry is a stage that runs the rest of the pipeline again, as
// [retry.Do] does, while p says a failure may be retried. Put it outside
// the circuit breaker so the breaker records every attempt. A rejection by
// an open breaker is an error like any other to the retry: set p.RetryIf to
// one that excludes circuitbreaker.ErrOpen to stop retrying into an open
// breaker.
func Retry(p retry.Policy) Stage {
	return Stage{kind: kindRetry, retry: p}
}

// ErrResultRejected is wrapped by the error of a [RetryResult] stage whose
// last attempt returned a result its predicate rejected.
var ErrResultRejected = errors.New("resilience: result rejected")

// RetryResult is a [Retry] stage that also retries a call that succeeded
// with a result retryIf rejects (an empty page, a job still pending): such
// an attempt counts as a failure with [ErrResultRejected], for p.RetryIf
// (the default retries it; a RetryIf of your own must too), the budget and
// the metrics. When the retries run out on a rejected result, the call
// returns that result with a *retry.Error wrapping ErrResultRejected. Its T
// must be the pipeline's.
func RetryResult[T any](p retry.Policy, retryIf func(T) bool) Stage {
	return Stage{kind: kindRetry, retry: p, typed: retryIf, typeName: fmt.Sprintf("%T", retryIf)}
}

// Timeout is a stage that gives the rest of the pipeline a context that
// ends after d. When d passes first, the call fails with a [*TimeoutError]
// wrapping context.DeadlineExceeded. When the caller's own deadline comes
// sooner, no context is derived and nothing is allocated.
//
// The derived context is made for the call and never reused. It costs one
// allocation; it starts no timer and does not register with the caller's
// context until the callee (or a context derived from it) calls Done, and
// until then its Err compares the clock with the deadline when asked. A
// callee that waits on Done costs what context.WithTimeout costs.
func Timeout(d time.Duration) Stage {
	return Stage{kind: kindTimeout, timeout: d}
}

// Adaptive is a stage that holds one of l's permits for the rest of the
// pipeline. A call l rejects fails at once with [adaptive.ErrLimitExceeded]
// (the sentinel itself, so rejecting allocates nothing). When the call
// ends, the permit is given back with [adaptive.Permit.Done] and the
// call's error, so a success feeds its round-trip time to l's algorithm,
// an error matching context.DeadlineExceeded (as a [*TimeoutError] of an
// inner Timeout stage does) counts as a drop, and other errors release the
// permit without a sample; an error that [IsOverload] reports, such as a
// rejection by a load shedder or a full bulkhead downstream, counts as a
// drop too ([adaptive.Permit.Dropped]). A call that panics releases its
// permit without a sample. Put it outside the Timeout stage so that
// timeouts shrink the limit.
func Adaptive(l *adaptive.Limiter) Stage {
	return Stage{kind: kindAdaptive, adaptive: l}
}

// Shed is a stage that asks s to admit the call, with the priority of the
// call's context ([shed.WithPriority]); a shed call fails with s's
// [*shed.ShedError], matching [shed.ErrShed], whose RetryAfter
// resiliencehttp turns into a Retry-After header. The permit's Done is
// called when the call ends, however it ends (a panic included), so s
// learns the response time. Admitting allocates nothing.
func Shed(s *shed.Shedder) Stage {
	return Stage{kind: kindShed, shedder: s}
}

// Throttle is a stage of client-side adaptive throttling with t (the
// Google SRE book, chapter 21): a call t rejects fails at once with
// [ErrThrottled], without reaching the backend. For a call t lets through,
// t records whether the backend accepted it: every outcome counts as
// accepted except an error that [IsOverload] reports, which is the
// backend (or a policy in front of it) refusing the call for overload.
// A call that panics counts as accepted. Put it outside the retry stage so
// that each call, not each attempt, is counted once, or inside it to count
// attempts; either way outside the circuit breaker, whose rejections then
// count as refusals.
func Throttle(t *adaptive.Throttle) Stage {
	return Stage{kind: kindThrottle, throttle: t}
}

// Hedge is a stage that runs the rest of the pipeline through [hedge.Do]
// with h: when it has not returned after h's delay, the rest of the
// pipeline runs again concurrently, each attempt through every inner stage
// with its own child context, and the first success wins and cancels the
// others. A failed call fails with h's [*hedge.Error], which wraps the
// attempts' errors (so errors.Is still finds, say, circuitbreaker.ErrOpen).
//
// Put it outside the circuit breaker, bulkhead and timeout stages so that
// each attempt is admitted, timed and recorded on its own, and inside a
// retry stage, which should not retry what hedging already sent. The call
// must be safe to run concurrently with itself and must return when its
// context is cancelled; as with hedge.Do, a panic in an attempt is not
// recovered and ends the program. The result of an attempt that loses is
// dropped, so T must not hold a resource to release, unless the caller
// releases it as resiliencehttp.NewTransport does for losing responses.
func Hedge(h *hedge.Hedger) Stage {
	return Stage{kind: kindHedge, hedger: h}
}

// ErrThrottled is the error of a call a [Throttle] stage rejected.
var ErrThrottled = errors.New("resilience: throttled")

// IsOverload reports whether err says that a call was refused for
// overload rather than failed: it matches [shed.ErrShed],
// [bulkhead.ErrFull], [ratelimit.ErrLimited], [circuitbreaker.ErrOpen],
// [adaptive.ErrLimitExceeded] or [ErrThrottled], or it or an error it wraps
// has a method Overloaded() bool that returns true (which a transport's
// error for an HTTP 429 or 503 or a gRPC RESOURCE_EXHAUSTED can implement).
// [Throttle] and [Adaptive] stages use it to tell the backend's refusals
// from other failures.
func IsOverload(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, shed.ErrShed) || errors.Is(err, bulkhead.ErrFull) ||
		errors.Is(err, ratelimit.ErrLimited) || errors.Is(err, circuitbreaker.ErrOpen) ||
		errors.Is(err, adaptive.ErrLimitExceeded) || errors.Is(err, ErrThrottled) {
		return true
	}
	var o interface{ Overloaded() bool }
	return errors.As(err, &o) && o.Overloaded()
}

// Fallback is a stage that answers a failed call with f's result instead:
// f receives the error of the rest of the pipeline. Its T must be the
// pipeline's.
func Fallback[T any](f func(ctx context.Context, err error) (T, error)) Stage {
	return Stage{kind: kindFallback, typed: f, typeName: fmt.Sprintf("%T", f)}
}

// FallbackValue is a stage that answers a failed call with v and no error:
// a default, a cached answer or a degraded response computed in advance.
// Its T must be the pipeline's.
func FallbackValue[T any](v T) Stage {
	return Fallback(func(context.Context, error) (T, error) { return v, nil })
}

// Custom is a stage that runs a policy of your own. Its T must be the
// pipeline's.
func Custom[T any](p Policy[T]) Stage {
	return Stage{kind: kindPolicy, typed: p, typeName: fmt.Sprintf("%T", p)}
}

// Policy is a stage of your own. Execute runs the call by calling
// next.Run, zero or more times, and may act before and after. It must be
// safe for concurrent use.
type Policy[T any] interface {
	Execute(ctx context.Context, next Next[T]) (T, error)
}

// Next runs the rest of a pipeline from a [Policy].
type Next[T any] struct {
	p  *Pipeline[T]
	i  int
	fn func(context.Context) (T, error)
}

// Run runs the stages after the calling policy and then the call itself.
func (n Next[T]) Run(ctx context.Context) (T, error) { return n.p.run(ctx, n.i, n.fn) }

// errPanicked is the outcome a circuit breaker stage records for a call
// that panicked; the panic goes on up the stack.
var errPanicked = errors.New("resilience: call panicked")

// ErrTimeout is matched by the [*TimeoutError] of a [Timeout] stage.
var ErrTimeout = errors.New("resilience: timeout")

// TimeoutError is the error of a call that a [Timeout] stage ended. It
// matches [ErrTimeout] and wraps the call's own error, which is usually
// context.DeadlineExceeded.
type TimeoutError struct {
	// After is the stage's timeout.
	After time.Duration
	// Err is the error the call returned when its context ended.
	Err error
}

// Error names the timeout and the call's error.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("resilience: timeout after %s: %v", e.After, e.Err)
}

// Is reports whether target is [ErrTimeout].
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap returns the call's error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// fallbackFunc and friends are the typed parts of stages, resolved by New.
type resolved[T any] struct {
	Stage
	fallback    func(context.Context, error) (T, error)
	policy      Policy[T]
	retryResult func(T) bool // RetryResult's predicate
}

// Pipeline runs calls through its stages, the first outermost. It is
// immutable and safe for concurrent use. Build it with [New].
type Pipeline[T any] struct {
	stages []resolved[T]
}

// New returns a Pipeline of the given stages, the first outermost. It
// returns an error naming the stage when a stage is the zero Stage, lacks
// its policy (a nil breaker, bulkhead, limiter, shedder, throttle or
// hedger), has a negative timeout or an invalid retry policy, or was made
// by Fallback or Custom for another result type than T.
func New[T any](stages ...Stage) (*Pipeline[T], error) {
	p := &Pipeline[T]{stages: make([]resolved[T], len(stages))}
	var errs []error
	for i, s := range stages {
		r := resolved[T]{Stage: s}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("resilience: stage %d: "+format, append([]any{i}, args...)...))
		}
		switch s.kind {
		case kindBreaker:
			if s.breaker == nil {
				bad("circuit breaker is nil")
			}
		case kindBulkhead:
			if s.bulkhead == nil {
				bad("bulkhead is nil")
			}
		case kindRateLimit:
			if s.limiter == nil {
				bad("rate limiter %q is nil", s.limit)
			}
		case kindKeyedRateLimit:
			if s.keyed == nil || s.keyOf == nil {
				bad("keyed rate limiter %q or its key function is nil", s.limit)
			}
		case kindRetry:
			if err := s.retry.Validate(); err != nil {
				bad("%w", err)
			}
			if s.typed != nil {
				f, ok := s.typed.(func(T) bool)
				if !ok {
					bad("retry result predicate %s does not take the pipeline's result type %T", s.typeName, *new(T))
				}
				r.retryResult = f
			}
		case kindTimeout:
			if s.timeout <= 0 {
				bad("timeout %v is not positive", s.timeout)
			}
		case kindAdaptive:
			if s.adaptive == nil {
				bad("adaptive limiter is nil")
			}
		case kindShed:
			if s.shedder == nil {
				bad("shedder is nil")
			}
		case kindThrottle:
			if s.throttle == nil {
				bad("throttle is nil")
			}
		case kindHedge:
			if s.hedger == nil {
				bad("hedger is nil")
			}
		case kindFallback:
			f, ok := s.typed.(func(context.Context, error) (T, error))
			if !ok {
				bad("fallback %s does not return the pipeline's result type %T", s.typeName, *new(T))
			}
			r.fallback = f
		case kindPolicy:
			pol, ok := s.typed.(Policy[T])
			if !ok {
				bad("policy %s is not a resilience.Policy[%T]", s.typeName, *new(T))
			}
			r.policy = pol
		default:
			bad("zero Stage; make stages with CircuitBreaker, Bulkhead, RateLimit, Retry, Timeout, Fallback, Adaptive, Shed, Throttle, Hedge or Custom")
		}
		p.stages[i] = r
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Execute runs fn through the pipeline's stages with ctx and returns its
// result, or the error of the stage that stopped it. If ctx is already done,
// Execute returns ctx's error without running anything.
func (p *Pipeline[T]) Execute(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	return p.run(ctx, 0, fn)
}

// run executes stage i around the rest of the pipeline. Built-in stages are
// handled by concrete type, so nothing escapes to the heap on the success
// path.
func (p *Pipeline[T]) run(ctx context.Context, i int, fn func(context.Context) (T, error)) (T, error) {
	if i == len(p.stages) {
		return fn(ctx)
	}
	// Each stage with a defer has a function of its own, so that the
	// compiler open-codes the defer instead of running it through the
	// runtime's defer records.
	s := &p.stages[i]
	switch s.kind {
	case kindBreaker:
		return p.runBreaker(ctx, i, s, fn)
	case kindBulkhead:
		return p.runBulkhead(ctx, i, s, fn)
	case kindRateLimit:
		if d := s.limiter.AllowN(time.Now(), 1); !d.Allowed {
			rateLimited(ctx, s.limit, d.RetryAfter)
			var zero T
			return zero, &ratelimit.LimitedError{Limit: s.limit, RetryAfter: d.RetryAfter}
		}
		return p.run(ctx, i+1, fn)
	case kindKeyedRateLimit:
		d, err := s.keyed.AllowN(ctx, s.keyOf(ctx), 1)
		if err == nil && !d.Allowed {
			err = &ratelimit.LimitedError{Limit: s.limit, RetryAfter: d.RetryAfter}
		}
		if err != nil {
			rateLimited(ctx, s.limit, d.RetryAfter)
			var zero T
			return zero, err
		}
		return p.run(ctx, i+1, fn)
	case kindRetry:
		var v T
		err := retry.Do(ctx, s.retry, func(ctx context.Context) error {
			var err error
			v, err = p.run(ctx, i+1, fn)
			if err == nil && s.retryResult != nil && s.retryResult(v) {
				return ErrResultRejected
			}
			return err
		})
		return v, err
	case kindTimeout:
		return p.runTimeout(ctx, i, s, fn)
	case kindFallback:
		return p.runFallback(ctx, i, s, fn)
	case kindAdaptive:
		return p.runAdaptive(ctx, i, s, fn)
	case kindShed:
		return p.runShed(ctx, i, s, fn)
	case kindThrottle:
		return p.runThrottle(ctx, i, s, fn)
	case kindHedge:
		return hedge.Do(ctx, s.hedger, func(ctx context.Context) (T, error) {
			return p.run(ctx, i+1, fn)
		})
	case kindPolicy:
		return s.policy.Execute(ctx, Next[T]{p: p, i: i + 1, fn: fn})
	}
	panic("resilience: unknown stage kind") // New admits no other
}

func (p *Pipeline[T]) runBreaker(ctx context.Context, i int, s *resolved[T], fn func(context.Context) (T, error)) (T, error) {
	permit, err := s.breaker.AllowContext(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	// A panic in the call is a failure too, and must give back a
	// half-open probe slot.
	done := false
	defer func() {
		if !done {
			permit.DoneContext(ctx, errPanicked)
		}
	}()
	v, err := p.run(ctx, i+1, fn)
	done = true
	permit.DoneContext(ctx, err)
	return v, err
}

func (p *Pipeline[T]) runBulkhead(ctx context.Context, i int, s *resolved[T], fn func(context.Context) (T, error)) (T, error) {
	permit, err := s.bulkhead.Acquire(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	defer permit.Release()
	return p.run(ctx, i+1, fn)
}

func (p *Pipeline[T]) runTimeout(ctx context.Context, i int, s *resolved[T], fn func(context.Context) (T, error)) (T, error) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= s.timeout {
		return p.run(ctx, i+1, fn)
	}
	// A deadline.Context costs one allocation and starts no timer
	// unless the callee waits on its Done channel.
	tctx := deadline.New(ctx, s.timeout)
	defer tctx.Cancel()
	v, err := p.run(tctx, i+1, fn)
	if err != nil && ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded) {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent(TimeoutEventName, trace.WithAttributes(TimeoutKey.Float64(s.timeout.Seconds())))
		}
		return v, &TimeoutError{After: s.timeout, Err: err}
	}
	return v, err
}

func (p *Pipeline[T]) runFallback(ctx context.Context, i int, s *resolved[T], fn func(context.Context) (T, error)) (T, error) {
	v, err := p.run(ctx, i+1, fn)
	if err == nil {
		return v, nil
	}
	v, ferr := s.fallback(ctx, err)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		outcome := "success"
		if ferr != nil {
			outcome = "failure"
		}
		et, em := errorAttrs(err)
		span.AddEvent(FallbackEventName, trace.WithAttributes(et, em, OutcomeKey.String(outcome)))
	}
	return v, ferr
}

func (p *Pipeline[T]) runAdaptive(ctx context.Context, i int, s *resolved[T], fn func(context.Context) (T, error)) (T, error) {
	permit, ok := s.adaptive.AcquireContext(ctx)
	if !ok {
		var zero T
		return zero, adaptive.ErrLimitExceeded
	}
	// A panic releases the permit without a sample.
	done := false
	defer func() {
		if !done {
			permit.Done(errPanicked)
		}
	}()
	v, err := p.run(ctx, i+1, fn)
	done = true
	if IsOverload(err) {
		permit.Dropped()
	} else {
		permit.Done(err)
	}
	return v, err
}

func (p *Pipeline[T]) runShed(ctx context.Context, i int, s *resolved[T], fn func(context.Context) (T, error)) (T, error) {
	permit, err := s.shedder.Allow(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	defer permit.Done()
	return p.run(ctx, i+1, fn)
}

func (p *Pipeline[T]) runThrottle(ctx context.Context, i int, s *resolved[T], fn func(context.Context) (T, error)) (T, error) {
	if !s.throttle.Allow() {
		var zero T
		return zero, ErrThrottled
	}
	// A panic is not a refusal for overload.
	done := false
	defer func() {
		if !done {
			s.throttle.Record(true)
		}
	}()
	v, err := p.run(ctx, i+1, fn)
	done = true
	s.throttle.Record(!IsOverload(err))
	return v, err
}
