// Command cairn runs the cairn reference system.
//
// Usage:
//
//	cairn demo [flags]            run the whole shop in one process with its console
//	cairn serve order [flags]     run the order service alone, on PostgreSQL and NATS
//	cairn console [flags]         run the observability console alone (OTLP/HTTP and gRPC; --data DIR keeps its history)
//	cairn version                 print the version
//
// Run `cairn demo -h` for the demo's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/buildinfo"
	"github.com/cairnhq/cairn/internal/demo"
	"github.com/cairnhq/cairn/internal/serve"
)

func main() {
	started := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, started, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `cairn runs the cairn reference system.

Usage:
  cairn demo [flags]          run the shop, its load and its console in one process
  cairn serve order [flags]   run the order service alone (PostgreSQL or SQLite, NATS)
  cairn console [flags]       run the console alone: point any OpenTelemetry SDK at it
  cairn version               print the version

Run "cairn demo -h", "cairn serve order -h" or "cairn console -h" for their flags.
`

// run executes one subcommand and returns the process's exit code: 0 on
// success, 1 when the command failed, 2 for bad usage.
func run(ctx context.Context, started time.Time, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		return runDemo(ctx, started, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "console":
		return runConsole(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "cairn %s %s\n", buildinfo.Version(), buildinfo.GoVersion())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cairn: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func runDemo(ctx context.Context, started time.Time, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := demo.Config{Out: stdout, Started: started}
	fs.StringVar(&cfg.ConsoleAddr, "console-addr", demo.DefaultConsoleAddr, "console web UI and JSON API `address`")
	fs.StringVar(&cfg.OTLPAddr, "otlp-addr", demo.DefaultOTLPAddr, "console OTLP/HTTP receiver `address`")
	fs.StringVar(&cfg.OrderAddr, "order-addr", demo.DefaultOrderAddr, "order service HTTP API `address`")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", demo.DefaultAdminAddr, "admin `address` (/metrics, /debug/pprof/, /loglevel, /healthz, /faults, /degrade)")
	fs.Float64Var(&cfg.RPS, "rps", 10, "load generator requests per second (0 turns it off)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0 runs until Ctrl-C)")
	fs.StringVar(&cfg.DataDir, "data", "", "keep the database and logs in `dir` (default: a temporary directory removed on exit)")
	fs.StringVar(&cfg.ResilienceFile, "resilience", "", "read the resilience policies from `file` (YAML or JSON) and reload it when it changes (default: the embedded internal/demo/resilience.yaml)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cairn demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if cfg.RPS < 0 {
		fmt.Fprintf(stderr, "cairn demo: --rps %g is negative\n", cfg.RPS)
		return 2
	}
	if cfg.Duration < 0 {
		fmt.Fprintf(stderr, "cairn demo: --duration %s is negative\n", cfg.Duration)
		return 2
	}

	d, err := demo.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "cairn demo: %v\n", err)
		return 1
	}
	rep, err := d.Wait(ctx)
	printReport(stdout, rep)
	if err != nil {
		fmt.Fprintf(stderr, "cairn demo: %v\n", err)
		return 1
	}
	return 0
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "order" {
		fmt.Fprintf(stderr, "cairn serve: name a service: cairn serve order [flags]\n")
		return 2
	}
	fs := flag.NewFlagSet("cairn serve order", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := serve.OrderConfig{Out: stdout}
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP API `address`")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", "127.0.0.1:9464", "admin `address` (/metrics, /debug/pprof/, /loglevel, /healthz); empty turns it off")
	fs.StringVar(&cfg.Store, "store", "", "event store and read model: a postgres:// `URL`, or a directory for SQLite")
	fs.StringVar(&cfg.Bus, "bus", "", "message bus: a nats:// `URL` with JetStream (empty: no bus)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cairn serve order --store postgres://... --bus nats://...\n\nTelemetry follows the OTEL_* environment variables (OTEL_EXPORTER_OTLP_ENDPOINT...).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cairn serve order: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := serve.Order(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "cairn serve order: %v\n", err)
		return 1
	}
	return 0
}

func runConsole(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cairn console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := serve.ConsoleConfig{Out: stdout}
	fs.StringVar(&cfg.UIAddr, "ui-addr", "127.0.0.1:7070", "web UI and JSON API `address`; on an address other than loopback the UI asks for a token")
	fs.StringVar(&cfg.HTTPAddr, "otlp-http-addr", "127.0.0.1:4318", "OTLP/HTTP receiver `address`")
	fs.StringVar(&cfg.GRPCAddr, "otlp-grpc-addr", "127.0.0.1:4317", "OTLP/gRPC receiver `address` (empty turns it off)")
	fs.StringVar(&cfg.Token, "token", "", "`token` that the UI and API ask for (default: none on loopback, else a random one, printed)")
	fs.BoolVar(&cfg.TokenOTLP, "token-otlp", false, "ask for the token on the OTLP receivers too (Authorization: Bearer <token>)")
	fs.IntVar(&cfg.Options.MaxSpans, "max-spans", 0, "spans kept in memory, oldest traces evicted first (default 100000)")
	fs.IntVar(&cfg.Options.MaxLogs, "max-logs", 0, "log records kept (default 50000)")
	fs.IntVar(&cfg.Options.MaxPoints, "max-points", 0, "metric points kept (default 50000)")
	fs.IntVar(&cfg.Options.MaxInFlightExports, "max-in-flight-exports", 0, "exports handled at once, HTTP and gRPC together; more are refused with 429 / RESOURCE_EXHAUSTED and a retry hint (default 4 × GOMAXPROCS)")
	fs.IntVar(&cfg.Options.MaxSpanBytes, "max-span-bytes", 0, "approximate bytes of spans kept, oldest traces evicted first (default 256 MiB)")
	fs.IntVar(&cfg.Options.MaxLogBytes, "max-log-bytes", 0, "approximate bytes of log records kept (default 64 MiB)")
	fs.IntVar(&cfg.Options.MaxPointBytes, "max-point-bytes", 0, "approximate bytes of metric points kept (default 32 MiB)")
	fs.StringVar(&cfg.Options.DataDir, "data", "", "keep the history in `dir`/console.db (SQLite) so that a restart restores it, up to the bounds above (default: memory only)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cairn console: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := serve.Console(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "cairn console: %v\n", err)
		return 1
	}
	return 0
}

func printReport(w io.Writer, rep demo.Report) {
	l := rep.Load
	fmt.Fprintf(w, "\ncairn demo stopped\n")
	fmt.Fprintf(w, "  requests       %d sent, %d ok, %d failed, %d skipped\n", l.Sent, l.Succeeded, l.Failed, l.Skipped)
	us := time.Microsecond
	fmt.Fprintf(w, "  latency        p50 %s  p95 %s  p99 %s\n", l.P50.Round(us), l.P95.Round(us), l.P99.Round(us))
	if rep.FirstServed > 0 {
		fmt.Fprintf(w, "  first request  served %s after start\n", rep.FirstServed.Round(time.Millisecond))
	}
	if rep.RSSBytes > 0 {
		fmt.Fprintf(w, "  memory         %.1f MiB resident\n", float64(rep.RSSBytes)/(1<<20))
	}
	c := rep.Console
	fmt.Fprintf(w, "  console        %d traces, %d spans, %d logs, %d metric points held (%d spans, %d logs evicted)\n",
		c.Traces, c.Spans.Stored, c.Logs.Stored, c.MetricPoints.Stored, c.Spans.Evicted, c.Logs.Evicted)
}
