package loadgen

import (
	"context"
	"time"
)

// pace calls fire once per arrival of a constant-rate schedule — arrival k
// is due at k/rate seconds after pace starts — until ctx is done. It is open
// loop: the schedule depends only on the clock, never on how long earlier
// work takes, and arrivals that fell due while pace was not running (a
// stalled process, a slow fire) are all fired as soon as it runs again.
// fire runs on pace's goroutine and must not block. rate must be positive.
func pace(ctx context.Context, rate float64, fire func()) {
	at := func(k int64) time.Duration { return time.Duration(float64(k) * float64(time.Second) / rate) }
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var n int64 // arrivals fired so far
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		elapsed := time.Since(start)
		for at(n) <= elapsed && ctx.Err() == nil {
			fire()
			n++
		}
		timer.Reset(at(n) - elapsed)
	}
}
