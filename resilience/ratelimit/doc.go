// Package ratelimit provides in-process rate limiters: a lock-free token
// bucket, a smoothing leaky bucket, a fixed window counter, Cloudflare's
// sliding window counter and an exact sliding window log.
//
// Every limiter implements [Limiter]: AllowN reports a [Decision] for n
// events at an explicit time, so callers and tests control the clock, and
// Allow asks for one event now. All limiters are safe for concurrent use,
// allocate nothing per call and count their decisions in the
// resilience.ratelimit.decisions metric. Build one from a [Config], which
// can be read from JSON, with [New] or a typed constructor such as
// [NewTokenBucket]. A Limiter has no context, so refusals add the span
// event resilience.ratelimit.rejected only through [TokenBucket.Wait] and
// the rate limit stage of a resilience.Pipeline.
//
// Limits are local to one process; they do not coordinate across replicas.
package ratelimit
