// Package redisratelimit provides a distributed rate limiter shared by every
// process that talks to the same Redis: GCRA (the generic cell rate
// algorithm, the maths of [ratelimit.TokenBucket]) evaluated atomically by a
// single Lua script against the Redis server's clock.
//
// It lives in its own package so that only programs that import it depend on
// github.com/redis/go-redis/v9.
//
// Each key stores one value, its theoretical arrival time (TAT) in
// microseconds of the Redis server clock, with an expiry equal to the time
// the bucket needs to refill, so idle keys vanish. Because time is read with
// redis.call('TIME') inside the script, clients' clocks do not matter.
//
// When Redis cannot be reached (connection refused, timeout, any error other
// than a cancelled caller context), [Config.Outage] decides: "open" admits,
// "closed" refuses with an error matching [ErrUnavailable], and "local" (the
// default) asks a process-local [ratelimit.Limiter].
package redisratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// ErrUnavailable is matched (with errors.Is) by the error [Limiter.AllowN]
// returns when Redis failed and [Config.Outage] is "closed".
var ErrUnavailable = errors.New("redisratelimit: redis unavailable")

// Outage policies accepted in [Config.Outage].
const (
	// OutageOpen admits every request while Redis is unreachable. The
	// Redis error is reported only by the resilience.ratelimit.redis.errors
	// and resilience.ratelimit.fallbacks metrics; AllowN returns nil.
	OutageOpen = "open"
	// OutageClosed refuses every request while Redis is unreachable:
	// AllowN returns a denied Decision and a [*ratelimit.LimitedError]
	// whose Err wraps both [ErrUnavailable] and the Redis error.
	OutageClosed = "closed"
	// OutageLocal delegates to [Config.Local] while Redis is unreachable
	// and returns its Decision with a nil error.
	OutageLocal = "local"
)

// Metric names. Every metric carries resilience.policy.name ([Config.Name]).
const (
	// DecisionsMetricName counts decisions by resilience.outcome (allowed or
	// limited), including decisions taken under an outage policy. It is
	// the metric of package ratelimit.
	DecisionsMetricName = ratelimit.DecisionsMetricName
	// ErrorsMetricName counts failed Redis calls.
	ErrorsMetricName = "resilience.ratelimit.redis.errors"
	// FallbacksMetricName counts decisions taken without Redis, by
	// resilience.ratelimit.outage (open, closed or local).
	FallbacksMetricName = "resilience.ratelimit.fallbacks"
)

// DefaultPrefix is the default [Config.Prefix].
const DefaultPrefix = "cairn:ratelimit:"

// DefaultTimeout is the default [Config.Timeout].
const DefaultTimeout = 50 * time.Millisecond

// maxSpan bounds Burst times the emission interval (about 36 years), as in
// package ratelimit; in microseconds it stays exact in a Lua double.
const maxSpan = 1 << 60

// Config configures a [Limiter]. It is a plain struct meant to be read from
// JSON; every zero field takes the documented default except Rate,
// which is required.
type Config struct {
	// Name identifies the limiter in metrics (resilience.policy.name) and
	// in [ratelimit.LimitedError]; default "ratelimit".
	Name string `json:"name,omitempty" yaml:"name,omitempty"`
	// Prefix is prepended to every key; default "cairn:ratelimit:".
	// Limiters with different Rate, Per or Burst must not share keys.
	Prefix string `json:"prefix,omitempty" yaml:"prefix,omitempty"`
	// Rate is how many events are allowed per Per. It must be positive,
	// finite and at most one event per microsecond.
	Rate float64 `json:"rate" yaml:"rate"`
	// Per is the period Rate is counted over; default 1s.
	Per time.Duration `json:"per,omitempty" yaml:"per,omitempty"`
	// Burst is the bucket capacity; default max(1, ceil(Rate)).
	Burst int `json:"burst,omitempty" yaml:"burst,omitempty"`
	// Outage is what to do when Redis fails: "open", "closed" or "local"
	// (the default). See [OutageOpen], [OutageClosed] and [OutageLocal].
	Outage string `json:"outage,omitempty" yaml:"outage,omitempty"`
	// Local decides while Redis fails when Outage is "local". It is one
	// limiter for all keys. Default: a [ratelimit.TokenBucket] with the same
	// Rate, Per and Burst whose decisions are counted only once, by this
	// limiter.
	Local ratelimit.Limiter `json:"-" yaml:"-"`
	// Timeout bounds each Redis call; default 50ms. The client must have
	// ContextTimeoutEnabled set for the bound to reach socket reads and
	// writes; otherwise its ReadTimeout and WriteTimeout apply.
	Timeout time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// MeterProvider receives the metrics; default the OpenTelemetry global
	// provider.
	MeterProvider metric.MeterProvider `json:"-" yaml:"-"`
}

// Validate reports every invalid field of c, naming the field and its
// value. Zero values are valid where a default applies.
func (c Config) Validate() error {
	var errs []error
	if math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate <= 0 {
		errs = append(errs, fieldError("Rate", fmt.Errorf("%v: must be positive and finite", c.Rate)))
	}
	if c.Per < 0 {
		errs = append(errs, fieldError("Per", fmt.Errorf("%v: must not be negative", c.Per)))
	}
	if c.Burst < 0 {
		errs = append(errs, fieldError("Burst", fmt.Errorf("%d: must not be negative", c.Burst)))
	}
	if c.Timeout < 0 {
		errs = append(errs, fieldError("Timeout", fmt.Errorf("%v: must not be negative", c.Timeout)))
	}
	switch c.Outage {
	case "", OutageOpen, OutageClosed, OutageLocal:
	default:
		errs = append(errs, fieldError("Outage", fmt.Errorf("%q: want one of %q, %q or %q", c.Outage, OutageOpen, OutageClosed, OutageLocal)))
	}
	if len(errs) == 0 {
		d := c.withDefaults()
		interval := float64(d.Per) / d.Rate
		switch {
		case interval < float64(time.Microsecond):
			errs = append(errs, fieldError("Rate", fmt.Errorf("%v per %v: more than one event per microsecond", c.Rate, d.Per)))
		case interval*float64(d.Burst) > maxSpan:
			errs = append(errs, fieldError("Burst", fmt.Errorf("%d: Burst/Rate spans more than %v", d.Burst, time.Duration(maxSpan))))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redisratelimit: invalid config: %w", err)
	}
	return nil
}

func fieldError(field string, err error) error {
	return fmt.Errorf("field %s: %w", field, err)
}

// withDefaults returns c with every zero field but Local set to its default.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "ratelimit"
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Per == 0 {
		c.Per = time.Second
	}
	if c.Burst == 0 {
		c.Burst = max(1, int(math.Min(math.Ceil(c.Rate), math.MaxInt32)))
	}
	if c.Outage == "" {
		c.Outage = OutageLocal
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	return c
}

// script is GCRA on the Redis server clock, in microseconds. KEYS[1] is the
// key; ARGV is the emission interval T in (possibly fractional)
// microseconds, Burst and n. It returns {allowed, remaining, retry_after,
// reset}, times in whole microseconds rounded up, retry_after -1 for never.
//
// A missing key is a full bucket. n events are admitted at now when
// max(tat, now) + n*T - Burst*T <= now; tat then becomes max(tat, now) + n*T
// and the key expires when the bucket is full again.
//
//go:embed gcra.lua
var scriptSource string

var script = redis.NewScript(scriptSource)

// Limiter is a GCRA rate limiter whose state lives in Redis, so that every
// Limiter with the same Prefix, Rate, Per and Burst on the same Redis shares
// one budget per key. Decisions are the same as a [ratelimit.TokenBucket]'s
// with the same Rate, Per and Burst, timed by the Redis server clock.
//
// A Limiter is safe for concurrent use. Build it with [New].
type Limiter struct {
	client   redis.UniversalClient
	name     string
	prefix   string
	burst    int
	interval float64 // T, microseconds
	outage   string
	local    ratelimit.Limiter
	timeout  time.Duration

	decisions, errors, fallbacks metric.Int64Counter
	allowed, limited, errAttrs   []metric.AddOption
	fallbackAttrs                []metric.AddOption
}

// New validates cfg and returns a limiter that keeps its state in client's
// Redis. It does not contact Redis.
func New(client redis.UniversalClient, cfg Config) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redisratelimit: nil client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	l := &Limiter{
		client:  client,
		name:    cfg.Name,
		prefix:  cfg.Prefix,
		burst:   cfg.Burst,
		outage:  cfg.Outage,
		local:   cfg.Local,
		timeout: cfg.Timeout,
		// The same rounding to whole nanoseconds as ratelimit.TokenBucket.
		interval: float64(max(1, int64(math.Round(float64(cfg.Per)/cfg.Rate)))) / 1e3,
	}
	if l.outage == OutageLocal && l.local == nil {
		tb, err := ratelimit.NewTokenBucket(ratelimit.Config{
			Name: cfg.Name, Rate: cfg.Rate, Per: cfg.Per, Burst: cfg.Burst,
			MeterProvider: noop.NewMeterProvider(), // counted by l, not twice
		})
		if err != nil {
			return nil, fmt.Errorf("redisratelimit: local limiter: %w", err)
		}
		l.local = tb
	}
	meter := cfg.MeterProvider.Meter("github.com/cairnhq/cairn/resilience/ratelimit/redis")
	var err error
	if l.decisions, err = meter.Int64Counter(DecisionsMetricName,
		metric.WithDescription("Rate limiter decisions, by outcome."), metric.WithUnit("{decision}")); err != nil {
		return nil, fmt.Errorf("redisratelimit: create %s counter: %w", DecisionsMetricName, err)
	}
	if l.errors, err = meter.Int64Counter(ErrorsMetricName,
		metric.WithDescription("Failed Redis calls of distributed rate limiters."), metric.WithUnit("{error}")); err != nil {
		return nil, fmt.Errorf("redisratelimit: create %s counter: %w", ErrorsMetricName, err)
	}
	if l.fallbacks, err = meter.Int64Counter(FallbacksMetricName,
		metric.WithDescription("Rate limiter decisions taken without Redis, by outage policy."), metric.WithUnit("{decision}")); err != nil {
		return nil, fmt.Errorf("redisratelimit: create %s counter: %w", FallbacksMetricName, err)
	}
	name := attribute.String("resilience.policy.name", cfg.Name)
	set := func(kv ...attribute.KeyValue) []metric.AddOption {
		return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(append([]attribute.KeyValue{name}, kv...)...))}
	}
	l.allowed = set(attribute.String("resilience.outcome", "allowed"))
	l.limited = set(attribute.String("resilience.outcome", "limited"))
	l.errAttrs = set()
	l.fallbackAttrs = set(attribute.String("resilience.ratelimit.outage", cfg.Outage))
	return l, nil
}

// AllowN decides whether n events may happen now for key and, if so,
// counts them, in one atomic round trip to Redis. An n of 0 or less is
// always allowed and reports the key's state without changing it; an n
// above Burst is denied with RetryAfter [ratelimit.Never]. Times are in
// whole microseconds, rounded up.
//
// When Redis fails, the Decision comes from the outage policy (see
// [Config.Outage]): only "closed" returns a non-nil error, a
// [*ratelimit.LimitedError] matching both [ratelimit.ErrLimited] and
// [ErrUnavailable], with RetryAfter one emission interval as a hint. When
// ctx itself is done, AllowN returns a denied Decision and a
// [*ratelimit.LimitedError] wrapping ctx.Err(), whatever the policy.
func (l *Limiter) AllowN(ctx context.Context, key string, n int) (ratelimit.Decision, error) {
	if err := ctx.Err(); err != nil {
		l.decisions.Add(ctx, 1, l.limited...)
		return ratelimit.Decision{}, &ratelimit.LimitedError{Limit: l.name, Err: err}
	}
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	res, err := script.Run(cctx, l.client, []string{l.prefix + key}, l.interval, l.burst, n).Int64Slice()
	cancel()
	if err == nil && len(res) != 4 {
		err = fmt.Errorf("redisratelimit: script returned %d values, want 4", len(res))
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			l.decisions.Add(ctx, 1, l.limited...)
			return ratelimit.Decision{}, &ratelimit.LimitedError{Limit: l.name, Err: ctxErr}
		}
		return l.fallback(ctx, n, err)
	}
	d := ratelimit.Decision{
		Allowed:   res[0] == 1,
		Remaining: int(res[1]),
		Reset:     time.Duration(res[3]) * time.Microsecond,
	}
	switch {
	case res[2] < 0:
		d.RetryAfter = ratelimit.Never
	case !d.Allowed:
		d.RetryAfter = time.Duration(res[2]) * time.Microsecond
	}
	l.record(ctx, d.Allowed)
	return d, nil
}

// fallback applies the outage policy to a failed Redis call.
func (l *Limiter) fallback(ctx context.Context, n int, cause error) (ratelimit.Decision, error) {
	l.errors.Add(ctx, 1, l.errAttrs...)
	l.fallbacks.Add(ctx, 1, l.fallbackAttrs...)
	var d ratelimit.Decision
	var err error
	switch l.outage {
	case OutageOpen:
		d = ratelimit.Decision{Allowed: true}
	case OutageClosed:
		retry := time.Duration(math.Ceil(l.interval * 1e3))
		if n > l.burst {
			retry = ratelimit.Never
		}
		d = ratelimit.Decision{RetryAfter: retry}
		err = &ratelimit.LimitedError{Limit: l.name, RetryAfter: retry, Err: fmt.Errorf("%w: %w", ErrUnavailable, cause)}
	default:
		d = l.local.AllowN(time.Now(), n)
	}
	l.record(ctx, d.Allowed)
	return d, err
}

func (l *Limiter) record(ctx context.Context, allowed bool) {
	if allowed {
		l.decisions.Add(ctx, 1, l.allowed...)
	} else {
		l.decisions.Add(ctx, 1, l.limited...)
	}
}
