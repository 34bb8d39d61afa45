package adaptive

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func newLimiter(t *testing.T, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLimiterAIMD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{InitialLimit: 4, MaxLimit: 8, Timeout: 50 * time.Millisecond})
		var ps []Permit
		for i := range 4 {
			p, ok := l.Acquire()
			if !ok {
				t.Fatalf("Acquire %d rejected", i)
			}
			ps = append(ps, p)
		}
		if _, ok := l.Acquire(); ok {
			t.Fatal("Acquire beyond the limit admitted")
		}
		if l.InFlight() != 4 || l.Limit() != 4 {
			t.Fatalf("InFlight, Limit = %d, %d; want 4, 4", l.InFlight(), l.Limit())
		}
		time.Sleep(50 * time.Millisecond)
		ps[3].Done(nil) // RTT 50ms == Timeout, admitted 4th: increase
		if l.Limit() != 5 || l.InFlight() != 3 {
			t.Fatalf("after Done: Limit, InFlight = %d, %d; want 5, 3", l.Limit(), l.InFlight())
		}
		time.Sleep(time.Millisecond)
		ps[2].Done(nil) // RTT 51ms > Timeout: int(5*0.9)
		if l.Limit() != 4 {
			t.Fatalf("after slow Done: Limit = %d, want 4", l.Limit())
		}
		ps[1].Dropped() // int(4*0.9)
		if l.Limit() != 3 {
			t.Fatalf("after Dropped: Limit = %d, want 3", l.Limit())
		}
		ps[0].Done(errors.New("boom")) // no sample
		if l.Limit() != 3 || l.InFlight() != 0 {
			t.Fatalf("after failed Done: Limit, InFlight = %d, %d; want 3, 0", l.Limit(), l.InFlight())
		}
		p, _ := l.Acquire()
		p.Done(fmt.Errorf("call: %w", context.DeadlineExceeded)) // a drop
		if l.Limit() != 2 || l.InFlight() != 0 {
			t.Fatalf("after deadline: Limit, InFlight = %d, %d; want 2, 0", l.Limit(), l.InFlight())
		}
		Permit{}.Done(nil)
		Permit{}.Dropped()
		if l.InFlight() != 0 {
			t.Fatal("zero Permit changed InFlight")
		}
	})
}

func TestLimiterNeverExceedsLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{InitialLimit: 3, MaxLimit: 6, Timeout: 30 * time.Millisecond})
		var wg sync.WaitGroup
		var admitted, rejected atomic.Int64
		for i := range 40 {
			wg.Go(func() {
				for j := range 20 {
					p, ok := l.Acquire()
					if !ok {
						rejected.Add(1)
						time.Sleep(time.Millisecond)
						continue
					}
					admitted.Add(1)
					if p.inflight > 6 {
						t.Errorf("admitted as %d in flight, above MaxLimit 6", p.inflight)
					}
					time.Sleep(time.Duration(10+(i+j)%40) * time.Millisecond)
					p.Done(nil)
				}
			})
		}
		wg.Wait()
		if l.InFlight() != 0 {
			t.Fatalf("InFlight = %d after all done, want 0", l.InFlight())
		}
		if admitted.Load() == 0 || rejected.Load() == 0 {
			t.Fatalf("admitted %d, rejected %d; want both", admitted.Load(), rejected.Load())
		}
		if lim := l.Limit(); lim < 1 || lim > 6 {
			t.Fatalf("Limit = %d outside [1, 6]", lim)
		}
	})
}

func TestLimiterAlgorithms(t *testing.T) {
	for _, tt := range []struct {
		alg  string
		want Algorithm
	}{{"", &AIMD{}}, {"aimd", &AIMD{}}, {"gradient2", &Gradient2{}}, {"vegas", &Vegas{}}} {
		l := newLimiter(t, Config{Algorithm: tt.alg, InitialLimit: 7})
		if fmt.Sprintf("%T", l.alg) != fmt.Sprintf("%T", tt.want) {
			t.Errorf("Algorithm %q: %T, want %T", tt.alg, l.alg, tt.want)
		}
		if l.Limit() != 7 {
			t.Errorf("Algorithm %q: Limit = %d, want 7", tt.alg, l.Limit())
		}
	}
	// Gradient2 through the limiter, with fake time.
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(t, Config{Algorithm: "gradient2", InitialLimit: 10, Smoothing: 1})
		p, _ := l.Acquire()
		var held []Permit
		for range 4 {
			q, _ := l.Acquire()
			held = append(held, q)
		}
		time.Sleep(10 * time.Millisecond)
		p.Done(nil) // InFlight 1 < 10/2: app-limited
		if l.Limit() != 10 {
			t.Fatalf("Limit = %d, want 10", l.Limit())
		}
		held[3].Done(nil) // InFlight 5: gradient 1, +4
		if l.Limit() != 14 {
			t.Fatalf("Limit = %d, want 14", l.Limit())
		}
		for _, q := range held[:3] {
			q.Done(nil)
		}
	})
}

func TestNewWithAlgorithm(t *testing.T) {
	g := &Gradient2{Initial: 10, Smoothing: 1, Queue: func(limit int) int { return limit / 5 }}
	l, err := NewWithAlgorithm(Config{Name: "db", Algorithm: "vegas"}, g)
	if err != nil {
		t.Fatal(err)
	}
	if l.alg != g || l.Limit() != 10 {
		t.Fatalf("alg = %T, Limit = %d; want the given Gradient2 at 10", l.alg, l.Limit())
	}
	var ps []Permit
	for range 10 {
		p, _ := l.Acquire()
		ps = append(ps, p)
	}
	ps[9].Done(nil) // gradient 1, queue 10/5: 12
	if l.Limit() != 12 {
		t.Fatalf("Limit = %d, want 12", l.Limit())
	}
	for _, p := range ps[:9] {
		p.Done(errors.New("ignored"))
	}
	if _, err := NewWithAlgorithm(Config{MinLimit: -1}, g); err == nil {
		t.Fatal("invalid config accepted")
	}
}

func TestDoneTwicePanics(t *testing.T) {
	l := newLimiter(t, Config{})
	p, _ := l.Acquire()
	p.Done(nil)
	defer func() {
		if recover() == nil {
			t.Fatal("second Done did not panic")
		}
	}()
	p.Done(nil)
}

func TestConcurrentAcquire(t *testing.T) {
	for _, alg := range []string{"aimd", "gradient2", "vegas"} {
		t.Run(alg, func(t *testing.T) {
			const max = 16
			l := newLimiter(t, Config{Algorithm: alg, InitialLimit: 8, MaxLimit: max, ProbeInterval: 50})
			var holders, peak atomic.Int64
			var wg sync.WaitGroup
			for i := range 32 {
				wg.Go(func() {
					for j := range 500 {
						p, ok := l.Acquire()
						if !ok {
							runtime.Gosched()
							continue
						}
						h := holders.Add(1)
						for {
							m := peak.Load()
							if h <= m || peak.CompareAndSwap(m, h) {
								break
							}
						}
						if h > max || p.inflight > max {
							t.Errorf("%d holders, admitted as %d, above MaxLimit %d", h, p.inflight, max)
						}
						runtime.Gosched()
						holders.Add(-1)
						if (i+j)%17 == 0 {
							p.Dropped()
						} else {
							p.Done(nil)
						}
					}
				})
			}
			wg.Wait()
			if l.InFlight() != 0 {
				t.Fatalf("InFlight = %d, want 0", l.InFlight())
			}
			if peak.Load() > max || peak.Load() == 0 {
				t.Fatalf("peak holders %d, want in [1, %d]", peak.Load(), max)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("race detector allocates")
	}
	l := newLimiter(t, Config{})
	if n := testing.AllocsPerRun(100, func() {
		p, ok := l.Acquire()
		if !ok {
			t.Fatal("rejected")
		}
		p.Done(nil)
	}); n != 0 {
		t.Fatalf("Acquire+Done allocates %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		p, _ := l.Acquire()
		p.Dropped()
	}); n != 0 {
		t.Fatalf("Acquire+Dropped allocates %v times, want 0", n)
	}
}
