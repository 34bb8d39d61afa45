package redisratelimit

import (
	"encoding/json"
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
		{"full", Config{Name: "api", Prefix: "x:", Rate: 5, Per: time.Minute, Burst: 7, Outage: OutageClosed, Timeout: time.Second}, nil},
		{"open", Config{Rate: 1, Outage: OutageOpen}, nil},
		{"local", Config{Rate: 1, Outage: OutageLocal}, nil},
		{"one per microsecond", Config{Rate: 1e6}, nil},
		{"zero rate", Config{}, []string{"field Rate", "0: must be positive"}},
		{"negative rate", Config{Rate: -1}, []string{"field Rate", "-1: must be positive"}},
		{"NaN rate", Config{Rate: math.NaN()}, []string{"field Rate", "NaN"}},
		{"Inf rate", Config{Rate: math.Inf(1)}, []string{"field Rate", "+Inf"}},
		{"rate above one per microsecond", Config{Rate: 2e6}, []string{"field Rate", "more than one event per microsecond"}},
		{"negative per", Config{Rate: 1, Per: -time.Second}, []string{"field Per", "-1s"}},
		{"negative burst", Config{Rate: 1, Burst: -2}, []string{"field Burst", "-2"}},
		{"burst spans too long", Config{Rate: 1, Per: 24 * time.Hour, Burst: 1 << 30}, []string{"field Burst", "1073741824"}},
		{"negative timeout", Config{Rate: 1, Timeout: -time.Millisecond}, []string{"field Timeout", "-1ms"}},
		{"unknown outage", Config{Rate: 1, Outage: "fail"}, []string{"field Outage", `"fail"`}},
		{"several", Config{Rate: -1, Burst: -1, Outage: "x"}, []string{"field Rate", "field Burst", "field Outage"}},
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
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
			if _, nerr := New(newClient(t, "127.0.0.1:1"), tt.cfg); nerr == nil {
				t.Errorf("New accepted an invalid config")
			}
		})
	}
}

func TestJSON(t *testing.T) {
	in := Config{Name: "api", Prefix: "p:", Rate: 2.5, Per: time.Minute, Burst: 4, Outage: OutageClosed, Timeout: 75 * time.Millisecond}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"name":"api","prefix":"p:","rate":2.5,"burst":4,"outage":"closed","per":"1m0s","timeout":"75ms"}`
	if string(data) != want {
		t.Fatalf("Marshal = %s, want %s", data, want)
	}
	var out Config
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip = %+v, want %+v", out, in)
	}
	if err := json.Unmarshal([]byte(`{"rate":1,"per":1000,"timeout":"2s"}`), &out); err != nil || out.Per != time.Microsecond || out.Timeout != 2*time.Second {
		t.Fatalf("numeric per: %+v, %v", out, err)
	}
	for _, bad := range []string{`{"per":"soon"}`, `{"timeout":true}`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}
