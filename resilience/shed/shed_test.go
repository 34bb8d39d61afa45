package shed

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeCPU is a CPU whose usage the test sets.
type fakeCPU struct{ v atomic.Uint64 }

func (f *fakeCPU) Set(v float64)  { f.v.Store(math.Float64bits(v)) }
func (f *fakeCPU) Usage() float64 { return math.Float64frombits(f.v.Load()) }

func newTest(t *testing.T, cfg Config) (*Shedder, *fakeCPU) {
	t.Helper()
	cpu := &fakeCPU{}
	cfg.CPU = cpu
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, cpu
}

// buildHistory completes n requests of response time rt that all start
// at once, then moves to the start of the next bucket.
func buildHistory(t *testing.T, s *Shedder, n int, rt time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		p, err := s.Allow(context.Background())
		if err != nil {
			t.Fatalf("Allow while building history: %v", err)
		}
		wg.Go(func() {
			time.Sleep(rt)
			p.Done()
		})
	}
	wg.Wait()
	// Move to the start of the next bucket.
	el := time.Since(s.start)
	time.Sleep(s.bucketDur - el%s.bucketDur)
}

// hold admits requests of priority p until one is shed, returning the
// permits admitted.
func hold(t *testing.T, s *Shedder, p Priority, max int) []Permit {
	t.Helper()
	var ps []Permit
	ctx := WithPriority(context.Background(), p)
	for range max {
		pm, err := s.Allow(ctx)
		if err != nil {
			if !errors.Is(err, ErrShed) {
				t.Fatalf("Allow: %v, want ErrShed", err)
			}
			return ps
		}
		ps = append(ps, pm)
	}
	return ps
}

func done(ps []Permit) {
	for _, p := range ps {
		p.Done()
	}
}

var cfg100ms = Config{Name: "api", Window: time.Second, Buckets: 10, CoolOff: time.Second}

func TestMaxInFlightLittlesLaw(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := newTest(t, cfg100ms)
		if got := s.MaxInFlight(); got != 10 {
			t.Errorf("MaxInFlight without history = %d, want 10 (1 × 1s / 100ms)", got)
		}
		buildHistory(t, s, 100, 10*time.Millisecond)
		if got := s.MaxInFlight(); got != 10 {
			t.Errorf("MaxInFlight = %d, want 10 (100 × 10ms / 100ms)", got)
		}
		// A slower bucket with more passes: max pass 200, min RT still 10ms.
		buildHistory(t, s, 200, 30*time.Millisecond)
		if got := s.MaxInFlight(); got != 20 {
			t.Errorf("MaxInFlight = %d, want 20 (200 × 10ms / 100ms)", got)
		}
		// Once the window has passed, history is forgotten.
		time.Sleep(time.Second)
		if got := s.MaxInFlight(); got != 10 {
			t.Errorf("MaxInFlight after window = %d, want 10", got)
		}
	})
}

func TestNotOverloadedNeverSheds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, cpu := newTest(t, cfg100ms)
		cpu.Set(0.5)
		buildHistory(t, s, 100, 10*time.Millisecond)
		ps := hold(t, s, Sheddable, 1000)
		if len(ps) != 1000 {
			t.Errorf("admitted %d sheddable requests at low CPU, want 1000", len(ps))
		}
		if s.InFlight() != 1000 {
			t.Errorf("InFlight = %d, want 1000", s.InFlight())
		}
		done(ps)
		if s.InFlight() != 0 {
			t.Errorf("InFlight after Done = %d, want 0", s.InFlight())
		}
	})
}

func TestPriorities(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, cpu := newTest(t, cfg100ms)
		buildHistory(t, s, 100, 10*time.Millisecond) // MaxInFlight 10
		cpu.Set(0.95)

		if ps := hold(t, s, Sheddable, 100); len(ps) != 0 {
			t.Errorf("admitted %d sheddable while overloaded, want 0", len(ps))
		}
		sp := hold(t, s, SheddablePlus, 100)
		if len(sp) != 5 {
			t.Errorf("admitted %d sheddable_plus, want 5 (MaxInFlight/2)", len(sp))
		}
		c := hold(t, s, Critical, 100)
		if len(c) != 5 {
			t.Errorf("admitted %d more critical, want 5 (up to MaxInFlight)", len(c))
		}
		cp := hold(t, s, CriticalPlus, 100)
		if len(cp) != 10 {
			t.Errorf("admitted %d more critical_plus, want 10 (up to 2 × MaxInFlight)", len(cp))
		}
		if s.InFlight() != 20 {
			t.Errorf("InFlight = %d, want 20", s.InFlight())
		}
		_, err := s.Allow(context.Background())
		var se *ShedError
		if !errors.As(err, &se) {
			t.Fatalf("Allow = %v, want *ShedError", err)
		}
		want := ShedError{Name: "api", Priority: Critical, RetryAfter: 100 * time.Millisecond}
		if *se != want {
			t.Errorf("ShedError = %+v, want %+v", *se, want)
		}
		if got, w := err.Error(), `shed "api": overloaded, shed critical request, retry after 100ms`; got != w {
			t.Errorf("Error() = %q, want %q", got, w)
		}
		done(sp)
		done(c)
		done(cp)
	})
}

func TestCoolOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, cpu := newTest(t, Config{Window: 10 * time.Second, Buckets: 100, CoolOff: time.Second})
		buildHistory(t, s, 100, 10*time.Millisecond) // MaxInFlight 10
		cpu.Set(0.9)                                 // at the threshold: overloaded
		held := hold(t, s, Critical, 100)
		if len(held) != 10 {
			t.Fatalf("admitted %d critical, want 10", len(held))
		}
		// A shed over the estimate started the cool-off: the server stays
		// overloaded although CPU usage drops.
		cpu.Set(0.1)
		time.Sleep(900 * time.Millisecond)
		if _, err := s.Allow(context.Background()); !errors.Is(err, ErrShed) {
			t.Errorf("Allow during cool-off = %v, want ErrShed", err)
		}
		// That shed restarted the cool-off.
		time.Sleep(900 * time.Millisecond)
		if _, err := s.Allow(context.Background()); !errors.Is(err, ErrShed) {
			t.Errorf("Allow during restarted cool-off = %v, want ErrShed", err)
		}
		time.Sleep(time.Second)
		more := hold(t, s, Critical, 50)
		if len(more) != 50 {
			t.Errorf("admitted %d after cool-off, want 50", len(more))
		}
		done(held)
		done(more)
	})
}

func TestSheddableDoesNotStartCoolOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, cpu := newTest(t, cfg100ms)
		cpu.Set(1)
		if _, err := s.Allow(WithPriority(context.Background(), Sheddable)); !errors.Is(err, ErrShed) {
			t.Fatalf("Allow = %v, want ErrShed", err)
		}
		cpu.Set(0)
		p, err := s.Allow(WithPriority(context.Background(), Sheddable))
		if err != nil {
			t.Fatalf("Allow after CPU dropped = %v, want admitted (no over-estimate shed)", err)
		}
		p.Done()
	})
}

func TestZeroPermitDone(t *testing.T) {
	Permit{}.Done() // must not panic
}

func TestCloseIdempotent(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Still usable after Close.
	p, err := s.Allow(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Done()
}

func TestAllowAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("race detector changes allocation counts")
	}
	s, _ := newTest(t, Config{})
	ctx := WithPriority(context.Background(), SheddablePlus)
	n := testing.AllocsPerRun(1000, func() {
		p, err := s.Allow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.Done()
	})
	if n != 0 {
		t.Errorf("Allow+Done allocated %v times, want 0", n)
	}
}

func TestConcurrent(t *testing.T) {
	s, cpu := newTest(t, Config{Window: 100 * time.Millisecond, Buckets: 10})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ctx := WithPriority(context.Background(), Priority(i%4-2))
			for j := range 500 {
				if j%100 == 0 {
					cpu.Set(float64(j%200) / 100)
				}
				if p, err := s.Allow(ctx); err == nil {
					p.Done()
				}
				_ = s.MaxInFlight()
			}
		})
	}
	wg.Wait()
	if s.InFlight() != 0 {
		t.Errorf("InFlight = %d, want 0", s.InFlight())
	}
}
