package resilience_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/retry"
)

// spanEvent is a span event's name and attributes, for comparison.
type spanEvent struct {
	Name  string
	Attrs map[string]string
}

// traced runs fn with the context of a recording span of tp and returns
// the events the span got.
func traced(t *testing.T, fn func(ctx context.Context)) []spanEvent {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")
	fn(ctx)
	span.End()
	var out []spanEvent
	for _, e := range rec.Ended()[0].Events() {
		m := map[string]string{}
		for _, kv := range e.Attributes {
			m[string(kv.Key)] = kv.Value.String()
		}
		out = append(out, spanEvent{e.Name, m})
	}
	return out
}

func TestStageSpanEvents(t *testing.T) {
	errFallback := errors.New("no cache")
	block := func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	fail := func(context.Context) (int, error) { return 0, errBoom }
	tests := []struct {
		name   string
		stages func(t *testing.T) []resilience.Stage
		fn     func(context.Context) (int, error)
		want   []spanEvent
	}{
		{
			name: "rate limit",
			stages: func(t *testing.T) []resilience.Stage {
				lim, err := ratelimit.New(ratelimit.Config{Rate: 1, Per: time.Hour, Burst: 1})
				if err != nil {
					t.Fatal(err)
				}
				lim.Allow()
				return []resilience.Stage{resilience.RateLimit("orders", lim)}
			},
			fn: fail,
			want: []spanEvent{{ratelimit.RejectedEventName, map[string]string{
				"resilience.policy.name": "orders", "resilience.reason": "limited", "resilience.ratelimit.retry_after": "3600"}}},
		},
		{
			name:   "timeout",
			stages: func(*testing.T) []resilience.Stage { return []resilience.Stage{resilience.Timeout(time.Second)} },
			fn:     block,
			want:   []spanEvent{{resilience.TimeoutEventName, map[string]string{"resilience.timeout.duration": "1"}}},
		},
		{
			name: "fallback",
			stages: func(*testing.T) []resilience.Stage {
				return []resilience.Stage{resilience.Fallback(func(context.Context, error) (int, error) { return 7, nil })}
			},
			fn: fail,
			want: []spanEvent{{resilience.FallbackEventName, map[string]string{
				"error.type": "*errors.errorString", "error.message": "boom", "resilience.outcome": "success"}}},
		},
		{
			name: "fallback fails",
			stages: func(*testing.T) []resilience.Stage {
				return []resilience.Stage{resilience.Fallback(func(context.Context, error) (int, error) { return 0, errFallback })}
			},
			fn: fail,
			want: []spanEvent{{resilience.FallbackEventName, map[string]string{
				"error.type": "*errors.errorString", "error.message": "boom", "resilience.outcome": "failure"}}},
		},
		{
			name: "fallback after timeout",
			stages: func(*testing.T) []resilience.Stage {
				return []resilience.Stage{
					resilience.Fallback(func(context.Context, error) (int, error) { return 7, nil }),
					resilience.Timeout(time.Second),
				}
			},
			fn: block,
			want: []spanEvent{
				{resilience.TimeoutEventName, map[string]string{"resilience.timeout.duration": "1"}},
				{resilience.FallbackEventName, map[string]string{
					"error.type": "*resilience.TimeoutError", "error.message": "resilience: timeout after 1s: context deadline exceeded", "resilience.outcome": "success"}},
			},
		},
		{
			name: "retry around breaker",
			stages: func(t *testing.T) []resilience.Stage {
				cb, err := circuitbreaker.New(circuitbreaker.Config{Name: "db", MinimumCalls: 1, WindowSize: 1})
				if err != nil {
					t.Fatal(err)
				}
				return []resilience.Stage{
					resilience.Retry(retry.Policy{Name: "db", MaxAttempts: 2, Backoff: retry.Backoff{Kind: retry.KindConstant, Initial: time.Second}}),
					resilience.CircuitBreaker(cb),
				}
			},
			fn: fail,
			want: []spanEvent{
				{circuitbreaker.StateChangeEventName, map[string]string{
					"resilience.policy.name": "db", "resilience.circuitbreaker.from": "closed", "resilience.circuitbreaker.to": "open"}},
				{retry.AttemptEventName, map[string]string{
					"resilience.policy.name": "db", "resilience.retry.attempt_number": "2", "resilience.retry.delay": "1",
					"error.type": "*errors.errorString", "error.message": "boom"}},
				{circuitbreaker.RejectedEventName, map[string]string{"resilience.policy.name": "db", "resilience.circuitbreaker.current_state": "open"}},
				{retry.ExhaustedEventName, map[string]string{
					"resilience.policy.name": "db", "resilience.retry.attempt_number": "2", "resilience.reason": "max_attempts",
					"error.type": "*circuitbreaker.OpenError", "error.message": `circuitbreaker "db": open, retry after 29s`}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := mustNew[int](t, tt.stages(t)...)
				got := traced(t, func(ctx context.Context) { _, _ = p.Execute(ctx, tt.fn) })
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("events mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestSuccessPathAllocatesNothingInstrumented is TestSuccessPathAllocatesNothing
// with SDK meter providers and a recording span: a successful call records
// metrics and adds no event, without allocating.
func TestSuccessPathAllocatesNothingInstrumented(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	cb, _ := circuitbreaker.New(circuitbreaker.Config{MeterProvider: mp})
	bh, _ := bulkhead.New(bulkhead.Config{MeterProvider: mp})
	lim, _ := ratelimit.New(ratelimit.Config{Rate: 1e9, Burst: 1 << 20, MeterProvider: mp})
	p := mustNew[int](t,
		resilience.Retry(retry.Policy{MeterProvider: mp}),
		resilience.CircuitBreaker(cb),
		resilience.Bulkhead(bh),
		resilience.RateLimit("x", lim),
	)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")
	defer span.End()
	fn := func(context.Context) (int, error) { return 1, nil }
	p.Execute(ctx, fn) // makes the retry instruments
	if n := testing.AllocsPerRun(200, func() { p.Execute(ctx, fn) }); n != 0 {
		t.Errorf("Execute allocates %v times per call, want 0", n)
	}
}
