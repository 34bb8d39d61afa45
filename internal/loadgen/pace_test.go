package loadgen

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPace(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		run   time.Duration
		slow  time.Duration // how long the work each fire starts takes
		fires int
	}{
		{"10 per second", 10, 9950 * time.Millisecond, 0, 100},
		{"fractional rate", 0.5, 9950 * time.Millisecond, 0, 5},
		{"high rate", 1000, 999500 * time.Microsecond, 0, 1000},
		{"slow work does not slow arrivals", 10, 9950 * time.Millisecond, 5 * time.Second, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				start := time.Now()
				var (
					at   []time.Duration
					work sync.WaitGroup
					done = make(chan struct{})
				)
				go func() {
					defer close(done)
					pace(ctx, NewRate(tt.rate), func() {
						at = append(at, time.Since(start))
						work.Go(func() { time.Sleep(tt.slow) })
					})
				}()
				time.Sleep(tt.run)
				cancel()
				<-done
				work.Wait()
				if len(at) != tt.fires {
					t.Fatalf("pace(rate %v) for %v fired %d times, want %d", tt.rate, tt.run, len(at), tt.fires)
				}
				for k, got := range at {
					want := time.Duration(float64(k) * float64(time.Second) / tt.rate)
					if got != want {
						t.Errorf("arrival %d at %v, want %v", k, got, want)
						break
					}
				}
			})
		})
	}
}

func TestPaceCatchesUpAfterStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		n := 0
		stalled := false
		done := make(chan struct{})
		go func() {
			defer close(done)
			pace(ctx, NewRate(10), func() {
				n++
				if !stalled {
					stalled = true
					time.Sleep(time.Second) // a stall of the pacing goroutine itself
				}
			})
		}()
		time.Sleep(1950 * time.Millisecond)
		cancel()
		<-done
		if n != 20 {
			t.Errorf("fires after a 1s stall in 1.95s at 10/s = %d, want 20", n)
		}
	})
}

func TestPaceDoneContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		n := 0
		pace(ctx, NewRate(10), func() { n++ })
		if n != 0 {
			t.Errorf("pace with a done context fired %d times, want 0", n)
		}
	})
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		if got := percentile(s, tt.p); got != tt.want {
			t.Errorf("percentile(1..100ms, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil, 0.5) = %v, want 0", got)
	}
}

func TestRate(t *testing.T) {
	var zero Rate
	if got := zero.Get(); got != 0 {
		t.Errorf("Rate{}.Get() = %v, want 0", got)
	}
	r := NewRate(10)
	if got := r.Get(); got != 10 {
		t.Errorf("NewRate(10).Get() = %v, want 10", got)
	}
	r.Set(2.5)
	if got := r.Get(); got != 2.5 {
		t.Errorf("after Set(2.5), Get() = %v, want 2.5", got)
	}
	r.Set(0)
	if got := r.Get(); got != 0 {
		t.Errorf("after Set(0), Get() = %v, want 0", got)
	}

	// Concurrent use, for the race detector.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 100 {
				r.Set(float64(i*100 + j))
				_ = r.Get()
				_, _ = r.load()
			}
		})
	}
	wg.Wait()
}

func TestRateInvalidPanics(t *testing.T) {
	for _, rps := range []float64{-1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		for name, f := range map[string]func(){
			"NewRate": func() { NewRate(rps) },
			"Set":     func() { NewRate(1).Set(rps) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(%v) did not panic", name, rps)
					}
				}()
				f()
			}()
		}
	}
}

// TestPaceRateChanges changes the rate while pace runs: each change re-bases
// the schedule, so the next arrival comes one new interval after the last
// one, or at once if that has passed, never in a burst; rate 0 pauses.
func TestPaceRateChanges(t *testing.T) {
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	type change struct {
		at   time.Duration // since pace started
		rate float64
	}
	tests := []struct {
		name    string
		initial float64
		changes []change
		end     time.Duration
		want    []time.Duration
	}{{
		name:    "faster at once, not a burst",
		initial: 0.1, // arrivals 10s apart
		changes: []change{{ms(5000), 10}},
		end:     ms(5350),
		want:    []time.Duration{0, ms(5000), ms(5100), ms(5200), ms(5300)},
	}, {
		name:    "faster one new interval after the last arrival",
		initial: 10,
		changes: []change{{ms(205), 20}},
		end:     ms(420),
		want:    []time.Duration{0, ms(100), ms(200), ms(250), ms(300), ms(350), ms(400)},
	}, {
		name:    "slower one new interval after the last arrival",
		initial: 10,
		changes: []change{{ms(150), 1}},
		end:     ms(3500),
		want:    []time.Duration{0, ms(100), ms(1100), ms(2100), ms(3100)},
	}, {
		name:    "pause and resume",
		initial: 10,
		changes: []change{{ms(150), 0}, {ms(60_000), 10}},
		end:     ms(60_250),
		want:    []time.Duration{0, ms(100), ms(60_000), ms(60_100), ms(60_200)},
	}, {
		name:    "short pause keeps the spacing",
		initial: 10,
		changes: []change{{ms(120), 0}, {ms(150), 10}},
		end:     ms(450),
		want:    []time.Duration{0, ms(100), ms(200), ms(300), ms(400)},
	}, {
		name:    "start paused",
		initial: 0,
		changes: []change{{ms(1000), 4}},
		end:     ms(1800),
		want:    []time.Duration{ms(1000), ms(1250), ms(1500), ms(1750)},
	}, {
		name:    "same rate changes nothing",
		initial: 10,
		changes: []change{{ms(150), 10}},
		end:     ms(350),
		want:    []time.Duration{0, ms(100), ms(200), ms(300)},
	}, {
		name:    "several changes",
		initial: 100,
		changes: []change{{ms(25), 50}, {ms(45), 1000}, {ms(48.5), 200}},
		end:     ms(70),
		want:    []time.Duration{0, ms(10), ms(20), ms(40), ms(45), ms(46), ms(47), ms(48), ms(53), ms(58), ms(63), ms(68)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				start := time.Now()
				r := NewRate(tt.initial)
				var at []time.Duration
				done := make(chan struct{})
				go func() {
					defer close(done)
					pace(ctx, r, func() { at = append(at, time.Since(start)) })
				}()
				for _, c := range tt.changes {
					time.Sleep(c.at - time.Since(start))
					r.Set(c.rate)
				}
				time.Sleep(tt.end - time.Since(start))
				cancel()
				<-done
				if !slices.Equal(at, tt.want) {
					t.Errorf("arrivals = %v, want %v", at, tt.want)
				}
			})
		})
	}
}

// TestPacePausedIsIdle shows that a paused pace blocks: were it to spin,
// synctest.Wait would not return, and the bubble's clock would not move.
func TestPacePausedIsIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		var r Rate // paused
		n := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			pace(ctx, &r, func() { n++ })
		}()
		synctest.Wait()
		time.Sleep(time.Hour)
		if n != 0 {
			t.Errorf("paused pace fired %d times, want 0", n)
		}
		r.Set(1)
		synctest.Wait()
		if n != 1 {
			t.Errorf("pace fired %d times at once after resuming, want 1", n)
		}
		cancel() // while running; and done while paused returns too
		<-done

		ctx, cancel = context.WithCancel(t.Context())
		r.Set(0)
		done = make(chan struct{})
		go func() {
			defer close(done)
			pace(ctx, &r, func() { n++ })
		}()
		synctest.Wait()
		cancel()
		<-done
	})
}
