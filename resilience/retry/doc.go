// Package retry computes how long to wait between the attempts of a call:
// constant, linear or exponential [Backoff] with optional jitter, and the
// delays servers ask for with an HTTP Retry-After header ([RetryAfter]) or
// gRPC's grpc-retry-pushback-ms trailer ([Pushback]).
//
// Jitter follows Marc Brooker's "Exponential Backoff And Jitter" (AWS
// Architecture Blog, 2015): "full" waits a random time up to the backoff,
// "equal" half the backoff plus a random time up to the other half, and
// "decorrelated" a random time between the initial delay and three times
// the previous delay. Delays never overflow and never exceed Max.
//
// [Do] runs a function under a [Policy]: up to MaxAttempts attempts within
// MaxElapsed, retrying the errors RetryIf accepts, honouring server
// pushback, and drawing each retry from an optional shared
// [github.com/cairnhq/cairn/resilience/budget.Budget]. When it gives up it
// returns an [*Error] that wraps the last attempt's error.
//
// Do reports OpenTelemetry metrics, the counters resilience.retry.calls by
// resilience.outcome and resilience.retry.attempts (retries sent), with
// resilience.policy.name; and, to the span of its context, the events
// resilience.retry.attempt, resilience.retry.exhausted and
// resilience.budget.denied (docs/resilience-telemetry.md).
package retry
