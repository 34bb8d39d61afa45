package degrade

import (
	"math"
	"sync"
	"testing"
)

func TestSignals(t *testing.T) {
	inflight, limit := 0, 0
	ratio := Ratio(func() int { return inflight }, func() int { return limit })
	tests := []struct {
		name         string
		inflight, lm int
		want         float64
	}{
		{"no limit", 5, 0, 0},
		{"negative limit", 5, -1, 0},
		{"half", 5, 10, 0.5},
		{"past the limit", 15, 10, 1.5},
	}
	for _, tt := range tests {
		inflight, limit = tt.inflight, tt.lm
		if got := ratio.Pressure(); got != tt.want {
			t.Errorf("%s: Ratio(%d, %d).Pressure() = %v, want %v", tt.name, tt.inflight, tt.lm, got, tt.want)
		}
	}

	maxTests := []struct {
		name    string
		signals []Signal
		want    float64
	}{
		{"none", nil, 0},
		{"one", []Signal{SignalFunc(func() float64 { return 0.3 })}, 0.3},
		{"largest", []Signal{SignalFunc(func() float64 { return 0.3 }), SignalFunc(func() float64 { return 1.2 }), SignalFunc(func() float64 { return 0.9 })}, 1.2},
		{"NaN ignored", []Signal{SignalFunc(math.NaN), SignalFunc(func() float64 { return 0.4 })}, 0.4},
	}
	for _, tt := range maxTests {
		if got := Max(tt.signals...).Pressure(); got != tt.want {
			t.Errorf("%s: Max().Pressure() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestErrorRate(t *testing.T) {
	var e ErrorRate
	if got := e.Pressure(); got != 0 {
		t.Errorf("empty Pressure() = %v, want 0", got)
	}
	for i := range 10 {
		e.Record(i < 3)
	}
	if got := e.Pressure(); got != 0.3 {
		t.Errorf("Pressure() after 3 of 10 failed = %v, want 0.3", got)
	}
	if got := e.Pressure(); got != 0 {
		t.Errorf("Pressure() after a reset = %v, want 0", got)
	}

	e = ErrorRate{MinSamples: 5}
	for range 4 {
		e.Record(true)
	}
	if got := e.Pressure(); got != 0 {
		t.Errorf("Pressure() with 4 of MinSamples 5 = %v, want 0", got)
	}
	e.Record(false)
	if got := e.Pressure(); got != 0.8 {
		t.Errorf("Pressure() with the counts kept = %v, want 0.8", got)
	}

	// Concurrent recording loses nothing.
	e = ErrorRate{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				e.Record(g == 0 && i%2 == 0)
			}
		})
	}
	wg.Wait()
	if got := e.Pressure(); got != 500.0/4000 {
		t.Errorf("Pressure() after concurrent records = %v, want %v", got, 500.0/4000)
	}
}

func TestSignalAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var e ErrorRate
	if n := testing.AllocsPerRun(1000, func() { e.Record(true) }); n != 0 {
		t.Errorf("ErrorRate.Record allocates %v times, want 0", n)
	}
}
