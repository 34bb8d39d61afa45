package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Never is the RetryAfter of a [Decision] that can never succeed: the
// request asked for more than the limiter's Burst, which no amount of
// waiting makes available.
const Never time.Duration = -1

// Decision is the outcome of asking a [Limiter] for n events.
type Decision struct {
	// Allowed reports whether the n events were admitted. When they were,
	// the limiter has counted them; when not, it has counted nothing.
	Allowed bool
	// Remaining is how many single events the limiter would admit right
	// after this decision. It is exact for every algorithm in this package
	// except the sliding window counter, whose count is an estimate.
	Remaining int
	// RetryAfter is 0 when Allowed. Otherwise it is the earliest time
	// after which asking again for the same n can succeed if nothing else
	// is admitted meanwhile, or [Never] when n exceeds the limiter's Burst.
	RetryAfter time.Duration
	// Reset is the time until the limiter is fully replenished: the bucket
	// is full again or every counted event has left the window.
	Reset time.Duration
	// Delay is set by [LeakyBucket] only: how long the caller must hold an
	// admitted request so that admitted requests leave spaced by the
	// emission interval. It is 0 for every other limiter.
	Delay time.Duration
}

// Limiter is a rate limiter. Implementations are safe for concurrent use
// and allocate nothing per call.
type Limiter interface {
	// Allow reports whether one event may happen now; it is
	// AllowN(time.Now(), 1).Allowed.
	Allow() bool
	// AllowN decides whether n events may happen at now and, if so,
	// counts them. An n of 0 or less asks nothing and is always allowed;
	// it reports the limiter's state without changing it. Times earlier
	// than ones already seen are treated conservatively: they never admit
	// more than the later time would have.
	AllowN(now time.Time, n int) Decision
}

// ErrLimited is matched by every [*LimitedError] with errors.Is.
var ErrLimited = errors.New("ratelimit: limited")

// LimitedError reports that a rate limiter refused a request.
type LimitedError struct {
	// Limit is the name of the limiter ([Config.Name]).
	Limit string
	// RetryAfter is the [Decision.RetryAfter] of the refusal.
	RetryAfter time.Duration
	// Err is the cause when the refusal came from a context, else nil.
	Err error
}

// Error returns a message naming the limit and the retry delay.
func (e *LimitedError) Error() string {
	msg := fmt.Sprintf("ratelimit: limited by %q", e.Limit)
	switch {
	case e.RetryAfter == Never:
		msg += ", request exceeds burst"
	case e.RetryAfter > 0:
		msg += fmt.Sprintf(", retry after %v", e.RetryAfter)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is [ErrLimited].
func (e *LimitedError) Is(target error) bool { return target == ErrLimited }

// Unwrap returns the context error that caused the refusal, if any.
func (e *LimitedError) Unwrap() error { return e.Err }

// Algorithm names accepted in [Config.Algorithm].
const (
	TokenBucketAlgorithm          = "token_bucket"
	LeakyBucketAlgorithm          = "leaky_bucket"
	FixedWindowAlgorithm          = "fixed_window"
	SlidingWindowLogAlgorithm     = "sliding_window_log"
	SlidingWindowCounterAlgorithm = "sliding_window_counter"
)

// DecisionsMetricName is the counter every limiter adds its decisions to,
// with attributes resilience.policy.name and resilience.outcome (allowed or
// limited).
const DecisionsMetricName = "resilience.ratelimit.decisions"

// maxSpan bounds Burst times the emission interval, and the window, so
// that time arithmetic in nanoseconds cannot overflow (about 36 years).
const maxSpan = 1 << 60

// Config configures a limiter. It is a plain struct meant to be read from
// JSON; every zero field takes the documented default except Rate,
// which is required.
type Config struct {
	// Name identifies the limiter in metrics (resilience.policy.name) and
	// in [LimitedError]; default "ratelimit".
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Algorithm is one of "token_bucket" (the default), "leaky_bucket",
	// "fixed_window", "sliding_window_log" and "sliding_window_counter".
	Algorithm string `json:"algorithm,omitempty" yaml:"algorithm,omitempty"`
	// Rate is how many events are allowed per Per: the token bucket's
	// refill rate and the leaky bucket's drain rate. It must be positive,
	// finite and at most one event per nanosecond. The window algorithms
	// use it only for the default of Burst.
	Rate float64 `json:"rate" yaml:"rate"`
	// Per is the period Rate is counted over; default 1s.
	Per time.Duration `json:"per,omitempty" yaml:"per,omitempty"`
	// Burst is the bucket capacity (token bucket), the queue depth (leaky
	// bucket) or the number of events allowed per Window (window
	// algorithms); default max(1, ceil(Rate)).
	Burst int `json:"burst,omitempty" yaml:"burst,omitempty"`
	// Window is the window length of the window algorithms; default Per.
	Window time.Duration `json:"window,omitempty" yaml:"window,omitempty"`
	// MeterProvider receives the resilience.ratelimit.decisions counter;
	// default the OpenTelemetry global provider.
	MeterProvider metric.MeterProvider `json:"-" yaml:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero values are valid where a default applies.
func (c Config) Validate() error {
	var errs []error
	switch {
	case math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate <= 0:
		errs = append(errs, fieldError("Rate", fmt.Errorf("%v: must be positive and finite", c.Rate)))
	}
	if c.Per < 0 {
		errs = append(errs, fieldError("Per", fmt.Errorf("%v: must not be negative", c.Per)))
	}
	if c.Burst < 0 {
		errs = append(errs, fieldError("Burst", fmt.Errorf("%d: must not be negative", c.Burst)))
	}
	if c.Window < 0 {
		errs = append(errs, fieldError("Window", fmt.Errorf("%v: must not be negative", c.Window)))
	}
	switch c.Algorithm {
	case "", TokenBucketAlgorithm, LeakyBucketAlgorithm, FixedWindowAlgorithm, SlidingWindowLogAlgorithm, SlidingWindowCounterAlgorithm:
	default:
		errs = append(errs, fieldError("Algorithm", fmt.Errorf("%q: want one of %q, %q, %q, %q or %q", c.Algorithm,
			TokenBucketAlgorithm, LeakyBucketAlgorithm, FixedWindowAlgorithm, SlidingWindowLogAlgorithm, SlidingWindowCounterAlgorithm)))
	}
	if len(errs) == 0 {
		d := c.withDefaults()
		interval := float64(d.Per) / d.Rate
		switch {
		case interval < 0.5:
			errs = append(errs, fieldError("Rate", fmt.Errorf("%v per %v: more than one event per nanosecond", c.Rate, d.Per)))
		case interval*float64(d.Burst) > maxSpan:
			errs = append(errs, fieldError("Burst", fmt.Errorf("%d: Burst/Rate spans more than %v", d.Burst, time.Duration(maxSpan))))
		}
		if d.Window > maxSpan {
			errs = append(errs, fieldError("Window", fmt.Errorf("%v: longer than %v", d.Window, time.Duration(maxSpan))))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ratelimit: invalid config: %w", err)
	}
	return nil
}

// fieldError names the Config field an error is about.
func fieldError(field string, err error) error {
	return fmt.Errorf("field %s: %w", field, err)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "ratelimit"
	}
	if c.Algorithm == "" {
		c.Algorithm = TokenBucketAlgorithm
	}
	if c.Per == 0 {
		c.Per = time.Second
	}
	if c.Burst == 0 {
		c.Burst = max(1, int(math.Min(math.Ceil(c.Rate), math.MaxInt32)))
	}
	if c.Window == 0 {
		c.Window = c.Per
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	return c
}

// interval returns the emission interval Per/Rate in nanoseconds, rounded
// to the nearest nanosecond and at least 1.
func (c Config) interval() int64 {
	return max(1, int64(math.Round(float64(c.Per)/c.Rate)))
}

// New validates cfg and returns the limiter cfg.Algorithm names.
func New(cfg Config) (Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Algorithm {
	case LeakyBucketAlgorithm:
		return asLimiter(NewLeakyBucket(cfg))
	case FixedWindowAlgorithm:
		return asLimiter(NewFixedWindow(cfg))
	case SlidingWindowLogAlgorithm:
		return asLimiter(NewSlidingWindowLog(cfg))
	case SlidingWindowCounterAlgorithm:
		return asLimiter(NewSlidingWindowCounter(cfg))
	default:
		return asLimiter(NewTokenBucket(cfg))
	}
}

// asLimiter returns a nil Limiter, not a typed nil pointer, on error.
func asLimiter[L Limiter](l L, err error) (Limiter, error) {
	if err != nil {
		return nil, err
	}
	return l, nil
}

// prepare validates cfg and returns it with defaults, a clock and a
// recorder: the common start of every constructor.
func prepare(cfg Config) (Config, clock, recorder, error) {
	if err := cfg.Validate(); err != nil {
		return Config{}, clock{}, recorder{}, err
	}
	cfg = cfg.withDefaults()
	rec, err := newRecorder(cfg)
	if err != nil {
		return Config{}, clock{}, recorder{}, err
	}
	return cfg, newClock(), rec, nil
}

// clock turns times into nanoseconds since the Unix epoch, measuring the
// time elapsed since the limiter was built with the monotonic clock when
// both times carry it, so wall clock steps do not move limits.
type clock struct {
	epoch     time.Time
	epochNano int64
}

func newClock() clock {
	e := time.Now()
	return clock{epoch: e, epochNano: e.UnixNano()}
}

func (c *clock) nanos(now time.Time) int64 {
	return c.epochNano + int64(now.Sub(c.epoch))
}

// now is nanos(time.Now()), but reads only the monotonic clock, which
// costs half as much as time.Now.
func (c *clock) now() int64 {
	return c.epochNano + int64(time.Since(c.epoch))
}

// recorder counts decisions with precomputed attribute sets, so that
// recording allocates nothing.
type recorder struct {
	counter          metric.Int64Counter
	allowed, limited []metric.AddOption
}

func newRecorder(cfg Config) (recorder, error) {
	counter, err := cfg.MeterProvider.Meter("github.com/cairnhq/cairn/resilience/ratelimit").Int64Counter(
		DecisionsMetricName,
		metric.WithDescription("Rate limiter decisions, by outcome."),
		metric.WithUnit("{decision}"))
	if err != nil {
		return recorder{}, fmt.Errorf("ratelimit: create %s counter: %w", DecisionsMetricName, err)
	}
	name := attribute.String("resilience.policy.name", cfg.Name)
	return recorder{
		counter: counter,
		allowed: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(name, attribute.String("resilience.outcome", "allowed")))},
		limited: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(name, attribute.String("resilience.outcome", "limited")))},
	}, nil
}

func (r *recorder) record(d Decision) Decision {
	r.recordOutcome(d.Allowed)
	return d
}

func (r *recorder) recordOutcome(allowed bool) bool {
	if allowed {
		r.counter.Add(context.Background(), 1, r.allowed...)
	} else {
		r.counter.Add(context.Background(), 1, r.limited...)
	}
	return allowed
}

// floorDiv returns floor(a/b) for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
