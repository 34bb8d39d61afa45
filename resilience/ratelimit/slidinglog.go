package ratelimit

import (
	"sync"
	"time"
)

// SlidingWindowLog admits at most Burst events in any interval of length
// Window, exactly: it keeps the time of every admitted event still inside
// the window in a ring buffer of Burst entries allocated up front. An
// event admitted at time s counts against every decision in
// [s, s+Window). Memory is O(Burst); AllowN is O(n) plus the number of
// entries that expire, and allocates nothing. The ring takes 8 bytes per
// unit of Burst, allocated in the constructor.
//
// SlidingWindowLog is safe for concurrent use; it holds a mutex while it
// decides. Build it with [NewSlidingWindowLog].
type SlidingWindowLog struct {
	name   string
	clock  clock
	rec    recorder
	window int64

	mu   sync.Mutex
	ring []int64 // admission times, oldest at head; len(ring) == Burst
	head int
	size int
}

var _ Limiter = (*SlidingWindowLog)(nil)

// NewSlidingWindowLog validates cfg and returns a sliding window log
// allowing cfg.Burst events in any cfg.Window; cfg.Algorithm is ignored.
func NewSlidingWindowLog(cfg Config) (*SlidingWindowLog, error) {
	cfg, clk, rec, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	return &SlidingWindowLog{name: cfg.Name, clock: clk, rec: rec, window: int64(cfg.Window), ring: make([]int64, cfg.Burst)}, nil
}

// Allow reports whether one event may happen now and, if so, logs it.
func (l *SlidingWindowLog) Allow() bool { return l.decide(l.clock.now(), 1).Allowed }

// AllowN reports whether n events may happen at now and, if so, logs
// them. A denied request's RetryAfter is exactly when enough logged
// events will have left the window (or [Never] when n exceeds Burst).
// Reset is the time until the newest logged event leaves the window. A
// time earlier than the newest logged one is logged as that newest time.
func (l *SlidingWindowLog) AllowN(now time.Time, n int) Decision {
	return l.decide(l.clock.nanos(now), n)
}

// decide is AllowN at t nanoseconds since the Unix epoch.
func (l *SlidingWindowLog) decide(now int64, n int) Decision {
	t := now
	limit := len(l.ring)
	l.mu.Lock()
	for l.size > 0 && l.ring[l.head]+l.window <= t {
		l.head = (l.head + 1) % limit
		l.size--
	}
	var d Decision
	switch {
	case n <= 0:
		d.Allowed = true
	case n > limit:
		d.RetryAfter = Never
	case l.size+n <= limit:
		d.Allowed = true
		if l.size > 0 {
			t = max(t, l.ring[(l.head+l.size-1)%limit])
		}
		for range n {
			l.ring[(l.head+l.size)%limit] = t
			l.size++
		}
	default:
		// The (size+n-limit)th oldest event must leave first.
		oldest := l.ring[(l.head+l.size+n-limit-1)%limit]
		d.RetryAfter = time.Duration(oldest + l.window - t)
	}
	d.Remaining = limit - l.size
	if l.size > 0 {
		d.Reset = time.Duration(l.ring[(l.head+l.size-1)%limit] + l.window - now)
	}
	l.mu.Unlock()
	return l.rec.record(d)
}
