// Command otlpload sends realistic OTLP trace exports to a receiver over
// OTLP/gRPC or OTLP/HTTP (protobuf) and reports the spans per second it
// accepted, the exports it refused (HTTP 429/503, gRPC RESOURCE_EXHAUSTED
// or UNAVAILABLE) and whether they carried Retry-After or RetryInfo, and
// the p50/p99 export latency, ending with a Go benchmark line for
// benchstat:
//
//	go run ./cmd/otlpload -target 127.0.0.1:4317 -protocol grpc -senders 4 -duration 15s -warmup 3s
//	BenchmarkIngest/proto=grpc/peer=unknown 1 1231.0 ns/span 812345 spans/s 0.0 refused/s 1.234 p50-ms 4.567 p99-ms
//
// Each export holds -batch spans in traces of -spans-per-trace: a server
// root with client, internal and producer/consumer children, eight
// attributes each including a unique order.id per trace, resources of five
// services, 1% error statuses, and fresh ids on every export. The load
// generator runs on the same machine as the receiver and competes with it
// for CPU.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/cairnhq/cairn/bench/internal/otlpload"
)

func main() {
	var cfg otlpload.Config
	peer := flag.String("peer", "unknown", "peer `name` for the benchmark line")
	flag.StringVar(&cfg.Target, "target", "127.0.0.1:4317", "receiver `host:port`")
	flag.StringVar(&cfg.Protocol, "protocol", "grpc", "grpc or http (protobuf)")
	flag.IntVar(&cfg.Senders, "senders", 4, "concurrent senders, one connection each")
	flag.IntVar(&cfg.Batch, "batch", 512, "spans per export")
	flag.IntVar(&cfg.SpansPerTrace, "spans-per-trace", 8, "spans per trace")
	flag.DurationVar(&cfg.Duration, "duration", otlpDefault.Duration, "measured `duration`")
	flag.DurationVar(&cfg.Warmup, "warmup", otlpDefault.Warmup, "unmeasured warm-up `duration` before it")
	flag.Float64Var(&cfg.Rate, "rate", 0, "offered spans/s over all senders (0: as fast as accepted)")
	flag.BoolVar(&cfg.HonorRetryAfter, "honor-retry-after", false, "wait a second after a refusal, as OTLP exporters do (default: send the next export at once)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "otlpload: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := otlpload.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Printf("# %s %s senders=%d batch=%d: %s\n", cfg.Protocol, cfg.Target, cfg.Senders, cfg.Batch, res.Summary())
	fmt.Println(res.BenchLine(fmt.Sprintf("BenchmarkIngest/proto=%s/peer=%s", cfg.Protocol, *peer)))
}

// otlpDefault holds the flag defaults that are durations.
var otlpDefault = otlpload.Config{Duration: 15 * time.Second, Warmup: 3 * time.Second}
