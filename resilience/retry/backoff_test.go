package retry

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func fixed(f float64) func() float64 { return func() float64 { return f } }

func TestDelaySequences(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		b    Backoff
		want []time.Duration // for n = 1, 2, ...
	}{
		{"zero is exponential 100ms x2", Backoff{}, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms}},
		{"constant", Backoff{Kind: KindConstant, Initial: 250 * ms}, []time.Duration{250 * ms, 250 * ms, 250 * ms}},
		{"constant capped", Backoff{Kind: KindConstant, Initial: 2 * time.Second, Max: time.Second}, []time.Duration{time.Second, time.Second}},
		{"linear", Backoff{Kind: KindLinear, Initial: 100 * ms}, []time.Duration{100 * ms, 200 * ms, 300 * ms, 400 * ms}},
		{"linear capped", Backoff{Kind: KindLinear, Initial: 100 * ms, Max: 250 * ms}, []time.Duration{100 * ms, 200 * ms, 250 * ms, 250 * ms}},
		{"exponential x3", Backoff{Kind: KindExponential, Initial: 10 * ms, Multiplier: 3}, []time.Duration{10 * ms, 30 * ms, 90 * ms, 270 * ms}},
		{"exponential capped", Backoff{Initial: 100 * ms, Max: time.Second}, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}},
		{"exponential x1.5", Backoff{Initial: 100 * ms, Multiplier: 1.5}, []time.Duration{100 * ms, 150 * ms, 225 * ms}},
		{"explicit none", Backoff{Initial: ms, Jitter: JitterNone}, []time.Duration{ms, 2 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []time.Duration
			for n := 1; n <= len(tt.want); n++ {
				got = append(got, tt.b.Delay(n, 0, fixed(0.5)))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("delays (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDelayJitter(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		b    Backoff
		n    int
		prev time.Duration
		f    float64
		want time.Duration
	}{
		{"full 0", Backoff{Initial: 100 * ms, Jitter: JitterFull}, 3, 0, 0, 0},
		{"full 0.25", Backoff{Initial: 100 * ms, Jitter: JitterFull}, 3, 0, 0.25, 100 * ms},
		{"full 0.999", Backoff{Kind: KindConstant, Initial: time.Second, Jitter: JitterFull}, 1, 0, 0.999, 999 * ms},
		{"full capped", Backoff{Initial: 100 * ms, Max: 300 * ms, Jitter: JitterFull}, 5, 0, 0.5, 150 * ms},
		{"full linear", Backoff{Kind: KindLinear, Initial: 100 * ms, Jitter: JitterFull}, 4, 0, 0.5, 200 * ms},
		{"equal 0", Backoff{Initial: 100 * ms, Jitter: JitterEqual}, 3, 0, 0, 200 * ms},
		{"equal 0.5", Backoff{Initial: 100 * ms, Jitter: JitterEqual}, 3, 0, 0.5, 300 * ms},
		{"equal constant 0.9", Backoff{Kind: KindConstant, Initial: time.Second, Jitter: JitterEqual}, 7, 0, 0.9, 950 * ms},
		{"equal capped", Backoff{Initial: time.Second, Max: 2 * time.Second, Jitter: JitterEqual}, 10, 0, 0.5, 1500 * ms},
		{"decorrelated first", Backoff{Initial: 100 * ms, Jitter: JitterDecorrelated}, 1, 0, 0.5, 100 * ms},
		{"decorrelated 0", Backoff{Initial: 100 * ms, Jitter: JitterDecorrelated}, 2, 200 * ms, 0, 100 * ms},
		{"decorrelated 0.5", Backoff{Initial: 100 * ms, Jitter: JitterDecorrelated}, 2, 200 * ms, 0.5, 350 * ms},
		{"decorrelated capped", Backoff{Initial: 100 * ms, Max: 400 * ms, Jitter: JitterDecorrelated}, 2, 300 * ms, 0.5, 250 * ms},
		{"decorrelated hits cap", Backoff{Initial: 100 * ms, Max: 400 * ms, Jitter: JitterDecorrelated}, 9, time.Hour, 0.999999999, 400*ms - 1},
		{"decorrelated ignores kind", Backoff{Kind: KindLinear, Initial: 10 * ms, Jitter: JitterDecorrelated}, 5, 10 * ms, 1 - 1.0/1024, 29980468},
		{"rnd above 1 clamps", Backoff{Initial: 100 * ms, Jitter: JitterFull}, 1, 0, 7, 100 * ms},
		{"rnd NaN clamps", Backoff{Initial: 100 * ms, Jitter: JitterFull}, 1, 0, math.NaN(), 0},
		{"n below 1", Backoff{Initial: 100 * ms}, -5, 0, 0, 100 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Delay(tt.n, tt.prev, fixed(tt.f)); got != tt.want {
				t.Fatalf("Delay(%d, %v) = %v, want %v", tt.n, tt.prev, got, tt.want)
			}
		})
	}
}

func TestDelayDecorrelatedBounds(t *testing.T) {
	b := Backoff{Initial: 10 * time.Millisecond, Max: time.Second, Jitter: JitterDecorrelated}
	prev := time.Duration(0)
	for n := 1; n <= 1000; n++ {
		d := b.Delay(n, prev, nil)
		hi := min(max(prev*3, b.Initial), b.Max)
		if d < b.Initial || d > hi {
			t.Fatalf("Delay(%d, %v) = %v, want in [%v, %v]", n, prev, d, b.Initial, hi)
		}
		prev = d
	}
}

func TestDelayHuge(t *testing.T) {
	for _, b := range []Backoff{
		{},
		{Kind: KindLinear, Initial: time.Hour},
		{Multiplier: 1e300},
		{Multiplier: math.MaxFloat64, Jitter: JitterEqual},
		{Initial: maxDuration, Jitter: JitterFull},
		{Initial: maxDuration, Jitter: JitterDecorrelated},
	} {
		for _, n := range []int{1, 62, 63, 64, 1000, math.MaxInt} {
			for _, f := range []float64{0, 0.5, 1 - 1e-16} {
				d := b.Delay(n, maxDuration, fixed(f))
				if d < 0 {
					t.Fatalf("%+v.Delay(%d) = %v, negative", b, n, d)
				}
			}
		}
		if d := b.Delay(math.MaxInt, 0, fixed(0)); b.Jitter == "" && d != maxDuration {
			t.Errorf("%+v.Delay(MaxInt) = %v, want the largest duration", b, d)
		}
	}
	b := Backoff{Max: time.Minute}
	if d := b.Delay(math.MaxInt, 0, nil); d != time.Minute {
		t.Fatalf("Delay(MaxInt) = %v, want 1m", d)
	}
}

func FuzzBackoffDelay(f *testing.F) {
	f.Add(uint8(0), uint8(0), int64(0), int64(0), 0.0, 1, int64(0), 0.5)
	f.Add(uint8(2), uint8(3), int64(time.Millisecond), int64(time.Second), 2.0, 100, int64(time.Hour), 0.99)
	f.Add(uint8(1), uint8(1), int64(math.MaxInt64), int64(0), 1e308, math.MaxInt, int64(math.MaxInt64), 1.0)
	f.Add(uint8(2), uint8(2), int64(-5), int64(-1), -3.0, -7, int64(-9), -1.0)
	kinds := []string{"", KindConstant, KindLinear, KindExponential, "bogus"}
	jitters := []string{"", JitterNone, JitterFull, JitterEqual, JitterDecorrelated, "bogus"}
	f.Fuzz(func(t *testing.T, kind, jitter uint8, initial, maxd int64, mult float64, n int, prev int64, r float64) {
		b := Backoff{
			Kind:       kinds[int(kind)%len(kinds)],
			Jitter:     jitters[int(jitter)%len(jitters)],
			Initial:    time.Duration(initial),
			Max:        time.Duration(maxd),
			Multiplier: mult,
		}
		d := b.Delay(n, time.Duration(prev), fixed(r))
		if d < 0 {
			t.Fatalf("%+v.Delay(%d, %d) = %v, negative", b, n, prev, d)
		}
		if b.Max > 0 && d > b.Max {
			t.Fatalf("%+v.Delay(%d, %d) = %v, above Max", b, n, prev, d)
		}
		if b.Validate() == nil && b.Jitter != JitterDecorrelated && n >= 1 {
			// Delays grow with n, without jitter.
			nj := b
			nj.Jitter = JitterNone
			if n < math.MaxInt && nj.Delay(n+1, 0, nil) < nj.Delay(n, 0, nil) {
				t.Fatalf("%+v: delay shrinks after retry %d", nj, n)
			}
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		b    Backoff
		want []string
	}{
		{"zero", Backoff{}, nil},
		{"full", Backoff{Kind: KindLinear, Initial: time.Second, Max: time.Second, Multiplier: 1, Jitter: JitterDecorrelated}, nil},
		{"kind", Backoff{Kind: "fibonacci"}, []string{`Kind = "fibonacci"`}},
		{"jitter", Backoff{Jitter: "half"}, []string{`Jitter = "half"`}},
		{"negative initial", Backoff{Initial: -time.Second}, []string{"Initial = -1s"}},
		{"negative max", Backoff{Max: -time.Millisecond}, []string{"Max = -1ms"}},
		{"initial above max", Backoff{Initial: 2 * time.Second, Max: time.Second}, []string{"Initial = 2s: must not exceed Max (1s)"}},
		{"multiplier below 1", Backoff{Multiplier: 0.5}, []string{"Multiplier = 0.5"}},
		{"multiplier NaN", Backoff{Multiplier: math.NaN()}, []string{"Multiplier = NaN"}},
		{"multiplier Inf", Backoff{Multiplier: math.Inf(1)}, []string{"Multiplier = +Inf"}},
		{"several", Backoff{Kind: "x", Max: -1}, []string{`Kind = "x"`, "Max = -1ns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.b.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "retry: ") {
				t.Errorf("Validate() = %q, want prefix %q", err, "retry: ")
			}
		})
	}
}

func TestBackoffJSON(t *testing.T) {
	var b Backoff
	in := `{"kind":"exponential","initial":"250ms","max":"10s","multiplier":1.5,"jitter":"full"}`
	if err := json.Unmarshal([]byte(in), &b); err != nil {
		t.Fatal(err)
	}
	want := Backoff{Kind: KindExponential, Initial: 250 * time.Millisecond, Max: 10 * time.Second, Multiplier: 1.5, Jitter: JitterFull}
	if b != want {
		t.Fatalf("decoded %+v, want %+v", b, want)
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"initial":"250ms"`) || !strings.Contains(string(out), `"max":"10s"`) {
		t.Fatalf("encoded %s, want durations as strings", out)
	}
	var back Backoff
	if err := json.Unmarshal(out, &back); err != nil || back != b {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, b)
	}
	if err := json.Unmarshal([]byte(`{"initial":1000}`), &b); err != nil || b.Initial != time.Microsecond {
		t.Fatalf("nanoseconds: %v %v", b.Initial, err)
	}
	for _, in := range []string{`{"max":"soon"}`, `{"initial":[]}`} {
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
}

func TestDelayAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	b := Backoff{Initial: time.Millisecond, Max: time.Second, Jitter: JitterDecorrelated}
	rnd := fixed(0.3)
	if a := testing.AllocsPerRun(1000, func() { _ = b.Delay(5, time.Millisecond, rnd) }); a != 0 {
		t.Fatalf("Delay allocs = %v, want 0", a)
	}
}
