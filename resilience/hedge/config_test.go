package hedge

import (
	"encoding/json"
	"math"
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
		{"full", Config{Name: "db", Delay: time.Millisecond, Quantile: 0.99, MinDelay: time.Millisecond, MaxDelay: time.Second,
			MinSamples: 5, MaxHedges: 5, HalfLife: 10}, nil},
		{"min equals max", Config{MinDelay: time.Second, MaxDelay: time.Second}, nil},
		{"negative delay", Config{Delay: -time.Millisecond}, []string{"Delay = -1ms"}},
		{"negative min delay", Config{MinDelay: -time.Second}, []string{"MinDelay = -1s"}},
		{"negative max delay", Config{MaxDelay: -2 * time.Second}, []string{"MaxDelay = -2s"}},
		{"min above max", Config{MinDelay: time.Second, MaxDelay: time.Millisecond}, []string{"MinDelay = 1s", "MaxDelay (1ms)"}},
		{"min above default max", Config{MinDelay: 2 * time.Second}, []string{"MinDelay = 2s", "MaxDelay (1s)"}},
		{"quantile 1", Config{Quantile: 1}, []string{"Quantile = 1"}},
		{"negative quantile", Config{Quantile: -0.5}, []string{"Quantile = -0.5"}},
		{"NaN quantile", Config{Quantile: math.NaN()}, []string{"Quantile = NaN"}},
		{"negative min samples", Config{MinSamples: -1}, []string{"MinSamples = -1"}},
		{"negative max hedges", Config{MaxHedges: -1}, []string{"MaxHedges = -1"}},
		{"too many hedges", Config{MaxHedges: 6}, []string{"MaxHedges = 6"}},
		{"negative half-life", Config{HalfLife: -3}, []string{"HalfLife = -3"}},
		{"several", Config{Delay: -1, MaxHedges: 9}, []string{"Delay = -1ns", "MaxHedges = 9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg, nil); err != nil {
					t.Fatalf("New() = %v", err)
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
			if !strings.HasPrefix(err.Error(), "hedge: ") {
				t.Errorf("Validate() = %q, want prefix %q", err, "hedge: ")
			}
			if _, nerr := New(tt.cfg, nil); nerr == nil {
				t.Errorf("New() succeeded with invalid config")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	h := newHedger(t, Config{}, nil)
	if h.Name() != DefaultName || h.maxHedges != DefaultMaxHedges || h.Quantile().Q() != DefaultQuantile ||
		h.minDelay != DefaultMinDelay || h.maxDelay != DefaultMaxDelay || h.minSamples != DefaultMinSamples {
		t.Fatalf("zero Config gave %+v", h)
	}
	if got := h.Delay(); got != DefaultMaxDelay {
		t.Fatalf("Delay() = %v, want %v", got, DefaultMaxDelay)
	}
}

func TestConfigJSON(t *testing.T) {
	in := `{"name":"db","delay":"15ms","quantile":0.99,"min_delay":"2ms","max_delay":2000000000,
		"min_samples":50,"max_hedges":2,"half_life":500}`
	var c Config
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatalf("Unmarshal = %v", err)
	}
	want := Config{Name: "db", Delay: 15 * time.Millisecond, Quantile: 0.99, MinDelay: 2 * time.Millisecond,
		MaxDelay: 2 * time.Second, MinSamples: 50, MaxHedges: 2, HalfLife: 500}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(Config{}, "MeterProvider")); diff != "" {
		t.Fatalf("Unmarshal mismatch (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal = %v", err)
	}
	wantOut := `{"name":"db","quantile":0.99,"min_samples":50,"max_hedges":2,"half_life":500,` +
		`"delay":"15ms","min_delay":"2ms","max_delay":"2s"}`
	if string(out) != wantOut {
		t.Fatalf("Marshal = %s, want %s", out, wantOut)
	}
	if out, _ := json.Marshal(Config{}); string(out) != "{}" {
		t.Fatalf("Marshal(Config{}) = %s, want {}", out)
	}
	for _, bad := range []string{`{"delay":"soon"}`, `{"max_delay":true}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil || !strings.HasPrefix(err.Error(), "hedge: invalid duration") {
			t.Errorf("Unmarshal(%s) = %v, want invalid duration error", bad, err)
		}
	}
}
