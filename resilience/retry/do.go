package retry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/cairnhq/cairn/resilience/internal/jsonduration"
)

// Defaults applied by [Do] to zero fields of a [Policy].
const (
	DefaultName        = "retry"
	DefaultMaxAttempts = 3
)

// Reasons for which [Do] gives up, the values of [Error.Reason].
const (
	ReasonMaxAttempts = "max_attempts"
	ReasonMaxElapsed  = "max_elapsed"
	ReasonBudget      = "budget"
	ReasonPushback    = "pushback"
	ReasonContext     = "context"
)

// Policy configures [Do]. It is a plain struct that can be decoded from
// JSON; in JSON, durations are strings such as "250ms" (numbers of
// nanoseconds are accepted too). Every zero field means its default, so the
// zero Policy makes up to 3 attempts with exponential backoff from 100ms.
// Function and interface fields are not serialised.
type Policy struct {
	// Name identifies the policy in errors. Default "retry".
	Name string `json:"name,omitempty"`
	// MaxAttempts is the number of attempts, the first included; 1 turns
	// retries off. Default 3.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// MaxElapsed, if positive, stops retrying when the next attempt would
	// start more than MaxElapsed after the first. Default 0: no limit.
	MaxElapsed time.Duration `json:"max_elapsed,omitempty"`
	// Backoff gives the delays between attempts.
	Backoff Backoff `json:"backoff"`
	// RetryIf reports whether a non-nil error may be retried. Default:
	// every error except those matching context.Canceled or
	// context.DeadlineExceeded.
	RetryIf func(error) bool `json:"-"`
	// Pushback, if set, extracts a server's pushback from a retryable
	// error, with the results of the [Pushback] function: when present,
	// retry = false stops retrying and otherwise d replaces the backoff
	// delay. Default nil.
	Pushback func(error) (d time.Duration, retry bool, present bool) `json:"-"`
	// Budget, if set, is shared with other calls and limits their retries:
	// Do calls OnRequest before the first attempt, OnSuccess or OnFailure
	// after each successful or retryable failed attempt, and Withdraw
	// before each retry. Default nil: no budget.
	Budget budget.Budget `json:"-"`
	// Rand returns random numbers in [0, 1) for jitter. Default
	// math/rand/v2's Float64.
	Rand func() float64 `json:"-"`
	// MeterProvider receives the resilience.retry.calls and
	// resilience.retry.attempts counters. Do makes the instruments on the
	// first call with a given provider and Name and keeps them for the
	// life of the process, so the provider should be long-lived. Default
	// nil: the OpenTelemetry global provider.
	MeterProvider metric.MeterProvider `json:"-"`
}

// Validate reports every invalid field of p, its Backoff included, naming
// the field and its value. Zero fields are valid: they mean the default.
func (p Policy) Validate() error {
	var errs []error
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("retry: invalid policy: MaxAttempts = %d: must not be negative", p.MaxAttempts))
	}
	if p.MaxElapsed < 0 {
		errs = append(errs, fmt.Errorf("retry: invalid policy: MaxElapsed = %v: must not be negative", p.MaxElapsed))
	}
	if err := p.Backoff.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Error is the error [Do] returns when it gives up retrying a retryable
// failure. It wraps the error of the last attempt and, when the context
// ended the retries, the context's error.
type Error struct {
	// Name is the policy's name.
	Name string
	// Attempts is the number of attempts made.
	Attempts int
	// Reason is why Do stopped: ReasonMaxAttempts, ReasonMaxElapsed,
	// ReasonBudget, ReasonPushback or ReasonContext.
	Reason string
	// Err is the error of the last attempt.
	Err error
	// Cause is the context's error when Reason is ReasonContext.
	Cause error
}

// Error describes the failure.
func (e *Error) Error() string {
	return fmt.Sprintf("retry %q: gave up after %d attempts (%s): %v", e.Name, e.Attempts, e.Reason, e.Err)
}

// Unwrap returns the error of the last attempt and, if set, Cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// defaultRetryIf is the default of [Policy.RetryIf].
func defaultRetryIf(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// Do calls fn until it succeeds, returns an error p.RetryIf rejects, or p
// stops the retries; between attempts it waits as p.Backoff (or a server's
// pushback) says, and returns early when ctx is done. It returns nil on
// success, fn's error unchanged when it is not retryable, an [*Error]
// wrapping the last error when it gives up, and p.Validate's error without
// calling fn when p is invalid.
//
// Do counts every call by outcome on resilience.retry.calls and every
// retry on resilience.retry.attempts. When the span of ctx is recording,
// it adds the event resilience.retry.attempt before each retry,
// resilience.retry.exhausted when it gives up and resilience.budget.denied
// when the budget denies a retry. With no failure it allocates nothing.
func Do(ctx context.Context, p Policy, fn func(context.Context) error) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Name == "" {
		p.Name = DefaultName
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.RetryIf == nil {
		p.RetryIf = defaultRetryIf
	}
	in := instrumentsFor(p.MeterProvider, p.Name)
	var start time.Time // read only when needed: the clock is not free
	if p.MaxElapsed > 0 {
		start = time.Now()
	}
	if p.Budget != nil {
		p.Budget.OnRequest()
	}
	// giveUp records and returns the error of a call Do stops retrying.
	giveUp := func(e *Error) error {
		in.call(ctx, reasonOutcome(e.Reason))
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			in.eventExhausted(span, e)
		}
		return e
	}
	var prev time.Duration
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if p.Budget != nil {
				p.Budget.OnSuccess()
			}
			if attempt == 1 {
				in.call(ctx, outSuccess)
			} else {
				in.call(ctx, outSuccessAfterRetry)
			}
			return nil
		}
		if !p.RetryIf(err) {
			in.call(ctx, outNotRetryable)
			return err
		}
		if p.Budget != nil {
			p.Budget.OnFailure()
		}
		if ctx.Err() != nil {
			return giveUp(&Error{Name: p.Name, Attempts: attempt, Reason: ReasonContext, Err: err, Cause: ctx.Err()})
		}
		if attempt >= p.MaxAttempts {
			return giveUp(&Error{Name: p.Name, Attempts: attempt, Reason: ReasonMaxAttempts, Err: err})
		}
		delay := p.Backoff.Delay(attempt, prev, p.Rand)
		if p.Pushback != nil {
			if d, retry, present := p.Pushback(err); present {
				if !retry {
					return giveUp(&Error{Name: p.Name, Attempts: attempt, Reason: ReasonPushback, Err: err})
				}
				delay = d
			}
		}
		prev = delay
		if p.MaxElapsed > 0 && time.Since(start)+delay > p.MaxElapsed {
			return giveUp(&Error{Name: p.Name, Attempts: attempt, Reason: ReasonMaxElapsed, Err: err})
		}
		if p.Budget != nil && !p.Budget.Withdraw() {
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				in.eventBudgetDenied(span, p.Budget, attempt+1)
			}
			return giveUp(&Error{Name: p.Name, Attempts: attempt, Reason: ReasonBudget, Err: err})
		}
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			in.eventAttempt(span, attempt+1, delay, err)
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return giveUp(&Error{Name: p.Name, Attempts: attempt, Reason: ReasonContext, Err: err, Cause: ctx.Err()})
			case <-t.C:
			}
		}
		in.attempts.Add(ctx, 1, in.nameOpts...)
	}
}

// MarshalJSON encodes p with its durations as strings such as "250ms".
// Function and interface fields are left out.
func (p Policy) MarshalJSON() ([]byte, error) {
	type plain Policy
	return json.Marshal(struct {
		plain
		MaxElapsed jsonduration.Duration `json:"max_elapsed,omitempty"`
	}{plain(p), jsonduration.Duration(p.MaxElapsed)})
}

// UnmarshalJSON decodes p, accepting durations as strings such as "250ms"
// or as numbers of nanoseconds. It does not validate p.
func (p *Policy) UnmarshalJSON(data []byte) error {
	type plain Policy
	err := json.Unmarshal(data, &struct {
		*plain
		MaxElapsed *jsonduration.Duration `json:"max_elapsed,omitempty"`
	}{(*plain)(p), (*jsonduration.Duration)(&p.MaxElapsed)})
	return jsonduration.WithPrefix("retry", err)
}
