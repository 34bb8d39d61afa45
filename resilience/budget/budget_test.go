package budget

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

var noopMP = noop.NewMeterProvider()

func newGRPC(t *testing.T, cfg Config) *GRPC {
	t.Helper()
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = noopMP
	}
	g, err := NewGRPC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func newPercent(t *testing.T, cfg Config) *Percent {
	t.Helper()
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = noopMP
	}
	p, err := NewPercent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGRPCSequence(t *testing.T) {
	g := newGRPC(t, Config{MaxTokens: 10, TokenRatio: 0.1})
	if g.Tokens() != 10 || !g.Withdraw() {
		t.Fatalf("start: tokens %v, want 10 and a granted retry", g.Tokens())
	}
	for i := range 4 {
		g.OnFailure()
		if !g.Withdraw() {
			t.Fatalf("after %d failures: retry denied at %v tokens", i+1, g.Tokens())
		}
	}
	g.OnFailure()
	if g.Tokens() != 5 || g.Withdraw() {
		t.Fatalf("after 5 failures: tokens %v allowed %v, want 5 and denied", g.Tokens(), g.Withdraw())
	}
	g.OnSuccess()
	if g.Tokens() != 5.1 || !g.Withdraw() {
		t.Fatalf("one success: tokens %v, want 5.1 and allowed", g.Tokens())
	}
	for range 9 {
		g.OnSuccess()
	}
	if g.Tokens() != 6 || !g.Withdraw() {
		t.Fatalf("after 10 successes: tokens %v, want exactly 6 and allowed", g.Tokens())
	}
	// Withdraw consumes nothing in A6.
	if g.Tokens() != 6 {
		t.Fatalf("Withdraw changed tokens to %v", g.Tokens())
	}
	g.OnRequest()
	if g.Tokens() != 6 {
		t.Fatalf("OnRequest changed tokens to %v", g.Tokens())
	}
}

func TestGRPCClamp(t *testing.T) {
	g := newGRPC(t, Config{MaxTokens: 3, TokenRatio: 0.7})
	g.OnSuccess()
	if g.Tokens() != 3 {
		t.Fatalf("success at max: tokens %v, want 3", g.Tokens())
	}
	for range 10 {
		g.OnFailure()
	}
	if g.Tokens() != 0 || g.Withdraw() {
		t.Fatalf("tokens %v, want 0 and denied", g.Tokens())
	}
	g.OnSuccess()
	g.OnSuccess()
	g.OnSuccess()
	if g.Tokens() != 2.1 || !g.Withdraw() {
		t.Fatalf("tokens %v, want 2.1 and allowed", g.Tokens())
	}
	for range 5 {
		g.OnSuccess()
	}
	if g.Tokens() != 3 {
		t.Fatalf("tokens %v, want 3", g.Tokens())
	}
}

func TestGRPCOddMax(t *testing.T) {
	// MaxTokens 3: threshold 1.5; 1.5 tokens deny, 1.501 allow.
	g := newGRPC(t, Config{MaxTokens: 3, TokenRatio: 0.001})
	g.OnFailure()
	g.OnFailure()
	for range 500 {
		g.OnSuccess()
	}
	if g.Tokens() != 1.5 || g.Withdraw() {
		t.Fatalf("tokens %v, want 1.5 and denied", g.Tokens())
	}
	g.OnSuccess()
	if !g.Withdraw() {
		t.Fatalf("tokens %v: denied, want allowed", g.Tokens())
	}
}

func TestGRPCConcurrent(t *testing.T) {
	g := newGRPC(t, Config{MaxTokens: 5, TokenRatio: 0.3})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var bad sync.Once
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if v := g.tokens.Load(); v < 0 || v > 5000 {
				bad.Do(func() { t.Errorf("tokens %d thousandths outside [0, 5000]", v) })
			}
		}
	})
	var workers sync.WaitGroup
	for w := range 8 {
		workers.Go(func() {
			for i := range 2000 {
				if (i+w)%3 == 0 {
					g.OnSuccess()
				} else {
					g.OnFailure()
				}
				g.Withdraw()
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()
	if v := g.Tokens(); v < 0 || v > 5 {
		t.Fatalf("tokens %v outside [0, 5]", v)
	}
}

func TestPercentCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Reserve 10/s * 10s = 100 retries, plus 0.2 per request.
		p := newPercent(t, Config{Algorithm: AlgorithmPercent, Percent: 0.2, MinPerSecond: 10, TTL: 10 * time.Second})
		if p.Balance() != 100 {
			t.Fatalf("balance %v, want 100", p.Balance())
		}
		for range 50 {
			p.OnRequest()
			p.OnSuccess()
			p.OnFailure()
		}
		if p.Balance() != 110 {
			t.Fatalf("balance after 50 requests %v, want 110", p.Balance())
		}
		n := 0
		for p.Withdraw() {
			n++
		}
		if n != 110 {
			t.Fatalf("granted %d retries, want 110", n)
		}
		// 4 more requests: 0.8 of a retry, not enough.
		for range 4 {
			p.OnRequest()
		}
		if p.Withdraw() {
			t.Fatal("granted a retry with 0.8 in the budget")
		}
		p.OnRequest()
		if !p.Withdraw() || p.Withdraw() {
			t.Fatal("want exactly one retry after 5 more requests")
		}
	})
}

func TestPercentExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPercent(t, Config{Algorithm: AlgorithmPercent, Percent: 0.5, MinPerSecond: 1, TTL: 10 * time.Second})
		for range 20 {
			p.OnRequest() // +10 retries
		}
		if p.Balance() != 20 {
			t.Fatalf("balance %v, want 20", p.Balance())
		}
		time.Sleep(5 * time.Second)
		for range 15 {
			if !p.Withdraw() {
				t.Fatal("withdraw denied")
			}
		}
		if p.Balance() != 5 {
			t.Fatalf("balance %v, want 5", p.Balance())
		}
		// At 10s the deposits expire, the withdrawals (made at 5s) not yet.
		time.Sleep(5 * time.Second)
		if p.Balance() != -5 {
			t.Fatalf("balance at 10s %v, want 10-15 = -5", p.Balance())
		}
		if p.Withdraw() {
			t.Fatal("withdraw granted with a negative balance")
		}
		time.Sleep(5 * time.Second)
		if p.Balance() != 10 {
			t.Fatalf("balance at 15s %v, want reserve 10", p.Balance())
		}
		// Idle for far longer than the TTL.
		p.OnRequest()
		time.Sleep(time.Hour)
		if p.Balance() != 10 {
			t.Fatalf("balance after an hour %v, want 10", p.Balance())
		}
	})
}

func TestPercentBucketBoundary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPercent(t, Config{Algorithm: AlgorithmPercent, Percent: 1, MinPerSecond: 0.1, TTL: 10 * time.Second})
		time.Sleep(999 * time.Millisecond)
		p.OnRequest() // in bucket [0s, 1s): forgotten at 10s
		time.Sleep(time.Millisecond)
		p.OnRequest() // in bucket [1s, 2s): forgotten at 11s
		time.Sleep(9 * time.Second)
		if p.Balance() != 2 {
			t.Fatalf("balance at 10s %v, want 1 reserve + 1", p.Balance())
		}
		time.Sleep(time.Second)
		if p.Balance() != 1 {
			t.Fatalf("balance at 11s %v, want 1", p.Balance())
		}
	})
}

func TestNew(t *testing.T) {
	b, err := New(Config{MeterProvider: noopMP})
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := b.(*GRPC); !ok || g.Tokens() != DefaultMaxTokens {
		t.Fatalf("New(zero) = %T, want *GRPC with %v tokens", b, DefaultMaxTokens)
	}
	b, err = New(Config{Algorithm: AlgorithmPercent, MeterProvider: noopMP})
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := b.(*Percent); !ok || p.Balance() != DefaultMinPerSecond*DefaultTTL.Seconds() {
		t.Fatalf("New(percent) = %T, want *Percent with the default reserve", b)
	}
	if _, err := New(Config{Algorithm: "x"}); err == nil {
		t.Fatal("New accepted an invalid config")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"zero", Config{}, nil},
		{"full grpc", Config{Name: "a", Algorithm: AlgorithmGRPC, MaxTokens: 1000, TokenRatio: 0.001}, nil},
		{"full percent", Config{Algorithm: AlgorithmPercent, Percent: 1000, MinPerSecond: 0.5, TTL: time.Minute}, nil},
		{"algorithm", Config{Algorithm: "finagle"}, []string{`Algorithm = "finagle"`}},
		{"max tokens high", Config{MaxTokens: 1000.5}, []string{"MaxTokens = 1000.5"}},
		{"max tokens negative", Config{MaxTokens: -1}, []string{"MaxTokens = -1"}},
		{"max tokens tiny", Config{MaxTokens: 0.0001}, []string{"MaxTokens = 0.0001"}},
		{"ratio NaN", Config{TokenRatio: math.NaN()}, []string{"TokenRatio = NaN"}},
		{"ratio tiny", Config{TokenRatio: 0.0004}, []string{"TokenRatio = 0.0004"}},
		{"percent negative", Config{Percent: -0.2}, []string{"Percent = -0.2"}},
		{"percent inf", Config{Percent: math.Inf(1)}, []string{"Percent = +Inf"}},
		{"min negative", Config{MinPerSecond: -1}, []string{"MinPerSecond = -1"}},
		{"ttl short", Config{TTL: time.Millisecond}, []string{"TTL = 1ms"}},
		{"ttl long", Config{TTL: time.Hour}, []string{"TTL = 1h0m0s"}},
		{"several", Config{MaxTokens: -1, TTL: -1}, []string{"MaxTokens = -1", "TTL = -1ns"}},
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
			if !strings.HasPrefix(err.Error(), "budget: ") {
				t.Errorf("Validate() = %q, want prefix %q", err, "budget: ")
			}
			if _, nerr := New(tt.cfg); nerr == nil {
				t.Errorf("New() succeeded with invalid config")
			}
		})
	}
}

func TestJSON(t *testing.T) {
	var c Config
	if err := json.Unmarshal([]byte(`{"name":"db","algorithm":"percent","percent":0.5,"min_per_second":2,"ttl":"30s"}`), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{Name: "db", Algorithm: AlgorithmPercent, Percent: 0.5, MinPerSecond: 2, TTL: 30 * time.Second}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != `{"name":"db","algorithm":"percent","percent":0.5,"min_per_second":2,"ttl":"30s"}` {
		t.Fatalf("encoded %s", got)
	}
	if err := json.Unmarshal([]byte(`{"ttl":5000000000}`), &c); err != nil || c.TTL != 5*time.Second {
		t.Fatalf("nanoseconds: %v %v", c.TTL, err)
	}
	for _, in := range []string{`{"ttl":"5 parsecs"}`, `{"ttl":true}`} {
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					if name, _ := dp.Attributes.Value(PolicyNameKey); name.AsString() != "db" {
						t.Errorf("%s point without %s=db: %v", m.Name, PolicyNameKey, dp.Attributes)
					}
					v, _ := dp.Attributes.Value(OutcomeKey)
					got[m.Name+" "+v.AsString()] = float64(dp.Value)
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					if name, _ := dp.Attributes.Value(PolicyNameKey); name.AsString() != "db" {
						t.Errorf("%s point without %s=db: %v", m.Name, PolicyNameKey, dp.Attributes)
					}
					got[m.Name] = dp.Value
				}
			}
		}
	}
	return got
}

func TestMetrics(t *testing.T) {
	for _, alg := range []string{AlgorithmGRPC, AlgorithmPercent} {
		t.Run(alg, func(t *testing.T) {
			r := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
			t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			b, err := New(Config{Name: "db", Algorithm: alg, MaxTokens: 2, MinPerSecond: 0.1, TTL: 10 * time.Second, MeterProvider: mp})
			if err != nil {
				t.Fatal(err)
			}
			b.OnRequest()
			b.OnFailure()
			b.Withdraw()
			b.Withdraw()
			var want map[string]float64
			if alg == AlgorithmGRPC {
				// 1 token is not above MaxTokens/2 = 1.
				want = map[string]float64{WithdrawalsMetricName + " denied": 2, TokensMetricName: 1}
			} else {
				// A reserve of 1 retry plus 0.2: one granted, 0.2 left.
				want = map[string]float64{WithdrawalsMetricName + " granted": 1, WithdrawalsMetricName + " denied": 1, TokensMetricName: 0.2}
			}
			if diff := cmp.Diff(want, collect(t, r)); diff != "" {
				t.Fatalf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	r := sdkmetric.NewManualReader()
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	for _, mp := range []struct {
		name string
		cfg  Config
	}{{"noop", Config{MeterProvider: noopMP}}, {"sdk", Config{MeterProvider: sdk}}} {
		for _, alg := range []string{AlgorithmGRPC, AlgorithmPercent} {
			t.Run(mp.name+" "+alg, func(t *testing.T) {
				cfg := mp.cfg
				cfg.Algorithm = alg
				b, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				allocs := testing.AllocsPerRun(1000, func() {
					b.OnRequest()
					b.Withdraw()
					b.OnSuccess()
					b.OnFailure()
				})
				if allocs != 0 {
					t.Errorf("allocs = %v, want 0", allocs)
				}
			})
		}
	}
}
