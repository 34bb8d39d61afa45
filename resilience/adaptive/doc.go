// Package adaptive limits the concurrency of calls to a dependency with a
// limit that adapts to the dependency's latency, and throttles requests to
// an overloaded backend on the client side.
//
// A [Limiter] admits a call while fewer than its current limit are in
// flight; [Limiter.Acquire] never waits and does not allocate. When the
// call ends, [Permit.Done] or [Permit.Dropped] feeds its round-trip time
// (measured from Acquire) and whether it was dropped to an [Algorithm],
// which moves the limit. The algorithms follow Netflix's concurrency-limits
// library (https://github.com/Netflix/concurrency-limits): [AIMD]
// (additive increase, multiplicative decrease on drops and timeouts),
// [Gradient2] (shrinks the limit as the latest RTT rises above a long-term
// average) and [Vegas] (estimates the queue from the minimum RTT, which it
// re-measures periodically, with jitter, as Envoy's adaptive concurrency
// filter does:
// https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/adaptive_concurrency_filter).
//
// A [Throttle] implements the client-side adaptive throttling of the
// Google SRE book, chapter 21 "Handling Overload"
// (https://sre.google/sre-book/handling-overload/): it rejects requests
// locally with a probability that grows as the backend accepts fewer of
// them.
//
// Limiters report OpenTelemetry metrics: the counter
// resilience.adaptive.calls by resilience.outcome (admitted, rejected,
// dropped) and the gauges resilience.adaptive.limit and
// resilience.adaptive.inflight, all with resilience.policy.name.
// [Limiter.AcquireContext] adds the span event resilience.adaptive.rejected
// to the span of its context when it rejects a call.
package adaptive
