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
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the read model's database/sql driver

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
	pgstore "github.com/cairnhq/cairn/eventstore/postgres"
	"github.com/cairnhq/cairn/internal/buildinfo"
	"github.com/cairnhq/cairn/internal/shop/order"
	"github.com/cairnhq/cairn/internal/shopbus"
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
	// Out receives the startup banner.
	Out io.Writer
	// Ready, if not nil, is called with the API's address once it
	// accepts connections.
	Ready func(addr string)
}

// Order runs the order service until ctx ends, then shuts it down within
// 10 seconds and returns nil, or returns the error that stopped it.
func Order(ctx context.Context, cfg OrderConfig) (err error) {
	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "order", ServiceVersion: buildinfo.Version()})
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	var closers []func() error
	defer func() {
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
	case cfg.Store == "":
		return errors.New("--store is empty: give a postgres:// URL or a directory for SQLite")
	case strings.Contains(cfg.Store, "://"):
		return fmt.Errorf("--store %q: unknown scheme (want postgres:// or a directory)", cfg.Store)
	default:
		ocfg.DataDir = cfg.Store
	}
	if cfg.Bus != "" {
		if !strings.HasPrefix(cfg.Bus, "nats://") {
			return fmt.Errorf("--bus %q: want a nats:// URL", cfg.Bus)
		}
		bus, err := shopbus.Connect(ctx, cfg.Bus, shopbus.Options{Name: "order", TracerProvider: tel.TracerProvider(), MeterProvider: tel.MeterProvider()})
		if err != nil {
			return err
		}
		closers = append(closers, bus.Close)
		ocfg.Publisher, ocfg.Subscriber = bus.Publisher, bus.Subscriber
	}
	svc, err := order.New(ctx, ocfg)
	if err != nil {
		return err
	}
	closers = append(closers, svc.Close)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{Handler: tel.Handler(svc.Handler(), "order"), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.AdminAddr != "" {
		aln, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("listen on %s: %w", cfg.AdminAddr, err)
		}
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { _ = tel.ServeAdmin(actx, aln) }()
	}
	if cfg.Out != nil {
		fmt.Fprintf(cfg.Out, "cairn serve order %s\n  API    http://%s/orders\n  store  %s\n  bus    %s\n", buildinfo.Version(), ln.Addr(), redact(cfg.Store), orNone(cfg.Bus))
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
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
