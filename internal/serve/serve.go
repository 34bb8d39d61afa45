// Package serve runs one service of the reference shop alone in its
// process, on real engines: `cairn serve order --store postgres://...
// --bus nats://...`. Its telemetry is configured by the standard
// OpenTelemetry environment variables (OTEL_EXPORTER_OTLP_ENDPOINT and the
// rest), so any OTLP backend, `cairn console` among them, receives it.
package serve

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the read model's database/sql driver

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
	pgstore "github.com/cairnhq/cairn/eventstore/postgres"
	"github.com/cairnhq/cairn/internal/buildinfo"
	"github.com/cairnhq/cairn/internal/shop/order"
	"github.com/cairnhq/cairn/internal/shop/shoprpc"
	"github.com/cairnhq/cairn/internal/shopbus"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
	"github.com/cairnhq/cairn/telemetry"
)

// OrderConfig configures [Order].
type OrderConfig struct {
	// Addr is the address of the HTTP API.
	Addr string
	// AdminAddr is the address of the admin listener (/metrics,
	// /debug/pprof/, /loglevel, /healthz); empty turns it off.
	AdminAddr string
	// Store is where the events and the read model live: a PostgreSQL
	// URL ("postgres://..." or "postgresql://..."), or a directory for
	// SQLite databases.
	Store string
	// Bus is the NATS URL of the message bus ("nats://..."); empty runs
	// without one (no outbox relay, no customer statistics).
	Bus string
	// GRPCAddr is the address of the order service's gRPC API
	// (orderv1: GetOrder, ListOrders, WatchOrder); empty turns it off.
	GRPCAddr string
	// Inventory, Payment and Shipping are the gRPC targets (host:port) of
	// the checkout's participants. With all three, every placed order
	// runs the checkout saga, whose instances live beside the events (in
	// the PostgreSQL database, or sagas.db in the SQLite directory); with
	// none, orders stay placed; with some, Order refuses to start.
	Inventory, Payment, Shipping string
	// Resilience is a resilience configuration file (YAML or JSON,
	// docs/resilience-config.md) with the demo's pipeline names
	// (inventory-client, payment-client, shipping-client, checkout-step),
	// reloaded when it changes. Empty: the demo's embedded
	// demo.DefaultResilience.
	Resilience string
	// Out receives the startup banner.
	Out io.Writer
	// Ready, if not nil, is called with the HTTP API's address once it
	// accepts connections (and the gRPC API's, if any).
	Ready func(addr string)
	// GRPCReady, if not nil, is called with the gRPC API's address once
	// it accepts connections, before Ready.
	GRPCReady func(addr string)
}

// checkoutTargets returns the participants' targets by service name, nil
// without a checkout, or a usage error naming the missing ones.
func (cfg OrderConfig) checkoutTargets() (map[string]string, error) {
	targets := map[string]string{ServiceInventory: cfg.Inventory, ServicePayment: cfg.Payment, ServiceShipping: cfg.Shipping}
	var missing []string
	for _, name := range []string{ServiceInventory, ServicePayment, ServiceShipping} {
		if targets[name] == "" {
			missing = append(missing, "--"+name)
		}
	}
	switch len(missing) {
	case 0:
		return targets, nil
	case len(targets):
		return nil, nil
	}
	return nil, usagef("the checkout needs --inventory, --payment and --shipping: %s missing", strings.Join(missing, ", "))
}

// Order runs the order service until ctx ends, then shuts it down within
// 10 seconds and returns nil, or returns the error that stopped it. Errors
// of the configuration match ErrUsage.
func Order(ctx context.Context, cfg OrderConfig) (err error) {
	targets, err := cfg.checkoutTargets()
	if err != nil {
		return err
	}
	if err := checkStore(cfg.Store); err != nil {
		return err
	}
	if cfg.Bus != "" && !strings.HasPrefix(cfg.Bus, "nats://") {
		return usagef("--bus %q: want a nats:// URL", cfg.Bus)
	}
	var rfile *resilienceconfig.File
	if targets != nil {
		if rfile, err = resilienceFile(cfg.Resilience); err != nil {
			return err
		}
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "order", ServiceVersion: buildinfo.Version()})
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
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(sctx))
	}()
	ocfg := order.Config{TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider(), Logger: tel.Logger()}
	switch {
	case strings.HasPrefix(cfg.Store, "postgres://"), strings.HasPrefix(cfg.Store, "postgresql://"):
		events, readDB, closeAll, err := openPostgres(ctx, cfg.Store, tel)
		if err != nil {
			return err
		}
		closers = append(closers, closeAll)
		ocfg.Events, ocfg.ReadDB, ocfg.ReadDialect = events, readDB, cqrs.Postgres
	default:
		ocfg.DataDir = cfg.Store
	}
	if cfg.Bus != "" {
		bus, err := shopbus.Connect(ctx, cfg.Bus, shopbus.Options{Name: "order", TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider()})
		if err != nil {
			return err
		}
		closers = append(closers, bus.Close)
		ocfg.Publisher, ocfg.Subscriber = bus.Publisher, bus.Subscriber
	}
	var res *resilienceconfig.Reloader
	if targets != nil {
		if res, err = newReloader(rfile, tel, orderRetryConfig); err != nil {
			return fmt.Errorf("resilience: %w", err)
		}
		closers = append(closers, res.Close)
		cc := &order.CheckoutConfig{Owner: owner()}
		conns := map[string]*grpc.ClientConn{}
		for _, name := range []string{ServiceInventory, ServicePayment, ServiceShipping} {
			pl, err := resilienceconfig.NewLive[struct{}](res, name+"-client")
			if err != nil {
				return fmt.Errorf("resilience: %w", err)
			}
			conn, err := shoprpc.Dial(targets[name], tel, pl)
			if err != nil {
				return usagef("--%s %q: %v", name, targets[name], err)
			}
			closers = append(closers, conn.Close)
			conns[name] = conn
		}
		cc.Inventory, cc.Payment, cc.Shipping = conns[ServiceInventory], conns[ServicePayment], conns[ServiceShipping]
		if cc.Executor, err = resilienceconfig.NewLive[struct{}](res, "checkout-step"); err != nil {
			return fmt.Errorf("resilience: %w", err)
		}
		if ocfg.ReadDialect == cqrs.Postgres {
			// The sagas live in the same database as the events: saga/postgres
			// creates its tables there.
			cc.SagaDB, cc.SagaDialect = ocfg.ReadDB, cqrs.Postgres
		}
		ocfg.Checkout = cc
	}
	svc, err := order.New(ctx, ocfg)
	if err != nil {
		return err
	}
	closers = append(closers, svc.Close)

	var gsrv *grpc.Server
	var gln net.Listener
	if cfg.GRPCAddr != "" {
		if gln, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.GRPCAddr, err)
		}
		gsrv = shoprpc.NewServer(tel, nil)
		svc.RegisterGRPC(gsrv)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		if gln != nil {
			gln.Close()
		}
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: tel.Handler(svc.Handler(), "order"), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	bg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	})
	// Deferred: the APIs stop before the closers run (the service, then
	// the connections and the databases).
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if serr := srv.Shutdown(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("shut down: %w", serr))
		}
	}()
	if gsrv != nil {
		bg.Go(func() {
			if err := gsrv.Serve(gln); err != nil {
				errc <- err
			}
		})
		defer gracefulStop(gsrv)
	}
	if err := startBackground(bgCtx, &bg, tel, cfg.AdminAddr, res, cfg.Resilience); err != nil {
		return err
	}
	if cfg.Out != nil {
		fmt.Fprintf(cfg.Out, "cairn serve order %s\n  API       http://%s/orders\n", buildinfo.Version(), ln.Addr())
		if gln != nil {
			fmt.Fprintf(cfg.Out, "  gRPC      %s\n", gln.Addr())
		}
		fmt.Fprintf(cfg.Out, "  store     %s\n  bus       %s\n", redact(cfg.Store), orNone(cfg.Bus))
		if targets != nil {
			fmt.Fprintf(cfg.Out, "  checkout  inventory %s, payment %s, shipping %s (resilience: %s)\n",
				cfg.Inventory, cfg.Payment, cfg.Shipping, resilienceName(cfg.Resilience))
		} else {
			fmt.Fprintf(cfg.Out, "  checkout  none (orders stay placed; give --inventory, --payment and --shipping)\n")
		}
	}
	if cfg.GRPCReady != nil && gln != nil {
		cfg.GRPCReady(gln.Addr().String())
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

// owner names this process's saga orchestrator: the host name and the
// process id.
func owner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "order"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// openPostgres opens the event store and the read model on the database
// at url: the events in schema "eventstore", the read model in the
// connection's search path.
func openPostgres(ctx context.Context, url string, tel *telemetry.Telemetry) (eventstore.Store, *sql.DB, func() error, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, nil, nil, fmt.Errorf("--store %s: %w", redact(url), err)
	}
	store, err := pgstore.New(ctx, pool, pgstore.WithTracerProvider(tel.TracerProvider()), pgstore.WithMeterProvider(tel.MeterProvider()))
	if err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		pool.Close()
		return nil, nil, nil, errors.Join(err, store.Close())
	}
	return store, db, func() error {
		err := errors.Join(db.Close(), store.Close())
		pool.Close()
		return err
	}, nil
}

// redact hides the password of a URL.
func redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return s
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
