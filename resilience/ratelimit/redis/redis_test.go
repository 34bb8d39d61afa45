package redisratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/resilience/ratelimit"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

func allow(t *testing.T, l *Limiter, key string, n int) ratelimit.Decision {
	t.Helper()
	d, err := l.AllowN(context.Background(), key, n)
	if err != nil {
		t.Fatalf("AllowN(%q, %d): %v", key, n, err)
	}
	return d
}

func TestBurstThenDeny(t *testing.T) {
	addr := redisAddr(t)
	const interval = 10 * time.Second
	l := mustNew(t, newClient(t, addr), Config{Prefix: testPrefix(t, addr), Rate: 1, Per: interval, Burst: 5})
	for i := range 5 {
		d := allow(t, l, "k", 1)
		if !d.Allowed || d.Remaining != 4-i || d.RetryAfter != 0 {
			t.Fatalf("request %d: %+v, want allowed with Remaining %d", i, d, 4-i)
		}
		if want := time.Duration(i+1) * interval; d.Reset > want || d.Reset < want-time.Second {
			t.Errorf("request %d: Reset %v, want about %v", i, d.Reset, want)
		}
	}
	d := allow(t, l, "k", 1)
	if d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter > interval {
		t.Fatalf("after burst: %+v, want denied with 0 < RetryAfter <= %v", d, interval)
	}
	if d := allow(t, l, "other", 1); !d.Allowed || d.Remaining != 4 {
		t.Fatalf("other key: %+v, want its own full bucket", d)
	}
	if d := allow(t, l, "k", 0); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("n=0: %+v, want allowed, Remaining 0", d)
	}
}

func TestWeightedAndNever(t *testing.T) {
	addr := redisAddr(t)
	const interval = time.Hour
	l := mustNew(t, newClient(t, addr), Config{Prefix: testPrefix(t, addr), Rate: 1, Per: interval, Burst: 10})
	for i, want := range []int{6, 2} {
		if d := allow(t, l, "k", 4); !d.Allowed || d.Remaining != want {
			t.Fatalf("take 4 #%d: %+v, want Remaining %d", i, d, want)
		}
	}
	d := allow(t, l, "k", 4)
	if d.Allowed || d.Remaining != 2 || d.RetryAfter > 2*interval || d.RetryAfter < 2*interval-time.Second {
		t.Fatalf("third 4: %+v, want denied, RetryAfter about 2h", d)
	}
	if d := allow(t, l, "k", 2); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("take 2: %+v, want allowed, Remaining 0", d)
	}
	d = allow(t, l, "fresh", 11)
	if d.Allowed || d.RetryAfter != ratelimit.Never || d.Remaining != 10 {
		t.Fatalf("n > Burst: %+v, want denied with RetryAfter Never", d)
	}
}

// TestSameAsTokenBucket checks that the script's decisions equal those of
// ratelimit.TokenBucket for the same sequence.
func TestSameAsTokenBucket(t *testing.T) {
	addr := redisAddr(t)
	for _, tc := range []struct {
		name  string
		rate  float64
		per   time.Duration
		burst int
	}{
		{"whole microseconds", 3, time.Hour, 7},
		{"fractional microseconds", 7, 100 * time.Hour, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Prefix: testPrefix(t, addr), Rate: tc.rate, Per: tc.per, Burst: tc.burst}
			l := mustNew(t, newClient(t, addr), cfg)
			tb, err := ratelimit.NewTokenBucket(ratelimit.Config{Rate: cfg.Rate, Per: cfg.Per, Burst: cfg.Burst})
			if err != nil {
				t.Fatal(err)
			}
			const tol = 2 * time.Second // the two clocks differ by the test's run time
			near := func(a, b time.Duration) bool { return a-b < tol && b-a < tol }
			for i, n := range []int{1, 2, 0, 3, 2, 1, 10, 1, 0, 5, 1} {
				got := allow(t, l, "k", n)
				want := tb.AllowN(time.Now(), n)
				if got.Allowed != want.Allowed || got.Remaining != want.Remaining ||
					(got.RetryAfter == ratelimit.Never) != (want.RetryAfter == ratelimit.Never) ||
					!near(got.RetryAfter, want.RetryAfter) || !near(got.Reset, want.Reset) {
					t.Fatalf("step %d (n=%d): redis %+v, token bucket %+v", i, n, got, want)
				}
			}
		})
	}
}

func TestRefillAndExpiry(t *testing.T) {
	addr := redisAddr(t)
	prefix := testPrefix(t, addr)
	c := newClient(t, addr)
	l := mustNew(t, c, Config{Prefix: prefix, Rate: 1, Per: 50 * time.Millisecond, Burst: 1})
	allow(t, l, "k", 1)
	d := allow(t, l, "k", 1)
	if d.Allowed {
		t.Fatalf("second: %+v, want denied", d)
	}
	ttl, err := c.PTTL(context.Background(), prefix+"k").Result()
	if err != nil || ttl <= 0 || ttl > 50*time.Millisecond {
		t.Fatalf("PTTL = %v, %v; want in (0, 50ms]", ttl, err)
	}
	time.Sleep(d.RetryAfter + 5*time.Millisecond)
	if d := allow(t, l, "k", 1); !d.Allowed {
		t.Fatalf("after RetryAfter: %+v, want allowed", d)
	}
	time.Sleep(150 * time.Millisecond)
	if n, err := c.Exists(context.Background(), prefix+"k").Result(); err != nil || n != 0 {
		t.Fatalf("idle key: Exists = %d, %v; want expired", n, err)
	}
}

func TestDistributedSharedBudget(t *testing.T) {
	addr := redisAddr(t)
	cfg := Config{Prefix: testPrefix(t, addr), Rate: 1, Per: time.Hour, Burst: 6}
	a := mustNew(t, newClient(t, addr), cfg)
	b := mustNew(t, newClient(t, addr), cfg)
	allowed := 0
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if d := allow(t, l, "shared", 1); d.Allowed {
			allowed++
			if d.Remaining != 6-allowed {
				t.Fatalf("request %d: Remaining %d, want %d", i, d.Remaining, 6-allowed)
			}
		}
	}
	if allowed != 6 {
		t.Fatalf("allowed %d across two limiters, want 6", allowed)
	}
}

func TestConcurrent(t *testing.T) {
	addr := redisAddr(t)
	c := newClient(t, addr)
	l := mustNew(t, c, Config{Prefix: testPrefix(t, addr), Rate: 1, Per: time.Hour, Burst: 100, Timeout: 5 * time.Second})
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				d, err := l.AllowN(context.Background(), "hot", 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 100 {
		t.Fatalf("allowed %d of 400, want exactly 100", got)
	}
}

func TestCancelledContext(t *testing.T) {
	addr := redisAddr(t)
	l := mustNew(t, newClient(t, addr), Config{Prefix: testPrefix(t, addr), Rate: 1, Outage: OutageOpen})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := l.AllowN(ctx, "k", 1)
	if d.Allowed || !errors.Is(err, ratelimit.ErrLimited) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %+v, %v", d, err)
	}
}

// stubLimiter is a Local limiter that admits exactly what it is told.
type stubLimiter struct{ calls atomic.Int64 }

func (s *stubLimiter) Allow() bool { return s.AllowN(time.Now(), 1).Allowed }
func (s *stubLimiter) AllowN(time.Time, int) ratelimit.Decision {
	s.calls.Add(1)
	return ratelimit.Decision{Allowed: true, Remaining: 42}
}

func checkOutage(t *testing.T, l *Limiter, policy string, stub *stubLimiter) {
	t.Helper()
	before := stub.calls.Load()
	d, err := l.AllowN(context.Background(), "k", 1)
	switch policy {
	case OutageOpen:
		if !d.Allowed || err != nil {
			t.Fatalf("open: %+v, %v; want allowed, nil", d, err)
		}
	case OutageClosed:
		if d.Allowed || !errors.Is(err, ErrUnavailable) || !errors.Is(err, ratelimit.ErrLimited) {
			t.Fatalf("closed: %+v, %v; want denied, ErrUnavailable", d, err)
		}
		var le *ratelimit.LimitedError
		if !errors.As(err, &le) || le.RetryAfter <= 0 {
			t.Fatalf("closed: %v, want a LimitedError with a RetryAfter hint", err)
		}
	case OutageLocal:
		if !d.Allowed || d.Remaining != 42 || err != nil || stub.calls.Load() != before+1 {
			t.Fatalf("local: %+v, %v; want the stub's decision", d, err)
		}
	}
}

func TestOutageDeadPort(t *testing.T) {
	dead := deadAddr(t)
	for _, policy := range []string{OutageOpen, OutageClosed, OutageLocal} {
		t.Run(policy, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer mp.Shutdown(context.Background())
			stub := &stubLimiter{}
			l := mustNew(t, newClient(t, dead), Config{Name: "api", Rate: 1, Outage: policy, Local: stub, MeterProvider: mp})
			checkOutage(t, l, policy, stub)
			checkOutage(t, l, policy, stub)
			got := counters(t, reader)
			if got[ErrorsMetricName] != 2 || got[FallbacksMetricName+"{resilience.ratelimit.outage="+policy+"}"] != 2 {
				t.Fatalf("metrics %v, want 2 errors and 2 fallbacks", got)
			}
			outcome := "allowed"
			if policy == OutageClosed {
				outcome = "limited"
			}
			if got[DecisionsMetricName+"{resilience.outcome="+outcome+"}"] != 2 {
				t.Fatalf("metrics %v, want 2 %s decisions", got, outcome)
			}
		})
	}
}

// TestOutageDefaultLocal checks that the default Local limiter is a token
// bucket with the configured Burst.
func TestOutageDefaultLocal(t *testing.T) {
	l := mustNew(t, newClient(t, deadAddr(t)), Config{Rate: 1, Per: time.Hour, Burst: 2})
	for i, want := range []bool{true, true, false} {
		d, err := l.AllowN(context.Background(), "k", 1)
		if err != nil || d.Allowed != want {
			t.Fatalf("request %d: %+v, %v; want Allowed %v", i, d, err, want)
		}
	}
}

// TestOutageProxy runs the client through a TCP proxy to the real Redis,
// stops the proxy mid-test, and restarts it on the same address.
func TestOutageProxy(t *testing.T) {
	addr := redisAddr(t)
	for _, policy := range []string{OutageOpen, OutageClosed, OutageLocal} {
		t.Run(policy, func(t *testing.T) {
			prefix := testPrefix(t, addr)
			p := startProxy(t, addr)
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer mp.Shutdown(context.Background())
			stub := &stubLimiter{}
			cfg := Config{Prefix: prefix, Rate: 1, Per: time.Hour, Burst: 100, Outage: policy, Local: stub, MeterProvider: mp}
			l := mustNew(t, newClient(t, p.addr), cfg)
			direct := newClient(t, addr)

			if d := allow(t, l, "k", 1); !d.Allowed || d.Remaining != 99 {
				t.Fatalf("through proxy: %+v, want Remaining 99", d)
			}
			p.stop()
			for range 3 {
				checkOutage(t, l, policy, stub)
			}
			if got := counters(t, reader)[FallbacksMetricName+"{resilience.ratelimit.outage="+policy+"}"]; got != 3 {
				t.Fatalf("fallbacks = %d, want 3", got)
			}
			// Meanwhile another replica keeps using Redis.
			other := mustNew(t, direct, cfg)
			if d := allow(t, other, "k", 1); d.Remaining != 98 {
				t.Fatalf("other replica: %+v, want Remaining 98", d)
			}

			p.start(t)
			deadline := time.Now().Add(5 * time.Second)
			for {
				before := counters(t, reader)[FallbacksMetricName+"{resilience.ratelimit.outage="+policy+"}"]
				d, err := l.AllowN(context.Background(), "k", 1)
				after := counters(t, reader)[FallbacksMetricName+"{resilience.ratelimit.outage="+policy+"}"]
				if after == before {
					if err != nil || !d.Allowed || d.Remaining != 97 {
						t.Fatalf("after recovery: %+v, %v; want Remaining 97 from Redis", d, err)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("limiter still falling back 5s after the proxy came back")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestNewNilClient(t *testing.T) {
	if _, err := New(nil, Config{Rate: 1}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

// TestExampleUsage runs what Example shows against the test Redis.
func TestExampleUsage(t *testing.T) {
	addr := redisAddr(t)
	l := mustNew(t, newClient(t, addr), Config{Name: "api", Prefix: testPrefix(t, addr), Rate: 100, Per: time.Minute, Outage: OutageLocal})
	if d := allow(t, l, "user:42", 1); !d.Allowed || d.Remaining != 99 {
		t.Fatalf("%+v, want allowed with Remaining 99", d)
	}
}
