// Package demo runs the reference shop in one process on embedded defaults:
// the console (OTLP receiver and web UI), the order service on SQLite and the
// load generator, each with its own OpenTelemetry SDK exporting over real
// OTLP/HTTP on loopback to the console. It is what `cairn demo` runs.
//
// The order service's database calls, its HTTP server and the load
// generator's HTTP client go through resilience pipelines configured by one
// file (resilience.yaml, embedded; or Config.ResilienceFile, reloaded when it
// changes), and the database can be made to fail on demand through the admin
// listener's /faults endpoint, so that breakers open and retries show on the
// traces in the console.
package demo

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	orderv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/order/v1"
	"github.com/cairnhq/cairn/console"
	"github.com/cairnhq/cairn/internal/buildinfo"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/loadgen"
	"github.com/cairnhq/cairn/internal/scenario"
	"github.com/cairnhq/cairn/internal/shop/order"
	"github.com/cairnhq/cairn/internal/shop/shoprpc"
	"github.com/cairnhq/cairn/internal/shopbus"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/degrade"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
	"github.com/cairnhq/cairn/resilience/resiliencehttp"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/telemetry"
)

// DefaultResilience is the resilience configuration the demo runs with
// unless Config.ResilienceFile names another: the pipelines orders-db-read,
// orders-db-write, orders-api and loadgen-orders and their policies.
//
//go:embed resilience.yaml
var DefaultResilience []byte

// FaultTarget is the name of the order database's fault injector, served
// at /faults/orders-db on the admin listener.
const FaultTarget = "orders-db"

// reloadInterval is how often a resilience file is checked for changes.
const reloadInterval = 2 * time.Second

// Default listen addresses. All are loopback: nothing of the demo is reachable
// from another machine unless the caller asks for it.
const (
	DefaultConsoleAddr = "127.0.0.1:7070"
	DefaultOTLPAddr    = "127.0.0.1:4318"
	DefaultOrderAddr   = "127.0.0.1:8080"
	DefaultAdminAddr   = "127.0.0.1:9464"
)

// Config says how to run the demo. The zero value runs the console and the
// order service on the default addresses, without load, until the context
// ends, with data in a temporary directory that is removed on exit.
type Config struct {
	ConsoleAddr string // console web UI and JSON API; default DefaultConsoleAddr
	OTLPAddr    string // console OTLP/HTTP receiver; default DefaultOTLPAddr
	OrderAddr   string // order service HTTP API; default DefaultOrderAddr
	AdminAddr   string // admin listener (/metrics, /debug/pprof/, /loglevel, /healthz); default DefaultAdminAddr

	OrderGRPCAddr string // order service gRPC API (GetOrder, ListOrders, WatchOrder); default DefaultOrderGRPCAddr
	InventoryAddr string // inventory service gRPC; default DefaultInventoryAddr
	PaymentAddr   string // payment service gRPC; default DefaultPaymentAddr
	ShippingAddr  string // shipping service gRPC; default DefaultShippingAddr
	ProviderAddr  string // simulated payment provider HTTP; default DefaultProviderAddr

	// RPS is the load generator's constant arrival rate in requests per
	// second; zero (the default) runs no load.
	RPS float64
	// Duration stops the demo after that long; zero runs until ctx ends.
	Duration time.Duration
	// DataDir keeps the SQLite database and log files; empty means a new
	// temporary directory that Run removes when it returns.
	DataDir string
	// Out receives the human-readable report (what runs where, the
	// summary); default os.Stdout.
	Out io.Writer
	// Started is when the process started, for the time-to-first-request
	// figure; default the time Run is called.
	Started time.Time
	// ExportInterval is how often the components' telemetry is exported to
	// the console; default one second, so the console is live.
	ExportInterval time.Duration
	// ResilienceFile is a resilience configuration (YAML or JSON, see
	// docs/resilience-config.md) with the pipelines of DefaultResilience.
	// It is checked every two seconds and reloaded when it changes; a bad
	// change is logged and the running configuration kept. Default empty:
	// DefaultResilience, not reloaded.
	ResilienceFile string
	// ReadRatio and ListRatio are the load's shares of order reads and
	// lists, as loadgen.Config has them (zero: loadgen's defaults;
	// negative: none, so that every request places an order).
	ReadRatio, ListRatio float64
	// DeclineRatio is the fraction of the load's orders paid with a
	// payment method the provider declines, whose checkouts compensate.
	// Default 0.
	DeclineRatio float64
}

// Addrs are the addresses the demo listens on once started, with ports
// resolved (useful when a configured port is 0).
type Addrs struct {
	Console, OTLP, Order, Admin                            string
	OrderGRPC, Inventory, Payment, Shipping, PaymentVendor string
}

// Report is what a finished demo measured.
type Report struct {
	Load loadgen.Stats
	// FirstServed is the time from Config.Started to the first order
	// request answered successfully; zero if none was.
	FirstServed time.Duration
	// RSSBytes is the process's resident set size when the load stopped;
	// zero where /proc is not available.
	RSSBytes int64
	// Console is what the console held at the end.
	Console console.Stats
}

// Demo is a started demo. Its methods are safe for concurrent use.
type Demo struct {
	cfg     Config
	addrs   Addrs
	dataDir string
	tempDir bool

	console    *console.Console
	consoleTel *telemetry.Telemetry // logging only
	orderMu    sync.Mutex           // guards order, orderCfg's owner and orderGRPC
	order      *order.Service
	orderCfg   order.Config
	orderGRPC  *participant
	orderHTTP  atomic.Pointer[http.Handler]
	shop       *shop
	extraTel   []*telemetry.Telemetry // the participants'
	restarts   int
	ctx        context.Context // Start's, without its cancellation: for restarts
	rate       *loadgen.Rate
	sagaDB     *sql.DB // the saga store, read by the scenarios' probe
	scenarios  *scenario.Server
	bus        *shopbus.Bus
	orderTel   *telemetry.Telemetry
	loadTel    *telemetry.Telemetry
	servers    []*server
	failed     chan error // servers that stopped on their own

	firstOnce   sync.Once
	firstServed time.Duration

	reloaders  []*resilienceconfig.Reloader
	faults     *fault.Injector
	degrade    *degrade.Switch
	bgCancel   context.CancelFunc // stops the goroutines below
	background sync.WaitGroup     // resilience file watchers, the degrade switch

	loadCancel context.CancelFunc
	loadDone   chan struct{}
	loadStats  loadgen.Stats
	loadErr    error
}

// server is one HTTP server on its own listener. done is closed when its
// Serve returns, with err set.
type server struct {
	name string
	srv  *http.Server
	done chan struct{}
	err  error
}

// listen binds every listener first, so a taken port fails the start with a
// message that names it before anything else runs.
func listen(name, addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: %s cannot listen on %s (choose another with %s): %w", name, addr, flag, err)
	}
	return ln, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Start binds the listeners, starts the console, the order service and the
// load generator, and returns without waiting. Call Wait to block until ctx
// ends or the configured duration passes, then shut everything down.
func Start(ctx context.Context, cfg Config) (_ *Demo, err error) {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	if cfg.ExportInterval <= 0 {
		cfg.ExportInterval = time.Second
	}
	d := &Demo{cfg: cfg, failed: make(chan error, 4), ctx: context.WithoutCancel(ctx), rate: loadgen.NewRate(cfg.RPS)}
	defer func() {
		if err != nil {
			d.closeAll(context.Background())
		}
	}()

	listeners := []struct{ name, addr, flag string }{
		{"console UI", orDefault(cfg.ConsoleAddr, DefaultConsoleAddr), "--console-addr"},
		{"console OTLP receiver", orDefault(cfg.OTLPAddr, DefaultOTLPAddr), "--otlp-addr"},
		{"order service", orDefault(cfg.OrderAddr, DefaultOrderAddr), "--order-addr"},
		{"admin listener", orDefault(cfg.AdminAddr, DefaultAdminAddr), "--admin-addr"},
		{"order gRPC API", orDefault(cfg.OrderGRPCAddr, DefaultOrderGRPCAddr), "--order-grpc-addr"},
		{"inventory service", orDefault(cfg.InventoryAddr, DefaultInventoryAddr), "--inventory-addr"},
		{"payment service", orDefault(cfg.PaymentAddr, DefaultPaymentAddr), "--payment-addr"},
		{"shipping service", orDefault(cfg.ShippingAddr, DefaultShippingAddr), "--shipping-addr"},
		{"payment provider", orDefault(cfg.ProviderAddr, DefaultProviderAddr), "--provider-addr"},
	}
	var lns []net.Listener
	for _, l := range listeners {
		ln, err := listen(l.name, l.addr, l.flag)
		if err != nil {
			for _, open := range lns {
				open.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	consoleLn, otlpLn, orderLn, adminLn := lns[0], lns[1], lns[2], lns[3]
	shopLns := map[string]net.Listener{
		ServiceOrder: lns[4], ServiceInventory: lns[5], ServicePayment: lns[6], ServiceShipping: lns[7], TargetProvider: lns[8],
	}
	d.addrs = Addrs{
		Console:       consoleLn.Addr().String(),
		OTLP:          otlpLn.Addr().String(),
		Order:         orderLn.Addr().String(),
		Admin:         adminLn.Addr().String(),
		OrderGRPC:     lns[4].Addr().String(),
		Inventory:     lns[5].Addr().String(),
		Payment:       lns[6].Addr().String(),
		Shipping:      lns[7].Addr().String(),
		PaymentVendor: lns[8].Addr().String(),
	}

	d.dataDir = cfg.DataDir
	if d.dataDir == "" {
		dir, err := os.MkdirTemp("", "cairn-demo-")
		if err != nil {
			closeListeners(lns)
			return nil, fmt.Errorf("demo: data directory: %w", err)
		}
		d.dataDir, d.tempDir = dir, true
	} else if err := os.MkdirAll(d.dataDir, 0o755); err != nil {
		closeListeners(lns)
		return nil, fmt.Errorf("demo: data directory %s: %w", d.dataDir, err)
	}

	// Every component logs to its own rotating file under the data
	// directory, at one level shared through the admin listener. The order
	// service and the load generator also export traces, metrics and logs
	// to the console over OTLP/HTTP; the console exports nothing, which
	// would loop.
	level := new(slog.LevelVar)
	newTelemetry := func(service string, export bool) (*telemetry.Telemetry, error) {
		return telemetry.Setup(ctx, telemetry.Config{
			ServiceName:     service,
			ServiceVersion:  buildinfo.Version(),
			Disabled:        !export,
			TracesExporter:  telemetry.ExporterOTLP,
			MetricsExporter: telemetry.ExporterOTLP,
			LogsExporter:    telemetry.ExporterOTLP,
			Protocol:        telemetry.ProtocolHTTPProtobuf,
			Endpoint:        "http://" + d.addrs.OTLP,
			BatchTimeout:    cfg.ExportInterval,
			ExportInterval:  cfg.ExportInterval,
			Level:           level,
			LogOutput:       io.Discard,
			LogFile: &telemetry.FileConfig{
				Path:       filepath.Join(d.dataDir, "logs", service+".log"),
				MaxSizeMB:  16,
				MaxBackups: 3,
			},
		})
	}
	if d.consoleTel, err = newTelemetry("console", false); err != nil {
		closeListeners(lns)
		return nil, fmt.Errorf("demo: console logging: %w", err)
	}
	d.console = console.New(console.Options{Logger: d.consoleTel.Logger(), NavLinks: []console.NavLink{{Title: "Scenarios", Href: "/scenarios/"}}})
	d.serve("console OTLP receiver", otlpLn, d.console.OTLPHandler())
	// The fault scenarios' page sits beside the console's: a scenario
	// acts on the shop, which the console knows nothing of.
	d.scenarios = scenario.Handler(d, scenario.Catalog(), d.consoleTel.Logger())
	ui := http.NewServeMux()
	ui.Handle("/scenarios/", http.StripPrefix("/scenarios", d.scenarios))
	ui.Handle("/", d.console.UIHandler())
	d.serve("console UI", consoleLn, ui)

	if d.orderTel, err = newTelemetry("order", true); err != nil {
		closeListeners(lns[2:])
		return nil, fmt.Errorf("demo: order telemetry: %w", err)
	}
	if d.loadTel, err = newTelemetry("loadgen", true); err != nil {
		closeListeners(lns[2:])
		return nil, fmt.Errorf("demo: load generator telemetry: %w", err)
	}

	// Each process of a distributed shop would read the resilience file
	// and build its own policies; so do the order service and the load
	// generator here, each with its own telemetry.
	rfile, err := d.resilienceFile()
	if err != nil {
		closeListeners(lns[2:])
		return nil, err
	}
	orderRes, err := newReloader(rfile, d.orderTel, resilienceconfig.WithRetryConfig(shopRetryConfig))
	if err != nil {
		closeListeners(lns[2:])
		return nil, fmt.Errorf("demo: order service resilience: %w", err)
	}
	loadRes, err := newReloader(rfile, d.loadTel, resilienceconfig.WithRetryConfig(func(_ string, p *retry.Policy) {
		p.Pushback = resiliencehttp.RetryAfterPushback // honour Retry-After, never resend a POST
	}))
	if err != nil {
		closeListeners(lns[2:])
		return nil, fmt.Errorf("demo: load generator resilience: %w", err)
	}
	d.reloaders = []*resilienceconfig.Reloader{orderRes, loadRes}
	reads, err1 := resilienceconfig.NewLive[struct{}](orderRes, "orders-db-read")
	writes, err2 := resilienceconfig.NewLive[struct{}](orderRes, "orders-db-write")
	api, err3 := resilienceconfig.NewLive[struct{}](orderRes, "orders-api")
	client, err4 := resilienceconfig.NewLive[*http.Response](loadRes, "loadgen-orders")
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		closeListeners(lns[2:])
		return nil, fmt.Errorf("demo: resilience pipelines: %w", err)
	}
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	d.bgCancel = bgCancel
	if cfg.ResilienceFile != "" {
		for _, r := range []*resilienceconfig.Reloader{orderRes, loadRes} {
			d.background.Go(func() { _ = r.Watch(bgCtx, cfg.ResilienceFile, reloadInterval) })
		}
	}
	// The order service degrades its list as its database bulkhead fills:
	// the pressure is the calls in flight and queued over the slots.
	d.degrade, err = degrade.New(degrade.Config{
		Name:          "orders",
		Features:      map[string]int{order.FeatureFullList: 1, order.FeatureList: 2},
		Signal:        degrade.Ratio(dbBulkheadLoad(orderRes)),
		MeterProvider: d.orderTel.MeterProvider(),
	})
	if err != nil {
		closeListeners(lns[2:])
		return nil, fmt.Errorf("demo: degrade switch: %w", err)
	}
	d.background.Go(func() { d.degrade.Run(bgCtx) })

	// The shop's bus: NATS JetStream, embedded, storing under the data
	// directory. The order service's outbox relay publishes its events
	// there, and its customer statistics follow them.
	d.bus, err = shopbus.Embedded(ctx, filepath.Join(d.dataDir, "nats"), shopbus.Options{
		Name: "order", TracerProvider: d.orderTel.TracerProvider(), MeterProvider: d.orderTel.MeterProvider(),
	})
	if err != nil {
		closeListeners(lns[2:])
		return nil, fmt.Errorf("demo: %w", err)
	}
	// The checkout's participants, each with its own telemetry, database
	// and gRPC server, and the order service's connections to them.
	if err := d.startShop(ctx, shopLns, rfile, newTelemetry); err != nil {
		closeListeners(lns[2:])
		return nil, errors.Join(err, d.bus.Close())
	}
	step, err := d.dialShop(orderRes)
	if err != nil {
		closeListeners(lns[2:])
		return nil, errors.Join(err, d.bus.Close())
	}
	d.faults = fault.New(FaultTarget)
	d.orderCfg = order.Config{
		Publisher:      d.bus.Publisher,
		Subscriber:     d.bus.Subscriber,
		DataDir:        d.dataDir,
		RelaxedSync:    true, // a demo: no fsync per order (see order.Config)
		TracerProvider: d.orderTel.TracerProvider(),
		MeterProvider:  d.orderTel.MeterProvider(),
		Logger:         d.orderTel.Logger(),
		Reads:          reads,
		Writes:         writes,
		Faults:         d.faults,
		Degrade:        d.degrade,
		Checkout: &order.CheckoutConfig{
			Inventory: d.shop.conns[ServiceInventory],
			Payment:   d.shop.conns[ServicePayment],
			Shipping:  d.shop.conns[ServiceShipping],
			Executor:  step,
			// Short, so that a scenario that kills the order service
			// sees its sagas resumed within seconds.
			Lease:        SagaLease,
			PollInterval: time.Second,
			Owner:        "order-1",
			// A compensation waits at most two seconds between attempts,
			// so that sagas finish soon after a dead participant returns.
			CompensationBackoff: retry.Backoff{Kind: retry.KindExponential, Initial: 100 * time.Millisecond,
				Max: 2 * time.Second, Multiplier: 2, Jitter: retry.JitterFull},
		},
	}
	d.order, err = order.New(ctx, d.orderCfg)
	if err != nil {
		closeListeners(lns[2:])
		return nil, errors.Join(fmt.Errorf("demo: order service: %w", err), d.bus.Close())
	}
	if d.sagaDB, err = openSagaProbe(d.dataDir); err != nil {
		closeListeners(lns[2:])
		return nil, err
	}
	var orderH http.Handler = d.order.Handler()
	d.orderHTTP.Store(&orderH)
	d.orderGRPC = &participant{name: ServiceOrder, tel: d.orderTel, ln: shopLns[ServiceOrder], addr: d.addrs.OrderGRPC,
		build: func(context.Context) (grpcService, error) { return orderRPC{d}, nil }}
	if err := d.orderGRPC.start(ctx); err != nil {
		closeListeners(lns[2:])
		return nil, err
	}
	// The server span (otelhttp) is outermost, so requests the pipeline
	// rejects with 429 or 503 are traced too.
	d.serve("order service", orderLn, d.orderTel.Handler(resiliencehttp.Middleware(api, http.HandlerFunc(d.serveOrder)), "order"))
	// The admin listener shows the order service's telemetry (its metrics,
	// and the log level that the demo's components share) and its fault
	// injector.
	admin := http.NewServeMux()
	faults := fault.Handler(d.orderTel.Logger(), d.injectors()...)
	admin.Handle("/faults", faults)
	admin.Handle("/faults/", faults)
	admin.Handle("/degrade", d.degrade.Handler(d.orderTel.Logger()))
	admin.Handle("/", d.orderTel.AdminHandler())
	d.serve("admin listener", adminLn, admin)

	d.printStart()

	// The load generator always runs, at rate zero (paused) without
	// --rps, so that a scenario started from the console can set the load.
	d.loadDone = make(chan struct{})
	loadCtx, cancel := context.WithCancel(ctx)
	d.loadCancel = cancel
	base := http.DefaultTransport.(*http.Transport).Clone()
	// Each attempt is its own client span; the retries and the breaker's
	// transitions are events on the load generator's request span.
	httpClient := &http.Client{
		Transport: resiliencehttp.NewTransport(d.loadTel.Transport(firstServed{base: base, d: d}), client, resiliencehttp.TransportConfig{}),
		Timeout:   10 * time.Second,
	}
	// The load generator follows each order it places through the order
	// service's server-streaming WatchOrder, to measure checkouts end to
	// end.
	watchConn, err := shoprpc.Dial(d.addrs.OrderGRPC, d.loadTel, nil)
	if err != nil {
		close(d.loadDone)
		return nil, err
	}
	go func() {
		defer close(d.loadDone)
		defer base.CloseIdleConnections() // the instrumented client cannot reach them
		defer watchConn.Close()
		d.loadStats, d.loadErr = loadgen.Run(loadCtx, loadgen.Config{
			BaseURL:        "http://" + d.addrs.Order,
			Rate:           d.rate,
			Client:         httpClient,
			Watch:          watchOrder(orderv1.NewOrderServiceClient(watchConn)),
			DeclineRatio:   cfg.DeclineRatio,
			ReadRatio:      cfg.ReadRatio,
			ListRatio:      cfg.ListRatio,
			TracerProvider: d.loadTel.TracerProvider(),
			MeterProvider:  d.loadTel.MeterProvider(),
			Logger:         d.loadTel.Logger(),
		})
	}()
	return d, nil
}

// watchOrder returns a loadgen Watch that follows an order with
// WatchOrder until its final status, and returns that status's name.
func watchOrder(c orderv1.OrderServiceClient) func(ctx context.Context, id string) (string, error) {
	names := map[orderv1.OrderStatus]string{
		orderv1.OrderStatus_ORDER_STATUS_CONFIRMED: "confirmed",
		orderv1.OrderStatus_ORDER_STATUS_CANCELLED: "cancelled",
		orderv1.OrderStatus_ORDER_STATUS_FAILED:    "failed",
	}
	return func(ctx context.Context, id string) (string, error) {
		for {
			stream, err := c.WatchOrder(ctx, &orderv1.WatchOrderRequest{OrderId: id})
			if err != nil {
				return "", err
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					// The stream broke before a final status (the order
					// service was killed, say): watch again, as the API
					// says a client should, until ctx ends.
					if ctx.Err() != nil {
						return "", ctx.Err()
					}
					break
				}
				if name, ok := names[msg.GetStatus()]; ok {
					return name, nil
				}
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// resilienceFile reads and decodes the resilience configuration.
func (d *Demo) resilienceFile() (*resilienceconfig.File, error) {
	if d.cfg.ResilienceFile == "" {
		f, err := resilienceconfig.Decode(DefaultResilience)
		if err != nil {
			return nil, fmt.Errorf("demo: embedded resilience.yaml: %w", err)
		}
		return f, nil
	}
	f, err := resilienceconfig.Load(d.cfg.ResilienceFile)
	if err != nil {
		return nil, fmt.Errorf("demo: --resilience: %w", err)
	}
	return f, nil
}

// newReloader builds a component's resilience policies from f, reporting
// to its telemetry: breaker transitions and reloads are logged (and the
// breaker adds an event to the span of the call that moved it).
func newReloader(f *resilienceconfig.File, tel *telemetry.Telemetry, opts ...resilienceconfig.Option) (*resilienceconfig.Reloader, error) {
	log := tel.Logger()
	opts = append([]resilienceconfig.Option{
		resilienceconfig.WithMeterProvider(tel.MeterProvider()),
		resilienceconfig.WithBreakerConfig(func(name string, c *circuitbreaker.Config) {
			c.OnStateChange = func(from, to circuitbreaker.State) {
				level := slog.LevelWarn
				if to == circuitbreaker.StateClosed {
					level = slog.LevelInfo
				}
				log.Log(context.Background(), level, "circuit breaker state changed",
					slog.String("breaker", name), slog.String("from", from.String()), slog.String("to", to.String()))
			}
		}),
		resilienceconfig.WithOnReload(func(*resilienceconfig.Set) {
			log.Info("resilience configuration reloaded")
		}),
		resilienceconfig.WithOnError(func(err error) {
			log.Error("resilience configuration rejected; the previous one stays", slog.Any("error", err))
		}),
	}, opts...)
	return resilienceconfig.NewReloader(f, opts...)
}

// dbBulkheadLoad returns the calls in flight and queued in the orders-db
// bulkhead of r's current configuration, and its slots, for a
// degrade.Ratio signal.
func dbBulkheadLoad(r *resilienceconfig.Reloader) (n, limit func() int) {
	n = func() int {
		if b, ok := r.Current().Bulkhead("orders-db"); ok {
			return b.InFlight() + b.QueueLen()
		}
		return 0
	}
	limit = func() int {
		if c, ok := r.Current().File().Bulkheads["orders-db"]; ok && c.MaxConcurrent > 0 {
			return c.MaxConcurrent
		}
		return bulkhead.DefaultMaxConcurrent
	}
	return n, limit
}

// Degrade returns the order service's degrade switch.
func (d *Demo) Degrade() *degrade.Switch { return d.degrade }

// Faults returns the injector of the order database's faults.
func (d *Demo) Faults() *fault.Injector { return d.faults }

func closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// firstServed records when the first request to the order service is
// answered without a server error.
type firstServed struct {
	base http.RoundTripper
	d    *Demo
}

func (f firstServed) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(r)
	if err == nil && resp.StatusCode < 500 {
		f.d.firstOnce.Do(func() { f.d.firstServed = time.Since(f.d.cfg.Started) })
	}
	return resp, err
}

func (d *Demo) serve(name string, ln net.Listener, h http.Handler) {
	s := &server{
		name: name,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
		},
		done: make(chan struct{}),
	}
	d.servers = append(d.servers, s)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = fmt.Errorf("demo: %s stopped: %w", name, err)
			d.failed <- s.err
		}
	}()
}

// Addrs returns the resolved listen addresses.
func (d *Demo) Addrs() Addrs { return d.addrs }

// DataDir returns the directory holding the demo's database and logs.
func (d *Demo) DataDir() string { return d.dataDir }

// Console returns the demo's console, for tests and embedding.
func (d *Demo) Console() *console.Console { return d.console }

func (d *Demo) printStart() {
	w := d.cfg.Out
	fmt.Fprintf(w, "cairn demo %s\n", buildinfo.Version())
	fmt.Fprintf(w, "  console        http://%s\n", d.addrs.Console)
	fmt.Fprintf(w, "  OTLP/HTTP      http://%s/v1/{traces,metrics,logs}  (console receiver)\n", d.addrs.OTLP)
	fmt.Fprintf(w, "  order API      http://%s/orders\n", d.addrs.Order)
	fmt.Fprintf(w, "  admin          http://%s  (/metrics /debug/pprof/ /loglevel /healthz /faults /degrade)\n", d.addrs.Admin)
	keep := "kept"
	if d.tempDir {
		keep = "removed on exit"
	}
	fmt.Fprintf(w, "  data           %s  (%s)\n", d.dataDir, keep)
	fmt.Fprintf(w, "  logs           %s\n", filepath.Join(d.dataDir, "logs"))
	if d.cfg.ResilienceFile == "" {
		fmt.Fprintf(w, "  resilience     embedded resilience.yaml (write your own and pass --resilience FILE to edit it live)\n")
	} else {
		fmt.Fprintf(w, "  resilience     %s  (reloaded when it changes)\n", d.cfg.ResilienceFile)
	}
	fmt.Fprintf(w, "  fault          curl -X PUT -d '{\"error_rate\":0.6}' http://%s/faults/%s\n", d.addrs.Admin, FaultTarget)
	switch {
	case d.cfg.RPS <= 0:
		fmt.Fprintf(w, "  load           off\n")
	case d.cfg.Duration > 0:
		fmt.Fprintf(w, "  load           %g requests/s for %s\n", d.cfg.RPS, d.cfg.Duration)
	default:
		fmt.Fprintf(w, "  load           %g requests/s until Ctrl-C\n", d.cfg.RPS)
	}
	fmt.Fprintf(w, "Open http://%s to watch the traces. Ctrl-C stops.\n", d.addrs.Console)
}

// Wait blocks until ctx ends or the configured duration passes, stops the
// load, flushes every component's telemetry into the console, shuts the
// servers down and removes a temporary data directory. It returns what the
// demo measured and every error met on the way, joined.
func (d *Demo) Wait(ctx context.Context) (Report, error) {
	var timeout <-chan time.Time
	if d.cfg.Duration > 0 {
		t := time.NewTimer(d.cfg.Duration)
		defer t.Stop()
		timeout = t.C
	}
	var errs []error
	select {
	case <-ctx.Done():
	case <-timeout:
	case err := <-d.failed:
		errs = append(errs, err)
	}
	if d.loadCancel != nil {
		d.loadCancel()
	}
	<-d.loadDone
	if d.loadErr != nil && !errors.Is(d.loadErr, context.Canceled) {
		errs = append(errs, fmt.Errorf("demo: load generator: %w", d.loadErr))
	}
	rep := Report{Load: d.loadStats, FirstServed: d.firstServed, RSSBytes: rss()}

	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	errs = append(errs, d.closeAll(shutCtx))
	if d.console != nil {
		rep.Console = d.console.Stats()
	}
	return rep, errors.Join(errs...)
}

// closeAll shuts down in dependency order: the order service stops taking
// requests, the components flush their telemetry into the console, and the
// console stops last.
func (d *Demo) closeAll(ctx context.Context) error {
	var errs []error
	shutdown := func(names ...string) {
		for _, s := range d.servers {
			for _, n := range names {
				if s.name == n {
					if err := s.srv.Shutdown(ctx); err != nil {
						errs = append(errs, fmt.Errorf("demo: shut down %s: %w", s.name, err))
					}
					<-s.done
				}
			}
		}
	}
	if d.scenarios != nil {
		d.scenarios.Close() // a running scenario stops and undoes its faults
	}
	if d.bgCancel != nil {
		d.bgCancel()
		d.background.Wait()
	}
	shutdown("order service", "admin listener")
	if d.orderGRPC != nil {
		if err := d.orderGRPC.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("demo: stop order gRPC API: %w", err))
		}
	}
	d.orderMu.Lock()
	if d.order != nil {
		if err := d.order.Close(); err != nil {
			errs = append(errs, fmt.Errorf("demo: close order service: %w", err))
		}
		d.order = nil
	}
	d.orderMu.Unlock()
	if err := d.closeShop(ctx); err != nil {
		errs = append(errs, err)
	}
	shutdown("payment provider")
	if d.sagaDB != nil {
		errs = append(errs, d.sagaDB.Close())
	}
	if d.bus != nil {
		if err := d.bus.Close(); err != nil {
			errs = append(errs, fmt.Errorf("demo: close bus: %w", err))
		}
	}
	for _, t := range append([]*telemetry.Telemetry{d.loadTel, d.orderTel}, d.extraTel...) {
		if t != nil {
			if err := t.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("demo: flush telemetry: %w", err))
			}
		}
	}
	shutdown("console OTLP receiver", "console UI")
	if d.consoleTel != nil {
		if err := d.consoleTel.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("demo: close console log: %w", err))
		}
	}
	if d.degrade != nil {
		if err := d.degrade.Close(); err != nil {
			errs = append(errs, fmt.Errorf("demo: close degrade switch: %w", err))
		}
	}
	if d.shop != nil {
		d.reloaders = append(d.reloaders, d.shop.reloader...)
	}
	for _, r := range d.reloaders {
		if err := r.Close(); err != nil {
			errs = append(errs, fmt.Errorf("demo: close resilience policies: %w", err))
		}
	}
	if d.tempDir {
		if err := os.RemoveAll(d.dataDir); err != nil {
			errs = append(errs, fmt.Errorf("demo: remove %s: %w", d.dataDir, err))
		}
	}
	return errors.Join(errs...)
}
