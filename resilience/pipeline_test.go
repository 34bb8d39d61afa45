package resilience_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var errBoom = errors.New("boom")

// tracer is a Policy that records when the call passes it, to show order.
type tracer struct {
	name string
	log  *[]string
}

func (t tracer) Execute(ctx context.Context, next resilience.Next[int]) (int, error) {
	*t.log = append(*t.log, "enter "+t.name)
	v, err := next.Run(ctx)
	*t.log = append(*t.log, "exit "+t.name)
	return v, err
}

func mustNew[T any](t *testing.T, stages ...resilience.Stage) *resilience.Pipeline[T] {
	t.Helper()
	p, err := resilience.New[T](stages...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOrderIsOuterToInner(t *testing.T) {
	var log []string
	p := mustNew[int](t,
		resilience.Custom[int](tracer{"a", &log}),
		resilience.Custom[int](tracer{"b", &log}),
	)
	v, err := p.Execute(context.Background(), func(context.Context) (int, error) {
		log = append(log, "call")
		return 7, nil
	})
	if v != 7 || err != nil {
		t.Fatalf("Execute = %d, %v; want 7, nil", v, err)
	}
	want := "enter a,enter b,call,exit b,exit a"
	if got := strings.Join(log, ","); got != want {
		t.Errorf("order = %s, want %s", got, want)
	}
}

func TestRetryAroundBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cb, err := circuitbreaker.New(circuitbreaker.Config{MinimumCalls: 2, WindowSize: 2, FailureRateThreshold: 1})
		if err != nil {
			t.Fatal(err)
		}
		p := mustNew[string](t,
			resilience.Retry(retry.Policy{MaxAttempts: 5, Backoff: retry.Backoff{Kind: retry.KindConstant, Initial: time.Second}}),
			resilience.CircuitBreaker(cb),
		)
		calls := 0
		v, err := p.Execute(context.Background(), func(context.Context) (string, error) {
			calls++
			if calls < 2 {
				return "", errBoom
			}
			return "ok", nil
		})
		if v != "ok" || err != nil || calls != 2 {
			t.Fatalf("Execute = %q, %v after %d calls; want ok, nil after 2", v, err, calls)
		}

		// Two failures trip the breaker; the retry then meets its
		// rejections, which are not retried past MaxAttempts and keep
		// their type.
		calls = 0
		_, err = p.Execute(context.Background(), func(context.Context) (string, error) {
			calls++
			return "", errBoom
		})
		if !errors.Is(err, circuitbreaker.ErrOpen) {
			t.Errorf("err = %v, want one matching circuitbreaker.ErrOpen", err)
		}
		var re *retry.Error
		if !errors.As(err, &re) || re.Attempts != 5 {
			t.Errorf("err = %v, want a *retry.Error after 5 attempts", err)
		}
		if calls != 2 {
			t.Errorf("fn called %d times, want 2 (then the breaker opened)", calls)
		}
	})
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := mustNew[int](t, resilience.Timeout(time.Second))
		block := func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}
		start := time.Now()
		_, err := p.Execute(context.Background(), block)
		if !errors.Is(err, resilience.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want ErrTimeout wrapping DeadlineExceeded", err)
		}
		var te *resilience.TimeoutError
		if !errors.As(err, &te) || te.After != time.Second || time.Since(start) != time.Second {
			t.Errorf("err = %#v after %v, want a TimeoutError after exactly 1s", err, time.Since(start))
		}

		// A caller deadline sooner than the timeout is the caller's: no
		// TimeoutError.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err = p.Execute(ctx, block)
		if errors.Is(err, resilience.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the caller's DeadlineExceeded, not ErrTimeout", err)
		}

		// A call that finishes in time is untouched.
		v, err := p.Execute(context.Background(), func(context.Context) (int, error) {
			time.Sleep(500 * time.Millisecond)
			return 3, nil
		})
		if v != 3 || err != nil {
			t.Errorf("Execute = %d, %v; want 3, nil", v, err)
		}
	})
}

func TestFallback(t *testing.T) {
	p := mustNew[string](t,
		resilience.Fallback(func(_ context.Context, err error) (string, error) {
			return "cached (" + err.Error() + ")", nil
		}),
	)
	v, err := p.Execute(context.Background(), func(context.Context) (string, error) { return "", errBoom })
	if v != "cached (boom)" || err != nil {
		t.Errorf("Execute = %q, %v; want the fallback's value", v, err)
	}
}

func TestRejections(t *testing.T) {
	bh, err := bulkhead.New(bulkhead.Config{MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	lim, err := ratelimit.New(ratelimit.Config{Rate: 1, Per: time.Hour, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := mustNew[int](t, resilience.RateLimit("orders", lim), resilience.Bulkhead(bh))
	ok := func(context.Context) (int, error) { return 1, nil }
	if _, err := p.Execute(context.Background(), ok); err != nil {
		t.Fatalf("first call: %v", err)
	}
	_, err = p.Execute(context.Background(), ok)
	var le *ratelimit.LimitedError
	if !errors.Is(err, ratelimit.ErrLimited) || !errors.As(err, &le) || le.Limit != "orders" || le.RetryAfter <= 0 {
		t.Errorf("second call: err = %v, want a LimitedError of \"orders\" with a RetryAfter", err)
	}

	// A bulkhead whose only slot is held rejects at once (no queue).
	held, err := bh.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	p2 := mustNew[int](t, resilience.Bulkhead(bh))
	if _, err := p2.Execute(context.Background(), ok); !errors.Is(err, bulkhead.ErrFull) {
		t.Errorf("full bulkhead: err = %v, want bulkhead.ErrFull", err)
	}
}

func TestExecuteWithDoneContext(t *testing.T) {
	p := mustNew[int](t, resilience.Timeout(time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, err := p.Execute(ctx, func(context.Context) (int, error) { called = true; return 0, nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Execute on a done context = %v, called %v; want context.Canceled without calling fn", err, called)
	}
}

func TestNewRejectsBadStages(t *testing.T) {
	tests := []struct {
		name  string
		stage resilience.Stage
		want  string
	}{
		{"zero", resilience.Stage{}, "stage 0: zero Stage"},
		{"nil breaker", resilience.CircuitBreaker(nil), "circuit breaker is nil"},
		{"nil bulkhead", resilience.Bulkhead(nil), "bulkhead is nil"},
		{"nil limiter", resilience.RateLimit("x", nil), `rate limiter "x" is nil`},
		{"timeout", resilience.Timeout(-time.Second), "timeout -1s is not positive"},
		{"retry", resilience.Retry(retry.Policy{MaxAttempts: -1}), "MaxAttempts = -1"},
		{"fallback type", resilience.Fallback(func(context.Context, error) (string, error) { return "", nil }), "does not return the pipeline's result type int"},
		{"policy type", resilience.Custom[string](nil), "is not a resilience.Policy[int]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := resilience.New[int](tt.stage)
			if err == nil || !strings.Contains(err.Error(), tt.want) || p != nil {
				t.Errorf("New = %v, %v; want nil and an error containing %q", p, err, tt.want)
			}
		})
	}
}

// The success path through breaker, bulkhead, rate limiter and retry
// allocates nothing.
func TestSuccessPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	cb, _ := circuitbreaker.New(circuitbreaker.Config{})
	bh, _ := bulkhead.New(bulkhead.Config{})
	lim, _ := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1 << 20})
	p := mustNew[int](t,
		resilience.Retry(retry.Policy{}),
		resilience.CircuitBreaker(cb),
		resilience.Bulkhead(bh),
		resilience.RateLimit("x", lim),
	)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	if n := testing.AllocsPerRun(200, func() { p.Execute(ctx, fn) }); n != 0 {
		t.Errorf("Execute allocates %v times per call, want 0", n)
	}
}

// A call that panics inside a circuit breaker stage is recorded as a
// failure, so the breaker's window sees it and no probe slot stays taken.
func TestBreakerStageRecordsPanic(t *testing.T) {
	cb, err := circuitbreaker.New(circuitbreaker.Config{MinimumCalls: 1, WindowSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	p := mustNew[int](t, resilience.CircuitBreaker(cb))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the call's panic did not reach the caller")
			}
		}()
		p.Execute(context.Background(), func(context.Context) (int, error) { panic("boom") })
	}()
	if got := cb.State(); got != circuitbreaker.StateOpen {
		t.Errorf("breaker state after a panicking call = %v, want open (the panic counted as a failure)", got)
	}
}
