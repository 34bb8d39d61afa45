package adaptive

import (
	"math"
	"math/rand/v2"
	"time"
)

// Defaults the algorithms apply to their zero fields (and [New] to the
// zero fields of a [Config]).
const (
	DefaultInitialLimit  = 20
	DefaultMinLimit      = 1
	DefaultMaxLimit      = 200
	DefaultBackoffRatio  = 0.9
	DefaultTimeout       = 5 * time.Second
	DefaultSmoothing     = 0.2 // Gradient2; Vegas defaults to 1 (no smoothing)
	DefaultLongWindow    = 600
	DefaultRTTTolerance  = 1.5
	DefaultQueueSize     = 4
	DefaultProbeInterval = 1000
)

// longWarmup is the number of first samples the long RTT of [Gradient2]
// averages arithmetically before it switches to an exponential average,
// as Netflix's ExpAvgMeasurement does.
const longWarmup = 10

// Sample is one measured call fed to an [Algorithm].
type Sample struct {
	// RTT is the call's round-trip time, from admission to completion.
	RTT time.Duration
	// InFlight is the number of calls in flight when the call was admitted,
	// itself included.
	InFlight int
	// Dropped reports that the call was dropped, timed out or rejected
	// downstream: a sign of overload.
	Dropped bool
}

// Algorithm computes a concurrency limit from samples. Implementations
// need not be safe for concurrent use: a [Limiter] serialises its calls.
type Algorithm interface {
	// Update feeds one sample and returns the new limit.
	Update(sample Sample) int
	// Limit returns the current limit.
	Limit() int
}

// bounds fills in the zero limits and clamps initial into [min, max].
func bounds(initial, lo, hi int) (int, int, int) {
	if lo == 0 {
		lo = DefaultMinLimit
	}
	if hi == 0 {
		hi = max(DefaultMaxLimit, lo)
	}
	if initial == 0 {
		initial = DefaultInitialLimit
	}
	return min(max(initial, lo), hi), lo, hi
}

// AIMD is the additive-increase/multiplicative-decrease algorithm of
// Netflix's concurrency-limits library (AIMDLimit,
// https://github.com/Netflix/concurrency-limits): a dropped sample, or one
// whose RTT exceeds Timeout, multiplies the limit by BackoffRatio (not
// below Min); any other sample adds one (not above Max), but only while
// the caller uses at least half the limit (InFlight*2 >= limit), so that
// an application-limited caller does not inflate it.
//
// Zero fields take their defaults on first use: Initial
// [DefaultInitialLimit], Min [DefaultMinLimit], Max [DefaultMaxLimit],
// BackoffRatio [DefaultBackoffRatio], Timeout [DefaultTimeout].
type AIMD struct {
	Initial, Min, Max int
	// BackoffRatio in (0, 1) multiplies the limit on a drop.
	BackoffRatio float64
	// Timeout is the RTT above which a sample counts as a drop.
	Timeout time.Duration

	limit int
	ready bool
}

func (a *AIMD) init() {
	if a.ready {
		return
	}
	a.ready = true
	a.Initial, a.Min, a.Max = bounds(a.Initial, a.Min, a.Max)
	if a.BackoffRatio == 0 {
		a.BackoffRatio = DefaultBackoffRatio
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	}
	a.limit = a.Initial
}

// Update applies s and returns the new limit.
func (a *AIMD) Update(s Sample) int {
	a.init()
	switch {
	case s.Dropped || s.RTT > a.Timeout:
		a.limit = max(a.Min, int(float64(a.limit)*a.BackoffRatio))
	case s.InFlight*2 >= a.limit:
		a.limit = min(a.Max, a.limit+1)
	}
	return a.limit
}

// Limit returns the current limit.
func (a *AIMD) Limit() int {
	a.init()
	return a.limit
}

// Gradient2 is the gradient algorithm of Netflix's concurrency-limits
// library (Gradient2Limit, https://github.com/Netflix/concurrency-limits),
// which compares the latest RTT (the short RTT) with an exponential average
// of past RTTs (the long RTT) to detect queueing.
//
// For every sample it implements exactly:
//
//	long  = mean of the first 10 RTTs, then long*(1-f) + rtt*f, f = 2/(LongWindow+1)
//	if long/rtt > 2 { long *= 0.95 }     // recovery: decay a long RTT left high by past overload
//	if InFlight*2 < limit { return }     // application-limited: keep the limit
//	gradient = max(0.5, min(1, RTTTolerance*long/rtt))
//	next     = limit*gradient + Queue(limit)
//	limit    = clamp(limit*(1-Smoothing) + next*Smoothing, Min, Max)
//
// The limit is kept as a float and reported truncated. Drops carry no
// extra signal: as in Netflix, the RTT is the signal.
//
// Zero fields take their defaults on first use: Initial
// [DefaultInitialLimit], Min [DefaultMinLimit], Max [DefaultMaxLimit],
// Smoothing [DefaultSmoothing], LongWindow [DefaultLongWindow],
// RTTTolerance [DefaultRTTTolerance], Queue a constant
// [DefaultQueueSize].
type Gradient2 struct {
	Initial, Min, Max int
	// Smoothing in (0, 1] weighs each new limit against the old one.
	Smoothing float64
	// LongWindow is the number of samples the long RTT averages over.
	LongWindow int
	// RTTTolerance >= 1 is how much the short RTT may exceed the long one
	// before the limit shrinks.
	RTTTolerance float64
	// Queue returns the headroom added to the limit each sample.
	Queue func(limit int) int

	limit  float64
	long   float64 // nanoseconds
	count  int
	factor float64
	ready  bool
}

func (g *Gradient2) init() {
	if g.ready {
		return
	}
	g.ready = true
	g.Initial, g.Min, g.Max = bounds(g.Initial, g.Min, g.Max)
	if g.Smoothing == 0 {
		g.Smoothing = DefaultSmoothing
	}
	if g.LongWindow == 0 {
		g.LongWindow = DefaultLongWindow
	}
	if g.RTTTolerance == 0 {
		g.RTTTolerance = DefaultRTTTolerance
	}
	if g.Queue == nil {
		g.Queue = func(int) int { return DefaultQueueSize }
	}
	g.factor = 2 / float64(g.LongWindow+1)
	g.limit = float64(g.Initial)
}

// Update applies s and returns the new limit. Samples with a non-positive
// RTT are ignored.
func (g *Gradient2) Update(s Sample) int {
	g.init()
	if s.RTT <= 0 {
		return int(g.limit)
	}
	short := float64(s.RTT)
	if g.count < min(longWarmup, g.LongWindow) {
		g.count++
		g.long += (short - g.long) / float64(g.count)
	} else {
		g.long = g.long*(1-g.factor) + short*g.factor
	}
	if g.long/short > 2 {
		g.long *= 0.95
	}
	if float64(s.InFlight) < g.limit/2 {
		return int(g.limit)
	}
	gradient := max(0.5, min(1, g.RTTTolerance*g.long/short))
	next := g.limit*gradient + float64(g.Queue(int(g.limit)))
	next = g.limit*(1-g.Smoothing) + next*g.Smoothing
	g.limit = max(float64(g.Min), min(float64(g.Max), next))
	return int(g.limit)
}

// Limit returns the current limit.
func (g *Gradient2) Limit() int {
	g.init()
	return int(g.limit)
}

// LongRTT returns the long-term RTT average.
func (g *Gradient2) LongRTT() time.Duration { return time.Duration(g.long) }

// Vegas is the TCP-Vegas-like algorithm of Netflix's concurrency-limits
// library (VegasLimit, https://github.com/Netflix/concurrency-limits). It
// keeps the minimum RTT seen, rtt_noload, and estimates the queue as
// ceil(limit*(1 - rtt_noload/rtt)), computed as limit*(rtt -
// rtt_noload)/rtt to avoid rounding error: below Alpha(limit) the limit grows by
// log10(limit), above Beta(limit) or on a drop it shrinks by log10(limit)
// (log10 truncated, at least 1). Application-limited samples (InFlight*2 <
// limit) without a drop leave it alone.
//
// A minimum RTT learned once goes stale when the dependency's unloaded
// latency changes, so, like Envoy's adaptive concurrency filter
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/adaptive_concurrency_filter),
// Vegas periodically re-measures it: after ProbeInterval samples, jittered
// by ±ProbeJitter, the next sample's RTT replaces rtt_noload and the limit
// is left unchanged for that sample. A sample lower than rtt_noload
// replaces it at any time.
//
// Zero fields take their defaults on first use: Initial
// [DefaultInitialLimit], Min [DefaultMinLimit], Max [DefaultMaxLimit],
// Alpha 3*log10(limit), Beta 6*log10(limit), Smoothing 1,
// ProbeInterval [DefaultProbeInterval], Rand math/rand/v2.Float64.
// ProbeJitter has no default: 0 means no jitter.
type Vegas struct {
	Initial, Min, Max int
	// Alpha returns the queue size below which the limit grows.
	Alpha func(limit int) int
	// Beta returns the queue size above which the limit shrinks.
	Beta func(limit int) int
	// Smoothing in (0, 1] weighs each new limit against the old one.
	Smoothing float64
	// ProbeInterval is the number of samples between re-measurements of
	// the minimum RTT.
	ProbeInterval int
	// ProbeJitter in [0, 1) varies each probe interval by up to this
	// fraction either way.
	ProbeJitter float64
	// Rand returns a number in [0, 1) for the jitter.
	Rand func() float64

	limit     float64
	noLoad    time.Duration
	samples   int
	nextProbe int
	ready     bool
}

// log10Floor returns log10(n) truncated, at least 1, as Netflix's
// Log10RootFunction does.
func log10Floor(n int) int { return max(1, int(math.Log10(float64(n)))) }

func (v *Vegas) init() {
	if v.ready {
		return
	}
	v.ready = true
	v.Initial, v.Min, v.Max = bounds(v.Initial, v.Min, v.Max)
	if v.Alpha == nil {
		v.Alpha = func(l int) int { return 3 * log10Floor(l) }
	}
	if v.Beta == nil {
		v.Beta = func(l int) int { return 6 * log10Floor(l) }
	}
	if v.Smoothing == 0 {
		v.Smoothing = 1
	}
	if v.ProbeInterval == 0 {
		v.ProbeInterval = DefaultProbeInterval
	}
	if v.Rand == nil {
		v.Rand = rand.Float64
	}
	v.limit = float64(v.Initial)
	v.nextProbe = v.probeAfter()
}

// probeAfter returns the jittered number of samples until the next probe.
func (v *Vegas) probeAfter() int {
	n := float64(v.ProbeInterval)
	if v.ProbeJitter > 0 {
		n *= 1 + v.ProbeJitter*(2*v.Rand()-1)
	}
	return max(1, int(math.Round(n)))
}

// Update applies s and returns the new limit. Samples with a non-positive
// RTT are ignored.
func (v *Vegas) Update(s Sample) int {
	v.init()
	if s.RTT <= 0 {
		return int(v.limit)
	}
	v.samples++
	if v.samples > v.nextProbe {
		v.samples = 0
		v.nextProbe = v.probeAfter()
		v.noLoad = s.RTT
		return int(v.limit)
	}
	if v.noLoad == 0 || s.RTT < v.noLoad {
		v.noLoad = s.RTT
		return int(v.limit)
	}
	l := int(v.limit)
	var next float64
	switch queue := int(math.Ceil(v.limit * float64(s.RTT-v.noLoad) / float64(s.RTT))); {
	case s.Dropped:
		next = v.limit - float64(log10Floor(l))
	case s.InFlight*2 < l:
		return l
	case queue < v.Alpha(l):
		next = v.limit + float64(log10Floor(l))
	case queue > v.Beta(l):
		next = v.limit - float64(log10Floor(l))
	default:
		return l
	}
	next = v.limit*(1-v.Smoothing) + next*v.Smoothing
	v.limit = max(float64(v.Min), min(float64(v.Max), next))
	return int(v.limit)
}

// Limit returns the current limit.
func (v *Vegas) Limit() int {
	v.init()
	return int(v.limit)
}

// RTTNoLoad returns the minimum RTT currently assumed, 0 before the first
// sample.
func (v *Vegas) RTTNoLoad() time.Duration { return v.noLoad }

var (
	_ Algorithm = (*AIMD)(nil)
	_ Algorithm = (*Gradient2)(nil)
	_ Algorithm = (*Vegas)(nil)
)
