package serve

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	_ "modernc.org/sqlite" // the participants' SQLite driver

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/buildinfo"
	"github.com/cairnhq/cairn/internal/demo"
	"github.com/cairnhq/cairn/internal/shop/inventory"
	"github.com/cairnhq/cairn/internal/shop/payment"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
	"github.com/cairnhq/cairn/internal/shop/shipping"
	"github.com/cairnhq/cairn/internal/shop/shoprpc"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
	"github.com/cairnhq/cairn/resilience/resiliencegrpc"
	"github.com/cairnhq/cairn/resilience/resiliencehttp"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/telemetry"
)

// ErrUsage is matched (errors.Is) by the errors of [Order] and
// [Participant] that come from a bad configuration, such as a missing or
// malformed flag, rather than from running: a command answers them with
// its usage exit code.
var ErrUsage = errors.New("serve: bad usage")

// usageError is an error of the configuration; it matches ErrUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// The checkout participants that [Participant] runs.
const (
	ServiceInventory = demo.ServiceInventory
	ServicePayment   = demo.ServicePayment
	ServiceShipping  = demo.ServiceShipping
)

// DefaultSeedStock is the units on hand of each SKU of the default
// catalog (inventory.DefaultCatalog) that the inventory service seeds.
const DefaultSeedStock = demo.StockPerSKU

// catalogSize is the number of SKUs of the seeded catalog, as the demo's.
const catalogSize = 50

// reloadInterval is how often a --resilience file is checked for changes.
const reloadInterval = 2 * time.Second

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 10 * time.Second

// ParticipantConfig configures [Participant] (and [Inventory], [Payment],
// [Shipping]).
type ParticipantConfig struct {
	// Addr is the address of the gRPC API.
	Addr string
	// AdminAddr is the address of the admin listener (/metrics,
	// /debug/pprof/, /loglevel, /healthz); empty turns it off.
	AdminAddr string
	// Store is the service's database: a PostgreSQL URL ("postgres://..."
	// or "postgresql://..."), whose tables the service creates, or a
	// directory holding <service>.db for SQLite.
	Store string
	// Resilience is a resilience configuration file (YAML or JSON,
	// docs/resilience-config.md) with the demo's pipeline names
	// (<service>-api, payment-provider-write, payment-provider-read),
	// reloaded when it changes. Empty: the demo's embedded
	// demo.DefaultResilience.
	Resilience string
	// SeedStock, for the inventory, is the units on hand of each SKU of
	// the default catalog (inventory.DefaultCatalog, 50 SKUs) seeded at
	// start for the SKUs that are missing. Zero seeds nothing.
	SeedStock int
	// Provider, for the payment service, is the base URL of the payment
	// provider ("http://..." or "https://..."). Required unless
	// SimulateProvider is set.
	Provider string
	// SimulateProvider, for the payment service, is the address on which
	// to run a simulated payment provider (provider.NewServer) in the
	// same process; the service then calls it. Empty: none.
	SimulateProvider string
	// Out receives the startup banner.
	Out io.Writer
	// Ready, if not nil, is called with the gRPC API's address once it
	// accepts connections.
	Ready func(addr string)
}

// Inventory runs the inventory service, as [Participant] does.
func Inventory(ctx context.Context, cfg ParticipantConfig) error {
	return Participant(ctx, ServiceInventory, cfg)
}

// Payment runs the payment service, as [Participant] does.
func Payment(ctx context.Context, cfg ParticipantConfig) error {
	return Participant(ctx, ServicePayment, cfg)
}

// Shipping runs the shipping service, as [Participant] does.
func Shipping(ctx context.Context, cfg ParticipantConfig) error {
	return Participant(ctx, ServiceShipping, cfg)
}

// grpcService is a participant's service.
type grpcService interface {
	Register(grpc.ServiceRegistrar)
	Close() error
}

// Participant runs the checkout participant name (ServiceInventory,
// ServicePayment or ServiceShipping) and its gRPC API until ctx ends, then
// shuts it down gracefully within 10 seconds and returns nil, or returns
// the error that stopped it. Errors of the configuration match ErrUsage.
func Participant(ctx context.Context, name string, cfg ParticipantConfig) (err error) {
	switch name {
	case ServiceInventory, ServiceShipping:
	case ServicePayment:
		switch {
		case cfg.Provider == "" && cfg.SimulateProvider == "":
			return usagef("--provider is empty: give the payment provider's URL, or --simulate-provider ADDR to run a simulated one")
		case cfg.Provider != "" && cfg.SimulateProvider != "":
			return usagef("give --provider or --simulate-provider, not both")
		case cfg.Provider != "" && !strings.HasPrefix(cfg.Provider, "http://") && !strings.HasPrefix(cfg.Provider, "https://"):
			return usagef("--provider %q: want an http:// or https:// URL", cfg.Provider)
		}
	default:
		return usagef("unknown service %q (want inventory, payment or shipping)", name)
	}
	if cfg.SeedStock < 0 {
		return usagef("--seed-stock %d is negative", cfg.SeedStock)
	}
	if err := checkStore(cfg.Store); err != nil {
		return err
	}
	rfile, err := resilienceFile(cfg.Resilience)
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: name, ServiceVersion: buildinfo.Version()})
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	var closers []func() error
	var bg sync.WaitGroup
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		bgCancel()
		bg.Wait()
		for i := len(closers) - 1; i >= 0; i-- {
			err = errors.Join(err, closers[i]())
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(sctx))
	}()

	db, dialect, err := openParticipantDB(ctx, cfg.Store, name)
	if err != nil {
		return err
	}
	closers = append(closers, db.Close)
	res, err := newReloader(rfile, tel, participantRetryConfig)
	if err != nil {
		return fmt.Errorf("resilience: %w", err)
	}
	closers = append(closers, res.Close)
	api, err := resilienceconfig.NewLive[struct{}](res, name+"-api")
	if err != nil {
		return fmt.Errorf("resilience: %w", err)
	}

	var svc grpcService
	providerURL := cfg.Provider
	switch name {
	case ServiceInventory:
		var seed map[string]int
		if cfg.SeedStock > 0 {
			seed = inventory.DefaultCatalog(catalogSize, cfg.SeedStock)
		}
		svc, err = inventory.New(ctx, inventory.Config{
			DB: db, Dialect: dialect, Seed: seed,
			TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(), Logger: tel.Logger(),
		})
	case ServiceShipping:
		svc, err = shipping.New(ctx, shipping.Config{
			DB: db, Dialect: dialect,
			TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(), Logger: tel.Logger(),
		})
	case ServicePayment:
		if cfg.SimulateProvider != "" {
			pln, err := net.Listen("tcp", cfg.SimulateProvider)
			if err != nil {
				return fmt.Errorf("simulated provider: listen on %s: %w", cfg.SimulateProvider, err)
			}
			// The simulation is someone else's system: no telemetry of its
			// own; the payment service's client spans show its calls.
			sim := provider.NewServer(provider.ServerConfig{RetryAfter: time.Second, Logger: tel.Logger()})
			psrv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
			served := make(chan struct{})
			go func() { defer close(served); _ = psrv.Serve(pln) }()
			// Closed after the service, which calls it.
			closers = append(closers, func() error {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
				defer cancel()
				err := psrv.Shutdown(sctx)
				<-served
				return err
			})
			providerURL = "http://" + pln.Addr().String()
		}
		writes, err1 := resilienceconfig.NewLive[*http.Response](res, "payment-provider-write")
		reads, err2 := resilienceconfig.NewLive[*http.Response](res, "payment-provider-read")
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("resilience: %w", err)
		}
		cli, err := provider.NewClient(provider.ClientConfig{
			BaseURL: providerURL, Writes: writes, Reads: reads,
			HTTPClient:     &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 10 * time.Second},
			TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(),
		})
		if err != nil {
			return fmt.Errorf("payment provider client: %w", err)
		}
		closers = append(closers, func() error { cli.CloseIdleConnections(); return nil })
		svc, err = payment.New(ctx, payment.Config{
			DB: db, Dialect: dialect, Provider: cli,
			TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(), Logger: tel.Logger(),
		})
		if err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	closers = append(closers, svc.Close)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := shoprpc.NewServer(tel, api)
	svc.Register(srv)
	errc := make(chan error, 1)
	bg.Go(func() {
		if err := srv.Serve(ln); err != nil {
			errc <- err
		}
	})
	defer gracefulStop(srv)
	if err := startBackground(bgCtx, &bg, tel, cfg.AdminAddr, res, cfg.Resilience); err != nil {
		return err
	}
	if cfg.Out != nil {
		fmt.Fprintf(cfg.Out, "cairn serve %s %s\n  gRPC        %s\n  store       %s\n  resilience  %s\n", name, buildinfo.Version(), ln.Addr(), redact(cfg.Store), resilienceName(cfg.Resilience))
		switch {
		case name == ServicePayment && cfg.SimulateProvider != "":
			fmt.Fprintf(cfg.Out, "  provider    %s (SIMULATED in this process: not a real payment provider)\n", providerURL)
		case name == ServicePayment:
			fmt.Fprintf(cfg.Out, "  provider    %s\n", providerURL)
		case name == ServiceInventory && cfg.SeedStock > 0:
			fmt.Fprintf(cfg.Out, "  catalog     SKU-0000..SKU-%04d, %d units each if missing\n", catalogSize-1, cfg.SeedStock)
		}
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
}

// startBackground starts the admin listener on addr (if not empty) and the
// watch of the resilience file (if not empty), in bg until ctx ends.
func startBackground(ctx context.Context, bg *sync.WaitGroup, tel *telemetry.Telemetry, addr string, res *resilienceconfig.Reloader, file string) error {
	if addr != "" {
		aln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		bg.Go(func() { _ = tel.ServeAdmin(ctx, aln) })
	}
	if file != "" && res != nil {
		bg.Go(func() { _ = res.Watch(ctx, file, reloadInterval) })
	}
	return nil
}

// gracefulStop stops srv, letting the calls in flight finish for at most
// shutdownTimeout before it cuts them.
func gracefulStop(srv *grpc.Server) {
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	t := time.NewTimer(shutdownTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		srv.Stop()
		<-stopped
	}
}

// isPostgres reports whether store is a PostgreSQL URL.
func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// checkStore validates a --store flag.
func checkStore(store string) error {
	switch {
	case isPostgres(store):
		return nil
	case store == "":
		return usagef("--store is empty: give a postgres:// URL or a directory for SQLite")
	case strings.Contains(store, "://"):
		return usagef("--store %q: unknown scheme (want postgres:// or a directory)", store)
	}
	return nil
}

// openParticipantDB opens the database of the participant name: the
// PostgreSQL database at store, or <store>/<name>.db, as the barrier needs
// SQLite: WAL, a busy timeout and immediate transactions.
func openParticipantDB(ctx context.Context, store, name string) (*sql.DB, cqrs.Dialect, error) {
	if isPostgres(store) {
		db, err := sql.Open("pgx", store)
		if err != nil {
			return nil, 0, fmt.Errorf("--store: %w", err)
		}
		if err := db.PingContext(ctx); err != nil {
			return nil, 0, errors.Join(fmt.Errorf("--store %s: %w", redact(store), err), db.Close())
		}
		return db, cqrs.Postgres, nil
	}
	if err := os.MkdirAll(store, 0o755); err != nil {
		return nil, 0, fmt.Errorf("--store: %w", err)
	}
	path := filepath.Join(store, name+".db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, 0, fmt.Errorf("--store %s: %w", path, err)
	}
	// One connection: writers queue in Go's pool instead of sleeping in
	// SQLite's busy handler.
	db.SetMaxOpenConns(1)
	return db, cqrs.SQLite, nil
}

// resilienceFile reads and decodes the resilience configuration at path,
// or the demo's embedded one when path is empty.
func resilienceFile(path string) (*resilienceconfig.File, error) {
	if path == "" {
		f, err := resilienceconfig.Decode(demo.DefaultResilience)
		if err != nil {
			return nil, fmt.Errorf("embedded resilience.yaml: %w", err)
		}
		return f, nil
	}
	f, err := resilienceconfig.Load(path)
	if err != nil {
		return nil, usagef("--resilience: %v", err)
	}
	return f, nil
}

func resilienceName(path string) string {
	if path == "" {
		return "the demo's embedded resilience.yaml"
	}
	return path + " (reloaded when it changes)"
}

// participantRetryConfig sets the retry policies of a participant that
// need code: the payment provider's client honours Retry-After.
func participantRetryConfig(name string, p *retry.Policy) {
	if name == provider.PolicyName {
		p.Pushback = resiliencehttp.RetryAfterPushback
	}
}

// orderRetryConfig sets the retry policies of the order service's
// checkout that need code, as the demo does: the gRPC clients retry only
// what the server says may be retried, with its pushback; the checkout's
// steps retry only what saga.Retryable allows.
func orderRetryConfig(name string, p *retry.Policy) {
	switch name {
	case "shop-clients":
		p.Pushback = resiliencegrpc.Pushback
	case "checkout-step":
		p.RetryIf = saga.Retryable
	}
}

// newReloader builds a service's resilience policies from f, reporting to
// its telemetry: breaker transitions and reloads are logged.
func newReloader(f *resilienceconfig.File, tel *telemetry.Telemetry, retryConfig func(string, *retry.Policy)) (*resilienceconfig.Reloader, error) {
	log := tel.Logger()
	return resilienceconfig.NewReloader(f,
		resilienceconfig.WithMeterProvider(tel.MeterProvider()),
		resilienceconfig.WithRetryConfig(retryConfig),
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
	)
}
