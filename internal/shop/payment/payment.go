// Package payment wires the shop's payment service for one process: the
// payments and the saga barrier in a SQL database (SQLite or PostgreSQL,
// the caller's, or a private in-memory SQLite), a client of the external
// payment provider (package provider, which also simulates one), the use
// cases, and the gRPC service cairn.shop.payment.v1.PaymentService.
//
// In the checkout saga, Charge is an action whose compensation is Refund.
// Each runs at most once per saga branch through the saga barrier
// (package saga/barrier), and no database transaction is held across a
// call to the provider:
//
//  1. a transaction records the barrier row and a PENDING payment whose id
//     derives from the saga and branch ids; it commits;
//  2. the provider is asked to charge, with the payment id as its
//     idempotency key;
//  3. the outcome (CAPTURED or DECLINED) is written with a compare-and-set
//     on the status.
//
// A duplicate Charge reads the payment back; if it is still PENDING (the
// first call crashed or is still running) it asks the provider again with
// the same key, which charges once. A Refund that arrives first is a null
// compensation and the late Charge fails with ABORTED. A Refund of a
// PENDING payment asks the provider (a hedged read) whether the charge was
// made, refunds it if so, or cancels the payment, after which a charge
// still in flight is refunded by the Charge call that made it.
//
// One window is left to a reconciler: if that Charge call's process stops
// between the provider's capture and recording it, and the saga never
// sends the charge again, the provider holds a captured charge of a
// canceled payment. [Service.Reconcile] (run every
// Config.ReconcileInterval by New's background loop) looks up, by their
// idempotency keys, the charges of the payments canceled more than
// Config.ReconcileAfter (default 30s) and less than Config.ReconcileWindow
// (default 24h) ago, and refunds a captured one: such a charge is given
// back at most ReconcileAfter plus one interval after the cancellation
// (the provider reachable). ReconcileAfter outlasts a Charge call in
// flight, so that the reconciler acts only once no Charge call can still
// record the charge and refund it; several replicas may reconcile at once
// (the provider refunds once per key; a compare-and-set records it).
//
// A command builds it with [New], registers it on a grpc.Server with
// [Service.Register] (the server carries the otelgrpc stats handler and
// the resilience interceptors), and calls [Service.Close] on shutdown.
//
// Metrics: cairn.shop.payment.charges and cairn.shop.payment.amount (see
// package app; a reconciled refund counts as outcome "refunded"), the
// barrier's cairn.saga.barrier.outcomes, and the provider client's
// otelhttp and resilience metrics. Each reconciliation pass is a span
// "payment.reconcile" with the attribute cairn.payment.reconciled.
package payment

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

	paymentv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/payment/v1"
	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/payment/adapters/grpcapi"
	"github.com/cairnhq/cairn/internal/shop/payment/adapters/psp"
	"github.com/cairnhq/cairn/internal/shop/payment/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/payment/app"
	"github.com/cairnhq/cairn/internal/shop/payment/provider"
)

// Config configures the payment service. Provider is required; every
// other zero field takes its documented default.
type Config struct {
	// DB is the service's database, whose tables New creates if missing.
	// The caller closes it after the Service. Open SQLite with
	// _txlock=immediate, a busy_timeout and WAL, as the barrier needs.
	// Default nil: a private in-memory SQLite database that lives as long
	// as the Service.
	DB *sql.DB
	// Dialect is DB's dialect: cqrs.SQLite or cqrs.Postgres. Required
	// with DB; ignored without.
	Dialect cqrs.Dialect
	// Provider is the client of the payment provider, with its resilience
	// pipelines (see provider.ClientConfig and provider.DefaultPipelines).
	// Required. The caller owns it.
	Provider *provider.Client
	// Faults, if set, runs before every RPC: an injected error answers
	// UNAVAILABLE, injected latency delays the call. Default nil: no
	// faults. (To make the provider fail, give its ServerConfig one.)
	Faults *fault.Injector
	// TracerProvider receives a span per provider call. Default: the
	// OpenTelemetry global TracerProvider.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the service's metrics and the barrier's.
	// Default: the OpenTelemetry global MeterProvider.
	MeterProvider metric.MeterProvider
	// Logger receives the service's logs, made with the request context.
	// Default: logs are discarded.
	Logger *slog.Logger
	// Now returns the current time, for the payments' timestamps and the
	// reconciliation's ages. Default: time.Now.
	Now func() time.Time
	// ReconcileInterval is the period of the background reconciliation
	// (see Service.Reconcile). Default 0: one minute; negative: no
	// background reconciliation.
	ReconcileInterval time.Duration
	// ReconcileAfter is the age (since its last change) from which a
	// canceled payment is checked at the provider; it must outlast a
	// Charge call in flight (app.DefaultReconcileAfter says why).
	// Default 0: 30 seconds.
	ReconcileAfter time.Duration
	// ReconcileWindow is the age past which a canceled payment is no
	// longer checked. Default 0: 24 hours.
	ReconcileWindow time.Duration
}

// DefaultReconcileInterval is the default of Config.ReconcileInterval.
const DefaultReconcileInterval = time.Minute

// Service is a running payment service. Its methods are safe for
// concurrent use. Close it when done.
type Service struct {
	uc      *app.Service
	srv     *grpcapi.Server
	ownDB   *sql.DB
	logger  *slog.Logger
	stop    context.CancelFunc
	loop    sync.WaitGroup
	closing sync.Once
	err     error
}

// New creates the service's tables if they are missing and builds the
// service. It returns an error if Provider is nil or the database cannot
// be opened or set up.
func New(ctx context.Context, cfg Config) (_ *Service, err error) {
	s := &Service{}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("payment: %w", err), s.Close())
		}
	}()
	if cfg.Provider == nil {
		return nil, errors.New("a provider client (Config.Provider) is required")
	}
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
	s.uc, err = app.New(app.Config{
		Store: store, Provider: psp.New(cfg.Provider),
		TracerProvider: cfg.TracerProvider, MeterProvider: cfg.MeterProvider, Logger: cfg.Logger, Now: cfg.Now,
		ReconcileAfter: cfg.ReconcileAfter, ReconcileWindow: cfg.ReconcileWindow,
	})
	if err != nil {
		return nil, err
	}
	s.srv = grpcapi.New(s.uc, grpcapi.Config{Faults: cfg.Faults, Logger: cfg.Logger})
	if s.logger = cfg.Logger; s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if every := cfg.ReconcileInterval; every >= 0 {
		if every == 0 {
			every = DefaultReconcileInterval
		}
		// The loop outlives New's ctx: Close stops it.
		lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		s.stop = stop
		s.loop.Go(func() { s.reconcileEvery(lctx, every) })
	}
	return s, nil
}

// reconcileEvery runs Reconcile every period until ctx ends. Each pass
// is a trace of its own.
func (s *Service) reconcileEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pass := trace.ContextWithSpanContext(ctx, trace.SpanContext{}) // a new root span
		if _, err := s.uc.Reconcile(pass); err != nil && ctx.Err() == nil {
			s.logger.WarnContext(pass, "payment reconciliation failed; the next pass resumes", "error", err)
		}
	}
}

// Reconcile refunds the charges that the provider captured for payments a
// compensation had canceled, whose Charge call stopped before recording
// them (see the package comment), and returns how many it refunded. The
// background loop calls it every Config.ReconcileInterval; it is safe to
// call at any time, from several replicas at once.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	n, err := s.uc.Reconcile(ctx)
	if err != nil {
		return n, fmt.Errorf("payment: %w", err)
	}
	return n, nil
}

// Register registers the gRPC service cairn.shop.payment.v1.PaymentService
// on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	paymentv1.RegisterPaymentServiceServer(r, s.srv)
}

// Server returns the gRPC service's implementation, to call it in-process.
func (s *Service) Server() paymentv1.PaymentServiceServer { return s.srv }

// Close stops the background reconciliation, waiting for a pass in
// progress to end (its calls are canceled), and closes the private
// database, if New opened one. It does not close Config.DB or
// Config.Provider, which the caller owns. It is safe to call more than
// once.
func (s *Service) Close() error {
	s.closing.Do(func() {
		if s.stop != nil {
			s.stop()
			s.loop.Wait()
		}
		if s.ownDB != nil {
			s.err = s.ownDB.Close()
		}
	})
	return s.err
}
