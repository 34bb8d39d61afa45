package adaptive

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{"zero", Config{}, nil},
		{"aimd", Config{Name: "db", Algorithm: "aimd", InitialLimit: 10, MinLimit: 2, MaxLimit: 50, BackoffRatio: 0.5, Timeout: time.Second}, nil},
		{"gradient2", Config{Algorithm: "gradient2", Smoothing: 1, LongWindow: 100, RTTTolerance: 2}, nil},
		{"vegas", Config{Algorithm: "vegas", Smoothing: 0.5, ProbeInterval: 10, ProbeJitter: 0.2}, nil},
		{"min equals max", Config{MinLimit: 5, MaxLimit: 5}, nil},
		{"unknown algorithm", Config{Algorithm: "bbr"}, []string{`Algorithm = "bbr"`}},
		{"negative initial", Config{InitialLimit: -1}, []string{"InitialLimit = -1"}},
		{"negative min", Config{MinLimit: -1}, []string{"MinLimit = -1"}},
		{"negative max", Config{MaxLimit: -1}, []string{"MaxLimit = -1"}},
		{"min above max", Config{MinLimit: 10, MaxLimit: 5}, []string{"MinLimit = 10: must not exceed MaxLimit 5"}},
		{"backoff 1", Config{BackoffRatio: 1}, []string{"BackoffRatio = 1"}},
		{"negative backoff", Config{BackoffRatio: -0.5}, []string{"BackoffRatio = -0.5"}},
		{"negative timeout", Config{Timeout: -time.Millisecond}, []string{"Timeout = -1ms"}},
		{"smoothing above 1", Config{Smoothing: 1.5}, []string{"Smoothing = 1.5"}},
		{"negative long window", Config{LongWindow: -3}, []string{"LongWindow = -3"}},
		{"tolerance below 1", Config{RTTTolerance: 0.5}, []string{"RTTTolerance = 0.5"}},
		{"negative probe interval", Config{ProbeInterval: -1}, []string{"ProbeInterval = -1"}},
		{"jitter 1", Config{ProbeJitter: 1}, []string{"ProbeJitter = 1"}},
		{"several", Config{MinLimit: -1, Timeout: -1}, []string{"MinLimit = -1", "Timeout = -1ns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if got := strings.Count(err.Error(), "adaptive: invalid config:"); got != len(tt.want) {
				t.Errorf("Validate() reported %d errors, want %d: %v", got, len(tt.want), err)
			}
			if _, err := New(tt.cfg); err == nil {
				t.Error("New() = nil error for an invalid config")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{Name: DefaultName, Algorithm: DefaultAlgorithm}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("defaults mismatch (-want +got):\n%s", diff)
	}
	l, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := l.alg.(*AIMD)
	if !ok || l.name != "adaptive" || l.Limit() != 20 || a.Min != 1 || a.Max != 200 || a.BackoffRatio != 0.9 || a.Timeout != 5*time.Second {
		t.Fatalf("New(Config{}) = name %q, %#v", l.name, l.alg)
	}
	g := Config{Algorithm: "gradient2"}.algorithm().(*Gradient2)
	g.Limit()
	if g.Smoothing != DefaultSmoothing || g.LongWindow != DefaultLongWindow || g.RTTTolerance != DefaultRTTTolerance || g.Queue(100) != DefaultQueueSize {
		t.Fatalf("Gradient2 defaults = %+v", g)
	}
}

func TestConfigJSON(t *testing.T) {
	in := `{"name":"db","algorithm":"vegas","initial_limit":10,"min_limit":2,"max_limit":50,"backoff_ratio":0.8,"timeout":"250ms","smoothing":0.5,"long_window":100,"rtt_tolerance":2,"probe_interval":20,"probe_jitter":0.1}`
	var c Config
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{Name: "db", Algorithm: "vegas", InitialLimit: 10, MinLimit: 2, MaxLimit: 50, BackoffRatio: 0.8,
		Timeout: 250 * time.Millisecond, Smoothing: 0.5, LongWindow: 100, RTTTolerance: 2, ProbeInterval: 20, ProbeJitter: 0.1}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(Config{}, "MeterProvider")); diff != "" {
		t.Fatalf("Unmarshal mismatch (-want +got):\n%s", diff)
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Config
	if err := json.Unmarshal(data, &back); err != nil || back != want {
		t.Fatalf("round trip of %s = %+v, %v; want %+v", data, back, err, want)
	}
	if !strings.Contains(string(data), `"timeout":"250ms"`) {
		t.Fatalf("Marshal = %s, want timeout as a string", data)
	}
	var n Config
	if err := json.Unmarshal([]byte(`{"timeout":1000000}`), &n); err != nil || n.Timeout != time.Millisecond {
		t.Fatalf("nanoseconds: Timeout = %v, %v; want 1ms", n.Timeout, err)
	}
	if data, _ := json.Marshal(Config{}); string(data) != `{}` {
		t.Fatalf("Marshal(Config{}) = %s, want {}", data)
	}
	for _, in := range []string{`{"timeout":"soon"}`, `{"timeout":true}`} {
		if err := json.Unmarshal([]byte(in), &n); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", in)
		}
	}
}
