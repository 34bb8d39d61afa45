// Package circuitbreaker stops calling a dependency that keeps failing or
// answering slowly, so that callers fail fast while it recovers, and probes
// it with a few calls before letting traffic through again.
//
// A [Breaker] follows resilience4j's state machine. While closed it records
// the outcome of every call in a sliding window (the last N calls, or the
// calls of the last D split into buckets); once the window holds at least
// MinimumCalls outcomes and the failure rate or the slow-call rate reaches
// its threshold, the breaker opens and rejects calls with an [*OpenError]
// (errors.Is(err, [ErrOpen])). After the open duration the next call moves
// it to half-open, where at most HalfOpenProbes calls are let through; their
// outcomes decide between closing again and another, possibly longer, open
// period. [Breaker.ForceOpen], [Breaker.Disable] and [Breaker.Reset] override
// the state by hand.
//
// [Breaker.Execute] wraps a function call. Code that composes policies uses
// the two-step form instead: [Breaker.Allow] returns a [Permit], and
// [Permit.Done] records the outcome; neither allocates while the breaker is
// closed.
//
// Breakers report OpenTelemetry metrics: the counter
// resilience.circuitbreaker.calls by resilience.outcome, the gauge
// resilience.circuitbreaker.state and the counter
// resilience.circuitbreaker.transitions, all with resilience.policy.name.
package circuitbreaker
