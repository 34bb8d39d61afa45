package circuitbreaker

import "time"

// outcome is what a finished call contributes: its low bits are the flags a
// window records.
type outcome uint8

const (
	outSuccess     outcome = 0
	outFailure     outcome = 1 // flag
	outSlow        outcome = 2 // flag
	outSlowFailure outcome = outSlow | outFailure
	outExcluded    outcome = 4
	outRejected    outcome = 5
	numOutcomes            = 6
)

var outcomeNames = [numOutcomes]string{"success", "failure", "slow_success", "slow_failure", "excluded", "rejected"}

// counts are the totals of a window or a bucket.
type counts struct {
	calls, failures, slow int
}

func (c *counts) add(o outcome, sign int) {
	c.calls += sign
	if o&outFailure != 0 {
		c.failures += sign
	}
	if o&outSlow != 0 {
		c.slow += sign
	}
}

// window is a sliding window of outcomes: a ring of the last len(ring) calls,
// or, when width > 0, a ring of time buckets each width long. Recording and
// expiry are O(1) amortised. It is not safe for concurrent use.
type window struct {
	total counts

	// count window
	ring []outcome
	next int

	// time window
	buckets []counts
	width   time.Duration
	last    int64 // index of the newest bucket since the breaker's epoch
}

func newWindow(cfg Config) window {
	if cfg.Window == WindowTime {
		return window{buckets: make([]counts, cfg.Buckets), width: cfg.WindowDuration / time.Duration(cfg.Buckets)}
	}
	return window{ring: make([]outcome, 0, cfg.WindowSize)}
}

// advance expires the buckets older than the window ending at elapsed
// (time since the epoch). It is a no-op for count windows.
func (w *window) advance(elapsed time.Duration) {
	if w.width == 0 {
		return
	}
	idx := int64(elapsed / w.width)
	if idx <= w.last {
		return
	}
	n := int64(len(w.buckets))
	if idx-w.last >= n {
		clear(w.buckets)
		w.total = counts{}
	} else {
		for i := w.last + 1; i <= idx; i++ {
			b := &w.buckets[i%n]
			w.total.calls -= b.calls
			w.total.failures -= b.failures
			w.total.slow -= b.slow
			*b = counts{}
		}
	}
	w.last = idx
}

// record adds o, finished at elapsed since the epoch.
func (w *window) record(o outcome, elapsed time.Duration) {
	if w.width != 0 {
		w.advance(elapsed)
		w.buckets[w.last%int64(len(w.buckets))].add(o, 1)
		w.total.add(o, 1)
		return
	}
	if len(w.ring) < cap(w.ring) {
		w.ring = append(w.ring, o)
	} else {
		w.total.add(w.ring[w.next], -1)
		w.ring[w.next] = o
		w.next++
		if w.next == len(w.ring) {
			w.next = 0
		}
	}
	w.total.add(o, 1)
}

// reset empties the window.
func (w *window) reset() {
	w.total = counts{}
	w.ring = w.ring[:0]
	w.next = 0
	clear(w.buckets)
}
