package adaptive

import (
	"math"
	"testing"
	"time"
)

const ms = time.Millisecond

type step struct {
	s    Sample
	want int
}

func run(t *testing.T, a Algorithm, steps []step) {
	t.Helper()
	for i, st := range steps {
		if got := a.Update(st.s); got != st.want {
			t.Fatalf("step %d: Update(%+v) = %d, want %d", i, st.s, got, st.want)
		}
		if got := a.Limit(); got != st.want {
			t.Fatalf("step %d: Limit() = %d, want %d", i, got, st.want)
		}
	}
}

func TestAIMD(t *testing.T) {
	a := &AIMD{Initial: 10, Min: 5, Max: 12, BackoffRatio: 0.5, Timeout: 100 * ms}
	if got := a.Limit(); got != 10 {
		t.Fatalf("initial Limit() = %d, want 10", got)
	}
	run(t, a, []step{
		{Sample{RTT: 10 * ms, InFlight: 5}, 11},  // 5*2 >= 10: increase
		{Sample{RTT: 10 * ms, InFlight: 5}, 11},  // 5*2 < 11: app-limited, hold
		{Sample{RTT: 10 * ms, InFlight: 6}, 12},  // increase
		{Sample{RTT: 10 * ms, InFlight: 12}, 12}, // capped at Max
		{Sample{RTT: 10 * ms, InFlight: 12, Dropped: true}, 6},
		{Sample{RTT: 101 * ms, InFlight: 6}, 5}, // timeout: int(3) clamped to Min
		{Sample{RTT: 101 * ms, InFlight: 6}, 5},
		{Sample{RTT: 100 * ms, InFlight: 3}, 6}, // RTT == Timeout is not a timeout
		{Sample{InFlight: 1, Dropped: true}, 5},
	})
}

func TestAIMDDefaults(t *testing.T) {
	a := &AIMD{}
	if a.Limit() != DefaultInitialLimit || a.Min != DefaultMinLimit || a.Max != DefaultMaxLimit ||
		a.BackoffRatio != DefaultBackoffRatio || a.Timeout != DefaultTimeout {
		t.Fatalf("defaults = %+v", a)
	}
	run(t, a, []step{
		{Sample{RTT: DefaultTimeout + 1, InFlight: 20}, 18},
		{Sample{RTT: ms, InFlight: 9}, 19},
	})
	// Initial is clamped into [Min, Max].
	if got := (&AIMD{Initial: 50, Max: 30}).Limit(); got != 30 {
		t.Errorf("Initial 50, Max 30: Limit() = %d, want 30", got)
	}
	if got := (&AIMD{Min: 40}).Limit(); got != 40 {
		t.Errorf("Min 40: Limit() = %d, want 40", got)
	}
}

func TestGradient2Exact(t *testing.T) {
	// Smoothing 1 and a 4x RTT rise (gradient pinned at 0.5) keep the
	// arithmetic exact.
	g := &Gradient2{Initial: 20, Max: 100, Smoothing: 1}
	var steps []step
	limit := 20
	for range 10 { // warm-up: gradient 1, +queue (4) each sample
		steps = append(steps, step{Sample{RTT: 10 * ms, InFlight: limit}, limit + 4})
		limit += 4
	}
	run(t, g, steps)
	if g.LongRTT() != 10*ms {
		t.Fatalf("LongRTT = %v, want 10ms", g.LongRTT())
	}
	// RTT quadruples: the limit halves plus the queue each sample,
	// converging down to 8.
	run(t, g, []step{
		{Sample{RTT: 40 * ms, InFlight: 60}, 34},
		{Sample{RTT: 40 * ms, InFlight: 60}, 21},
		{Sample{RTT: 40 * ms, InFlight: 60}, 14},   // 14.5
		{Sample{RTT: 40 * ms, InFlight: 60}, 11},   // 11.25
		{Sample{RTT: 40 * ms, InFlight: 60}, 9},    // 9.625
		{Sample{RTT: 40 * ms, InFlight: 60}, 8},    // 8.8125
		{Sample{RTT: 40 * ms, InFlight: 60}, 8},    // 8.40625
		{Sample{RTT: 10 * ms, InFlight: 60}, 12},   // recovered: gradient 1
		{Sample{RTT: 10 * ms, InFlight: 60}, 16},   //
		{Sample{RTT: 10 * ms, InFlight: 2}, 16},    // app-limited: hold
		{Sample{RTT: 0, InFlight: 60}, 16},         // no RTT: ignored
		{Sample{RTT: 10 * ms, InFlight: 9}, 20},    // InFlight*2 >= limit (16.4)
		{Sample{RTT: 10 * ms, InFlight: 1000}, 24}, //
	})
}

func TestGradient2Converges(t *testing.T) {
	g := &Gradient2{Initial: 50, Max: 200}
	for range 100 {
		g.Update(Sample{RTT: 10 * ms, InFlight: 200})
	}
	high := g.Limit()
	if high <= 50 {
		t.Fatalf("limit after steady RTT = %d, want growth above 50", high)
	}
	// RTT doubles: gradient 1.5*long/short ~ 0.75 until the long average
	// catches up; the limit falls.
	prev := high
	for i := range 30 {
		l := g.Update(Sample{RTT: 20 * ms, InFlight: 200})
		if l > prev {
			t.Fatalf("sample %d at 2x RTT: limit rose %d -> %d", i, prev, l)
		}
		prev = l
	}
	low := g.Limit()
	if low >= high*3/4 {
		t.Fatalf("limit after 2x RTT = %d, want well below %d", low, high)
	}
	// RTT falls back: the limit recovers.
	for range 30 {
		g.Update(Sample{RTT: 10 * ms, InFlight: 200})
	}
	if g.Limit() <= low {
		t.Fatalf("limit after RTT fell = %d, want above %d", g.Limit(), low)
	}
}

func TestGradient2LongRTTDecay(t *testing.T) {
	g := &Gradient2{LongWindow: 9} // factor 0.2, warm-up 9 samples
	for range 9 {
		g.Update(Sample{RTT: 100 * ms, InFlight: 100})
	}
	if g.LongRTT() != 100*ms {
		t.Fatalf("LongRTT = %v, want 100ms", g.LongRTT())
	}
	// long = 100*0.8 + 10*0.2 = 82ms; 82/10 > 2 so it decays to 77.9ms.
	g.Update(Sample{RTT: 10 * ms, InFlight: 100})
	if got, want := g.LongRTT(), 77900*time.Microsecond; absDur(got-want) > time.Microsecond {
		t.Fatalf("LongRTT = %v, want %v", got, want)
	}
	// 77.9*0.8 + 40*0.2 = 70.32ms; 70.32/40 < 2: no decay.
	g.Update(Sample{RTT: 40 * ms, InFlight: 100})
	if got, want := g.LongRTT(), 70320*time.Microsecond; absDur(got-want) > time.Microsecond {
		t.Fatalf("LongRTT = %v, want %v", got, want)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestVegas(t *testing.T) {
	v := &Vegas{Initial: 10, Max: 100}
	run(t, v, []step{
		{Sample{RTT: 10 * ms, InFlight: 10}, 10}, // learns rtt_noload
		{Sample{RTT: 10 * ms, InFlight: 10}, 11}, // queue 0 < alpha 3: +log10
		{Sample{RTT: 10 * ms, InFlight: 11}, 12}, //
		{Sample{RTT: 20 * ms, InFlight: 12}, 12}, // queue 6, alpha 3, beta 6: hold
		{Sample{RTT: 40 * ms, InFlight: 12}, 11}, // queue 9 > beta 6: -log10
		{Sample{RTT: 10 * ms, InFlight: 1, Dropped: true}, 10},
		{Sample{RTT: 10 * ms, InFlight: 1}, 10}, // app-limited: hold
		{Sample{RTT: 5 * ms, InFlight: 10}, 10}, // new minimum: learned, hold
		{Sample{RTT: 0, InFlight: 10}, 10},      // ignored
		{Sample{RTT: 5 * ms, InFlight: 10}, 11}, //
	})
	if v.RTTNoLoad() != 5*ms {
		t.Fatalf("RTTNoLoad = %v, want 5ms", v.RTTNoLoad())
	}
	big := &Vegas{Initial: 100, Max: 1000}
	run(t, big, []step{
		{Sample{RTT: 10 * ms, InFlight: 100}, 100},
		{Sample{RTT: 10 * ms, InFlight: 100}, 102}, // log10(100) = 2
		{Sample{RTT: 100 * ms, InFlight: 100}, 100},
		{Sample{RTT: 100 * ms, InFlight: 100}, 98},
		{Sample{RTT: 10 * ms, InFlight: 1, Dropped: true}, 97}, // log10(98) = 1
	})
	// Min clamps.
	run(t, &Vegas{Initial: 3, Min: 2}, []step{
		{Sample{RTT: 10 * ms, InFlight: 3}, 3},
		{Sample{RTT: 10 * ms, Dropped: true}, 2},
		{Sample{RTT: 10 * ms, Dropped: true}, 2},
	})
}

func TestVegasSmoothingAndFuncs(t *testing.T) {
	v := &Vegas{Initial: 10, Smoothing: 0.5, Alpha: func(int) int { return 1 }, Beta: func(int) int { return 2 }}
	run(t, v, []step{
		{Sample{RTT: 10 * ms, InFlight: 10}, 10},
		{Sample{RTT: 10 * ms, InFlight: 10}, 10}, // 10.5
		{Sample{RTT: 10 * ms, InFlight: 10}, 11}, // 11
		{Sample{RTT: 12 * ms, InFlight: 10}, 11}, // queue ceil(11/6) = 2: hold
		{Sample{RTT: 20 * ms, InFlight: 10}, 10}, // queue 6 > 2: 10.5
	})
}

func TestVegasProbe(t *testing.T) {
	v := &Vegas{Initial: 10, ProbeInterval: 3}
	run(t, v, []step{
		{Sample{RTT: 10 * ms, InFlight: 10}, 10}, // sample 1: learns 10ms
		{Sample{RTT: 30 * ms, InFlight: 10}, 9},  // queue 7 > 6
		{Sample{RTT: 30 * ms, InFlight: 10}, 9},  // queue 6: hold
		{Sample{RTT: 30 * ms, InFlight: 10}, 9},  // sample 4 > interval: probe
	})
	if v.RTTNoLoad() != 30*ms {
		t.Fatalf("RTTNoLoad after probe = %v, want 30ms", v.RTTNoLoad())
	}
	run(t, v, []step{
		{Sample{RTT: 30 * ms, InFlight: 10}, 10}, // queue 0 against the re-learned minimum
		{Sample{RTT: 30 * ms, InFlight: 10}, 11},
		{Sample{RTT: 30 * ms, InFlight: 10}, 12},
		{Sample{RTT: 60 * ms, InFlight: 12}, 12}, // probe: 60ms becomes the minimum
	})
	if v.RTTNoLoad() != 60*ms {
		t.Fatalf("RTTNoLoad after second probe = %v, want 60ms", v.RTTNoLoad())
	}
}

func TestVegasProbeJitter(t *testing.T) {
	for _, tt := range []struct {
		r    float64
		want int
	}{{0, 5}, {0.5, 10}, {0.999999, 15}, {0.75, 13}} {
		v := &Vegas{ProbeInterval: 10, ProbeJitter: 0.5, Rand: func() float64 { return tt.r }}
		v.Limit()
		if v.nextProbe != tt.want {
			t.Errorf("rand %v: next probe after %d samples, want %d", tt.r, v.nextProbe, tt.want)
		}
	}
	v := &Vegas{}
	v.Limit()
	if v.nextProbe != DefaultProbeInterval || v.Smoothing != 1 || v.Alpha(1000) != 9 || v.Beta(1000) != 18 || v.Alpha(1) != 3 {
		t.Fatalf("defaults: next probe %d smoothing %v alpha %d beta %d", v.nextProbe, v.Smoothing, v.Alpha(1000), v.Beta(1000))
	}
	if math.Abs(float64(v.Limit()-DefaultInitialLimit)) != 0 {
		t.Fatal(v.Limit())
	}
}
