package ratelimit

import (
	"context"
	"math"
	"time"
)

// TokenBucket is a token bucket holding up to Burst tokens and refilled
// with Rate tokens per Per; each event takes one token. It starts full, so
// it admits a burst of Burst events and then Rate per Per on average.
//
// It is implemented as GCRA (the generic cell rate algorithm) with emission
// interval T = Per/Rate and burst tolerance (Burst-1)*T on one atomic
// value, so it takes no lock and allocates nothing. Tokens are tracked to
// the nanosecond: after exhaustion, one event is admitted again exactly T
// later. A denied request consumes nothing.
//
// TokenBucket is safe for concurrent use. Build it with [NewTokenBucket].
type TokenBucket struct {
	name  string
	clock clock
	rec   recorder
	g     gcra
}

var _ Limiter = (*TokenBucket)(nil)

// NewTokenBucket validates cfg and returns a token bucket; cfg.Algorithm
// is ignored.
func NewTokenBucket(cfg Config) (*TokenBucket, error) {
	cfg, clk, rec, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	b := &TokenBucket{name: cfg.Name, clock: clk, rec: rec}
	b.g.init(cfg)
	return b, nil
}

// Allow reports whether one event may happen now and, if so, takes a token.
// It reads only the monotonic clock.
func (b *TokenBucket) Allow() bool { return b.rec.recordOutcome(b.g.takeOne(b.clock.now())) }

// AllowN reports whether n events may happen at now and, if so, takes n
// tokens. When n exceeds Burst the request is denied with RetryAfter
// [Never]. Reset is the time until the bucket is full again.
func (b *TokenBucket) AllowN(now time.Time, n int) Decision {
	return b.decide(b.clock.nanos(now), n)
}

// decide is AllowN at t nanoseconds since the Unix epoch.
func (b *TokenBucket) decide(t int64, n int) Decision {
	d := b.g.take(t, n)
	d.Delay = 0
	return b.rec.record(d)
}

// Wait blocks until n events may happen and takes them, or until ctx is
// done. It returns nil once the events are taken. It returns a
// [*LimitedError], which matches [ErrLimited], without waiting when n
// exceeds Burst (RetryAfter [Never]) or when ctx's deadline comes before
// the events could be taken (wrapping context.DeadlineExceeded); and when
// ctx is done while waiting, wrapping ctx.Err() after giving the reserved
// tokens back. An n of 0 or less returns nil at once. Each refusal adds
// the span event [RejectedEventName] to the span of ctx when it is
// recording.
func (b *TokenBucket) Wait(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	if n > b.g.burst {
		return b.refuse(ctx, &LimitedError{Limit: b.name, RetryAfter: Never}, ReasonExceedsBurst)
	}
	if err := ctx.Err(); err != nil {
		return b.refuse(ctx, &LimitedError{Limit: b.name, Err: err}, ReasonContext)
	}
	t := b.clock.now()
	deadline := int64(math.MaxInt64)
	if dl, ok := ctx.Deadline(); ok {
		deadline = b.clock.nanos(dl)
	}
	wait, ok := b.g.reserve(t, n, deadline)
	if !ok {
		return b.refuse(ctx, &LimitedError{Limit: b.name, RetryAfter: time.Duration(wait), Err: context.DeadlineExceeded}, ReasonContext)
	}
	if wait == 0 {
		b.rec.recordOutcome(true)
		return nil
	}
	timer := time.NewTimer(time.Duration(wait))
	defer timer.Stop()
	select {
	case <-timer.C:
		b.rec.recordOutcome(true)
		return nil
	case <-ctx.Done():
		b.g.giveBack(n)
		return b.refuse(ctx, &LimitedError{Limit: b.name, Err: ctx.Err()}, ReasonContext)
	}
}

// refuse records a refusal of Wait in metrics and on the span of ctx.
func (b *TokenBucket) refuse(ctx context.Context, e *LimitedError, reason string) error {
	b.rec.recordOutcome(false)
	rejected(ctx, e, reason)
	return e
}
