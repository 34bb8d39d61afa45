// Package order wires the order service for one process: an event store
// (SQLite by default, or the caller's, such as PostgreSQL) guarded by
// resilience policies, a read model that a projection keeps up to date,
// optionally an outbox relay to a message bus, the use cases and the HTTP
// API, with the telemetry providers the caller gives.
//
// A command builds it with [New], wraps [Service.Handler] in otelhttp, serves
// it, and calls [Service.Close] on shutdown.
package order

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"go.opentelemetry.io/otel"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
	esqlite "github.com/cairnhq/cairn/eventstore/sqlite"
	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/order/adapters/eventsourced"
	"github.com/cairnhq/cairn/internal/shop/order/adapters/grpcapi"
	"github.com/cairnhq/cairn/internal/shop/order/adapters/grpcclients"
	"github.com/cairnhq/cairn/internal/shop/order/adapters/httpapi"
	"github.com/cairnhq/cairn/internal/shop/order/adapters/resilient"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/internal/shop/order/checkout"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/outbox"
	"github.com/cairnhq/cairn/problem"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/degrade"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/saga"
	sagapg "github.com/cairnhq/cairn/saga/postgres"
	sagasqlite "github.com/cairnhq/cairn/saga/sqlite"
)

// Config configures the order service. The zero value is valid: an in-memory
// database and the OpenTelemetry global providers, with logs discarded.
type Config struct {
	// DataDir holds the service's SQLite databases, created if missing:
	// events.db (the event store) unless Events is set, and
	// orders-read.db (the read model) unless ReadDB is set. Empty selects
	// private in-memory databases that live as long as the Service.
	DataDir string
	// RelaxedSync, with the SQLite event store, commits with
	// synchronous=NORMAL: an order survives a crash of the process but a
	// power loss may lose the last ones, and a commit costs no fsync. The
	// demo sets it; the default is a fsync per commit.
	RelaxedSync bool
	// Events, if set, is the event store to use instead of SQLite, such
	// as eventstore/postgres. The caller closes it after the Service.
	Events eventstore.Store
	// ReadDB and ReadDialect, if set, are the read model's database
	// instead of SQLite. The caller closes it after the Service.
	ReadDB      *sql.DB
	ReadDialect cqrs.Dialect
	// Publisher, if set, receives the service's events through an
	// outbox relay that follows the event store (outbox.DefaultSubject:
	// "events.order.placed"). The caller closes it after the Service.
	Publisher messaging.Publisher
	// Subscriber, if set, consumes the order events from the bus to build
	// the customer statistics read model (GET /customers/{id}/stats), as
	// group "customer-stats". The caller closes it after the Service.
	Subscriber messaging.Subscriber
	// TracerProvider receives the database spans. Default: the OpenTelemetry
	// global TracerProvider.
	TracerProvider trace.TracerProvider
	// MeterProvider receives the service metrics. Default: the OpenTelemetry
	// global MeterProvider.
	MeterProvider metric.MeterProvider
	// Logger receives the service's logs, made with the request context.
	// Default: logs are discarded.
	Logger *slog.Logger
	// Reads and Writes run the database's reads (Get, List) and writes
	// (Save) through resilience policies, typically a retry, a circuit
	// breaker, a bulkhead and a timeout. Default nil: calls go straight to
	// the database.
	Reads, Writes resilient.Executor
	// Faults, if set, injects failures and latency into every database
	// call, inside the policies, as if the database misbehaved. Default
	// nil.
	Faults *fault.Injector
	// Degrade, if set, turns the order list down as the service degrades:
	// when FeatureFullList is off, GET /orders returns at most
	// DegradedListLimit orders and says so in a Cairn-Degraded header;
	// when FeatureList is off, it answers 503 with Retry-After. Placing
	// and reading single orders, the essential work, are never degraded.
	// Default nil: never degraded.
	Degrade *degrade.Switch
	// Checkout, if set, runs the checkout saga of every placed order
	// against the inventory, payment and shipping services. Default nil:
	// orders stay placed (the walking skeleton).
	Checkout *CheckoutConfig
}

// CheckoutConfig configures the order service's checkout saga.
type CheckoutConfig struct {
	// Inventory, Payment and Shipping are connections to the
	// participants, carrying the client interceptors (telemetry,
	// resilience). Required.
	Inventory, Payment, Shipping grpc.ClientConnInterface
	// SagaDB and SagaDialect hold the saga instances (saga/sqlite or
	// saga/postgres). Default nil: sagas.db in DataDir (or in memory).
	// The caller closes a SagaDB it gives.
	SagaDB      *sql.DB
	SagaDialect cqrs.Dialect
	// Executor runs each step's attempts: typically a retry whose RetryIf
	// is saga.Retryable, around a timeout. Default nil: one attempt.
	Executor resilience.Executor[struct{}]
	// StepTimeout bounds each step; default 10 seconds.
	StepTimeout time.Duration
	// Lease is how long an orchestrator holds a saga between writes
	// before another process may take it over; default saga.DefaultLease.
	Lease time.Duration
	// Owner names this process's orchestrator; default random.
	Owner string
	// PollInterval is how often the orchestrator looks for sagas whose
	// lease expired (their process died) to resume them; default the saga
	// package's.
	PollInterval time.Duration
	// CompensationBackoff is the wait between the attempts of a
	// compensation that fails (its participant is down, say); the zero
	// value selects saga.DefaultCompensationBackoff (up to a minute).
	CompensationBackoff retry.Backoff
	// Reconcile is how often placed orders whose checkout never started
	// (the process died between storing the order and starting it) are
	// started; default 5 seconds.
	Reconcile time.Duration
}

// Features of the order service that a [degrade.Switch] turns off.
const (
	// FeatureFullList is listing more than DegradedListLimit orders.
	FeatureFullList = "orders.list.full"
	// FeatureList is listing orders at all.
	FeatureList = "orders.list"
)

// DegradedListLimit is the most orders GET /orders returns while
// FeatureFullList is off.
const DegradedListLimit = 10

// Service is a running order service. Its methods are safe for concurrent
// use. Close it when done.
type Service struct {
	events  eventstore.Store
	closers []func() error
	cancel  context.CancelFunc
	bg      sync.WaitGroup
	handler http.Handler
	uc      *app.Service
	repo    *eventsourced.Repository
	grpc    *grpcapi.Server

	orch    *saga.Orchestrator[checkout.Data]
	sagaDB  *sql.DB
	sagaDia cqrs.Dialect
}

// New opens the databases (creating and migrating them as needed), starts
// the projection and the relay, and builds the order service. It returns
// an error if a database cannot be opened.
func New(ctx context.Context, cfg Config) (_ *Service, err error) {
	s := &Service{}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("order: %w", err), s.Close())
		}
	}()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s.events = cfg.Events
	if s.events == nil {
		path := esqlite.MemoryPath
		if cfg.DataDir != "" {
			if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
				return nil, err
			}
			path = filepath.Join(cfg.DataDir, "events.db")
		}
		opts := []esqlite.Option{esqlite.WithTracerProvider(tp), esqlite.WithMeterProvider(cfg.MeterProvider)}
		if cfg.RelaxedSync {
			opts = append(opts, esqlite.WithSyncNormal())
		}
		store, err := esqlite.Open(ctx, path, opts...)
		if err != nil {
			return nil, err
		}
		s.events = store
		s.closers = append(s.closers, store.Close)
	}
	readW, readR, dialect := cfg.ReadDB, cfg.ReadDB, cfg.ReadDialect
	if readW == nil {
		path := ":memory:"
		if cfg.DataDir != "" {
			path = filepath.Join(cfg.DataDir, "orders-read.db")
		}
		if readW, readR, err = eventsourced.OpenSQLite(path); err != nil {
			return nil, fmt.Errorf("read model: %w", err)
		}
		dialect = cqrs.SQLite
		s.closers = append(s.closers, readW.Close)
		if readR != readW {
			s.closers = append(s.closers, readR.Close)
		}
	}
	es := eventsourced.NewRepository(s.events, eventsourced.NewReadModel(readR, dialect, tp))
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	projNotify := es.Notify()
	s.bg.Go(func() {
		_ = eventsourced.RunProjection(bg, eventsourced.ProjectionConfig{
			Events: s.events, DB: readW, Dialect: dialect, Notify: projNotify,
			TracerProvider: tp, MeterProvider: cfg.MeterProvider, Logger: logger,
		})
	})
	if cfg.Publisher != nil {
		relay, err := outbox.NewRelay(outbox.Config{
			Name: "orders", Store: s.events, Publisher: cfg.Publisher, Notify: es.Notify(),
			TracerProvider: tp, MeterProvider: cfg.MeterProvider, Logger: logger,
		})
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, relay.Close)
		s.bg.Go(func() { _ = relay.Run(bg) })
	}
	var stats app.StatsReader
	if cfg.Subscriber != nil {
		cs, err := eventsourced.NewCustomerStats(ctx, readW, readR, dialect, tp)
		if err != nil {
			return nil, err
		}
		sub, err := cfg.Subscriber.Subscribe(bg, messaging.SubscribeConfig{Subject: eventsourced.SubjectPlaced, Group: eventsourced.StatsConsumer}, cs.Handler())
		if err != nil {
			return nil, fmt.Errorf("subscribe to order events: %w", err)
		}
		s.closers = append(s.closers, sub.Close)
		stats = cs
	}
	var repo app.Repository = es
	var statusSetter checkout.Orders = es
	if cfg.Reads != nil || cfg.Writes != nil || cfg.Faults != nil {
		r := resilient.New(es, cfg.Reads, cfg.Writes, cfg.Faults)
		repo, statusSetter = r, r
	}
	s.repo = es
	var co *checkout.Checkout
	if cc := cfg.Checkout; cc != nil {
		if co, err = s.startCheckout(ctx, bg, cfg, cc, statusSetter, logger, tp); err != nil {
			return nil, err
		}
	}
	acfg := app.Config{Logger: cfg.Logger, MeterProvider: cfg.MeterProvider, TracerProvider: tp, Stats: stats}
	if co != nil {
		acfg.Checkout = co
	}
	uc, err := app.New(repo, acfg)
	if err != nil {
		return nil, err
	}
	s.uc = uc
	s.grpc = grpcapi.New(finder{uc, es})
	var h http.Handler = httpapi.NewHandler(uc, cfg.Logger)
	if cfg.Degrade != nil {
		h = degraded(cfg.Degrade, h)
	}
	s.handler = h
	return s, nil
}

// degraded serves the order list as sw allows, and everything else as next
// does.
func degraded(sw *degrade.Switch, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/orders" {
			next.ServeHTTP(w, r)
			return
		}
		if !sw.Enabled(FeatureList) {
			w.Header().Set("Retry-After", "5")
			e := problem.Errorf(http.StatusServiceUnavailable, "listing orders is turned off while the service is degraded (level %d, %s); single orders are still served", sw.Level(), sw.LevelName(sw.Level()))
			problem.Write(w, r, e)
			return
		}
		if !sw.Enabled(FeatureFullList) {
			q := r.URL.Query()
			if n, err := strconv.Atoi(q.Get("limit")); err != nil || n <= 0 || n > DegradedListLimit {
				q.Set("limit", strconv.Itoa(DegradedListLimit))
				r2 := r.Clone(r.Context())
				r2.URL = &url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
				r = r2
			}
			w.Header().Set("Cairn-Degraded", FeatureFullList)
		}
		next.ServeHTTP(w, r)
	})
}

// startCheckout opens the saga store, builds the checkout saga and its
// orchestrator, and starts its recovery and reconciliation loops.
func (s *Service) startCheckout(ctx, bg context.Context, cfg Config, cc *CheckoutConfig, orders checkout.Orders, logger *slog.Logger, tp trace.TracerProvider) (*checkout.Checkout, error) {
	if cc.Inventory == nil || cc.Payment == nil || cc.Shipping == nil {
		return nil, errors.New("checkout: the Inventory, Payment and Shipping connections are required")
	}
	s.sagaDB, s.sagaDia = cc.SagaDB, cc.SagaDialect
	var store saga.Store
	var err error
	if s.sagaDB == nil {
		path := "memory"
		dsn := "file:cairn-sagas-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "?mode=memory&cache=shared&_pragma=busy_timeout(10000)&_txlock=immediate"
		if cfg.DataDir != "" {
			path = filepath.Join(cfg.DataDir, "sagas.db")
			dsn = "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		}
		if s.sagaDB, err = sql.Open("sqlite", dsn); err != nil {
			return nil, fmt.Errorf("saga store %s: %w", path, err)
		}
		// One connection: it keeps a memory database alive and free of
		// shared-cache locking, and on a file it makes writers queue in
		// Go's pool rather than sleep in SQLite's busy handler.
		s.sagaDB.SetMaxOpenConns(1)
		s.sagaDia = cqrs.SQLite
		s.closers = append(s.closers, s.sagaDB.Close)
	}
	if s.sagaDia == cqrs.Postgres {
		store, err = sagapg.New(ctx, s.sagaDB)
	} else {
		store, err = sagasqlite.New(ctx, s.sagaDB)
	}
	if err != nil {
		return nil, fmt.Errorf("saga store: %w", err)
	}
	co, err := checkout.New(checkout.Config{
		Inventory:   grpcclients.NewInventory(cc.Inventory),
		Payment:     grpcclients.NewPayment(cc.Payment),
		Shipping:    grpcclients.NewShipping(cc.Shipping),
		Orders:      orders,
		StepTimeout: cc.StepTimeout,
		Executor:    cc.Executor,
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	opts := []saga.Option{saga.WithTracerProvider(tp), saga.WithMeterProvider(cfg.MeterProvider)}
	if cfg.MeterProvider == nil {
		opts[1] = saga.WithMeterProvider(otel.GetMeterProvider())
	}
	if cc.Lease > 0 {
		opts = append(opts, saga.WithLease(cc.Lease))
	}
	if cc.Owner != "" {
		opts = append(opts, saga.WithOwner(cc.Owner))
	}
	if cc.PollInterval > 0 {
		opts = append(opts, saga.WithPollInterval(cc.PollInterval))
	}
	if cc.CompensationBackoff != (retry.Backoff{}) {
		opts = append(opts, saga.WithCompensationBackoff(cc.CompensationBackoff))
	}
	orch, err := saga.New(store, []saga.Definition[checkout.Data]{co.Definition()}, opts...)
	if err != nil {
		return nil, err
	}
	co.Bind(orch)
	s.orch = orch
	s.closers = append(s.closers, orch.Close)
	s.bg.Go(func() { _ = orch.Run(bg) })
	every := cc.Reconcile
	if every <= 0 {
		every = 5 * time.Second
	}
	s.bg.Go(func() { s.reconcile(bg, co, every, logger) })
	return co, nil
}

// reconcile starts, every interval, the checkout of the orders still
// placed after an interval: those whose process stopped between storing
// the order and starting its saga. Start is idempotent, so an order whose
// saga did start (and has not moved it yet) costs one read of the store.
func (s *Service) reconcile(ctx context.Context, co *checkout.Checkout, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for offset := 0; ; offset += 100 {
			orders, err := s.repo.Find(ctx, eventsourced.Filter{Status: domain.StatusPlaced}, offset, 100)
			if err != nil {
				if ctx.Err() == nil {
					logger.WarnContext(ctx, "checkout reconciler: list placed orders", slog.Any("error", err))
				}
				break
			}
			for _, o := range orders {
				if time.Since(o.CreatedAt) < every {
					continue
				}
				full, err := s.repo.Load(ctx, o.ID) // the read model lacks the payment method and address
				if err == nil && full.Status == domain.StatusPlaced {
					err = co.Start(ctx, full)
				}
				if err != nil && ctx.Err() == nil {
					logger.WarnContext(ctx, "checkout reconciler: start", slog.String("order_id", o.ID), slog.Any("error", err))
				}
			}
			if len(orders) < 100 {
				break
			}
		}
	}
}

// SagaCounts counts the checkout sagas by status.
func (s *Service) SagaCounts(ctx context.Context) (map[saga.Status]int, error) {
	if s.sagaDB == nil {
		return nil, errors.New("order: no checkout")
	}
	rows, err := s.sagaDB.QueryContext(ctx, `SELECT status, COUNT(*) FROM `+sagasqlite.DefaultTable+` GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("order: count sagas: %w", err)
	}
	defer rows.Close()
	out := map[saga.Status]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("order: count sagas: %w", err)
		}
		out[saga.Status(st)] = n
	}
	return out, rows.Err()
}

// Orchestrator returns the checkout's orchestrator, nil without a
// checkout.
func (s *Service) Orchestrator() *saga.Orchestrator[checkout.Data] { return s.orch }

// RegisterGRPC registers the order service's gRPC API
// (cairn.shop.order.v1.OrderService) with r.
func (s *Service) RegisterGRPC(r grpc.ServiceRegistrar) { s.grpc.Register(r) }

// finder adapts the use cases and the repository to grpcapi.Orders.
type finder struct {
	*app.Service
	repo *eventsourced.Repository
}

func (f finder) FindOrders(ctx context.Context, customer string, st domain.Status, offset, limit int) ([]domain.Order, error) {
	return f.repo.Find(ctx, eventsourced.Filter{CustomerID: customer, Status: st}, offset, limit)
}

// Handler returns the HTTP API (see package httpapi for the routes). It is
// not instrumented: wrap it with otelhttp.NewHandler, which then names server
// spans after the matched route pattern.
func (s *Service) Handler() http.Handler { return s.handler }

// Close stops the projection and the relay and closes the databases the
// Service opened. Stop serving Handler before calling it: requests still
// in flight fail.
func (s *Service) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.bg.Wait()
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("order: close: %w", err)
	}
	return nil
}
