package hedge

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// exponential returns a deterministic generator of exponentially
// distributed durations with the given mean.
func exponential(seed uint64, mean time.Duration) func() time.Duration {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() time.Duration { return time.Duration(r.ExpFloat64() * float64(mean)) }
}

// within reports whether got is within tol (relative) of want.
func within(got, want time.Duration, tol float64) bool {
	return math.Abs(float64(got-want)) <= tol*float64(want)
}

func newQuantile(t *testing.T, q float64, halfLife int) *Quantile {
	t.Helper()
	e, err := NewQuantile(q, halfLife)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestQuantileAccuracy checks the estimate against the exact quantile of
// known distributions. The documented bound is 12.5% (one bucket); with
// interpolation and 10^5 effective samples the error stays under 3%.
func TestQuantileAccuracy(t *testing.T) {
	const tol = 0.03
	t.Run("exponential p95", func(t *testing.T) {
		e := newQuantile(t, 0.95, 100000)
		next := exponential(1, 10*time.Millisecond)
		for range 300000 {
			e.Observe(next())
		}
		want := time.Duration(math.Log(20) * float64(10*time.Millisecond)) // 29.96ms
		if got := e.Value(); !within(got, want, tol) {
			t.Fatalf("p95 = %v, want %v ± %v%%", got, want, tol*100)
		}
		if got := e.Count(); got != 300000 {
			t.Fatalf("Count() = %d, want 300000", got)
		}
	})
	t.Run("uniform p50 and p99", func(t *testing.T) {
		for _, q := range []float64{0.5, 0.99} {
			e := newQuantile(t, q, 1000000)
			// A deterministic equidistributed sequence over [0, 100ms).
			for i := range 100000 {
				frac := math.Mod(float64(i)*0.6180339887498949, 1)
				e.Observe(time.Duration(frac * float64(100*time.Millisecond)))
			}
			want := time.Duration(q * float64(100*time.Millisecond))
			if got := e.Value(); !within(got, want, tol) {
				t.Fatalf("p%v = %v, want %v ± %v%%", q*100, got, want, tol*100)
			}
		}
	})
	t.Run("constant", func(t *testing.T) {
		e := newQuantile(t, 0.95, 0)
		for range 100 {
			e.Observe(3 * time.Millisecond)
		}
		if got := e.Value(); got < 3*time.Millisecond || got > 3*time.Millisecond*9/8 {
			t.Fatalf("Value() = %v, want in the bucket of 3ms", got)
		}
	})
}

// TestQuantileAdapts checks that old samples fade: after 15 half-lives of a
// tenfold slower distribution the estimate follows it.
func TestQuantileAdapts(t *testing.T) {
	e := newQuantile(t, 0.95, 200)
	fast, slow := exponential(2, 10*time.Millisecond), exponential(3, 100*time.Millisecond)
	for range 5000 {
		e.Observe(fast())
	}
	before := e.Value()
	if want := time.Duration(math.Log(20) * float64(10*time.Millisecond)); !within(before, want, 0.15) {
		t.Fatalf("p95 before the shift = %v, want %v ± 15%%", before, want)
	}
	for range 3000 {
		e.Observe(slow())
	}
	if got, want := e.Value(), time.Duration(math.Log(20)*float64(100*time.Millisecond)); !within(got, want, 0.15) {
		t.Fatalf("p95 after the shift = %v, want %v ± 15%%", got, want)
	}
	// And back again.
	for range 3000 {
		e.Observe(fast())
	}
	if got := e.Value(); !within(got, before, 0.15) {
		t.Fatalf("p95 after shifting back = %v, want about %v", got, before)
	}
}

func TestQuantileRescale(t *testing.T) {
	// A half-life of one observation doubles the weight each time, so it
	// passes rescaleAt every ~330 observations.
	e := newQuantile(t, 0.5, 1)
	for range 2000 {
		e.Observe(time.Second)
	}
	// Each observation outweighs all those before it together, so a few
	// hold nearly all the weight.
	for range 3 {
		e.Observe(time.Millisecond)
	}
	if got := e.Value(); got < time.Millisecond || got > time.Millisecond*9/8 {
		t.Fatalf("median = %v, want in the bucket of 1ms", got)
	}
	if math.IsInf(e.total, 0) || math.IsNaN(e.total) || e.weight > rescaleAt {
		t.Fatalf("weights not rescaled: total %v, weight %v", e.total, e.weight)
	}
}

func TestQuantileEdges(t *testing.T) {
	e := newQuantile(t, 0.95, 0)
	if got := e.Value(); got != 0 {
		t.Fatalf("Value() of no samples = %v, want 0", got)
	}
	e.Observe(-time.Second)
	if got := e.Value(); got < 0 || got > 1 {
		t.Fatalf("Value() after a negative sample = %v, want 0 to 1ns", got)
	}
	e = newQuantile(t, 0.95, 0)
	e.Observe(math.MaxInt64)
	if got := e.Value(); got < math.MaxInt64/8*7 {
		t.Fatalf("Value() after MaxInt64 = %v, want near it", got)
	}
	if e.Q() != 0.95 {
		t.Fatalf("Q() = %v, want 0.95", e.Q())
	}
	for _, bad := range []struct {
		q  float64
		hl int
	}{{0, 1}, {1, 1}, {math.NaN(), 1}, {-0.5, 1}, {0.5, -1}} {
		if _, err := NewQuantile(bad.q, bad.hl); err == nil {
			t.Errorf("NewQuantile(%v, %d) succeeded, want error", bad.q, bad.hl)
		}
	}
}

func TestBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	vals := []uint64{0, 1, 15, 16, 17, 31, 32, 1 << 40, 1<<40 - 1, math.MaxInt64}
	for range 10000 {
		vals = append(vals, r.Uint64N(math.MaxInt64)>>r.UintN(63))
	}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", v, i, numBuckets)
		}
		lo, hi := bounds(i)
		if float64(v) < lo || float64(v) >= hi && v != math.MaxInt64 { // float64(MaxInt64) rounds up to 2^63
			t.Fatalf("bucket %d of %d is [%v, %v)", i, v, lo, hi)
		}
		if i >= linear && hi-lo > lo/subBuckets {
			t.Fatalf("bucket %d [%v, %v) wider than 1/%d of its value", i, lo, hi, subBuckets)
		}
	}
	for i := 1; i < numBuckets; i++ {
		_, prevHi := bounds(i - 1)
		if lo, _ := bounds(i); lo != prevHi {
			t.Fatalf("bucket %d starts at %v, previous ends at %v", i, lo, prevHi)
		}
	}
}

func TestQuantileConcurrent(t *testing.T) {
	e := newQuantile(t, 0.95, 100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			next := exponential(uint64(g), time.Millisecond)
			for range 2000 {
				e.Observe(next())
				_ = e.Value()
			}
		})
	}
	wg.Wait()
	if got := e.Count(); got != 16000 {
		t.Fatalf("Count() = %d, want 16000", got)
	}
}

func TestObserveAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	e := newQuantile(t, 0.95, 10)
	d := time.Duration(0)
	if allocs := testing.AllocsPerRun(10000, func() {
		d += 12345
		e.Observe(d)
	}); allocs != 0 {
		t.Fatalf("Observe allocs = %v, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(1000, func() { e.Observe(d); _ = e.Value() }); allocs != 0 {
		t.Fatalf("Value allocs = %v, want 0", allocs)
	}
}
