package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
)

const ms = time.Millisecond

// t0 is a whole second since the Unix epoch, so windows start on it.
var t0 = time.Unix(1_700_000_000, 0)

type step struct {
	at   time.Duration // since t0
	n    int
	want Decision
}

func runSteps(t *testing.T, l Limiter, steps []step) {
	t.Helper()
	for i, s := range steps {
		if got := l.AllowN(t0.Add(s.at), s.n); got != s.want {
			t.Errorf("step %d: AllowN(t0+%v, %d) = %+v, want %+v", i, s.at, s.n, got, s.want)
		}
	}
}

func mustNew(t testing.TB, cfg Config) Limiter {
	t.Helper()
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = noop.NewMeterProvider()
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTokenBucket(t *testing.T) {
	// T = 100ms, burst 3.
	l := mustNew(t, Config{Rate: 10, Burst: 3})
	runSteps(t, l, []step{
		{0, 0, Decision{Allowed: true, Remaining: 3}},
		{0, 1, Decision{Allowed: true, Remaining: 2, Reset: 100 * ms}},
		{0, 1, Decision{Allowed: true, Remaining: 1, Reset: 200 * ms}},
		{0, 1, Decision{Allowed: true, Remaining: 0, Reset: 300 * ms}},
		{0, 1, Decision{Remaining: 0, RetryAfter: 100 * ms, Reset: 300 * ms}},
		{99 * ms, 1, Decision{Remaining: 0, RetryAfter: 1 * ms, Reset: 201 * ms}},
		{100 * ms, 1, Decision{Allowed: true, Remaining: 0, Reset: 300 * ms}},
		{150 * ms, 1, Decision{Remaining: 0, RetryAfter: 50 * ms, Reset: 250 * ms}},
		{250 * ms, 2, Decision{Remaining: 1, RetryAfter: 50 * ms, Reset: 150 * ms}},
		{250 * ms, 4, Decision{Remaining: 1, RetryAfter: Never, Reset: 150 * ms}},
		{300 * ms, 2, Decision{Allowed: true, Remaining: 0, Reset: 300 * ms}},
		{2 * time.Second, 0, Decision{Allowed: true, Remaining: 3}},
		{2 * time.Second, 3, Decision{Allowed: true, Remaining: 0, Reset: 300 * ms}},
		// An earlier time than already seen admits nothing extra.
		{time.Second, 1, Decision{Remaining: 0, RetryAfter: 1100 * ms, Reset: 1300 * ms}},
	})
}

func TestLeakyBucket(t *testing.T) {
	// T = 100ms, queue depth 3.
	l := mustNew(t, Config{Algorithm: LeakyBucketAlgorithm, Rate: 10, Burst: 3})
	runSteps(t, l, []step{
		{0, 1, Decision{Allowed: true, Remaining: 2, Reset: 100 * ms}},
		{0, 1, Decision{Allowed: true, Remaining: 1, Reset: 200 * ms, Delay: 100 * ms}},
		{10 * ms, 1, Decision{Allowed: true, Remaining: 0, Reset: 290 * ms, Delay: 190 * ms}},
		{10 * ms, 1, Decision{Remaining: 0, RetryAfter: 90 * ms, Reset: 290 * ms}},
		{100 * ms, 1, Decision{Allowed: true, Remaining: 0, Reset: 300 * ms, Delay: 200 * ms}},
		{100 * ms, 5, Decision{Remaining: 0, RetryAfter: Never, Reset: 300 * ms}},
		{time.Second, 2, Decision{Allowed: true, Remaining: 1, Reset: 200 * ms}},
		{time.Second, 1, Decision{Allowed: true, Remaining: 0, Reset: 300 * ms, Delay: 200 * ms}},
	})
}

func TestFixedWindow(t *testing.T) {
	l := mustNew(t, Config{Algorithm: FixedWindowAlgorithm, Rate: 3, Window: time.Second})
	runSteps(t, l, []step{
		{500 * ms, 1, Decision{Allowed: true, Remaining: 2, Reset: 500 * ms}},
		{500 * ms, 2, Decision{Allowed: true, Remaining: 0, Reset: 500 * ms}},
		{500 * ms, 1, Decision{Remaining: 0, RetryAfter: 500 * ms, Reset: 500 * ms}},
		{999 * ms, 1, Decision{Remaining: 0, RetryAfter: 1 * ms, Reset: 1 * ms}},
		{999 * ms, 4, Decision{Remaining: 0, RetryAfter: Never, Reset: 1 * ms}},
		// The boundary at t0+1s resets the count.
		{time.Second, 1, Decision{Allowed: true, Remaining: 2, Reset: time.Second}},
		{time.Second, 3, Decision{Remaining: 2, RetryAfter: time.Second, Reset: time.Second}},
		{1999 * ms, 2, Decision{Allowed: true, Remaining: 0, Reset: 1 * ms}},
		// A stale time counts against the current window.
		{1500 * ms, 1, Decision{Remaining: 0, RetryAfter: 500 * ms, Reset: 500 * ms}},
		{5 * time.Second, 0, Decision{Allowed: true, Remaining: 3, Reset: time.Second}},
	})
}

func TestSlidingWindowCounter(t *testing.T) {
	l := mustNew(t, Config{Algorithm: SlidingWindowCounterAlgorithm, Rate: 10, Window: time.Second})
	runSteps(t, l, []step{
		{100 * ms, 10, Decision{Allowed: true, Remaining: 0, Reset: 1900 * ms}},
		// Next window: 10*(1-e/1s) + 1 <= 10 needs e >= 100ms.
		{100 * ms, 1, Decision{Remaining: 0, RetryAfter: time.Second, Reset: 1900 * ms}},
		{100 * ms, 11, Decision{Remaining: 0, RetryAfter: Never, Reset: 1900 * ms}},
		{1100*ms - 1, 1, Decision{Remaining: 0, RetryAfter: 1, Reset: 900*ms + 1}},
		{1100 * ms, 1, Decision{Allowed: true, Remaining: 0, Reset: 1900 * ms}},
		// Estimate at e=500ms: 10*0.5 + 1 = 6.
		{1500 * ms, 0, Decision{Allowed: true, Remaining: 4, Reset: 1500 * ms}},
		// 6 + 5 > 10 until the weight falls to 0.4 at e=600ms.
		{1500 * ms, 5, Decision{Remaining: 4, RetryAfter: 100 * ms, Reset: 1500 * ms}},
		{1600 * ms, 5, Decision{Allowed: true, Remaining: 0, Reset: 1400 * ms}},
		// Two windows later nothing is left.
		{3 * time.Second, 10, Decision{Allowed: true, Remaining: 0, Reset: 2 * time.Second}},
		// Estimate at 4.25s: 10*0.75 = 7.5; Remaining 2.
		{4250 * ms, 3, Decision{Remaining: 2, RetryAfter: 50 * ms, Reset: 750 * ms}},
		{4250 * ms, 2, Decision{Allowed: true, Remaining: 0, Reset: 1750 * ms}},
	})
}

func TestSlidingWindowLog(t *testing.T) {
	l := mustNew(t, Config{Algorithm: SlidingWindowLogAlgorithm, Rate: 3, Window: time.Second})
	runSteps(t, l, []step{
		{0, 1, Decision{Allowed: true, Remaining: 2, Reset: time.Second}},
		{100 * ms, 1, Decision{Allowed: true, Remaining: 1, Reset: time.Second}},
		{200 * ms, 1, Decision{Allowed: true, Remaining: 0, Reset: time.Second}},
		{300 * ms, 1, Decision{Remaining: 0, RetryAfter: 700 * ms, Reset: 900 * ms}},
		{300 * ms, 4, Decision{Remaining: 0, RetryAfter: Never, Reset: 900 * ms}},
		{time.Second - 1, 1, Decision{Remaining: 0, RetryAfter: 1, Reset: 200*ms + 1}},
		// The event at t0 leaves the window exactly at t0+1s.
		{time.Second, 1, Decision{Allowed: true, Remaining: 0, Reset: time.Second}},
		{time.Second, 2, Decision{Remaining: 0, RetryAfter: 200 * ms, Reset: time.Second}},
		{1200 * ms, 2, Decision{Allowed: true, Remaining: 0, Reset: time.Second}},
		// A stale time is logged as the newest one.
		{1100 * ms, 1, Decision{Remaining: 0, RetryAfter: 900 * ms, Reset: 1100 * ms}},
		{5 * time.Second, 0, Decision{Allowed: true, Remaining: 3}},
	})
}

var algorithms = []string{TokenBucketAlgorithm, LeakyBucketAlgorithm, FixedWindowAlgorithm, SlidingWindowCounterAlgorithm, SlidingWindowLogAlgorithm}

func TestOverBurstNeverAllowed(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			l := mustNew(t, Config{Algorithm: alg, Rate: 5})
			for _, at := range []time.Duration{0, time.Hour, 1000 * time.Hour} {
				d := l.AllowN(t0.Add(at), 6)
				if d.Allowed || d.RetryAfter != Never || d.Remaining != 5 {
					t.Errorf("AllowN(t0+%v, 6) = %+v, want denied with RetryAfter Never and Remaining 5", at, d)
				}
			}
		})
	}
}

// TestConcurrentNeverExceedsBurst runs many goroutines against one fixed
// time; together they must get exactly Burst events.
func TestConcurrentNeverExceedsBurst(t *testing.T) {
	const burst, goroutines, tries = 50, 16, 100
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			l := mustNew(t, Config{Algorithm: alg, Rate: 1, Per: time.Minute, Burst: burst, Window: time.Minute})
			now := t0.Add(time.Second)
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range tries {
						if d := l.AllowN(now, 1+(g+i)%2); d.Allowed {
							allowed.Add(int64(1 + (g+i)%2))
						}
					}
				})
			}
			wg.Wait()
			if got := allowed.Load(); got > burst || got < burst-1 {
				t.Errorf("allowed %d events, want %d (or %d when the last request wanted 2)", got, burst, burst-1)
			}
		})
	}
}

func TestAllowRealTime(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := mustNew(t, Config{Algorithm: alg, Rate: 2, Per: time.Second})
				for i, want := range []bool{true, true, false} {
					if got := l.Allow(); got != want {
						t.Errorf("Allow() #%d = %v, want %v", i, got, want)
					}
				}
				// At 1.5s even the sliding window counter's estimate
				// (2*0.5) leaves room.
				time.Sleep(1500 * time.Millisecond)
				if !l.Allow() {
					t.Error("Allow() after 1.5s = false, want true")
				}
			})
		})
	}
}
