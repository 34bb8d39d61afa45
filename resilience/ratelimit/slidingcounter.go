package ratelimit

import (
	"math"
	"math/bits"
	"sync"
	"time"
)

// SlidingWindowCounter approximates a sliding window of length Window
// holding at most Burst events with two fixed windows, as Cloudflare
// describes in "How we built rate limiting capable of scaling to millions
// of domains" (https://blog.cloudflare.com/counting-things-a-lot-of-different-things/):
// the events counted in the previous window are assumed to be spread
// evenly over it, so at elapsed time e into the current window the
// estimate is
//
//	previous*(Window-e)/Window + current
//
// and n events are admitted when estimate + n <= Burst. The comparison is
// exact (128-bit integer arithmetic, no floating point). Windows are
// aligned to the Unix epoch, like [FixedWindow]'s.
//
// SlidingWindowCounter is safe for concurrent use; it holds a mutex for a
// few arithmetic operations and allocates nothing. Build it with
// [NewSlidingWindowCounter].
type SlidingWindowCounter struct {
	name   string
	clock  clock
	rec    recorder
	window int64
	limit  int

	mu   sync.Mutex
	cur  int64 // index of the current window
	curN int   // events admitted in the current window
	prev int   // events admitted in the window before it
}

var _ Limiter = (*SlidingWindowCounter)(nil)

// NewSlidingWindowCounter validates cfg and returns a sliding window
// counter allowing about cfg.Burst events in any cfg.Window;
// cfg.Algorithm is ignored.
func NewSlidingWindowCounter(cfg Config) (*SlidingWindowCounter, error) {
	cfg, clk, rec, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	return &SlidingWindowCounter{name: cfg.Name, clock: clk, rec: rec, window: int64(cfg.Window), limit: cfg.Burst, cur: math.MinInt64}, nil
}

// Allow reports whether one event may happen now and, if so, counts it.
func (l *SlidingWindowCounter) Allow() bool { return l.decide(l.clock.now(), 1).Allowed }

// AllowN reports whether n events may happen at now and, if so, counts
// them. Remaining is the whole part of Burst minus the estimate. A denied
// request's RetryAfter is exactly when the estimate will have fallen far
// enough for n (or [Never] when n exceeds Burst). Reset is the time until
// the estimate reaches zero.
func (l *SlidingWindowCounter) AllowN(now time.Time, n int) Decision {
	return l.decide(l.clock.nanos(now), n)
}

// decide is AllowN at t nanoseconds since the Unix epoch.
func (l *SlidingWindowCounter) decide(t int64, n int) Decision {
	w := uint64(l.window)
	l.mu.Lock()
	if idx := floorDiv(t, l.window); idx > l.cur {
		if idx == l.cur+1 {
			l.prev = l.curN
		} else {
			l.prev = 0
		}
		l.cur, l.curN = idx, 0
	}
	e := min(max(0, t-l.cur*l.window), l.window-1) // elapsed in the current window
	left := uint64(l.window - e)
	capacity := mul(uint64(l.limit), w)                           // Burst*Window
	used := mul(uint64(l.prev), left).add(mul(uint64(l.curN), w)) // estimate*Window
	var d Decision
	switch {
	case n <= 0:
		d.Allowed = true
	case n > l.limit:
		d.RetryAfter = Never
	case !capacity.less(used.add(mul(uint64(n), w))):
		d.Allowed = true
		l.curN += n
		used = used.add(mul(uint64(n), w))
	case l.curN+n <= l.limit:
		// Enough once the previous window's weight has shrunk:
		// prev*(Window-e') <= (Burst-curN-n)*Window.
		s := mul(uint64(l.limit-l.curN-n), w).divFloor(uint64(l.prev), w)
		d.RetryAfter = time.Duration(int64(w-s) - e)
	default:
		// Only in the next window, where the current count becomes the
		// previous one: curN*(Window-e'') <= (Burst-n)*Window.
		s := mul(uint64(l.limit-n), w).divFloor(uint64(l.curN), w)
		d.RetryAfter = time.Duration(int64(left) + int64(w-s))
	}
	if !capacity.less(used) {
		rem, _ := bits.Div64(capacity.sub(used).hi, capacity.sub(used).lo, w)
		d.Remaining = int(rem)
	}
	switch {
	case l.curN > 0:
		d.Reset = time.Duration(int64(left) + l.window)
	case l.prev > 0:
		d.Reset = time.Duration(left)
	}
	l.mu.Unlock()
	return l.rec.record(d)
}

// u128 is an unsigned 128-bit integer for exact products of counts and
// nanoseconds.
type u128 struct{ hi, lo uint64 }

func mul(a, b uint64) u128 {
	hi, lo := bits.Mul64(a, b)
	return u128{hi, lo}
}

func (x u128) add(y u128) u128 {
	lo, c := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(x.hi, y.hi, c)
	return u128{hi, lo}
}

func (x u128) sub(y u128) u128 {
	lo, b := bits.Sub64(x.lo, y.lo, 0)
	hi, _ := bits.Sub64(x.hi, y.hi, b)
	return u128{hi, lo}
}

func (x u128) less(y u128) bool {
	return x.hi < y.hi || x.hi == y.hi && x.lo < y.lo
}

// divFloor returns min(floor(x/d), limit); d must be positive.
func (x u128) divFloor(d, limit uint64) uint64 {
	if x.hi >= d {
		return limit
	}
	q, _ := bits.Div64(x.hi, x.lo, d)
	return min(q, limit)
}
