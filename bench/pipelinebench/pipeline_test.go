package pipelinebench

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	fscircuitbreaker "github.com/failsafe-go/failsafe-go/circuitbreaker"
	fsretry "github.com/failsafe-go/failsafe-go/retrypolicy"
	fstimeout "github.com/failsafe-go/failsafe-go/timeout"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/retry"
)

// benchPipelines runs the success path through retry, circuit breaker and
// bulkhead, outermost first, plus a timeout innermost when withTimeout:
// failsafe-go's executor first (the baseline column), then cairn's
// Pipeline, both with default policy settings and no telemetry exported.
//
// When watch is set the callee looks at its context's Done channel, as a
// callee that does I/O would: that costs failsafe-go nothing more (its
// timeout always derives a context) and makes cairn's timeout arm its
// timer.
func benchPipelines(b *testing.B, withTimeout, watch bool) {
	fn := func() (int, error) { return 1, nil }
	watched := func(ctx context.Context) (int, error) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		default:
			return 1, nil
		}
	}
	b.Run("variant=failsafe", func(b *testing.B) {
		policies := []failsafe.Policy[int]{
			fsretry.NewBuilder[int]().Build(),
			fscircuitbreaker.NewBuilder[int]().Build(),
			fsbulkhead.New[int](10),
		}
		if withTimeout {
			policies = append(policies, fstimeout.New[int](time.Second))
		}
		exec := failsafe.With(policies...)
		b.ReportAllocs()
		if watch {
			for b.Loop() {
				if v, err := exec.GetWithExecution(func(e failsafe.Execution[int]) (int, error) { return watched(e.Context()) }); v != 1 || err != nil {
					b.Fatalf("Get = %d, %v", v, err)
				}
			}
			return
		}
		for b.Loop() {
			if v, err := exec.Get(fn); v != 1 || err != nil {
				b.Fatalf("Get = %d, %v", v, err)
			}
		}
	})
	b.Run("variant=cairn", func(b *testing.B) {
		cb, err := circuitbreaker.New(circuitbreaker.Config{})
		if err != nil {
			b.Fatal(err)
		}
		bh, err := bulkhead.New(bulkhead.Config{})
		if err != nil {
			b.Fatal(err)
		}
		stages := []resilience.Stage{
			resilience.Retry(retry.Policy{}),
			resilience.CircuitBreaker(cb),
			resilience.Bulkhead(bh),
		}
		if withTimeout {
			stages = append(stages, resilience.Timeout(time.Second))
		}
		p, err := resilience.New[int](stages...)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		call := func(context.Context) (int, error) { return fn() }
		if watch {
			call = watched
		}
		b.ReportAllocs()
		for b.Loop() {
			if v, err := p.Execute(ctx, call); v != 1 || err != nil {
				b.Fatalf("Execute = %d, %v", v, err)
			}
		}
	})
}

// BenchmarkPipelineRetryBreakerBulkhead is retry(circuitbreaker(bulkhead(fn))).
func BenchmarkPipelineRetryBreakerBulkhead(b *testing.B) { benchPipelines(b, false, false) }

// BenchmarkPipelineRetryBreakerBulkheadTimeout is
// retry(circuitbreaker(bulkhead(timeout(fn)))), ANCHORS.md's four-policy
// composition.
func BenchmarkPipelineRetryBreakerBulkheadTimeout(b *testing.B) { benchPipelines(b, true, false) }

// BenchmarkPipelineRetryBreakerBulkheadTimeoutWatched is the four-policy
// composition with a callee that looks at its context's Done channel.
func BenchmarkPipelineRetryBreakerBulkheadTimeoutWatched(b *testing.B) {
	benchPipelines(b, true, true)
}
