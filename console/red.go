package console

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"time"
)

// RED aggregation: rate, errors and duration of the requests each service
// serves, derived from spans as they arrive.
//
// A span counts as a request when it enters its service: a span of kind
// server or consumer, or a span without a parent (a root, whatever its
// kind). Each (service, span name) pair keeps redBuckets buckets of
// redStep, by the span's end time, so RED covers the last redWindow
// whatever the store's span bound evicts. Durations go to a log-linear
// histogram with redSub sub-buckets per power of two of microseconds:
// percentiles are exact to within half a sub-bucket, 1/16 = 6.25% of the
// value, and never outside the exact minimum and maximum of the window.
const (
	redStep    = 10 * time.Second
	redBuckets = 90 // 15 minutes
	redWindow  = redStep * redBuckets

	redSubBits = 3
	redSub     = 1 << redSubBits
	// redMaxExp is the largest power of two of microseconds with its own
	// buckets (2^36 µs is about 19 hours); longer durations go to the last
	// bucket.
	redMaxExp = 36
	redHist   = (redMaxExp - redSubBits + 1) * redSub
	// maxREDOperations bounds the (service, operation) pairs tracked, and
	// with them the memory RED takes (at most about 100 KiB each);
	// beyond it, new operations are counted under otherOperation.
	maxREDOperations = 500
	otherOperation   = "(other)"
)

// redStats is the rate, errors and duration percentiles of one service or
// operation over a window.
type redStats struct {
	Service    string        `json:"service"`
	Operation  string        `json:"operation,omitempty"` // "" for a whole service
	Count      uint64        `json:"count"`
	Errors     uint64        `json:"errors"`
	Rate       float64       `json:"rate_per_second"`
	ErrorRatio float64       `json:"error_ratio"`
	P50        time.Duration `json:"p50_ns"`
	P95        time.Duration `json:"p95_ns"`
	P99        time.Duration `json:"p99_ns"`
}

// redPoint is the RED of one step of a series, starting at Time.
type redPoint struct {
	Time time.Time `json:"time"`
	redStats
}

// redKey identifies an operation: a span name within a service.
type redKey struct{ service, operation string }

// redBucket aggregates the requests that ended within one step.
type redBucket struct {
	epoch    int64 // step number: end time / redStep; 0 while unused
	count    uint64
	errors   uint64
	min, max time.Duration    // exact extremes, which bound the estimates
	hist     *[redHist]uint32 // allocated on first use
}

// redSeriesAgg is the ring of buckets of one operation. bucket i holds the
// step whose number is congruent to i modulo redBuckets.
type redSeriesAgg struct {
	buckets [redBuckets]redBucket
}

// redAggregator holds the RED series of every operation. The store's lock
// guards it.
type redAggregator struct {
	ops map[redKey]*redSeriesAgg
}

func newREDAggregator() redAggregator {
	return redAggregator{ops: make(map[redKey]*redSeriesAgg)}
}

// isRequest reports whether sp enters its service (see the RED comment).
func isRequest(sp *span) bool {
	return sp.ParentSpanID.IsZero() || sp.Kind == "server" || sp.Kind == "consumer"
}

// observe counts sp if it is a request. Spans that ended more than
// redWindow before the newest step seen by their operation are dropped.
func (a *redAggregator) observe(sp *span) {
	if !isRequest(sp) || sp.End.IsZero() {
		return
	}
	k := redKey{sp.Service, sp.Name}
	agg := a.ops[k]
	if agg == nil {
		if len(a.ops) >= maxREDOperations {
			k.operation = otherOperation
			agg = a.ops[k]
		}
		if agg == nil {
			agg = &redSeriesAgg{}
			a.ops[k] = agg
		}
	}
	epoch := stepOf(sp.End)
	b := &agg.buckets[mod(epoch, redBuckets)]
	switch {
	case b.epoch == epoch:
	case b.epoch > epoch:
		return // a bucket this old has been reused for a newer step
	default:
		hist := b.hist
		*b = redBucket{epoch: epoch, hist: hist}
		if hist != nil {
			clear(hist[:])
		}
	}
	if b.count == 0 || sp.Duration < b.min {
		b.min = sp.Duration
	}
	if b.count == 0 || sp.Duration > b.max {
		b.max = sp.Duration
	}
	b.count++
	if sp.isError() {
		b.errors++
	}
	if b.hist == nil {
		b.hist = new([redHist]uint32)
	}
	b.hist[histIndex(sp.Duration)]++
}

func stepOf(t time.Time) int64 { return t.UnixNano() / int64(redStep) }

func mod(a, n int64) int64 { return ((a % n) + n) % n }

// histIndex maps a duration to its log-linear bucket: microseconds below
// redSub are exact, above that each power of two splits into redSub
// buckets.
func histIndex(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < redSub {
		return int(us)
	}
	e := bits.Len64(us) - 1 // us is in [2^e, 2^(e+1))
	if e >= redMaxExp {
		return redHist - 1
	}
	sub := (us >> (e - redSubBits)) & (redSub - 1)
	return (e-redSubBits+1)*redSub + int(sub)
}

// histValue is the midpoint of bucket i, as a duration.
func histValue(i int) time.Duration {
	if i < redSub {
		return time.Duration(i)*time.Microsecond + time.Microsecond/2
	}
	e := i/redSub + redSubBits - 1
	sub := uint64(i % redSub)
	width := uint64(1) << (e - redSubBits)
	lo := (uint64(1) << e) + sub*width
	return time.Duration(float64(lo)+float64(width)/2) * time.Microsecond
}

// redSum accumulates buckets into one redStats.
type redSum struct {
	count, errors uint64
	min, max      time.Duration
	hist          [redHist]uint64
}

func (s *redSum) add(b *redBucket) {
	if s.count == 0 || b.min < s.min {
		s.min = b.min
	}
	if s.count == 0 || b.max > s.max {
		s.max = b.max
	}
	s.count += b.count
	s.errors += b.errors
	if b.hist != nil {
		for i, n := range b.hist {
			s.hist[i] += uint64(n)
		}
	}
}

// stats turns the sums into redStats over a span of seconds.
func (s *redSum) stats(service, operation string, seconds float64) redStats {
	st := redStats{Service: service, Operation: operation, Count: s.count, Errors: s.errors}
	if seconds > 0 {
		st.Rate = float64(s.count) / seconds
	}
	if s.count > 0 {
		st.ErrorRatio = float64(s.errors) / float64(s.count)
		st.P50, st.P95, st.P99 = s.quantile(0.50), s.quantile(0.95), s.quantile(0.99)
	}
	return st
}

// quantile returns the q-quantile: the midpoint of the bucket holding the
// observation of rank ceil(q*count), kept within the exact minimum and
// maximum (so a single request reports its own duration).
func (s *redSum) quantile(q float64) time.Duration {
	rank := uint64(math.Ceil(q * float64(s.count)))
	rank = max(rank, 1)
	var seen uint64
	for i, n := range s.hist {
		seen += n
		if seen >= rank {
			return min(max(histValue(i), s.min), s.max)
		}
	}
	return s.max
}

// window returns the steps covered by the window ending at now: the
// first and last step numbers, inclusive.
func redSteps(now time.Time, window time.Duration) (first, last int64) {
	last = stepOf(now)
	n := int64(min(max(window, redStep), redWindow) / redStep)
	return last - n + 1, last
}

// sumOver adds agg's buckets for steps in [first, last].
func (agg *redSeriesAgg) sumOver(sum *redSum, first, last int64) {
	for i := range agg.buckets {
		b := &agg.buckets[i]
		if b.epoch >= first && b.epoch <= last && b.count > 0 {
			sum.add(b)
		}
	}
}

// servicesRED returns the RED of every service over the window ending at
// now (at most redWindow), sorted by service name.
func (s *store) servicesRED(now time.Time, window time.Duration) []redStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	first, last := redSteps(now, window)
	sums := make(map[string]*redSum)
	for k, agg := range s.red.ops {
		sum := sums[k.service]
		if sum == nil {
			sum = &redSum{}
			sums[k.service] = sum
		}
		agg.sumOver(sum, first, last)
	}
	secs := float64(last-first+1) * redStep.Seconds()
	out := make([]redStats, 0, len(sums))
	for svc, sum := range sums {
		out = append(out, sum.stats(svc, "", secs))
	}
	slices.SortFunc(out, func(a, b redStats) int { return cmp.Compare(a.Service, b.Service) })
	return out
}

// operationsRED returns the RED of each operation of service over the
// window ending at now, sorted by operation name.
func (s *store) operationsRED(service string, now time.Time, window time.Duration) []redStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	first, last := redSteps(now, window)
	secs := float64(last-first+1) * redStep.Seconds()
	var out []redStats
	for k, agg := range s.red.ops {
		if k.service != service {
			continue
		}
		var sum redSum
		agg.sumOver(&sum, first, last)
		out = append(out, sum.stats(k.service, k.operation, secs))
	}
	slices.SortFunc(out, func(a, b redStats) int { return cmp.Compare(a.Operation, b.Operation) })
	return out
}

// redSeries returns the RED of one operation of service, or of the whole
// service when operation is empty, per step over the window ending at
// now, oldest first. step is rounded up to a multiple of redStep; steps
// without requests are included with zero counts.
func (s *store) redSeries(service, operation string, now time.Time, window, step time.Duration) []redPoint {
	per := max(int64((step+redStep-1)/redStep), 1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	first, last := redSteps(now, window)
	// Align the series so its last point ends at the current step.
	n := (last - first + per) / per
	first = last - n*per + 1
	sums := make([]redSum, n)
	for k, agg := range s.red.ops {
		if k.service != service || (operation != "" && k.operation != operation) {
			continue
		}
		for i := range agg.buckets {
			b := &agg.buckets[i]
			if b.count == 0 || b.epoch < first || b.epoch > last {
				continue
			}
			sums[(b.epoch-first)/per].add(b)
		}
	}
	secs := float64(per) * redStep.Seconds()
	out := make([]redPoint, n)
	for i := range sums {
		out[i] = redPoint{
			Time:     time.Unix(0, (first+int64(i)*per)*int64(redStep)),
			redStats: sums[i].stats(service, operation, secs),
		}
	}
	return out
}
