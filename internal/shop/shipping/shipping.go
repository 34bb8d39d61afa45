// Package shipping wires the shipping service of the reference shop for one
// process: a database (the caller's SQLite or PostgreSQL, or a private
// in-memory SQLite) holding the shipments and their saga barrier, the use
// cases, the gRPC API (shippingv1.ShippingService) and, optionally, a
// background dispatcher that ships the scheduled shipments after a delay.
//
// In the checkout saga, ScheduleShipment is an action and CancelShipment
// its compensation. Both run under a saga barrier (package saga/barrier),
// whose row commits in the same transaction as the shipment's change, so
// that:
//
//   - a duplicate ScheduleShipment returns the first call's shipment id and
//     estimated delivery and books nothing;
//   - a CancelShipment before any ScheduleShipment succeeds with no
//     shipment (a null compensation), and the late ScheduleShipment is
//     refused with ABORTED;
//   - a duplicate CancelShipment returns the cancelled shipment again;
//   - cancelling a shipment that the dispatcher shipped fails with
//     FAILED_PRECONDITION, and changes nothing.
//
// The delivery is estimated as the region's number of business days after
// the shipment is scheduled (see domain.DefaultRegions). A command builds
// the service with [New], registers it on a grpc.Server with
// [Service.Register] and calls [Service.Close] after the server stopped.
package shipping

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

	shippingv1 "github.com/cairnhq/cairn/api/proto/cairn/shop/shipping/v1"
	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/shipping/adapters/grpcapi"
	"github.com/cairnhq/cairn/internal/shop/shipping/adapters/sqlstore"
	"github.com/cairnhq/cairn/internal/shop/shipping/app"
	"github.com/cairnhq/cairn/internal/shop/shipping/domain"
)

// ShipmentsMetric is the service's counter of shipments, with the
// attribute outcome: scheduled, cancelled, shipped or rejected (see
// app.ShipmentsMetric).
const ShipmentsMetric = app.ShipmentsMetric

// Config configures the shipping service. The zero value is valid: a
// private in-memory SQLite database, the default regions, no dispatcher,
// the OpenTelemetry global providers and no logs.
type Config struct {
	// DB is the database of the shipments and of the saga barrier
	// (tables shipping_shipments and shipping_barrier, created if
	// missing). The caller closes it after the Service. Default nil: a
	// private in-memory SQLite database that lives as long as the
	// Service. A SQLite DB should be opened with _txlock=immediate and a
	// busy_timeout, or hold a single connection.
	DB *sql.DB
	// Dialect is DB's dialect: cqrs.SQLite or cqrs.Postgres. Default
	// (zero): cqrs.SQLite.
	Dialect cqrs.Dialect
	// Regions are the regions the shop ships to, by upper-case region
	// code, with their delivery times in business days; a request for
	// another region fails with FAILED_PRECONDITION. Default:
	// domain.DefaultRegions (the EU, CH, GB, NO and US).
	Regions domain.Regions
	// DispatchAfter, if positive, starts a dispatcher that marks shipments
	// SHIPPED that long after they were scheduled, after which they can no
	// longer be cancelled. Default 0: shipments stay SCHEDULED until
	// [Service.Dispatch] is called.
	DispatchAfter time.Duration
	// DispatchInterval is how often the dispatcher runs. Default:
	// DispatchAfter/2, and at least 10ms.
	DispatchInterval time.Duration
	// TracerProvider receives the dispatcher's spans. Default: the
	// OpenTelemetry global TracerProvider. (The gRPC server spans are the
	// caller's, from the otelgrpc stats handler of its grpc.Server.)
	TracerProvider trace.TracerProvider
	// MeterProvider receives ShipmentsMetric and the barrier's
	// cairn.saga.barrier.outcomes. Default: the OpenTelemetry global
	// MeterProvider.
	MeterProvider metric.MeterProvider
	// Logger receives a record, made with the request's context, per
	// change of a shipment's status. Default: logs are discarded.
	Logger *slog.Logger
	// Faults, if set, is called at the start of every RPC, which answers
	// UNAVAILABLE when it injects an error. Default nil: no faults.
	Faults *fault.Injector
	// Now returns the current time, stamped on shipments and used to
	// estimate deliveries and to dispatch. Default: time.Now.
	Now func() time.Time
}

// Service is a running shipping service. Its methods are safe for
// concurrent use. Close it when done.
type Service struct {
	app    *app.Service
	server *grpcapi.Server
	db     *sql.DB // closed by Close when the Service opened it
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

// New creates the service's tables if they are missing, builds the service
// and starts its dispatcher if cfg.DispatchAfter is positive. It returns an
// error if the database cannot be opened or its schema created.
func New(ctx context.Context, cfg Config) (_ *Service, err error) {
	s := &Service{}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("shipping: %w", err), s.Close())
		}
	}()
	db, dialect := cfg.DB, cfg.Dialect
	if dialect == 0 {
		dialect = cqrs.SQLite
	}
	if db == nil {
		if db, err = sql.Open("sqlite", "file::memory:"); err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1) // one connection: one in-memory database
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
		s.db, dialect = db, cqrs.SQLite
	}
	store, err := sqlstore.New(ctx, db, dialect, cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	s.app, err = app.New(app.Config{
		Store: store, Regions: cfg.Regions, DispatchAfter: cfg.DispatchAfter,
		Logger: cfg.Logger, MeterProvider: cfg.MeterProvider, TracerProvider: cfg.TracerProvider, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	s.server = grpcapi.NewServer(s.app, cfg.Faults, cfg.Logger)
	if cfg.DispatchAfter > 0 {
		every := cfg.DispatchInterval
		if every <= 0 {
			every = cfg.DispatchAfter / 2
		}
		every = max(every, 10*time.Millisecond)
		bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.cancel = cancel
		s.bg.Go(func() { _ = s.app.RunDispatcher(bg, every) })
	}
	return s, nil
}

// Register registers the service's gRPC API (shippingv1.ShippingService)
// on r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	shippingv1.RegisterShippingServiceServer(r, s.server)
}

// Server returns the service's implementation of the gRPC API, for callers
// that compose it themselves.
func (s *Service) Server() shippingv1.ShippingServiceServer { return s.server }

// Dispatch does one pass of the dispatcher, whether or not it runs in the
// background: it marks SHIPPED every SCHEDULED shipment created at least
// Config.DispatchAfter before Config.Now (every one of them when
// DispatchAfter is zero), and returns how many.
func (s *Service) Dispatch(ctx context.Context) (int, error) {
	return s.app.Dispatch(ctx)
}

// Close stops the dispatcher and closes the database if the Service opened
// it; it leaves Config.DB open. Stop the gRPC server first: requests still
// in flight fail.
func (s *Service) Close() error {
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	s.bg.Wait()
	if s.db != nil {
		db := s.db
		s.db = nil
		if err := db.Close(); err != nil {
			return fmt.Errorf("shipping: close: %w", err)
		}
	}
	return nil
}
