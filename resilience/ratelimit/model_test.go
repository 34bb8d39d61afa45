package ratelimit

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestWindowsAgainstModel replays random request sequences against the
// window limiters and a direct model of their definitions.
func TestWindowsAgainstModel(t *testing.T) {
	const window = time.Second
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		burst := 1 + rng.IntN(8)
		cfg := Config{Rate: 1, Burst: burst, Window: window}
		cfg.Algorithm = SlidingWindowLogAlgorithm
		log := mustNew(t, cfg)
		cfg.Algorithm = FixedWindowAlgorithm
		fixed := mustNew(t, cfg)
		cfg.Algorithm = SlidingWindowCounterAlgorithm
		counter := mustNew(t, cfg)

		var logged []time.Duration      // admission times of the log model
		fixedCount := map[int64]int{}   // window index -> admitted
		counterCount := map[int64]int{} // window index -> admitted
		at := time.Duration(0)
		for i := range 200 {
			at += time.Duration(rng.IntN(400)) * time.Millisecond / 3
			n := 1 + rng.IntN(burst)

			inWindow := 0
			for _, s := range logged {
				if s+window > at {
					inWindow++
				}
			}
			wantLog := inWindow+n <= burst
			before := cloneLimiter(log)
			if got := log.AllowN(t0.Add(at), n); got.Allowed != wantLog || got.Remaining != burst-inWindow-n*b2i(wantLog) {
				t.Fatalf("seed %d step %d: log AllowN(%v, %d) = %+v, want allowed %v with %d in window", seed, i, at, n, got, wantLog, inWindow)
			}
			checkRetryAfter(t, before, at, n, before.AllowN(t0.Add(at), n))
			if wantLog {
				for range n {
					logged = append(logged, at)
				}
			}

			idx := int64(at / window)
			wantFixed := fixedCount[idx]+n <= burst
			before = cloneLimiter(fixed)
			if got := fixed.AllowN(t0.Add(at), n); got.Allowed != wantFixed {
				t.Fatalf("seed %d step %d: fixed AllowN(%v, %d) = %+v, want allowed %v", seed, i, at, n, got, wantFixed)
			}
			checkRetryAfter(t, before, at, n, before.AllowN(t0.Add(at), n))
			if wantFixed {
				fixedCount[idx] += n
			}

			e := at - time.Duration(idx)*window
			// Compare in integers: prev*(W-e) + (cur+n)*W <= burst*W.
			lhs := int64(counterCount[idx-1])*int64(window-e) + int64(counterCount[idx]+n)*int64(window)
			wantCounter := lhs <= int64(burst)*int64(window)
			before = cloneLimiter(counter)
			got := counter.AllowN(t0.Add(at), n)
			checkRetryAfter(t, before, at, n, got)
			if got.Allowed != wantCounter {
				t.Fatalf("seed %d step %d: counter AllowN(%v, %d) = %+v, want allowed %v", seed, i, at, n, got, wantCounter)
			}
			if wantCounter {
				counterCount[idx] += n
			}
		}
	}
}

// cloneLimiter copies a window limiter's state into a new limiter.
func cloneLimiter(l Limiter) Limiter {
	switch l := l.(type) {
	case *FixedWindow:
		return &FixedWindow{name: l.name, clock: l.clock, rec: l.rec, window: l.window, limit: l.limit, cur: l.cur, count: l.count}
	case *SlidingWindowCounter:
		return &SlidingWindowCounter{name: l.name, clock: l.clock, rec: l.rec, window: l.window, limit: l.limit, cur: l.cur, curN: l.curN, prev: l.prev}
	case *SlidingWindowLog:
		return &SlidingWindowLog{name: l.name, clock: l.clock, rec: l.rec, window: l.window, ring: append([]int64(nil), l.ring...), head: l.head, size: l.size}
	}
	panic("cloneLimiter: unsupported")
}

// checkRetryAfter checks on copies of l that a denied request for n at
// at succeeds exactly RetryAfter later and not a nanosecond earlier.
func checkRetryAfter(t *testing.T, l Limiter, at time.Duration, n int, d Decision) {
	t.Helper()
	if d.Allowed {
		return
	}
	if d.RetryAfter <= 0 {
		t.Fatalf("AllowN(%v, %d) = %+v: denied with RetryAfter <= 0", at, n, d)
	}
	if got := cloneLimiter(l).AllowN(t0.Add(at+d.RetryAfter-1), n); got.Allowed {
		t.Fatalf("AllowN(%v, %d) = %+v, but allowed a nanosecond earlier: %+v", at, n, d, got)
	}
	if got := cloneLimiter(l).AllowN(t0.Add(at+d.RetryAfter), n); !got.Allowed {
		t.Fatalf("AllowN(%v, %d) = %+v, but denied after RetryAfter: %+v", at, n, d, got)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
