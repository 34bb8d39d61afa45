// Package order wires the order service for one process: a SQLite store
// guarded by resilience policies, the use cases and the HTTP API, with the
// telemetry providers the caller gives.
//
// A command builds it with [New], wraps [Service.Handler] in otelhttp, serves
// it, and calls [Service.Close] on shutdown.
package order

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/internal/fault"
	"github.com/cairnhq/cairn/internal/shop/order/adapters/httpapi"
	"github.com/cairnhq/cairn/internal/shop/order/adapters/resilient"
	sqlitestore "github.com/cairnhq/cairn/internal/shop/order/adapters/sqlite"
	"github.com/cairnhq/cairn/internal/shop/order/app"
	"github.com/cairnhq/cairn/problem"
	"github.com/cairnhq/cairn/resilience/degrade"
)

// Config configures the order service. The zero value is valid: an in-memory
// database and the OpenTelemetry global providers, with logs discarded.
type Config struct {
	// DBPath is the SQLite database file, created if missing. Empty selects
	// a private in-memory database that lives as long as the Service.
	DBPath string
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
	store   *sqlitestore.Store
	handler http.Handler
}

// New opens the database (creating and migrating it as needed) and builds the
// order service. It returns an error if the database cannot be opened.
func New(ctx context.Context, cfg Config) (*Service, error) {
	path := cfg.DBPath
	if path == "" {
		path = sqlitestore.MemoryPath
	}
	store, err := sqlitestore.Open(ctx, path, cfg.TracerProvider)
	if err != nil {
		return nil, fmt.Errorf("order: %w", err)
	}
	var repo app.Repository = store
	if cfg.Reads != nil || cfg.Writes != nil || cfg.Faults != nil {
		repo = resilient.New(store, cfg.Reads, cfg.Writes, cfg.Faults)
	}
	uc, err := app.New(repo, app.Config{Logger: cfg.Logger, MeterProvider: cfg.MeterProvider})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("order: %w", err), store.Close())
	}
	var h http.Handler = httpapi.NewHandler(uc, cfg.Logger)
	if cfg.Degrade != nil {
		h = degraded(cfg.Degrade, h)
	}
	return &Service{store: store, handler: h}, nil
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

// Handler returns the HTTP API (see package httpapi for the routes). It is
// not instrumented: wrap it with otelhttp.NewHandler, which then names server
// spans after the matched route pattern.
func (s *Service) Handler() http.Handler { return s.handler }

// Close closes the database. Stop serving Handler before calling it: requests
// still in flight fail.
func (s *Service) Close() error {
	if err := s.store.Close(); err != nil {
		return fmt.Errorf("order: close: %w", err)
	}
	return nil
}
