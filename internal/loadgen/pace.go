package loadgen

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Rate is an arrival rate in requests per second that may change while
// [Run] paces by it (see [Config].Rate): a control such as a console slider
// calls Set, and the generator follows. A Rate is safe for concurrent use,
// and may be shared by several Runs. The zero value is a rate of 0: paused.
type Rate struct {
	mu      sync.Mutex
	rps     float64
	changed chan struct{} // closed, and forgotten, by a Set that changes rps; nil until a watcher asks
}

// NewRate returns a Rate of rps requests per second. It panics if rps is
// negative, NaN or infinite, as [Rate.Set] does.
func NewRate(rps float64) *Rate {
	checkRate(rps)
	return &Rate{rps: rps}
}

// Set changes the rate to rps requests per second; 0 pauses the load until
// a later Set. A generator pacing by r follows within one arrival interval
// of the new rate (see [Config].Rate). Setting the current rate changes
// nothing. Set panics if rps is negative, NaN or infinite.
func (r *Rate) Set(rps float64) {
	checkRate(rps)
	r.mu.Lock()
	defer r.mu.Unlock()
	if rps == r.rps {
		return
	}
	r.rps = rps
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Get returns the current rate in requests per second.
func (r *Rate) Get() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rps
}

// load returns the current rate and a channel that is closed when it
// changes.
func (r *Rate) load() (float64, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.rps, r.changed
}

func checkRate(rps float64) {
	if math.IsNaN(rps) || math.IsInf(rps, 0) || rps < 0 {
		panic(fmt.Sprintf("loadgen: rate %v is not a finite non-negative number", rps))
	}
}

// pace calls fire once per arrival of a constant-rate schedule at the rate
// r holds — arrival k is due at k/rate seconds after pace starts — until ctx
// is done. It is open loop: the schedule depends only on the clock, never on
// how long earlier work takes, and arrivals that fell due while pace was not
// running (a stalled process, a slow fire) are all fired as soon as it runs
// again.
//
// When r changes, pace re-bases the schedule at the change: the next
// arrival is due one interval of the new rate after the last one fired, or
// at once if that time has passed, and the ones after it follow at the new
// rate. So a change takes effect within one new interval and fires no
// arrivals "missed" under the new rate. While r is 0, pace waits for a
// change, idle. fire runs on pace's goroutine and must not block.
func pace(ctx context.Context, r *Rate, fire func()) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var (
		last  time.Time // when the last arrival fired was due
		fired bool      // whether last is set
	)
	for {
		rate, changed := r.load()
		if rate == 0 {
			timer.Stop()
			select {
			case <-ctx.Done():
				return
			case <-changed:
				continue
			}
		}
		at := func(k int64) time.Duration { return nanos(float64(k) * float64(time.Second) / rate) }
		start := time.Now()
		if next := last.Add(at(1)); fired && next.After(start) {
			start = next
		}
		var n int64 // arrivals fired at this rate
	schedule:
		for {
			now := time.Now()
			for !start.Add(at(n)).After(now) && ctx.Err() == nil {
				fire()
				last, fired = start.Add(at(n)), true
				n++
			}
			timer.Reset(start.Add(at(n)).Sub(now))
			select {
			case <-ctx.Done():
				return
			case <-changed:
				break schedule
			case <-timer.C:
			}
			// A change that came with the timer wins: the arrival due
			// now belongs to the new schedule.
			select {
			case <-changed:
				break schedule
			default:
			}
		}
	}
}

// nanos converts ns nanoseconds to a Duration, saturating at the largest
// one (a tiny rate's interval).
func nanos(ns float64) time.Duration {
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}
