// Command hedgeexp measures what hedged requests (resilience/hedge) do to
// tail latency and to load, over real HTTP on loopback.
//
// A backend on 127.0.0.1 answers after a base latency plus uniform jitter;
// a fraction of requests (the stragglers) take a multiple of that. An
// open-loop load generator sends requests at a constant rate, whatever the
// latency, and measures each from its scheduled send time. The same load is
// run four times, one mode after another, in one process:
//
//   - none: no hedging;
//   - fixed: hedge.Config.Delay set to -fixed-delay, or by default to the
//     -fixed-quantile (p90) latency of the "none" run;
//   - adaptive: hedge.Config{Quantile: 0.95}, the delay following the p95
//     of recent latencies;
//   - adaptive+budget: as adaptive, with hedges withdrawn from a Finagle
//     percent budget (resilience/budget) of -budget-percent of requests, to
//     show hedges spending the budget and being denied.
//
// A losing attempt is cancelled: the client cancels its request, the
// server sees its request context end and stops; the "cancelled" column
// counts the server-side cancellations. Percentiles are exact (nearest rank
// over all samples). The output is a markdown table.
//
// Run it from the bench module:
//
//	cd bench && go run ./cmd/hedgeexp
//	cd bench && go run ./cmd/hedgeexp -rps 100 -duration 5s -seed 7
//
// Every parameter has a flag; see go run ./cmd/hedgeexp -h. The default
// run takes about 60 seconds.
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
	flag.IntVar(&cfg.RPS, "rps", cfg.RPS, "requests per second, sent open-loop at a constant rate")
	flag.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of each mode's run")
	flag.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the backend's latency generator")
	flag.DurationVar(&cfg.Base, "base", cfg.Base, "backend base latency")
	flag.DurationVar(&cfg.Jitter, "jitter", cfg.Jitter, "backend latency jitter: uniform in [-jitter, +jitter] around base")
	flag.Float64Var(&cfg.StragglerFrac, "straggler-frac", cfg.StragglerFrac, "fraction of backend requests that straggle")
	flag.Float64Var(&cfg.StragglerMult, "straggler-mult", cfg.StragglerMult, "latency multiplier of a straggler")
	flag.DurationVar(&cfg.FixedDelay, "fixed-delay", cfg.FixedDelay, "delay of the fixed mode; 0 means the -fixed-quantile latency of the none run")
	flag.Float64Var(&cfg.FixedQuantile, "fixed-quantile", cfg.FixedQuantile, "quantile of the none run used as the fixed delay when -fixed-delay is 0")
	flag.Float64Var(&cfg.Quantile, "quantile", cfg.Quantile, "hedge.Config.Quantile of the adaptive modes")
	flag.Float64Var(&cfg.BudgetPercent, "budget-percent", cfg.BudgetPercent, "budget.Config.Percent of the adaptive+budget mode")
	flag.Float64Var(&cfg.BudgetMinPerSecond, "budget-min-per-second", cfg.BudgetMinPerSecond, "budget.Config.MinPerSecond of the adaptive+budget mode")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hedgeexp:", err)
		os.Exit(1)
	}
}
