package retry

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cairnhq/cairn/resilience/budget"
	"go.opentelemetry.io/otel/metric/noop"
)

var errBoom = errors.New("boom")

// recorder returns fn failing with the errors of errs in turn (nil after
// them) and the times of its calls, measured from the start.
func recorder(errs ...error) (func(context.Context) error, *[]time.Duration) {
	start := time.Now()
	var calls []time.Duration
	return func(context.Context) error {
		calls = append(calls, time.Since(start))
		if len(calls) <= len(errs) {
			return errs[len(calls)-1]
		}
		return nil
	}, &calls
}

func TestDoSucceedsAfterRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, calls := recorder(errBoom, errBoom)
		if err := Do(context.Background(), Policy{}, fn); err != nil {
			t.Fatalf("Do = %v", err)
		}
		want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond}
		if len(*calls) != 3 || (*calls)[1] != want[1] || (*calls)[2] != want[2] {
			t.Fatalf("calls at %v, want %v", *calls, want)
		}
	})
}

func TestDoMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, calls := recorder(errBoom, errBoom, errBoom, errBoom)
		err := Do(context.Background(), Policy{Name: "db", MaxAttempts: 3, Backoff: Backoff{Kind: KindConstant, Initial: time.Second}}, fn)
		var re *Error
		if !errors.As(err, &re) || re.Reason != ReasonMaxAttempts || re.Attempts != 3 || !errors.Is(err, errBoom) {
			t.Fatalf("Do = %v, want max_attempts after 3", err)
		}
		if got := err.Error(); got != `retry "db": gave up after 3 attempts (max_attempts): boom` {
			t.Fatalf("Error() = %q", got)
		}
		if len(*calls) != 3 || (*calls)[2] != 2*time.Second {
			t.Fatalf("calls at %v", *calls)
		}
	})
}

func TestDoNotRetryable(t *testing.T) {
	fn, calls := recorder(context.Canceled)
	if err := Do(context.Background(), Policy{}, fn); err != context.Canceled || len(*calls) != 1 {
		t.Fatalf("Do = %v after %d calls, want context.Canceled after 1", err, len(*calls))
	}
	perm := errors.New("permanent")
	fn, calls = recorder(errBoom, perm)
	p := Policy{Backoff: Backoff{Initial: time.Nanosecond}, RetryIf: func(err error) bool { return err == errBoom }}
	if err := Do(context.Background(), p, fn); err != perm || len(*calls) != 2 {
		t.Fatalf("Do = %v after %d calls, want permanent after 2", err, len(*calls))
	}
}

func TestDoMaxElapsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fn, calls := recorder(errBoom, errBoom, errBoom, errBoom, errBoom)
		// Attempts at 0, 1s, 3s; the next would start at 7s > 5s.
		p := Policy{MaxAttempts: 10, MaxElapsed: 5 * time.Second, Backoff: Backoff{Initial: time.Second}}
		err := Do(context.Background(), p, fn)
		var re *Error
		if !errors.As(err, &re) || re.Reason != ReasonMaxElapsed || re.Attempts != 3 {
			t.Fatalf("Do = %v, want max_elapsed after 3", err)
		}
		if len(*calls) != 3 || (*calls)[2] != 3*time.Second {
			t.Fatalf("calls at %v", *calls)
		}
	})
}

func TestDoContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		fn, calls := recorder(errBoom, errBoom, errBoom)
		start := time.Now()
		err := Do(ctx, Policy{MaxAttempts: 5, Backoff: Backoff{Kind: KindConstant, Initial: time.Second}}, fn)
		var re *Error
		if !errors.As(err, &re) || re.Reason != ReasonContext || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errBoom) {
			t.Fatalf("Do = %v, want context reason", err)
		}
		if len(*calls) != 2 || time.Since(start) != 1500*time.Millisecond {
			t.Fatalf("%d calls, returned after %v", len(*calls), time.Since(start))
		}
	})
}

func TestDoPushback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop := errors.New("stop")
		fn, calls := recorder(errBoom, stop)
		p := Policy{MaxAttempts: 5, Backoff: Backoff{Kind: KindConstant, Initial: time.Second},
			Pushback: func(err error) (time.Duration, bool, bool) {
				if err == stop {
					return Pushback([]string{"-1"})
				}
				return Pushback([]string{"250"})
			}}
		err := Do(context.Background(), p, fn)
		var re *Error
		if !errors.As(err, &re) || re.Reason != ReasonPushback || re.Attempts != 2 || !errors.Is(err, stop) {
			t.Fatalf("Do = %v, want pushback after 2", err)
		}
		if (*calls)[1] != 250*time.Millisecond {
			t.Fatalf("second call at %v, want 250ms", (*calls)[1])
		}
	})
}

func TestDoBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := budget.NewGRPC(budget.Config{MaxTokens: 4, TokenRatio: 1, MeterProvider: noop.NewMeterProvider()})
		if err != nil {
			t.Fatal(err)
		}
		fn, calls := recorder(errBoom, errBoom, errBoom, errBoom)
		// 4 tokens: failures leave 3 (retry), 2 (denied: not above 4/2).
		err = Do(context.Background(), Policy{MaxAttempts: 10, Budget: b}, fn)
		var re *Error
		if !errors.As(err, &re) || re.Reason != ReasonBudget || re.Attempts != 2 {
			t.Fatalf("Do = %v, want budget after 2", err)
		}
		if len(*calls) != 2 || b.Tokens() != 2 {
			t.Fatalf("%d calls, %v tokens", len(*calls), b.Tokens())
		}
		if err := Do(context.Background(), Policy{Budget: b}, func(context.Context) error { return nil }); err != nil || b.Tokens() != 3 {
			t.Fatalf("success: %v, tokens %v, want 3", err, b.Tokens())
		}
	})
}

func TestDoInvalid(t *testing.T) {
	called := false
	err := Do(context.Background(), Policy{MaxAttempts: -1, Backoff: Backoff{Kind: "x"}}, func(context.Context) error { called = true; return nil })
	if err == nil || called || !strings.Contains(err.Error(), "MaxAttempts = -1") || !strings.Contains(err.Error(), `Kind = "x"`) {
		t.Fatalf("Do = %v, called %v", err, called)
	}
	if err := (Policy{MaxElapsed: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "MaxElapsed = -1ns") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestPolicyJSON(t *testing.T) {
	var p Policy
	in := `{"name":"db","max_attempts":4,"max_elapsed":"30s","backoff":{"initial":"250ms","max":"5s","jitter":"full"}}`
	if err := json.Unmarshal([]byte(in), &p); err != nil {
		t.Fatal(err)
	}
	want := Policy{Name: "db", MaxAttempts: 4, MaxElapsed: 30 * time.Second, Backoff: Backoff{Initial: 250 * time.Millisecond, Max: 5 * time.Second, Jitter: JitterFull}}
	if p.Name != want.Name || p.MaxAttempts != want.MaxAttempts || p.MaxElapsed != want.MaxElapsed || p.Backoff != want.Backoff {
		t.Fatalf("decoded %+v, want %+v", p, want)
	}
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Policy
	if err := json.Unmarshal(out, &back); err != nil || back.MaxElapsed != p.MaxElapsed || back.Backoff != p.Backoff || !strings.Contains(string(out), `"max_elapsed":"30s"`) {
		t.Fatalf("round trip of %s: %+v, %v", out, back, err)
	}
}
