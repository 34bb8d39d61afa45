// Package ratelimitbench compares cairn's resilience/ratelimit token bucket
// with golang.org/x/time/rate, the baseline, on the hot path: Allow on a
// limiter whose rate is so high that it always admits, serially and from
// parallel goroutines. Run it with bench/run.sh Allow.
package ratelimitbench
