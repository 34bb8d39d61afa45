// Package inventory wires the shop's inventory service for one process: the
// stock and reservations in a SQL database (SQLite or PostgreSQL, the
// caller's, or a private in-memory SQLite), the use cases, a background
// sweeper that expires reservations whose time ran out, and the gRPC
// service cairn.shop.inventory.v1.InventoryService.
//
// In the checkout saga, Reserve is an action whose compensation is Release,
// and Confirm turns the reservation into a sale. Each runs at most once
// per saga branch through the saga barrier (package saga/barrier), in the
// same transaction as its writes: a duplicate returns the first call's
// result, a Release that arrives before its Reserve succeeds without
// effect and makes the late Reserve fail with ABORTED.
//
// A command builds it with [New], registers it on a grpc.Server with
// [Service.Register] (the server carries the otelgrpc stats handler and
// the resilience interceptors), and calls [Service.Close] on shutdown.
//
// Metrics: cairn.shop.inventory.reservations and
// cairn.shop.inventory.reserved_units (see package app), and the barrier's
// cairn.saga.barrier.outcomes.
package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	_ "modernc.org/sqlite" // the default database

	inventoryv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/inventory/v1"
	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/inventory/adapters/grpcapi"
	"github.com/cairnhq/cairn/internal/shop/inventory/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/inventory/app"
	"github.com/cairnhq/cairn/internal/shop/inventory/domain"
)

// DefaultSweepInterval is how often the sweeper expires overdue
// reservations when Config.SweepInterval is zero.
const DefaultSweepInterval = 30 * time.Second

// Config configures the inventory service. The zero value is valid: a
// private in-memory SQLite database with no stock, and the OpenTelemetry
// global providers, with logs discarded.
type Config struct {
	// DB is the service's database, whose tables New creates if missing.
	// The caller closes it after the Service. Open SQLite with a
	// busy_timeout and WAL (see package sqlstore). Default nil: a private
	// in-memory SQLite database that lives as long as the Service.
	DB *sql.DB
	// Dialect is DB's dialect: cqrs.SQLite or cqrs.Postgres. Required
	// with DB; ignored without.
	Dialect cqrs.Dialect
	// TracerProvider receives the spans of sweeps that expire
	// reservations. Default: the OpenTelemetry global TracerProvider.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the service's metrics. Default: the
	// OpenTelemetry global MeterProvider.
	MeterProvider metric.MeterProvider
	// Logger receives the service's logs, made with the request context.
	// Default: logs are discarded.
	Logger *slog.Logger
	// Faults, if set, runs before every RPC: an injected error answers
	// UNAVAILABLE. Default nil: no faults.
	Faults *fault.Injector
	// Now returns the current time, which judges expiry. Default:
	// time.Now.
	Now func() time.Time
	// DefaultTTL is how long a reservation made without a TTL holds its
	// stock. Default: 15 minutes.
	DefaultTTL time.Duration
	// SweepInterval is how often a background goroutine expires the
	// reservations past their expire time and returns their stock.
	// Default (zero): DefaultSweepInterval; negative: no sweeper (call
	// Service.Sweep yourself).
	SweepInterval time.Duration
	// Seed is the catalog: sku -> units on hand, inserted at New for the
	// skus that are missing (existing stock is left alone). See
	// DefaultCatalog. Default nil: no stock.
	Seed map[string]int
}

// DefaultCatalog returns n skus, "SKU-0000" to fmt.Sprintf("SKU-%04d", n-1),
// each with onHand units: the catalog the demo's load generator orders
// from.
func DefaultCatalog(n, onHand int) map[string]int {
	c := make(map[string]int, n)
	for i := range n {
		c[fmt.Sprintf("SKU-%04d", i)] = onHand
	}
	return c
}

// Service is a running inventory service. Its methods are safe for
// concurrent use. Close it when done.
type Service struct {
	uc      *app.Service
	srv     *grpcapi.Server
	ownDB   *sql.DB
	cancel  context.CancelFunc
	bg      sync.WaitGroup
	closing sync.Once
}

// New creates the service's tables if they are missing, seeds cfg.Seed,
// and starts the sweeper. It returns an error if the database cannot be
// opened or set up.
func New(ctx context.Context, cfg Config) (_ *Service, err error) {
	s := &Service{}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("inventory: %w", err), s.Close())
		}
	}()
	db, dialect := cfg.DB, cfg.Dialect
	if db == nil {
		if db, err = sql.Open("sqlite", "file::memory:"); err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1) // one private in-memory database
		s.ownDB, dialect = db, cqrs.SQLite
	}
	store, err := sqlstore.New(ctx, db, dialect, cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	s.uc, err = app.New(store, app.Config{
		Logger: cfg.Logger, MeterProvider: cfg.MeterProvider, TracerProvider: cfg.TracerProvider,
		Now: cfg.Now, DefaultTTL: cfg.DefaultTTL,
	})
	if err != nil {
		return nil, err
	}
	if _, err := s.uc.Seed(ctx, cfg.Seed); err != nil {
		return nil, err
	}
	s.srv = grpcapi.New(s.uc, grpcapi.Config{Faults: cfg.Faults, Logger: cfg.Logger})
	interval := cfg.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	if interval > 0 {
		bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.cancel = cancel
		logger := cfg.Logger
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		s.bg.Go(func() { s.sweep(bg, interval, logger) })
	}
	return s, nil
}

// sweep calls Sweep every interval until ctx ends.
func (s *Service) sweep(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.uc.Sweep(ctx); err != nil && ctx.Err() == nil {
			logger.WarnContext(ctx, "inventory: sweep failed", "err", err)
		}
	}
}

// Register registers the gRPC service InventoryService on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	inventoryv1.RegisterInventoryServiceServer(r, s.srv)
}

// Server returns the implementation of InventoryService that Register
// registers, for callers that wrap it.
func (s *Service) Server() inventoryv1.InventoryServiceServer { return s.srv }

// Sweep expires the active reservations past their expire time, returning
// their stock, and returns how many it expired. The background sweeper
// calls it every Config.SweepInterval; tests call it directly.
func (s *Service) Sweep(ctx context.Context) (int, error) { return s.uc.Sweep(ctx) }

// SetStock sets sku's units on hand, adding the sku if it is missing: for
// operators and the demo's scenarios (a stock-out sets it low). Units held
// by active reservations stay held: on hand never drops below them.
func (s *Service) SetStock(ctx context.Context, sku string, onHand int) error {
	_, err := s.uc.SetStock(ctx, sku, onHand)
	return err
}

// Stock returns sku's stock, or an error matching domain.ErrNotFound.
func (s *Service) Stock(ctx context.Context, sku string) (domain.Stock, error) {
	st, err := s.uc.GetStock(ctx, []string{sku})
	if err != nil {
		return domain.Stock{}, err
	}
	return st[0], nil
}

// Close stops the sweeper, unregisters the metrics' callbacks and closes
// the database if New opened it (never Config.DB). Stop serving the gRPC
// service first: calls still in flight may fail. It is safe to call more
// than once.
func (s *Service) Close() error {
	var err error
	s.closing.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		s.bg.Wait()
		var errs []error
		if s.uc != nil {
			errs = append(errs, s.uc.Close())
		}
		if s.ownDB != nil {
			errs = append(errs, s.ownDB.Close())
		}
		if e := errors.Join(errs...); e != nil {
			err = fmt.Errorf("inventory: close: %w", e)
		}
	})
	return err
}
