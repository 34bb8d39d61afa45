package degrade

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// fakeSignal is a Signal whose pressure the test sets.
type fakeSignal struct{ bits atomic.Uint64 }

func (f *fakeSignal) Set(p float64)     { f.bits.Store(math.Float64bits(p)) }
func (f *fakeSignal) Pressure() float64 { return math.Float64frombits(f.bits.Load()) }

// testLevels enter at 0.5, 0.7 and 0.9 and leave below 0.4, 0.6 and 0.8.
func testLevels() []LevelConfig {
	return []LevelConfig{
		{Name: "optional", Enter: 0.5, Exit: 0.4},
		{Name: "expensive", Enter: 0.7, Exit: 0.6},
		{Name: "essential", Enter: 0.9, Exit: 0.8},
	}
}

var fixedNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var testFeatures = map[string]int{"recommendations": 1, "suggestions": 2, "audit": 3}

func newTest(t testing.TB, sig Signal) *Switch {
	t.Helper()
	s, err := New(Config{
		Name:          "api",
		Levels:        testLevels(),
		Features:      testFeatures,
		MinDwell:      10 * time.Second,
		Signal:        sig,
		MeterProvider: noop.NewMeterProvider(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUpdateHysteresisAndDwell(t *testing.T) {
	type step struct {
		at   time.Duration // since the start
		p    float64
		want int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"stays at 0 below the first Enter", []step{{0, 0, 0}, {time.Second, 0.49, 0}}},
		{"enters at exactly Enter", []step{{0, 0.5, 1}}},
		{"jumps straight to the highest level reached", []step{{0, 0.2, 0}, {time.Second, 0.95, 3}}},
		{"pressure above 1", []step{{0, 3, 3}}},
		{"stepping up ignores the dwell", []step{{0, 0.55, 1}, {time.Second, 0.75, 2}, {2 * time.Second, 0.9, 3}}},
		{"hysteresis: stays between Exit and Enter", []step{{0, 0.55, 1}, {20 * time.Second, 0.45, 1}, {40 * time.Second, 0.4, 1}, {50 * time.Second, 0.39, 0}}},
		{"hysteresis: does not re-enter below Enter", []step{{0, 0.55, 1}, {20 * time.Second, 0.3, 0}, {21 * time.Second, 0.45, 0}, {22 * time.Second, 0.5, 1}}},
		{"dwell: one level per MinDwell", []step{
			{0, 0.95, 3},
			{5 * time.Second, 0.1, 3},
			{10 * time.Second, 0.1, 2},
			{15 * time.Second, 0.1, 2},
			{20 * time.Second, 0.1, 1},
			{29 * time.Second, 0.1, 1},
			{30 * time.Second, 0.1, 0},
		}},
		{"dwell restarts when the level rises again", []step{{0, 0.55, 1}, {9 * time.Second, 0.75, 2}, {12 * time.Second, 0.1, 2}, {19 * time.Second, 0.1, 1}}},
		{"a dip shorter than the dwell is ignored", []step{{0, 0.75, 2}, {3 * time.Second, 0.1, 2}, {6 * time.Second, 0.75, 2}, {10 * time.Second, 0.65, 2}}},
		{"NaN counts as 0", []step{{0, 0.95, 3}, {10 * time.Second, math.NaN(), 2}}},
		{"negative counts as 0", []step{{0, -1, 0}}},
		{"+Inf is the top", []step{{0, math.Inf(1), 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := &fakeSignal{}
			s := newTest(t, sig)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, st := range tt.steps {
				sig.Set(st.p)
				if got := s.Update(context.Background(), start.Add(st.at)); got != st.want {
					t.Fatalf("step %d: Update(+%v) at pressure %v = %d, want %d", i, st.at, st.p, got, st.want)
				}
				if got := s.Level(); got != st.want {
					t.Fatalf("step %d: Level() = %d, want %d", i, got, st.want)
				}
			}
		})
	}
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sig := &fakeSignal{}
		sig.Set(0.95)
		s, err := New(Config{Levels: testLevels(), Interval: time.Second, MinDwell: 10 * time.Second, Signal: sig})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Run(ctx)
		}()
		synctest.Wait()
		if got := s.Level(); got != 3 {
			t.Fatalf("Level() after the first evaluation = %d, want 3", got)
		}
		sig.Set(0)
		// Changed at 0s; steps down at the ticks of 10s, 20s and 30s.
		for _, st := range []struct {
			at   time.Duration
			want int
		}{{9500 * time.Millisecond, 3}, {10500 * time.Millisecond, 2}, {19500 * time.Millisecond, 2}, {20500 * time.Millisecond, 1}, {30500 * time.Millisecond, 0}} {
			time.Sleep(st.at - time.Since(start))
			synctest.Wait()
			if got := s.Level(); got != st.want {
				t.Errorf("Level() at %v = %d, want %d", st.at, got, st.want)
			}
		}
		if got := s.Pressure(); got != 0 {
			t.Errorf("Pressure() = %v, want 0", got)
		}
		cancel()
		<-done
	})
}

func TestEnabledAndAllow(t *testing.T) {
	tests := []struct {
		level int
		want  map[string]bool
	}{
		{0, map[string]bool{"recommendations": true, "suggestions": true, "audit": true, "unknown": true}},
		{1, map[string]bool{"recommendations": false, "suggestions": true, "audit": true, "unknown": true}},
		{2, map[string]bool{"recommendations": false, "suggestions": false, "audit": true, "unknown": true}},
		{3, map[string]bool{"recommendations": false, "suggestions": false, "audit": false, "unknown": true}},
	}
	s := newTest(t, nil)
	for _, tt := range tests {
		if err := s.Force(t.Context(), tt.level); err != nil {
			t.Fatal(err)
		}
		for f, want := range tt.want {
			if got := s.Enabled(f); got != want {
				t.Errorf("level %d: Enabled(%q) = %v, want %v", tt.level, f, got, want)
			}
			h, err := s.Feature(f)
			if f == "unknown" {
				if !errors.Is(err, ErrUnknownFeature) || h != nil {
					t.Errorf("Feature(%q) = %v, %v, want nil, ErrUnknownFeature", f, h, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Feature(%q) = %v", f, err)
			}
			if got := h.Enabled(); got != want {
				t.Errorf("level %d: Feature(%q).Enabled() = %v, want %v", tt.level, f, got, want)
			}
			if h.Name() != f || h.OffAt() != testFeatures[f] {
				t.Errorf("Feature(%q) Name, OffAt = %q, %d, want %q, %d", f, h.Name(), h.OffAt(), f, testFeatures[f])
			}
		}
		for off := range 5 {
			if got, want := s.Allow(off), tt.level < off; got != want {
				t.Errorf("level %d: Allow(%d) = %v, want %v", tt.level, off, got, want)
			}
		}
	}
}

func TestForceAndAuto(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sig := &fakeSignal{}
		s := newTest(t, sig)
		if s.Forced() {
			t.Fatal("Forced() = true before Force")
		}
		if err := s.Force(t.Context(), 3); err != nil {
			t.Fatalf("Force(3) = %v", err)
		}
		if !s.Forced() || s.Level() != 3 {
			t.Fatalf("after Force(3): Forced, Level = %v, %d, want true, 3", s.Forced(), s.Level())
		}
		// A forced level ignores the signal, but the pressure is recorded.
		sig.Set(0.2)
		time.Sleep(time.Minute)
		if got := s.Update(t.Context(), time.Now()); got != 3 {
			t.Errorf("forced Update = %d, want 3", got)
		}
		if got := s.Pressure(); got != 0.2 {
			t.Errorf("Pressure() = %v, want 0.2", got)
		}
		for _, bad := range []int{-1, 4} {
			err := s.Force(t.Context(), bad)
			if !errors.Is(err, ErrNoLevel) {
				t.Errorf("Force(%d) = %v, want ErrNoLevel", bad, err)
			}
		}
		if s.Level() != 3 {
			t.Errorf("Level() after a bad Force = %d, want 3", s.Level())
		}
		// Auto: one level per MinDwell, from the forced change.
		s.Auto()
		if s.Forced() || s.Level() != 3 {
			t.Fatalf("after Auto: Forced, Level = %v, %d, want false, 3", s.Forced(), s.Level())
		}
		if got := s.Update(t.Context(), time.Now()); got != 2 {
			t.Errorf("Update after Auto = %d, want 2 (the dwell has passed)", got)
		}
		if got := s.Update(t.Context(), time.Now()); got != 2 {
			t.Errorf("second Update after Auto = %d, want 2 (dwell)", got)
		}
		// Force to a level, then straight back: the dwell runs from there.
		if err := s.Force(t.Context(), 0); err != nil {
			t.Fatal(err)
		}
		s.Auto()
		sig.Set(0.75)
		if got := s.Update(t.Context(), time.Now()); got != 2 {
			t.Errorf("Update at 0.75 after Auto = %d, want 2", got)
		}
	})
}

func TestManualSwitch(t *testing.T) {
	s, err := New(Config{MeterProvider: noop.NewMeterProvider()})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Update(t.Context(), time.Now()); got != 0 || s.Pressure() != 0 {
		t.Errorf("Update without a signal = %d at %v, want 0 at 0", got, s.Pressure())
	}
	if s.Levels() != 3 || s.Name() != DefaultName {
		t.Errorf("Levels, Name = %d, %q, want 3, %q", s.Levels(), s.Name(), DefaultName)
	}
	for lvl, want := range []string{"full", "optional", "expensive", "essential", ""} {
		if got := s.LevelName(lvl); got != want {
			t.Errorf("LevelName(%d) = %q, want %q", lvl, got, want)
		}
	}
	if got := s.LevelName(-1); got != "" {
		t.Errorf("LevelName(-1) = %q, want empty", got)
	}
}

func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sig := &fakeSignal{}
		s := newTest(t, sig)
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var skipped atomic.Int64
		for range 4 {
			wg.Go(func() {
				for ctx.Err() == nil {
					lvl := s.Level()
					if lvl < 0 || lvl > 3 {
						t.Errorf("Level() = %d, out of range", lvl)
					}
					if !s.Enabled("recommendations") {
						skipped.Add(1)
					}
					s.Allow(2)
					time.Sleep(time.Millisecond)
				}
			})
		}
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				sig.Set(float64(i%12) / 10)
				s.Update(ctx, time.Now())
				time.Sleep(100 * time.Millisecond)
			}
		})
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_ = s.Force(ctx, i%4)
				_ = s.Status()
				time.Sleep(700 * time.Millisecond)
				s.Auto()
				time.Sleep(700 * time.Millisecond)
			}
		})
		time.Sleep(time.Minute)
		cancel()
		wg.Wait()
		if skipped.Load() == 0 {
			t.Error("no Enabled call answered false: the level never moved")
		}
	})
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := newTest(t, nil)
	if err := s.Force(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Feature("recommendations")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		fn   func()
	}{
		{"Feature.Enabled(off)", func() { recs.Enabled() }},
		{"Enabled(off)", func() { s.Enabled("suggestions") }},
		{"Enabled(on)", func() { s.Enabled("audit") }},
		{"Enabled(unknown)", func() { s.Enabled("unknown") }},
		{"Allow", func() { s.Allow(3) }},
		{"Level", func() { s.Level() }},
	} {
		if n := testing.AllocsPerRun(1000, tt.fn); n != 0 {
			t.Errorf("%s allocates %v times, want 0", tt.name, n)
		}
	}
}

// TestAllocsSDK checks that a disabled feature counted by an SDK meter
// provider allocates nothing once its attribute set has been recorded.
func TestAllocsSDK(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	s, err := New(Config{Features: testFeatures, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Force(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	s.Enabled("audit")
	if n := testing.AllocsPerRun(1000, func() { s.Enabled("audit") }); n != 0 {
		t.Errorf("Enabled(off) with an SDK provider allocates %v times, want 0", n)
	}
}

func BenchmarkEnabled(b *testing.B) {
	s := newTest(b, nil)
	if err := s.Force(b.Context(), 1); err != nil {
		b.Fatal(err)
	}
	b.Run("on", func(b *testing.B) {
		for b.Loop() {
			s.Enabled("audit")
		}
	})
	b.Run("off", func(b *testing.B) {
		for b.Loop() {
			s.Enabled("recommendations")
		}
	})
	h, err := s.Feature("recommendations")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("handle-off", func(b *testing.B) {
		for b.Loop() {
			h.Enabled()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Enabled("suggestions")
			}
		})
	})
}

func BenchmarkAllow(b *testing.B) {
	s := newTest(b, nil)
	for b.Loop() {
		s.Allow(2)
	}
}

func BenchmarkUpdate(b *testing.B) {
	sig := &fakeSignal{}
	sig.Set(0.55)
	s := newTest(b, sig)
	now := time.Now()
	for b.Loop() {
		s.Update(context.Background(), now)
	}
}
