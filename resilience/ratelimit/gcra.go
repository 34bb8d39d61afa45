package ratelimit

import (
	"sync/atomic"
	"time"
)

// gcra is the generic cell rate algorithm state shared by [TokenBucket]
// and [LeakyBucket]: one atomic theoretical arrival time (tat), updated
// with compare-and-swap, so deciding takes no lock and allocates nothing.
//
// With emission interval T = Per/Rate and limit = Burst*T, n events are
// admitted at t when max(tat, t) + n*T - limit <= t, and then tat becomes
// max(tat, t) + n*T. tat - t is the time the bucket needs to refill
// completely (equivalently, the leaky bucket's queue to drain).
type gcra struct {
	interval int64 // T, nanoseconds
	limit    int64 // Burst*T, nanoseconds
	burst    int
	_        [40]byte // keep tat off the cache line of the read-only fields
	tat      atomic.Int64
	_        [56]byte
}

// initialTAT lies far enough in the past that the bucket starts full for
// any time after 1900, yet tat - limit cannot overflow.
const initialTAT = -(1 << 61)

func (g *gcra) init(cfg Config) {
	g.interval = cfg.interval()
	g.limit = g.interval * int64(cfg.Burst)
	g.burst = cfg.Burst
	g.tat.Store(initialTAT)
}

// remaining returns how many single events fit at t given tat.
func (g *gcra) remaining(t, tat int64) int {
	return int(max(0, (t+g.limit-max(tat, t))/g.interval))
}

// takeOne is take(t, 1).Allowed without building a Decision: the hot path
// of Allow.
func (g *gcra) takeOne(t int64) bool {
	for {
		tat := g.tat.Load()
		next := max(tat, t) + g.interval
		if next-g.limit > t {
			return false
		}
		if g.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// take decides n events at t; its Delay is how long after t the first of them
// is scheduled by the leaky bucket's spacing.
func (g *gcra) take(t int64, n int) (d Decision) {
	if n <= 0 || n > g.burst {
		tat := g.tat.Load()
		d = Decision{Allowed: n <= 0, Remaining: g.remaining(t, tat), Reset: time.Duration(max(0, tat-t))}
		if n > 0 {
			d.RetryAfter = Never
		}
		return d
	}
	cost := int64(n) * g.interval
	for {
		tat := g.tat.Load()
		base := max(tat, t)
		next := base + cost
		if allowAt := next - g.limit; allowAt > t {
			return Decision{
				Remaining:  g.remaining(t, tat),
				RetryAfter: time.Duration(allowAt - t),
				Reset:      time.Duration(base - t),
			}
		}
		if g.tat.CompareAndSwap(tat, next) {
			return Decision{
				Allowed:   true,
				Remaining: int((t + g.limit - next) / g.interval),
				Reset:     time.Duration(next - t),
				Delay:     time.Duration(base - t),
			}
		}
	}
}

// reserve takes n (1 <= n <= burst) events at t for the earliest time
// they conform, provided that is no later than deadline, and returns how
// long after t that is. When it is later, it takes nothing and returns
// ok false with the wait that would have been needed.
func (g *gcra) reserve(t int64, n int, deadline int64) (wait int64, ok bool) {
	cost := int64(n) * g.interval
	for {
		tat := g.tat.Load()
		next := max(tat, t) + cost
		wait = max(0, next-g.limit-t)
		if wait > 0 && t+wait > deadline {
			return wait, false
		}
		if g.tat.CompareAndSwap(tat, next) {
			return wait, true
		}
	}
}

// giveBack returns n reserved events to the bucket.
func (g *gcra) giveBack(n int) {
	g.tat.Add(-int64(n) * g.interval)
}
