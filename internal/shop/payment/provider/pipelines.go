package provider

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/budget"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/resiliencehttp"
	"github.com/cairnhq/cairn/resilience/retry"
)

// PolicyName names the default policies in metrics and span events
// (resilience.policy.name).
const PolicyName = "payment-provider"

// Pipelines are the default resilience pipelines of a Client, built by
// DefaultPipelines, and the policies they share. Close them when the
// client is no longer used.
type Pipelines struct {
	// Writes runs charges and refunds: retry (3 attempts, exponential
	// backoff from 50ms with full jitter, honouring Retry-After, drawing
	// on Budget, never into an open breaker), then Breaker, then a 2s
	// timeout per attempt.
	Writes *resilience.Pipeline[*http.Response]
	// Reads runs look-ups: the same retry, then a hedge (one hedge after
	// the adaptive p95 latency of the provider, between 5ms and 100ms),
	// then Breaker, then a 1s timeout per attempt.
	Reads *resilience.Pipeline[*http.Response]
	// Breaker is shared by reads and writes: one dependency, one breaker.
	// It opens when half of the last 20 calls (at least 10) failed, for
	// 5s.
	Breaker *circuitbreaker.Breaker
	// Budget limits retries and hedges together (gRPC A6 throttling with
	// 10 tokens).
	Budget *budget.GRPC
	// Hedger hedges the reads.
	Hedger *hedge.Hedger
}

// DefaultPipelines builds the pipelines a Client uses when no resilience
// configuration is given, with their metrics on mp (nil: the OpenTelemetry
// global MeterProvider).
func DefaultPipelines(mp metric.MeterProvider) (*Pipelines, error) {
	p := &Pipelines{}
	var err error
	if p.Budget, err = budget.NewGRPC(budget.Config{Name: PolicyName, MaxTokens: 10, TokenRatio: 0.1, MeterProvider: mp}); err != nil {
		return nil, err
	}
	if p.Breaker, err = circuitbreaker.New(circuitbreaker.Config{
		Name: PolicyName, WindowSize: 20, MinimumCalls: 10, FailureRateThreshold: 0.5,
		OpenDuration: 5 * time.Second, HalfOpenProbes: 3, MeterProvider: mp,
	}); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	if p.Hedger, err = hedge.New(hedge.Config{
		Name: PolicyName, Quantile: 0.95, MinDelay: 5 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
		MeterProvider: mp,
	}, p.Budget); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	rp := retry.Policy{
		Name:          PolicyName,
		MaxAttempts:   3,
		Backoff:       retry.Backoff{Kind: "exponential", Initial: 50 * time.Millisecond, Max: time.Second, Jitter: "full"},
		RetryIf:       retryable,
		Pushback:      resiliencehttp.RetryAfterPushback,
		Budget:        p.Budget,
		MeterProvider: mp,
	}
	if p.Writes, err = resilience.New[*http.Response](
		resilience.Retry(rp),
		resilience.CircuitBreaker(p.Breaker),
		resilience.Timeout(2*time.Second),
	); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	if p.Reads, err = resilience.New[*http.Response](
		resilience.Retry(rp),
		resilience.Hedge(p.Hedger),
		resilience.CircuitBreaker(p.Breaker),
		resilience.Timeout(time.Second),
	); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

// retryable is the default retry's RetryIf: every failure except an open
// breaker (retrying into it only burns the budget) and the caller's
// context ending.
func retryable(err error) bool {
	return !errors.Is(err, circuitbreaker.ErrOpen) && !errors.Is(err, context.Canceled) &&
		(!errors.Is(err, context.DeadlineExceeded) || errors.Is(err, resilience.ErrTimeout))
}

// Close unregisters the policies' metric callbacks. The pipelines keep
// working.
func (p *Pipelines) Close() error {
	var errs []error
	if p.Hedger != nil {
		errs = append(errs, p.Hedger.Close())
	}
	if p.Breaker != nil {
		errs = append(errs, p.Breaker.Close())
	}
	if p.Budget != nil {
		errs = append(errs, p.Budget.Close())
	}
	return errors.Join(errs...)
}
