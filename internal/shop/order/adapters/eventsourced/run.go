package eventsourced

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/cqrs"
	"github.com/cairnhq/cairn/eventstore"
)

// ProjectionConfig configures [RunProjection].
type ProjectionConfig struct {
	// Events is the event store whose log the projection follows.
	Events eventstore.Reader
	// DB and Dialect are the read model's database.
	DB      *sql.DB
	Dialect cqrs.Dialect
	// Version is the read model version to build; zero means
	// [CurrentVersion].
	Version int
	// Notify wakes the projector after an append.
	Notify <-chan struct{}
	// PollInterval bounds the lag when Notify is nil or misses an append
	// made by another process. Zero means 100ms.
	PollInterval   time.Duration
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Logger         *slog.Logger
}

// CurrentVersion is the version of the orders read model this code
// builds. Raise it when the read model's tables change: the new version
// builds beside the old one and replaces it once caught up. Version 2
// added the checkout's status changes (updated_at, status_reason,
// saga_id).
const CurrentVersion = 2

// RunProjection keeps the orders read model up to date until ctx ends: it
// runs a cqrs.Projector and, when it fails (a database error, a bad
// event), logs the error and starts it again after a backoff, from its
// checkpoint. It returns nil when ctx ends.
func RunProjection(ctx context.Context, cfg ProjectionConfig) error {
	if cfg.Version == 0 {
		cfg.Version = CurrentVersion
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	backoff := 100 * time.Millisecond
	for {
		p, err := cqrs.NewProjector(cfg.DB, cfg.Dialect, cfg.Events, Projection{Version: cfg.Version, Dialect: cfg.Dialect}, cqrs.ProjectorOptions{
			Name:           ProjectionName,
			Version:        cfg.Version,
			Notify:         cfg.Notify,
			PollInterval:   cfg.PollInterval,
			TracerProvider: cfg.TracerProvider,
			MeterProvider:  cfg.MeterProvider,
		})
		if err != nil {
			return fmt.Errorf("orders projection: %w", err)
		}
		err = p.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		cfg.Logger.LogAttrs(ctx, slog.LevelError, "orders projection failed, restarting",
			slog.Int("version", cfg.Version), slog.Any("error", err), slog.Duration("backoff", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// OpenSQLite opens the SQLite read model at path: a writer pool of one
// connection for the projector, and a pool of readers for the queries (the
// same pool for an in-memory database, ":memory:").
func OpenSQLite(path string) (write, read *sql.DB, err error) {
	const common = "_pragma=busy_timeout(5000)"
	if path == ":memory:" {
		// One connection keeps the database alive and shared.
		db, err := sql.Open("sqlite", "file:orders-read?mode=memory&"+common)
		if err != nil {
			return nil, nil, err
		}
		db.SetMaxOpenConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
		return db, db, nil
	}
	write, err = sql.Open("sqlite", "file:"+path+"?"+common+"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, nil, err
	}
	write.SetMaxOpenConns(1)
	if err := write.Ping(); err != nil {
		return nil, nil, errors.Join(err, write.Close())
	}
	read, err = sql.Open("sqlite", "file:"+path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		return nil, nil, errors.Join(err, write.Close())
	}
	read.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	return write, read, nil
}
