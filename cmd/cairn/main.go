// Command cairn runs the cairn reference system.
//
// Usage:
//
//	cairn demo [flags]            run the whole shop in one process with its console
//	cairn serve order [flags]     run the order service alone, on PostgreSQL and NATS (with --inventory, --payment, --shipping: and its checkout)
//	cairn serve inventory|payment|shipping [flags]
//	                              run a checkout participant alone (gRPC, on PostgreSQL or SQLite)
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
	"strings"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/buildinfo"
	"github.com/cairnhq/cairn/internal/demo"
	"github.com/cairnhq/cairn/internal/loadgen"
	"github.com/cairnhq/cairn/internal/scenario"
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
  cairn serve order [flags]   run the order service alone (PostgreSQL or SQLite, NATS; checkout with its participants)
  cairn serve inventory|payment|shipping [flags]
                              run a checkout participant alone (gRPC; PostgreSQL or SQLite)
  cairn console [flags]       run the console alone: point any OpenTelemetry SDK at it
  cairn version               print the version

Run "cairn demo -h", "cairn serve SERVICE -h" or "cairn console -h" for their flags.
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
	fs.StringVar(&cfg.OrderGRPCAddr, "order-grpc-addr", demo.DefaultOrderGRPCAddr, "order service gRPC API `address` (GetOrder, ListOrders, WatchOrder)")
	fs.StringVar(&cfg.InventoryAddr, "inventory-addr", demo.DefaultInventoryAddr, "inventory service gRPC `address`")
	fs.StringVar(&cfg.PaymentAddr, "payment-addr", demo.DefaultPaymentAddr, "payment service gRPC `address`")
	fs.StringVar(&cfg.ShippingAddr, "shipping-addr", demo.DefaultShippingAddr, "shipping service gRPC `address`")
	fs.StringVar(&cfg.ProviderAddr, "provider-addr", demo.DefaultProviderAddr, "simulated payment provider HTTP `address`")
	fs.Float64Var(&cfg.DeclineRatio, "decline-ratio", 0, "fraction of the load's orders whose payment the provider declines (their checkouts compensate)")
	readRatio := fs.Float64("read-ratio", loadgen.DefaultReadRatio, "share of the load's requests that read an order (0: none)")
	listRatio := fs.Float64("list-ratio", loadgen.DefaultListRatio, "share of the load's requests that list orders (0: none); with --read-ratio 0 every request places an order")
	scenarioName := fs.String("scenario", "", "run the fault scenario `name` (see --list-scenarios) for --duration (default the scenario's), print each assertion's result and exit 1 if one failed")
	listScenarios := fs.Bool("list-scenarios", false, "list the fault scenarios with their parameters and exit")
	params := map[string]string{}
	fs.Func("param", "set a scenario parameter, `name=value` (repeatable), such as --param error_rate=0.5", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("want name=value, got %q", v)
		}
		params[k] = val
		return nil
	})
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
	for _, r := range []struct {
		name string
		v    float64
		dst  *float64
	}{{"--read-ratio", *readRatio, &cfg.ReadRatio}, {"--list-ratio", *listRatio, &cfg.ListRatio}} {
		if r.v < 0 || r.v > 1 {
			fmt.Fprintf(stderr, "cairn demo: %s %g is not in [0,1]\n", r.name, r.v)
			return 2
		}
		*r.dst = r.v
		if r.v == 0 {
			*r.dst = -1 // loadgen: none
		}
	}
	if *listScenarios {
		if err := scenario.WriteList(stdout, scenario.Catalog()); err != nil {
			fmt.Fprintf(stderr, "cairn demo: %v\n", err)
			return 1
		}
		return 0
	}
	if *scenarioName != "" {
		return runScenario(ctx, cfg, *scenarioName, params, rpsSet(fs), stdout, stderr)
	}
	if len(params) > 0 {
		fmt.Fprintf(stderr, "cairn demo: --param needs --scenario\n")
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

// rpsSet reports whether --rps was given on the command line.
func rpsSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "rps" })
	return set
}

// runScenario starts the demo without load, runs one fault scenario
// against it, prints the report and stops the demo. It returns 0 when
// every assertion passed, 1 when one failed or the run could not be
// made, 2 for a bad scenario name or parameter.
func runScenario(ctx context.Context, cfg demo.Config, name string, values map[string]string, rpsGiven bool, stdout, stderr io.Writer) int {
	sc, ok := scenario.Lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "cairn demo: no scenario %q; --list-scenarios lists them\n", name)
		return 2
	}
	params, err := sc.ParseParams(values)
	if err != nil {
		fmt.Fprintf(stderr, "cairn demo: scenario %s: %v\n", name, err)
		return 2
	}
	opts := scenario.Options{Duration: cfg.Duration}
	if rpsGiven {
		opts.RPS = cfg.RPS
	}
	// The scenario sets the load and its own length; the demo runs until
	// the scenario is done.
	cfg.RPS, cfg.Duration = 0, 0
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	d, err := demo.Start(runCtx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "cairn demo: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "scenario %s: %s\n", sc.Name, sc.Summary)
	rep, runErr := scenario.Run(runCtx, d, sc, params, opts)
	cancel()
	if _, err := d.Wait(runCtx); err != nil {
		fmt.Fprintf(stderr, "cairn demo: %v\n", err)
	}
	if err := rep.WriteText(stdout); err != nil {
		fmt.Fprintf(stderr, "cairn demo: %v\n", err)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "cairn demo: scenario %s: %v\n", name, runErr)
		return 1
	}
	if !rep.Passed() {
		return 1
	}
	return 0
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const services = "order, inventory, payment or shipping"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "cairn serve: name a service (%s): cairn serve SERVICE [flags]\n", services)
		return 2
	}
	name := args[0]
	fs := flag.NewFlagSet("cairn serve "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	const otelNote = "Telemetry follows the OTEL_* environment variables (OTEL_EXPORTER_OTLP_ENDPOINT...).\n\n"
	const resNote = "resilience configuration `file` (YAML or JSON, docs/resilience-config.md), reloaded when it changes (default: the demo's embedded one)"
	var start func() error
	switch name {
	case "order":
		cfg := serve.OrderConfig{Out: stdout}
		fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "HTTP API `address`")
		fs.StringVar(&cfg.GRPCAddr, "grpc-addr", demo.DefaultOrderGRPCAddr, "gRPC API `address` (GetOrder, ListOrders, WatchOrder); empty turns it off")
		fs.StringVar(&cfg.AdminAddr, "admin-addr", "127.0.0.1:9464", "admin `address` (/metrics, /debug/pprof/, /loglevel, /healthz); empty turns it off")
		fs.StringVar(&cfg.Store, "store", "", "event store, read model and sagas: a postgres:// `URL`, or a directory for SQLite")
		fs.StringVar(&cfg.Bus, "bus", "", "message bus: a nats:// `URL` with JetStream (empty: no bus)")
		fs.StringVar(&cfg.Inventory, "inventory", "", "inventory service's gRPC `target` (host:port) for the checkout")
		fs.StringVar(&cfg.Payment, "payment", "", "payment service's gRPC `target` (host:port) for the checkout")
		fs.StringVar(&cfg.Shipping, "shipping", "", "shipping service's gRPC `target` (host:port) for the checkout")
		fs.StringVar(&cfg.Resilience, "resilience", "", resNote)
		fs.Usage = func() {
			fmt.Fprintf(stderr, "Usage: cairn serve order --store postgres://... [--bus nats://...] [--inventory HOST:PORT --payment HOST:PORT --shipping HOST:PORT]\n\n"+
				"With --inventory, --payment and --shipping (all three), every order runs the checkout saga; without them, orders stay placed.\n"+otelNote)
			fs.PrintDefaults()
		}
		start = func() error { return serve.Order(ctx, cfg) }
	case "inventory", "payment", "shipping":
		cfg := serve.ParticipantConfig{Out: stdout}
		addr := map[string]string{"inventory": demo.DefaultInventoryAddr, "payment": demo.DefaultPaymentAddr, "shipping": demo.DefaultShippingAddr}[name]
		admin := map[string]string{"inventory": "127.0.0.1:9465", "payment": "127.0.0.1:9466", "shipping": "127.0.0.1:9467"}[name]
		fs.StringVar(&cfg.Addr, "addr", addr, "gRPC API `address`")
		fs.StringVar(&cfg.AdminAddr, "admin-addr", admin, "admin `address` (/metrics, /debug/pprof/, /loglevel, /healthz); empty turns it off")
		fs.StringVar(&cfg.Store, "store", "", "the service's database: a postgres:// `URL`, or a directory for SQLite ("+name+".db)")
		fs.StringVar(&cfg.Resilience, "resilience", "", resNote)
		extra := ""
		switch name {
		case "inventory":
			fs.IntVar(&cfg.SeedStock, "seed-stock", serve.DefaultSeedStock, "units of each SKU of the default catalog (SKU-0000..SKU-0049) to seed where missing; 0 seeds nothing")
		case "payment":
			fs.StringVar(&cfg.Provider, "provider", "", "payment provider's base `URL` (http://...); required unless --simulate-provider")
			fs.StringVar(&cfg.SimulateProvider, "simulate-provider", "", "run a SIMULATED payment provider (no real payments) in this process on `address`, and use it")
			extra = " (--provider URL | --simulate-provider ADDR)"
		}
		fs.Usage = func() {
			fmt.Fprintf(stderr, "Usage: cairn serve %s --store postgres://...%s\n\n"+otelNote, name, extra)
			fs.PrintDefaults()
		}
		start = func() error { return serve.Participant(ctx, name, cfg) }
	default:
		fmt.Fprintf(stderr, "cairn serve: unknown service %q (want %s)\n", name, services)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cairn serve %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2
	}
	if err := start(); err != nil {
		fmt.Fprintf(stderr, "cairn serve %s: %v\n", name, err)
		if errors.Is(err, serve.ErrUsage) {
			return 2
		}
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
	if co := l.Checkouts; co.Watched > 0 {
		fmt.Fprintf(w, "  checkouts      %d followed: %d confirmed, %d cancelled, %d failed, %d unfinished\n",
			co.Watched, co.Confirmed, co.Cancelled, co.Failed, co.Unfinished)
		fmt.Fprintf(w, "  checkout time  p50 %s  p99 %s  (order placed to final status)\n", co.P50.Round(us), co.P99.Round(us))
	}
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
