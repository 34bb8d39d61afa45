package ratelimit

import (
	"math"
	"sync"
	"time"
)

// FixedWindow admits up to Burst events in each window of length Window.
// Windows are aligned to the Unix epoch: [k*Window, (k+1)*Window) for
// integer k, so limiters in different processes agree on the boundaries.
// The counter resets to zero at each boundary, which lets up to 2*Burst
// events through around a boundary; [SlidingWindowCounter] avoids that.
//
// FixedWindow is safe for concurrent use; it holds a mutex for a few
// arithmetic operations and allocates nothing. Build it with
// [NewFixedWindow].
type FixedWindow struct {
	name   string
	clock  clock
	rec    recorder
	window int64
	limit  int

	mu    sync.Mutex
	cur   int64 // index of the current window
	count int   // events admitted in the current window
}

var _ Limiter = (*FixedWindow)(nil)

// NewFixedWindow validates cfg and returns a fixed window limiter allowing
// cfg.Burst events per cfg.Window; cfg.Algorithm is ignored.
func NewFixedWindow(cfg Config) (*FixedWindow, error) {
	cfg, clk, rec, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	return &FixedWindow{name: cfg.Name, clock: clk, rec: rec, window: int64(cfg.Window), limit: cfg.Burst, cur: math.MinInt64}, nil
}

// Allow reports whether one event may happen now and, if so, counts it.
func (l *FixedWindow) Allow() bool { return l.decide(l.clock.now(), 1).Allowed }

// AllowN reports whether n events may happen at now and, if so, counts
// them. Reset is the time until the current window ends, and a denied
// request's RetryAfter is the same (or [Never] when n exceeds Burst).
func (l *FixedWindow) AllowN(now time.Time, n int) Decision {
	return l.decide(l.clock.nanos(now), n)
}

// decide is AllowN at t nanoseconds since the Unix epoch.
func (l *FixedWindow) decide(t int64, n int) Decision {
	l.mu.Lock()
	if idx := floorDiv(t, l.window); idx > l.cur {
		l.cur, l.count = idx, 0
	}
	reset := time.Duration((l.cur+1)*l.window - t)
	var d Decision
	switch {
	case n <= 0:
		d = Decision{Allowed: true}
	case n > l.limit:
		d = Decision{RetryAfter: Never}
	case l.count+n <= l.limit:
		l.count += n
		d = Decision{Allowed: true}
	default:
		d = Decision{RetryAfter: reset}
	}
	d.Remaining, d.Reset = l.limit-l.count, reset
	l.mu.Unlock()
	return l.rec.record(d)
}
