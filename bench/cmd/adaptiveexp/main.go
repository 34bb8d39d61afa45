// Command adaptiveexp measures what a concurrency limit on the client side
// (resilience/adaptive) does for a dependency pushed past its capacity.
//
// The dependency is an in-process model of a server with -workers workers
// and an unbounded FIFO queue: each request takes -service (± -jitter) of a
// worker's time, so the server completes at most workers/service requests
// per second (its capacity), and a request's latency is its wait in the
// queue plus its service time. The server does not notice callers that
// gave up: it serves abandoned requests anyway, as a server that does not
// propagate cancellation would, spending capacity on answers nobody reads.
//
// An open-loop client sends requests at a rate that steps: -low (0.5) of
// capacity for -low-for, -high (2.0) of capacity for -high-for, then -low
// again for -after-for. Each call waits at most -timeout; a call succeeds
// "within the SLO" if it answers within -slo. The same load is run once per
// mode, one after another, each against a fresh server:
//
//   - none: every call is sent;
//   - fixed: a constant limit of -fixed-limit calls in flight (default
//     twice the workers), through adaptive.NewWithAlgorithm;
//   - aimd, vegas, gradient2: adaptive.Limiter with that algorithm and its
//     defaults, except AIMD's Timeout, set to -aimd-timeout (default the
//     SLO) so that slow calls count as drops.
//
// A call the limiter rejects fails at once and is not sent. The output is a
// markdown table: goodput (answers within the SLO per second) in each phase
// and overall, exact p50 and p99 latencies of the admitted calls (a call
// that timed out counts with the time its caller waited), the share of
// calls rejected in each phase and timed out, and the limit: its mean, its
// range during the step and its final value. With -trace it also prints
// every mode's run second by second.
//
// Run it from the bench module:
//
//	cd bench && go run ./cmd/adaptiveexp
//	cd bench && go run ./cmd/adaptiveexp -low-for 2s -high-for 5s -after-for 2s
//
// Every parameter has a flag; see go run ./cmd/adaptiveexp -h. The default
// run takes about 90 seconds.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	cfg := defaultConfig()
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "server workers: requests served at once")
	flag.DurationVar(&cfg.Service, "service", cfg.Service, "service time of one request")
	flag.Float64Var(&cfg.Jitter, "jitter", cfg.Jitter, "service time jitter, a fraction: uniform in [1-jitter, 1+jitter] times -service")
	flag.Float64Var(&cfg.Low, "low", cfg.Low, "offered load outside the step, a fraction of capacity")
	flag.Float64Var(&cfg.High, "high", cfg.High, "offered load during the step, a fraction of capacity")
	flag.DurationVar(&cfg.LowFor, "low-for", cfg.LowFor, "length of the phase before the step")
	flag.DurationVar(&cfg.HighFor, "high-for", cfg.HighFor, "length of the step")
	flag.DurationVar(&cfg.AfterFor, "after-for", cfg.AfterFor, "length of the phase after the step")
	flag.DurationVar(&cfg.SLO, "slo", cfg.SLO, "latency within which an answer counts as goodput")
	flag.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "how long a caller waits before giving up")
	flag.IntVar(&cfg.FixedLimit, "fixed-limit", cfg.FixedLimit, "limit of the fixed mode; 0 means twice -workers")
	flag.DurationVar(&cfg.AIMDTimeout, "aimd-timeout", cfg.AIMDTimeout, "adaptive.Config.Timeout of the aimd mode; 0 means -slo")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the service time generator")
	flag.BoolVar(&cfg.Trace, "trace", cfg.Trace, "also print each mode's run second by second")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "adaptiveexp:", err)
		os.Exit(1)
	}
}
