package ratelimit

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{"minimal", Config{Rate: 10}, nil},
		{"full", Config{Name: "api", Algorithm: SlidingWindowLogAlgorithm, Rate: 5, Per: time.Minute, Burst: 7, Window: time.Minute}, nil},
		{"every algorithm name", Config{Rate: 1, Algorithm: "leaky_bucket"}, nil},
		{"zero rate", Config{}, []string{"field Rate", "0: must be positive"}},
		{"negative rate", Config{Rate: -1}, []string{"field Rate", "-1: must be positive"}},
		{"NaN rate", Config{Rate: math.NaN()}, []string{"field Rate", "NaN"}},
		{"Inf rate", Config{Rate: math.Inf(1)}, []string{"field Rate", "+Inf"}},
		{"rate above one per nanosecond", Config{Rate: 3e9}, []string{"field Rate", "more than one event per nanosecond"}},
		{"negative per", Config{Rate: 1, Per: -time.Second}, []string{"field Per", "-1s"}},
		{"negative burst", Config{Rate: 1, Burst: -2}, []string{"field Burst", "-2"}},
		{"burst spans too long", Config{Rate: 1, Per: 24 * time.Hour, Burst: 1 << 30}, []string{"field Burst", "1073741824"}},
		{"negative window", Config{Rate: 1, Window: -time.Minute}, []string{"field Window", "-1m0s"}},
		{"unknown algorithm", Config{Rate: 1, Algorithm: "magic"}, []string{"field Algorithm", `"magic"`}},
		{"several", Config{Rate: -1, Burst: -1}, []string{"field Rate", "field Burst"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v, want nil", err)
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
			if !strings.HasPrefix(err.Error(), "ratelimit: invalid config: ") {
				t.Errorf("Validate() = %q, want prefix %q", err, "ratelimit: invalid config: ")
			}
			if l, err2 := New(tt.cfg); err2 == nil || l != nil {
				t.Errorf("New() = %v, %v, want nil and an error", l, err2)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Rate: 2.5}.withDefaults()
	if c.Name != "ratelimit" || c.Algorithm != TokenBucketAlgorithm || c.Per != time.Second || c.Burst != 3 || c.Window != time.Second || c.MeterProvider == nil {
		t.Errorf("withDefaults() = %+v", c)
	}
	if got := (Config{Rate: 0.1}).withDefaults().Burst; got != 1 {
		t.Errorf("default Burst for Rate 0.1 = %d, want 1", got)
	}
	if got := (Config{Rate: 1, Per: time.Minute}).withDefaults().Window; got != time.Minute {
		t.Errorf("default Window = %v, want Per", got)
	}
}

func TestLimitedError(t *testing.T) {
	err := error(&LimitedError{Limit: "api", RetryAfter: time.Second})
	if !errors.Is(err, ErrLimited) {
		t.Errorf("errors.Is(%v, ErrLimited) = false", err)
	}
	if got, want := err.Error(), `ratelimit: limited by "api", retry after 1s`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestConfigJSON(t *testing.T) {
	var c Config
	in := `{"name":"api","algorithm":"fixed_window","rate":5,"per":"1m","burst":7,"window":30000000000}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{Name: "api", Algorithm: FixedWindowAlgorithm, Rate: 5, Per: time.Minute, Burst: 7, Window: 30 * time.Second}
	if c != want {
		t.Errorf("Unmarshal(%s) = %+v, want %+v", in, c, want)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"name":"api","algorithm":"fixed_window","rate":5,"burst":7,"per":"1m0s","window":"30s"}`; got != want {
		t.Errorf("Marshal() = %s, want %s", got, want)
	}
	if err := json.Unmarshal([]byte(`{"rate":1,"per":"soon"}`), &c); err == nil || !strings.Contains(err.Error(), "ratelimit: invalid duration") {
		t.Errorf("Unmarshal(per soon) = %v, want an invalid duration error", err)
	}
}
