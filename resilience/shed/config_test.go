package shed

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
		{"full", Config{Name: "api", CPUThreshold: 0.8, Window: 10 * time.Second, Buckets: 100, CoolOff: 2 * time.Second}, nil},
		{"threshold one", Config{CPUThreshold: 1}, nil},
		{"negative threshold", Config{CPUThreshold: -0.1}, []string{"CPUThreshold = -0.1"}},
		{"threshold above one", Config{CPUThreshold: 1.5}, []string{"CPUThreshold = 1.5"}},
		{"NaN threshold", Config{CPUThreshold: math.NaN()}, []string{"CPUThreshold = NaN"}},
		{"negative window", Config{Window: -time.Second}, []string{"Window = -1s"}},
		{"negative buckets", Config{Buckets: -1}, []string{"Buckets = -1"}},
		{"huge buckets", Config{Buckets: 10001}, []string{"Buckets = 10001"}},
		{"tiny buckets", Config{Window: 10 * time.Millisecond, Buckets: 20}, []string{"Window = 10ms: divided into 20 buckets"}},
		{"default window tiny buckets", Config{Buckets: 10000}, []string{"Window = 5s: divided into 10000 buckets gives 500µs"}},
		{"negative cool-off", Config{CoolOff: -time.Millisecond}, []string{"CoolOff = -1ms"}},
		{"several", Config{CPUThreshold: 2, Window: -1, CoolOff: -1}, []string{"CPUThreshold = 2", "Window = -1ns", "CoolOff = -1ns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.CPU = &fakeCPU{}
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				s, err := New(tt.cfg)
				if err != nil {
					t.Fatalf("New() = %v", err)
				}
				s.Close()
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
			if got := strings.Count(err.Error(), "shed: invalid config:"); got != len(tt.want) {
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
	want := Config{Name: DefaultName, CPUThreshold: DefaultCPUThreshold, Window: DefaultWindow, Buckets: DefaultBuckets, CoolOff: DefaultCoolOff}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("defaults mismatch (-want +got):\n%s", diff)
	}
	s, err := New(Config{CPU: &fakeCPU{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.name != "shed" || s.threshold != 0.9 || s.bucketDur != 100*time.Millisecond || s.coolOff != time.Second || len(s.buckets) != 50 || s.sampler != nil {
		t.Fatalf("New(Config{}) = %+v", s)
	}
}

func TestConfigJSON(t *testing.T) {
	var c Config
	if err := json.Unmarshal([]byte(`{"name":"api","cpu_threshold":0.8,"window":"10s","buckets":100,"cool_off":2000000000}`), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{Name: "api", CPUThreshold: 0.8, Window: 10 * time.Second, Buckets: 100, CoolOff: 2 * time.Second}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(Config{}, "CPU", "MeterProvider")); diff != "" {
		t.Fatalf("Unmarshal mismatch (-want +got):\n%s", diff)
	}
	c.CPU = &fakeCPU{}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, w := string(data), `{"name":"api","cpu_threshold":0.8,"buckets":100,"window":"10s","cool_off":"2s"}`; got != w {
		t.Errorf("Marshal = %s, want %s", got, w)
	}
	data, _ = json.Marshal(Config{})
	if string(data) != "{}" {
		t.Errorf("Marshal(zero) = %s, want {}", data)
	}
	for _, bad := range []string{`{"window":"soon"}`, `{"cool_off":true}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", bad)
		}
	}
}
