package circuitbreaker

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
		{"full", Config{Name: "db", Window: WindowTime, WindowDuration: time.Second, Buckets: 4, MinimumCalls: 3,
			FailureRateThreshold: 1, SlowCallRateThreshold: 0.2, SlowCallDuration: time.Millisecond, HalfOpenProbes: 1, OpenDuration: time.Second}, nil},
		{"unknown window", Config{Window: "sliding"}, []string{`Window = "sliding"`}},
		{"negative window size", Config{WindowSize: -1}, []string{"WindowSize = -1"}},
		{"negative buckets", Config{Buckets: -2}, []string{"Buckets = -2"}},
		{"negative minimum calls", Config{MinimumCalls: -3}, []string{"MinimumCalls = -3"}},
		{"negative probes", Config{HalfOpenProbes: -1}, []string{"HalfOpenProbes = -1"}},
		{"negative window duration", Config{WindowDuration: -time.Second}, []string{"WindowDuration = -1s"}},
		{"negative slow duration", Config{SlowCallDuration: -time.Millisecond}, []string{"SlowCallDuration = -1ms"}},
		{"negative open duration", Config{OpenDuration: -5 * time.Second}, []string{"OpenDuration = -5s"}},
		{"NaN failure threshold", Config{FailureRateThreshold: math.NaN()}, []string{"FailureRateThreshold = NaN"}},
		{"failure threshold above 1", Config{FailureRateThreshold: 1.5}, []string{"FailureRateThreshold = 1.5"}},
		{"negative slow threshold", Config{SlowCallRateThreshold: -0.1}, []string{"SlowCallRateThreshold = -0.1"}},
		{"buckets too fine", Config{Window: WindowTime, WindowDuration: 5, Buckets: 10}, []string{"WindowDuration = 5ns"}},
		{"several", Config{WindowSize: -1, OpenDuration: -1}, []string{"WindowSize = -1", "OpenDuration = -1ns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
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
			if !strings.HasPrefix(err.Error(), "circuitbreaker: ") {
				t.Errorf("Validate() = %q, want prefix %q", err, "circuitbreaker: ")
			}
			if _, nerr := New(tt.cfg); nerr == nil {
				t.Errorf("New() succeeded with invalid config")
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateClosed: "closed", StateOpen: "open", StateHalfOpen: "half-open",
		StateForcedOpen: "forced-open", StateDisabled: "disabled", State(9): "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	in := `{"name":"db","window":"time","window_duration":"1m30s","buckets":6,"minimum_calls":20,
		"failure_rate_threshold":0.25,"slow_call_duration":"250ms","open_duration":5000000000}`
	var c Config
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatalf("Unmarshal = %v", err)
	}
	want := Config{Name: "db", Window: WindowTime, WindowDuration: 90 * time.Second, Buckets: 6, MinimumCalls: 20,
		FailureRateThreshold: 0.25, SlowCallDuration: 250 * time.Millisecond, OpenDuration: 5 * time.Second}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(Config{}, "MeterProvider")); diff != "" {
		t.Fatalf("Unmarshal mismatch (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal = %v", err)
	}
	wantOut := `{"name":"db","window":"time","buckets":6,"minimum_calls":20,"failure_rate_threshold":0.25,` +
		`"window_duration":"1m30s","slow_call_duration":"250ms","open_duration":"5s"}`
	if string(out) != wantOut {
		t.Fatalf("Marshal = %s, want %s", out, wantOut)
	}
	if out, _ := json.Marshal(Config{}); string(out) != "{}" {
		t.Fatalf("Marshal(Config{}) = %s, want {}", out)
	}
	for _, bad := range []string{`{"open_duration":"soon"}`, `{"open_duration":true}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil || !strings.HasPrefix(err.Error(), "circuitbreaker: invalid duration") {
			t.Errorf("Unmarshal(%s) = %v, want invalid duration error", bad, err)
		}
	}
}
