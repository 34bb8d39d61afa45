package loadgen

import (
	"context"
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
					pace(ctx, tt.rate, func() {
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
			pace(ctx, 10, func() {
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
		pace(ctx, 10, func() { n++ })
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
