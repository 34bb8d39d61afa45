package degrade

import (
	"sync/atomic"
)

// Signal is a source of pressure: how loaded the service is, where 0 is
// idle, 1 is at capacity and more than 1 is past it.
type Signal interface {
	// Pressure returns the current pressure. [Switch.Update] calls it
	// once per evaluation, never from two goroutines at once, and never
	// from the hot path ([Switch.Enabled], [Switch.Allow]); it must not
	// call back into the Switch. A NaN or negative result counts as 0,
	// +Inf as the largest float64.
	Pressure() float64
}

// SignalFunc adapts a function to a [Signal]. Any usage source fits, such
// as the Usage method of a shed.CPU: degrade.SignalFunc(cpu.Usage).
type SignalFunc func() float64

// Pressure returns f().
func (f SignalFunc) Pressure() float64 { return f() }

// Ratio returns a Signal of n() / limit(), such as the requests in flight
// over a concurrency limit: degrade.Ratio(limiter.InFlight,
// limiter.Limit) for an adaptive.Limiter. A limit of 0 or less gives
// pressure 0.
func Ratio(n, limit func() int) Signal {
	return SignalFunc(func() float64 {
		l := limit()
		if l <= 0 {
			return 0
		}
		return float64(n()) / float64(l)
	})
}

// Max returns a Signal of the largest pressure of signals, so that any
// one resource running out degrades the service; 0 for none.
func Max(signals ...Signal) Signal {
	signals = append([]Signal(nil), signals...)
	return SignalFunc(func() float64 {
		m := 0.0
		for _, s := range signals {
			m = max(m, sanitize(s.Pressure()))
		}
		return m
	})
}

// ErrorRate is a Signal of the share of failed operations recorded since
// the previous evaluation. The zero value is ready to use; it is safe for
// concurrent use, and [ErrorRate.Record] neither locks nor allocates.
type ErrorRate struct {
	// MinSamples is the number of operations an evaluation needs before
	// it reports a rate; below it Pressure returns 0 and keeps the counts
	// for the next evaluation, so that one failure of two calls at night
	// does not degrade the service. Default 0: any number. Set it before
	// first use.
	MinSamples int

	counts atomic.Uint64 // total << 32 | failed
}

// Record records the outcome of one operation: failed reports whether it
// failed in a way that signals overload (a timeout, a 503), not any
// error. At most 2³²−1 operations may be recorded between evaluations.
func (e *ErrorRate) Record(failed bool) {
	d := uint64(1) << 32
	if failed {
		d++
	}
	e.counts.Add(d)
}

// Pressure returns the failed share of the operations recorded since the
// last call that returned a rate, from 0 to 1, and starts a new count.
func (e *ErrorRate) Pressure() float64 {
	if v := e.counts.Load(); v>>32 == 0 || int64(v>>32) < int64(e.MinSamples) {
		return 0
	}
	v := e.counts.Swap(0)
	total, failed := v>>32, v&(1<<32-1)
	if total == 0 {
		return 0
	}
	return min(1, float64(failed)/float64(total))
}

var (
	_ Signal = SignalFunc(nil)
	_ Signal = (*ErrorRate)(nil)
)
