package bulkhead

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
		{"full", Config{Name: "db", MaxConcurrent: 4, MaxQueue: 8, MaxWait: time.Second}, nil},
		{"negative max concurrent", Config{MaxConcurrent: -1}, []string{"MaxConcurrent = -1"}},
		{"negative max queue", Config{MaxQueue: -2}, []string{"MaxQueue = -2"}},
		{"negative max wait", Config{MaxWait: -time.Millisecond}, []string{"MaxWait = -1ms"}},
		{"huge max concurrent", Config{MaxConcurrent: math.MaxInt32 + 1}, []string{"MaxConcurrent = 2147483648"}},
		{"several", Config{MaxConcurrent: -1, MaxWait: -1}, []string{"MaxConcurrent = -1", "MaxWait = -1ns"}},
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
			if got := strings.Count(err.Error(), "bulkhead: invalid config:"); got != len(tt.want) {
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
	want := Config{Name: DefaultName, MaxConcurrent: DefaultMaxConcurrent, MaxQueue: DefaultMaxQueue, MaxWait: DefaultMaxWait}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("defaults mismatch (-want +got):\n%s", diff)
	}
	b, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if b.name != "bulkhead" || b.max != 10 || b.maxQueue != 0 || b.maxWait != 0 {
		t.Fatalf("New(Config{}) = name %q max %d queue %d wait %v", b.name, b.max, b.maxQueue, b.maxWait)
	}
}

func TestConfigJSON(t *testing.T) {
	var c Config
	if err := json.Unmarshal([]byte(`{"name":"db","max_concurrent":4,"max_queue":16,"max_wait":"250ms"}`), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{Name: "db", MaxConcurrent: 4, MaxQueue: 16, MaxWait: 250 * time.Millisecond}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(Config{}, "MeterProvider")); diff != "" {
		t.Fatalf("Unmarshal mismatch (-want +got):\n%s", diff)
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), `{"name":"db","max_concurrent":4,"max_queue":16,"max_wait":"250ms"}`; got != want {
		t.Fatalf("Marshal = %s, want %s", got, want)
	}
	var back Config
	if err := json.Unmarshal(data, &back); err != nil || back != want {
		t.Fatalf("round trip = %+v, %v; want %+v", back, err, want)
	}
	var n Config
	if err := json.Unmarshal([]byte(`{"max_wait":1000000}`), &n); err != nil || n.MaxWait != time.Millisecond {
		t.Fatalf("nanoseconds: MaxWait = %v, %v; want 1ms", n.MaxWait, err)
	}
	if data, _ := json.Marshal(Config{}); string(data) != `{}` {
		t.Fatalf("Marshal(Config{}) = %s, want {}", data)
	}
	for _, in := range []string{`{"max_wait":"soon"}`, `{"max_wait":true}`} {
		if err := json.Unmarshal([]byte(in), &n); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", in)
		}
	}
}
