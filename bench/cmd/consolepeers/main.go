// Command consolepeers measures cairn's console as an OTLP backend side by
// side with its peers on this machine: the OpenTelemetry Collector (otlp
// receiver, batch processor, nop exporter) and Jaeger v2 all-in-one with
// its memory store, each built by bench/peers/build.sh.
//
// For every round (-count) it runs every peer in turn, once per protocol,
// so that drift on a shared machine hits all alike. Each run starts the
// server, measures the time from exec to the first accepted export, sends
// otlpload's load for -warmup plus -duration, samples the server's peak
// RSS (VmHWM) and CPU time from /proc, and stops it. It prints Go benchmark
// lines for benchstat:
//
//	BenchmarkIngest/proto=grpc/peer=cairn  1 ... spans/s ... peak-MiB ... cpu-ns/span
//	BenchmarkStartup/proto=grpc/peer=cairn 1 ... ms/start
//
// With -overload it offers -overload-senders unpaced senders instead and
// polls the peer's UI (cairn: GET /api/traces?limit=20 and GET /; Jaeger:
// its query API) every 100 ms during the load, and for two seconds after it
// (idle, with the store full), adding the UI latencies:
//
//	BenchmarkOverload/proto=grpc/peer=cairn 1 ... spans/s ... refused/s ... api-p99-ms ...
//
// The load generator shares the machine's CPUs with the server.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.Peers, "peers", "cairn,otelcol,jaeger", "comma-separated peers to run; those without a binary are skipped")
	flag.StringVar(&cfg.Protocols, "protocols", "grpc,http", "comma-separated protocols")
	flag.IntVar(&cfg.Count, "count", 6, "rounds over every peer and protocol")
	flag.DurationVar(&cfg.Duration, "duration", 15*time.Second, "measured load `duration` per run")
	flag.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "unmeasured load before it")
	flag.IntVar(&cfg.Senders, "senders", 4, "concurrent senders in normal runs")
	flag.BoolVar(&cfg.Overload, "overload", false, "run the overload scenario instead")
	flag.IntVar(&cfg.OverloadSenders, "overload-senders", 64, "unpaced senders in overload runs")
	flag.BoolVar(&cfg.HonorRetryAfter, "honor-retry-after", false, "in overload runs, senders wait a second after a refusal as OTLP exporters do (default: they send the next export at once)")
	flag.StringVar(&cfg.Cairn, "cairn", "", "cairn binary (`path`)")
	flag.StringVar(&cfg.Otelcol, "otelcol", "", "Collector binary built by bench/peers/build.sh")
	flag.StringVar(&cfg.OtelcolConfig, "otelcol-config", "peers/otelcol/config.yaml", "Collector configuration")
	flag.StringVar(&cfg.Jaeger, "jaeger", "", "Jaeger v2 binary built by bench/peers/build.sh")
	flag.StringVar(&cfg.JaegerConfig, "jaeger-config", "peers/jaeger/config.yaml", "Jaeger configuration")
	flag.StringVar(&cfg.LogDir, "logdir", os.TempDir(), "`directory` for the servers' output")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "consolepeers: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "consolepeers: %v\n", err)
		os.Exit(1)
	}
}

// split returns the non-empty comma-separated items of s.
func split(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
