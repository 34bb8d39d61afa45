// Package hedge sends hedged requests: when a call has not answered after
// a delay, a second copy is sent and the first successful answer is used,
// which cuts tail latency at the price of a little extra load. The
// technique and the choice of the 95th-percentile latency as the delay come
// from Jeffrey Dean and Luiz André Barroso, "The Tail at Scale"
// (Communications of the ACM 56(2), 2013); the semantics (hedges sent
// one delay apart, the first success wins and cancels the others,
// throttling stops hedging) follow gRPC proposal A6, "gRPC Retry Design".
//
// A [Hedger] is shared by the calls to one dependency and [Do] runs one
// call through it. The delay is either fixed (Config.Delay) or adaptive:
// the Config.Quantile (default p95) of the recent latencies of winning
// attempts, estimated by a [Quantile], a decaying log-linear histogram, and
// clamped to [MinDelay, MaxDelay]. Hedges may be drawn from a
// [github.com/cairnhq/cairn/resilience/budget.Budget] so that hedging
// cannot multiply the load on a struggling dependency.
//
// Hedgers report OpenTelemetry metrics, all with resilience.policy.name:
// the counters resilience.hedge.attempts and resilience.hedge.wins by
// resilience.outcome (primary or hedge), the counter
// resilience.hedge.denied of hedges the budget refused, and the gauge
// resilience.hedge.delay, the current delay in seconds. Each hedge sent
// adds the event resilience.hedge.sent to the active span.
package hedge
