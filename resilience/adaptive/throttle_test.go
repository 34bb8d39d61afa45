package adaptive

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func newThrottle(t *testing.T, cfg ThrottleConfig) *Throttle {
	t.Helper()
	th, err := NewThrottle(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func record(th *Throttle, requests, accepts int) {
	for i := range requests {
		th.Record(i < accepts)
	}
}

func TestThrottleProbability(t *testing.T) {
	for _, tt := range []struct {
		name              string
		cfg               ThrottleConfig
		requests, accepts int
		want              float64
	}{
		{"empty", ThrottleConfig{}, 0, 0, 0},
		{"all accepted", ThrottleConfig{}, 100, 100, 0},
		{"half accepted", ThrottleConfig{}, 100, 50, 0},
		{"a fifth accepted", ThrottleConfig{}, 100, 20, 60.0 / 101},
		{"none accepted", ThrottleConfig{}, 10, 0, 10.0 / 11},
		{"K 1.5", ThrottleConfig{K: 1.5}, 100, 50, 25.0 / 101},
		{"K 1", ThrottleConfig{K: 1}, 3, 1, 2.0 / 4},
		{"below MinRequests", ThrottleConfig{MinRequests: 20}, 19, 0, 0},
		{"at MinRequests", ThrottleConfig{MinRequests: 20}, 20, 0, 20.0 / 21},
	} {
		t.Run(tt.name, func(t *testing.T) {
			th := newThrottle(t, tt.cfg)
			record(th, tt.requests, tt.accepts)
			if got := th.RejectProbability(); math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("RejectProbability = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestThrottleAllow(t *testing.T) {
	r := 0.0
	th := newThrottle(t, ThrottleConfig{Rand: func() float64 { return r }})
	if !th.Allow() {
		t.Fatal("empty throttle rejected")
	}
	record(th, 10, 2) // p = (10 - 4) / 11 = 0.5454...
	r = 0.55
	if !th.Allow() {
		t.Fatal("rand 0.55 >= p 6/11: rejected")
	}
	r = 0.54
	if th.Allow() {
		t.Fatal("rand 0.54 < p 6/11: allowed")
	}
	// The local rejection counts as a request: p = 7/12 = 0.5833...
	if got, want := th.RejectProbability(), 7.0/12; math.Abs(got-want) > 1e-12 {
		t.Fatalf("after a rejection: p = %v, want %v", got, want)
	}
	r = 0.58
	if th.Allow() {
		t.Fatal("rand 0.58 < p 7/12: allowed")
	}
	r = 0.62
	if !th.Allow() {
		t.Fatal("rand 0.62 >= p 8/13: rejected")
	}
	// Allowed requests are not counted until Record.
	if got, want := th.RejectProbability(), 8.0/13; math.Abs(got-want) > 1e-12 {
		t.Fatalf("p = %v, want %v", got, want)
	}
}

func TestThrottleWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 2m window of 12 buckets of 10s; the bubble's clock starts at a
		// multiple of 10s.
		th := newThrottle(t, ThrottleConfig{})
		record(th, 10, 0)
		if got, want := th.RejectProbability(), 10.0/11; math.Abs(got-want) > 1e-12 {
			t.Fatalf("p = %v, want %v", got, want)
		}
		time.Sleep(60 * time.Second)
		record(th, 10, 10)
		if got, want := th.RejectProbability(), 0.0; got != want {
			t.Fatalf("p = %v, want %v", got, want)
		}
		time.Sleep(59 * time.Second) // 1m59s: the first bucket is still in the window
		if got, want := th.RejectProbability(), 0.0; got != want {
			t.Fatalf("p = %v, want %v", got, want)
		}
		record(th, 5, 0) // 25 requests, 10 accepts: 5/26
		if got, want := th.RejectProbability(), 5.0/26; math.Abs(got-want) > 1e-12 {
			t.Fatalf("p = %v, want %v", got, want)
		}
		time.Sleep(time.Second) // 2m: the first bucket expires
		if got, want := th.RejectProbability(), 0.0; got != want {
			t.Fatalf("after the first bucket expired: p = %v, want 0", got)
		}
		time.Sleep(2 * time.Minute) // everything expires
		record(th, 1, 0)
		if got, want := th.RejectProbability(), 0.5; got != want {
			t.Fatalf("after expiry: p = %v, want %v", got, want)
		}
	})
}

func TestThrottleConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  ThrottleConfig
		want []string
	}{
		{ThrottleConfig{}, nil},
		{ThrottleConfig{K: 1.1, Window: time.Minute, Buckets: 6, MinRequests: 10}, nil},
		{ThrottleConfig{K: -1}, []string{"K = -1"}},
		{ThrottleConfig{Window: -time.Second, Buckets: -1, MinRequests: -2}, []string{"Window = -1s", "Buckets = -1", "MinRequests = -2"}},
	} {
		err := tt.cfg.Validate()
		if got := 0; err != nil {
			got = strings.Count(err.Error(), "adaptive: invalid throttle config:")
			if got != len(tt.want) {
				t.Errorf("Validate(%+v) = %v, want %d errors", tt.cfg, err, len(tt.want))
			}
		} else if len(tt.want) != 0 {
			t.Errorf("Validate(%+v) = nil", tt.cfg)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Validate = %v, want %q", err, w)
			}
		}
		if _, err := NewThrottle(tt.cfg); (err != nil) != (len(tt.want) != 0) {
			t.Errorf("NewThrottle(%+v) = %v", tt.cfg, err)
		}
	}
	var c ThrottleConfig
	if err := json.Unmarshal([]byte(`{"k":1.5,"window":"1m","buckets":6,"min_requests":3}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.K != 1.5 || c.Window != time.Minute || c.Buckets != 6 || c.MinRequests != 3 {
		t.Fatalf("Unmarshal = %+v", c)
	}
	data, err := json.Marshal(c)
	if err != nil || string(data) != `{"k":1.5,"buckets":6,"min_requests":3,"window":"1m0s"}` {
		t.Fatalf("Marshal = %s, %v", data, err)
	}
	if data, _ := json.Marshal(ThrottleConfig{}); string(data) != `{}` {
		t.Fatalf("Marshal(ThrottleConfig{}) = %s, want {}", data)
	}
}
