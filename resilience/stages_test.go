package resilience_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

// fixedCPU is a shed.CPU that always reads the same usage, so that no
// sampler goroutine runs.
type fixedCPU float64

func (c fixedCPU) Usage() float64 { return float64(c) }

func newLimiter(t *testing.T, limit int) *adaptive.Limiter {
	t.Helper()
	l, err := adaptive.New(adaptive.Config{InitialLimit: limit, MinLimit: limit, MaxLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newShedder(t *testing.T, cpu float64) *shed.Shedder {
	t.Helper()
	s, err := shed.New(shed.Config{CPU: fixedCPU(cpu)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newThrottle(t *testing.T) *adaptive.Throttle {
	t.Helper()
	th, err := adaptive.NewThrottle(adaptive.ThrottleConfig{Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	return th
}

// mustPanic runs f and fails t unless it panics.
func mustPanic(t *testing.T, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Error("the call's panic did not reach the caller")
		}
	}()
	f()
}

func ok(context.Context) (int, error) { return 1, nil }

func panics(context.Context) (int, error) { panic("boom") }

func TestNewRejectsNilNewStages(t *testing.T) {
	tests := []struct {
		name  string
		stage resilience.Stage
		want  string
	}{
		{"adaptive", resilience.Adaptive(nil), "stage 0: adaptive limiter is nil"},
		{"shed", resilience.Shed(nil), "stage 0: shedder is nil"},
		{"throttle", resilience.Throttle(nil), "stage 0: throttle is nil"},
		{"hedge", resilience.Hedge(nil), "stage 0: hedger is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := resilience.New[int](tt.stage)
			if err == nil || err.Error() != "resilience: "+tt.want || p != nil {
				t.Errorf("New = %v, %v; want nil and %q", p, err, "resilience: "+tt.want)
			}
		})
	}
}

func TestAdaptiveStage(t *testing.T) {
	l := newLimiter(t, 1)
	p := mustNew[int](t, resilience.Adaptive(l))
	ctx := context.Background()

	var inside int
	if v, err := p.Execute(ctx, func(context.Context) (int, error) { inside = l.InFlight(); return 7, nil }); v != 7 || err != nil {
		t.Fatalf("Execute = %v, %v; want 7, nil", v, err)
	}
	if inside != 1 {
		t.Errorf("InFlight during the call = %d, want 1", inside)
	}
	if n := l.InFlight(); n != 0 {
		t.Errorf("InFlight after the call = %d, want 0", n)
	}
	if _, err := p.Execute(ctx, func(context.Context) (int, error) { return 0, errBoom }); !errors.Is(err, errBoom) {
		t.Errorf("Execute of a failing call = %v, want %v", err, errBoom)
	}

	held, _ := l.Acquire()
	called := false
	_, err := p.Execute(ctx, func(context.Context) (int, error) { called = true; return 1, nil })
	if !errors.Is(err, adaptive.ErrLimitExceeded) || called {
		t.Errorf("Execute at the limit = %v (called %v), want adaptive.ErrLimitExceeded without a call", err, called)
	}
	held.Done(nil)

	mustPanic(t, func() { p.Execute(ctx, panics) })
	if n := l.InFlight(); n != 0 {
		t.Errorf("InFlight after a panic = %d, want 0", n)
	}
}

// An overload refusal downstream counts as a drop, and shrinks an AIMD
// limit; a plain failure does not.
func TestAdaptiveStageDropsOnOverload(t *testing.T) {
	l, err := adaptive.New(adaptive.Config{InitialLimit: 10, MaxLimit: 10})
	if err != nil {
		t.Fatal(err)
	}
	p := mustNew[int](t, resilience.Adaptive(l))
	ctx := context.Background()
	p.Execute(ctx, func(context.Context) (int, error) { return 0, errBoom })
	if got := l.Limit(); got != 10 {
		t.Errorf("Limit after a plain failure = %d, want 10", got)
	}
	p.Execute(ctx, func(context.Context) (int, error) { return 0, bulkhead.ErrFull })
	if got := l.Limit(); got >= 10 {
		t.Errorf("Limit after an overload refusal = %d, want less than 10", got)
	}
	if n := l.InFlight(); n != 0 {
		t.Errorf("InFlight = %d, want 0", n)
	}
}

func TestShedStage(t *testing.T) {
	s := newShedder(t, 0)
	p := mustNew[int](t, resilience.Shed(s))
	ctx := context.Background()

	var inside int
	if v, err := p.Execute(ctx, func(context.Context) (int, error) { inside = s.InFlight(); return 7, nil }); v != 7 || err != nil {
		t.Fatalf("Execute = %v, %v; want 7, nil", v, err)
	}
	if inside != 1 {
		t.Errorf("InFlight during the call = %d, want 1", inside)
	}
	mustPanic(t, func() { p.Execute(ctx, panics) })
	if n := s.InFlight(); n != 0 {
		t.Errorf("InFlight after the calls = %d, want 0", n)
	}

	busy := newShedder(t, 1)
	p = mustNew[int](t, resilience.Shed(busy))
	called := false
	_, err := p.Execute(shed.WithPriority(ctx, shed.Sheddable), func(context.Context) (int, error) { called = true; return 1, nil })
	var se *shed.ShedError
	if !errors.Is(err, shed.ErrShed) || !errors.As(err, &se) || se.RetryAfter <= 0 || called {
		t.Errorf("Execute of a sheddable call when overloaded = %v (called %v), want a *shed.ShedError with a RetryAfter", err, called)
	}
	if n := busy.InFlight(); n != 0 {
		t.Errorf("InFlight after a shed call = %d, want 0", n)
	}
}

func TestThrottleStage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		err     error
		wantRej float64 // RejectProbability after one call
	}{
		{"success", nil, 0},
		{"plain failure counts as accepted", errBoom, 0},
		{"overload refusal", &shed.ShedError{Name: "x"}, 0.5},
		{"open breaker", circuitbreaker.ErrOpen, 0.5},
		{"Overloaded method", overloaded{}, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThrottle(t)
			p := mustNew[int](t, resilience.Throttle(th))
			if _, err := p.Execute(ctx, func(context.Context) (int, error) { return 0, tt.err }); err != tt.err {
				t.Errorf("Execute = %v, want %v", err, tt.err)
			}
			if got := th.RejectProbability(); got != tt.wantRej {
				t.Errorf("RejectProbability = %v, want %v", got, tt.wantRej)
			}
		})
	}

	t.Run("rejects", func(t *testing.T) {
		th := newThrottle(t)
		th.Record(false)
		p := mustNew[int](t, resilience.Throttle(th))
		called := false
		_, err := p.Execute(ctx, func(context.Context) (int, error) { called = true; return 1, nil })
		if !errors.Is(err, resilience.ErrThrottled) || called {
			t.Errorf("Execute = %v (called %v), want resilience.ErrThrottled without a call", err, called)
		}
	})

	t.Run("panic counts as accepted", func(t *testing.T) {
		// Rand never falls below the reject probability: nothing is
		// rejected locally.
		th, err := adaptive.NewThrottle(adaptive.ThrottleConfig{Rand: func() float64 { return 0.99 }})
		if err != nil {
			t.Fatal(err)
		}
		th.Record(false) // probability 1/2
		p := mustNew[int](t, resilience.Throttle(th))
		mustPanic(t, func() { p.Execute(ctx, panics) })
		if got := th.RejectProbability(); got != 0 {
			t.Errorf("RejectProbability after a panic = %v, want 0 (recorded as accepted)", got)
		}
	})
}

// overloaded is an error that says it is a refusal for overload.
type overloaded struct{}

func (overloaded) Error() string    { return "overloaded" }
func (overloaded) Overloaded() bool { return true }

func TestIsOverload(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errBoom, false},
		{context.DeadlineExceeded, false},
		{shed.ErrShed, true},
		{bulkhead.ErrFull, true},
		{circuitbreaker.ErrOpen, true},
		{adaptive.ErrLimitExceeded, true},
		{resilience.ErrThrottled, true},
		{errors.Join(errBoom, overloaded{}), true},
	}
	for _, tt := range tests {
		if got := resilience.IsOverload(tt.err); got != tt.want {
			t.Errorf("IsOverload(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// A slow first attempt is hedged; the hedge wins and cancels the first,
// and each attempt runs through the inner stages.
func TestHedgeStageWinnerCancelsLoser(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := hedge.New(hedge.Config{Delay: 10 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var passes atomic.Int32
		count := countingPolicy{&passes}
		p := mustNew[int](t, resilience.Hedge(h), resilience.Custom[int](count))

		var attempts atomic.Int32
		firstCancelled := make(chan struct{})
		v, err := p.Execute(context.Background(), func(ctx context.Context) (int, error) {
			if attempts.Add(1) == 1 {
				<-ctx.Done()
				close(firstCancelled)
				return 0, ctx.Err()
			}
			return 2, nil
		})
		if v != 2 || err != nil {
			t.Fatalf("Execute = %v, %v; want the hedge's 2, nil", v, err)
		}
		<-firstCancelled
		synctest.Wait()
		if n := passes.Load(); n != 2 {
			t.Errorf("attempts through the inner stage = %d, want 2", n)
		}
	})
}

// When every attempt fails, the hedge stage's error wraps theirs.
func TestHedgeStageFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, err := hedge.New(hedge.Config{Delay: 10 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cb, _ := circuitbreaker.New(circuitbreaker.Config{})
		cb.ForceOpen()
		p := mustNew[int](t, resilience.Hedge(h), resilience.CircuitBreaker(cb))
		_, err = p.Execute(context.Background(), ok)
		var he *hedge.Error
		if !errors.As(err, &he) || !errors.Is(err, circuitbreaker.ErrOpen) {
			t.Errorf("Execute = %v, want a *hedge.Error matching circuitbreaker.ErrOpen", err)
		}
	})
}

// countingPolicy counts the calls that pass it.
type countingPolicy struct{ n *atomic.Int32 }

func (c countingPolicy) Execute(ctx context.Context, next resilience.Next[int]) (int, error) {
	c.n.Add(1)
	return next.Run(ctx)
}

// The success path through an adaptive limiter, a shedder and a throttle
// allocates nothing.
func TestNewStagesSuccessPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	p := mustNew[int](t,
		resilience.Throttle(newThrottle(t)),
		resilience.Shed(newShedder(t, 0)),
		resilience.Adaptive(newLimiter(t, 100)),
	)
	ctx := context.Background()
	if n := testing.AllocsPerRun(200, func() { p.Execute(ctx, ok) }); n != 0 {
		t.Errorf("Execute allocates %v times per call, want 0", n)
	}
}

func TestRetryResult(t *testing.T) {
	pol := retry.Policy{MaxAttempts: 5, Backoff: retry.Backoff{Kind: retry.KindConstant, Initial: time.Nanosecond}}
	pending := func(status string) bool { return status == "pending" }

	calls := 0
	p, err := resilience.New[string](resilience.RetryResult(pol, pending))
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Execute(t.Context(), func(context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "pending", nil
		}
		return "done", nil
	})
	if v != "done" || err != nil || calls != 3 {
		t.Errorf("Execute = %q, %v after %d calls; want done, nil after 3", v, err, calls)
	}

	calls = 0
	v, err = p.Execute(t.Context(), func(context.Context) (string, error) {
		calls++
		return "pending", nil
	})
	var re *retry.Error
	if v != "pending" || !errors.Is(err, resilience.ErrResultRejected) || !errors.As(err, &re) || re.Attempts != 5 || calls != 5 {
		t.Errorf("always pending: Execute = %q, %v after %d calls; want pending and a retry.Error of 5 attempts wrapping ErrResultRejected", v, err, calls)
	}

	if _, err := resilience.New[int](resilience.RetryResult(pol, pending)); err == nil || !strings.Contains(err.Error(), "result predicate func(string) bool does not take the pipeline's result type int") {
		t.Errorf("New[int] with a func(string) bool predicate = %v", err)
	}
}

func TestFallbackValue(t *testing.T) {
	p, err := resilience.New[[]string](resilience.FallbackValue([]string{"bestsellers"}))
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Execute(t.Context(), func(context.Context) ([]string, error) {
		return nil, errors.New("recommendations down")
	})
	if err != nil || len(v) != 1 || v[0] != "bestsellers" {
		t.Errorf("Execute = %v, %v; want [bestsellers], nil", v, err)
	}
	if _, err := resilience.New[int](resilience.FallbackValue("x")); err == nil {
		t.Error("New[int] with a string FallbackValue: nil error")
	}
}

// perKey is a KeyedLimiter of one token bucket per key, made on first use.
type perKey struct {
	mu      sync.Mutex
	buckets map[string]*ratelimit.TokenBucket
}

func (p *perKey) AllowN(_ context.Context, key string, n int) (ratelimit.Decision, error) {
	p.mu.Lock()
	b, ok := p.buckets[key]
	if !ok {
		var err error
		if b, err = ratelimit.NewTokenBucket(ratelimit.Config{Rate: 1, Per: time.Hour, Burst: 2}); err != nil {
			p.mu.Unlock()
			return ratelimit.Decision{}, err
		}
		p.buckets[key] = b
	}
	p.mu.Unlock()
	return b.AllowN(time.Now(), n), nil
}

type tenantKey struct{}

func TestKeyedRateLimit(t *testing.T) {
	l := &perKey{buckets: map[string]*ratelimit.TokenBucket{}}
	tenant := func(ctx context.Context) string { s, _ := ctx.Value(tenantKey{}).(string); return s }
	p, err := resilience.New[int](resilience.KeyedRateLimit("per-tenant", l, tenant))
	if err != nil {
		t.Fatal(err)
	}
	call := func(ctx context.Context) (int, error) { return 1, nil }
	a := context.WithValue(t.Context(), tenantKey{}, "a")
	b := context.WithValue(t.Context(), tenantKey{}, "b")
	for i, tt := range []struct {
		ctx     context.Context
		limited bool
	}{{a, false}, {a, false}, {a, true}, {b, false}, {b, false}, {b, true}} {
		_, err := p.Execute(tt.ctx, call)
		var le *ratelimit.LimitedError
		if got := errors.As(err, &le); got != tt.limited || (got && (le.Limit != "per-tenant" || le.RetryAfter <= 0)) {
			t.Errorf("call %d: err = %v, want limited %v", i, err, tt.limited)
		}
	}
	if _, err := resilience.New[int](resilience.KeyedRateLimit("x", nil, tenant)); err == nil || !strings.Contains(err.Error(), `keyed rate limiter "x" or its key function is nil`) {
		t.Errorf("nil limiter: New error = %v", err)
	}
}
