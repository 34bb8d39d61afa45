package ratelimit

import (
	"time"
)

// LeakyBucket is a leaky bucket used as a meter for a queue that holds up
// to Burst requests and lets one leave every emission interval
// T = Per/Rate. A request is admitted when the queue has room for it;
// [Decision.Delay] is then how long the caller must hold it before acting,
// so that admitted requests leave spaced by at least T and never faster
// than Rate per Per, even right after an idle period. For n > 1 events,
// Delay is when the first may leave; the others follow T apart.
//
// Admission is the same as a [TokenBucket] with the same Rate and Burst
// (both are GCRA); the difference is the spacing Delay reports. A caller
// that ignores Delay gets token bucket behaviour. Remaining is the free
// room in the queue, Reset the time until it is empty. A denied request
// is not queued.
//
// LeakyBucket is safe for concurrent use, takes no lock and allocates
// nothing. Build it with [NewLeakyBucket].
type LeakyBucket struct {
	name  string
	clock clock
	rec   recorder
	g     gcra
}

var _ Limiter = (*LeakyBucket)(nil)

// NewLeakyBucket validates cfg and returns a leaky bucket; cfg.Algorithm
// is ignored.
func NewLeakyBucket(cfg Config) (*LeakyBucket, error) {
	cfg, clk, rec, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	b := &LeakyBucket{name: cfg.Name, clock: clk, rec: rec}
	b.g.init(cfg)
	return b, nil
}

// Allow reports whether one request fits in the queue now and, if so,
// queues it. It ignores the Delay the request should be held for; use
// AllowN to smooth.
func (b *LeakyBucket) Allow() bool { return b.rec.recordOutcome(b.g.takeOne(b.clock.now())) }

// AllowN reports whether n requests fit in the queue at now and, if so,
// queues them and reports in Delay how long to hold the first. When n
// exceeds Burst the request is denied with RetryAfter [Never].
func (b *LeakyBucket) AllowN(now time.Time, n int) Decision {
	return b.decide(b.clock.nanos(now), n)
}

// decide is AllowN at t nanoseconds since the Unix epoch.
func (b *LeakyBucket) decide(t int64, n int) Decision {
	return b.rec.record(b.g.take(t, n))
}
