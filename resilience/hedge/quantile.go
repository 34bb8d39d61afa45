package hedge

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"time"
)

// Layout of the log-linear histogram of a [Quantile]: durations below
// 2*subBuckets nanoseconds have a bucket per nanosecond; above, every
// power-of-two range [2^n, 2^(n+1)) is split into subBuckets equal buckets,
// so a bucket is at most 1/subBuckets of its lower bound wide.
const (
	subBits    = 3
	subBuckets = 1 << subBits
	linear     = 2 * subBuckets
	numBuckets = linear + (63-subBits-1)*subBuckets
)

// rescaleAt is the weight of a new observation at which a [Quantile]
// scales all its weights back down, long before float64 overflows.
const rescaleAt = 1e100

// Quantile estimates one quantile of recent latencies with an exponentially
// decaying log-linear histogram, in the manner of HdrHistogram's buckets
// and forward-decay weighting (Cormode et al., "Forward Decay", ICDE 2009).
//
// Accuracy: durations fall into buckets at most 1/8 of their value wide
// (1ns wide below 16ns), and [Quantile.Value] interpolates linearly inside
// the bucket that holds the quantile, so the estimate is within 12.5% of
// the value of the decayed sample quantile, and in practice for smooth
// distributions within a few percent.
//
// Adaptivity: each observation weighs 2^(1/halfLife) times as much as the
// one before it, so an observation counts half as much after halfLife
// further observations, and after 10 half-lives less than 0.1%. The
// estimate therefore follows a change of the latency distribution within a
// few half-lives, measured in observations, not in time.
//
// Observe, Value and Count are safe for concurrent use and do not allocate.
// The zero Quantile is not usable; create one with [NewQuantile].
type Quantile struct {
	q      float64
	growth float64 // weight multiplier per observation

	mu      sync.Mutex
	weight  float64 // of the next observation
	total   float64 // sum of buckets
	count   uint64
	value   time.Duration // cached estimate, valid unless dirty
	dirty   bool
	buckets [numBuckets]float64
}

// NewQuantile returns an estimator of the q-quantile, q in (0, 1), of the
// latencies observed, whose observations lose half of their weight every
// halfLife observations; halfLife 0 means [DefaultHalfLife].
func NewQuantile(q float64, halfLife int) (*Quantile, error) {
	var errs []error
	if math.IsNaN(q) || q <= 0 || q >= 1 {
		errs = append(errs, fmt.Errorf("hedge: invalid quantile: q = %v: must be in (0, 1)", q))
	}
	if halfLife < 0 {
		errs = append(errs, fmt.Errorf("hedge: invalid quantile: halfLife = %d: must not be negative", halfLife))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if halfLife == 0 {
		halfLife = DefaultHalfLife
	}
	return &Quantile{q: q, growth: math.Exp2(1 / float64(halfLife)), weight: 1}, nil
}

// bucketOf returns the index of the bucket that holds v nanoseconds.
func bucketOf(v uint64) int {
	if v < linear {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [subBuckets, 2*subBuckets)
	return linear + (shift-1)*subBuckets + int(v>>shift) - subBuckets
}

// bounds returns the lower and upper bound of bucket i, in nanoseconds.
func bounds(i int) (lo, hi float64) {
	if i < linear {
		return float64(i), float64(i + 1)
	}
	k := i - linear
	shift := k/subBuckets + 1
	m := float64(k%subBuckets + subBuckets)
	scale := math.Ldexp(1, shift)
	return m * scale, (m + 1) * scale
}

// Observe records one latency; negative durations count as zero.
func (e *Quantile) Observe(d time.Duration) {
	i := bucketOf(uint64(max(d, 0)))
	e.mu.Lock()
	e.buckets[i] += e.weight
	e.total += e.weight
	e.count++
	e.dirty = true
	e.weight *= e.growth
	if e.weight > rescaleAt {
		s := 1 / e.weight
		e.total = 0
		for j := range e.buckets {
			e.buckets[j] *= s
			e.total += e.buckets[j]
		}
		e.weight = 1
	}
	e.mu.Unlock()
}

// Value returns the estimate of the quantile of the recent latencies, or 0
// before the first observation.
func (e *Quantile) Value() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dirty {
		return e.value
	}
	e.dirty = false
	e.value = 0
	if e.total <= 0 {
		return 0
	}
	target := e.q * e.total
	cum := 0.0
	last := 0
	for i, w := range e.buckets {
		if w == 0 {
			continue
		}
		last = i
		if cum+w >= target {
			lo, hi := bounds(i)
			e.value = toDuration(lo + (target-cum)/w*(hi-lo))
			return e.value
		}
		cum += w
	}
	// Rounding left target above the sum: the quantile is in the last
	// non-empty bucket.
	_, hi := bounds(last)
	e.value = toDuration(hi)
	return e.value
}

// toDuration converts ns to a Duration, saturating at the largest one.
func toDuration(ns float64) time.Duration {
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// Count returns the number of observations made, faded or not.
func (e *Quantile) Count() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.count
}

// Q returns the quantile e estimates, in (0, 1).
func (e *Quantile) Q() float64 { return e.q }
