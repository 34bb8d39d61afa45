package cqrs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/eventstore"
)

// Projection builds a read model, one version of it, from the global log,
// in a SQL database. The tables of each version are its own (name them
// with [Table]), so that a new version builds beside the live one.
//
// Each method runs in a transaction that a [Projector] begins and commits:
// they must not commit or roll it back, and must do all their work on tx.
type Projection interface {
	// Setup creates the version's tables if they are missing. It runs
	// each time a Projector starts, so must be idempotent.
	Setup(ctx context.Context, tx *sql.Tx) error
	// Apply applies events, in position order, to the read model. The
	// Projector checkpoints them in the same transaction, so an event
	// whose effects were committed is never applied again, and Apply
	// need not be idempotent. An error rolls back the whole batch.
	Apply(ctx context.Context, tx *sql.Tx, events []eventstore.RecordedEvent) error
	// Drop drops the version's tables, for [DropVersion].
	Drop(ctx context.Context, tx *sql.Tx) error
}

// Table returns the name of a versioned table: Table("orders", 2) is
// "orders_v2".
func Table(name string, version int) string {
	return fmt.Sprintf("%s_v%d", name, version)
}

// ProjectorOptions configures [NewProjector]. Name is required; the other
// fields have defaults.
type ProjectorOptions struct {
	// Name names the projection, in cqrs_checkpoints and
	// cqrs_projection_active and in telemetry. Required.
	Name string
	// Version is the version of the projection that the Projector builds,
	// 1 or more. Zero means 1. A Projector whose version is above the
	// active one (or that finds none active) makes its version active once
	// it has caught up with the log: this is how a new version replaces
	// the live one without downtime.
	Version int
	// BatchSize is the most events applied in one transaction. Zero or
	// negative means 256.
	BatchSize int
	// PollInterval is how long the Projector waits, once caught up,
	// before it reads the log again. Zero or negative means 100ms.
	PollInterval time.Duration
	// Notify, if not nil, wakes the Projector before PollInterval has
	// passed, like [eventstore.SubscribeOptions.Notify]. Optional.
	Notify <-chan struct{}
	// Head, if not nil, returns the position of the last event of the
	// log. It feeds [ProjectionLagMetricName] and, with SwitchLag, lets a
	// new version become active while writers keep appending. Optional.
	Head func(ctx context.Context) (eventstore.Position, error)
	// SwitchLag is how far behind Head, in positions, a new version may
	// be when it becomes active. Without Head, or at zero, a version
	// becomes active when a read of the log finds no more events than
	// it applies in the same transaction. Default 0.
	SwitchLag eventstore.Position
	// TracerProvider provides the span of each batch. Nil means
	// otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider provides the lag gauges. Nil means
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// Projector applies the global log to a [Projection], batch by batch, each
// batch in one transaction of the read model's database that also moves
// the projection's checkpoint (table cqrs_checkpoints, one row per name and
// version): the effects of each event are committed exactly once, whether
// the process dies before or after the commit.
//
// Each batch gets a span "project <name>". It is the child of the trace
// context in the event's Metadata.TraceParent when the batch holds a single
// event, so that one trace runs from the command to the projection; a
// batch of several events links to each distinct trace context instead.
//
// Several Projectors of one name and version, in several processes, may
// run at once: a batch whose checkpoint moved since it was read is rolled
// back and read again. One Projector's Run must not run concurrently with
// itself.
//
// On SQLite, open the read model with a busy timeout and immediate
// transactions (modernc.org/sqlite DSN
// "?_pragma=busy_timeout(5000)&_txlock=immediate") when anything else
// writes to it, other Projectors included: a deferred transaction that
// reads the checkpoint and then writes can fail with SQLITE_BUSY.
type Projector struct {
	db      *sql.DB
	dialect Dialect
	r       eventstore.Reader
	p       Projection
	opts    ProjectorOptions
	tracer  trace.Tracer
	meter   metric.Meter
	lag     metric.Int64ObservableGauge
	lagSec  metric.Float64ObservableGauge
	attrs   attribute.Set
	q       struct{ checkpoint, insertCheckpoint, advance, activate, active string }

	activatedOnce sync.Once
	activated     chan struct{}

	mu    sync.Mutex // guards state
	state projectorState

	// beforeCommit, if set, runs before each batch commits (tests).
	beforeCommit func(ctx context.Context) error
}

// projectorState is what the lag gauges observe.
type projectorState struct {
	checkpoint     eventstore.Position
	head           eventstore.Position
	headKnown      bool
	lastRecordedAt time.Time
	caughtUp       bool
}

// NewProjector returns a Projector that applies the log read from r to p,
// in db, whose dialect is d. It returns an error for an unknown dialect,
// an empty name, a negative version or an instrument that cannot be
// created. It does not touch the database: [Projector.Run] does.
func NewProjector(db *sql.DB, d Dialect, r eventstore.Reader, p Projection, opts ProjectorOptions) (*Projector, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	if opts.Name == "" {
		return nil, errors.New("cqrs: projector: empty projection name")
	}
	if opts.Version < 0 {
		return nil, fmt.Errorf("cqrs: projector %s: version %d is negative", opts.Name, opts.Version)
	}
	if opts.Version == 0 {
		opts.Version = 1
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	tp, mp := opts.TracerProvider, opts.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	pr := &Projector{
		db: db, dialect: d, r: r, p: p, opts: opts,
		tracer:    tp.Tracer(ScopeName),
		meter:     mp.Meter(ScopeName),
		attrs:     attribute.NewSet(ProjectionKey.String(opts.Name), ProjectionVersionKey.Int(opts.Version)),
		activated: make(chan struct{}),
	}
	var err error
	pr.lag, err = pr.meter.Int64ObservableGauge(ProjectionLagMetricName, metric.WithUnit("{event}"),
		metric.WithDescription("Head position of the global log minus the projection's checkpoint."))
	if err != nil {
		return nil, fmt.Errorf("cqrs: projector %s: %w", opts.Name, err)
	}
	pr.lagSec, err = pr.meter.Float64ObservableGauge(ProjectionLagSecondsMetricName, metric.WithUnit("s"),
		metric.WithDescription("Age of the last event the projection applied, zero when caught up."))
	if err != nil {
		return nil, fmt.Errorf("cqrs: projector %s: %w", opts.Name, err)
	}
	pr.q.checkpoint = d.Rebind("SELECT position FROM cqrs_checkpoints WHERE name = ? AND version = ?")
	pr.q.insertCheckpoint = d.Rebind("INSERT INTO cqrs_checkpoints (name, version, position) VALUES (?, ?, 0) ON CONFLICT (name, version) DO NOTHING")
	pr.q.advance = d.Rebind("UPDATE cqrs_checkpoints SET position = ? WHERE name = ? AND version = ? AND position = ?")
	pr.q.activate = d.Rebind("INSERT INTO cqrs_projection_active (name, version) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET version = excluded.version WHERE cqrs_projection_active.version < excluded.version")
	pr.q.active = d.Rebind(activeQuery)
	return pr, nil
}

// Name returns the projection's name.
func (p *Projector) Name() string { return p.opts.Name }

// Version returns the version of the projection that p builds.
func (p *Projector) Version() int { return p.opts.Version }

// Activated returns a channel closed once p has seen its version active:
// when it made it active, or found it so.
func (p *Projector) Activated() <-chan struct{} { return p.activated }

// Checkpoint returns the position of the last event that p has committed,
// as p last saw it.
func (p *Projector) Checkpoint() eventstore.Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.checkpoint
}

// Run creates the package's tables and the projection's (with
// [Projection.Setup]) if missing, then applies the log from the
// checkpoint on, batch by batch, polling once caught up, until ctx ends,
// when it returns ctx.Err(). It reports the lag gauges while it runs.
//
// Run stops at the first error (of the reader, the database, Head or the
// projection), returns it and leaves the checkpoint at the last committed
// batch; it does not retry: the caller runs it again, with its own
// backoff.
func (p *Projector) Run(ctx context.Context) error {
	reg, err := p.meter.RegisterCallback(p.observe, p.lag, p.lagSec)
	if err != nil {
		return fmt.Errorf("cqrs: projector %s v%d: register gauges: %w", p.opts.Name, p.opts.Version, err)
	}
	defer reg.Unregister()

	if err := p.setup(ctx); err != nil {
		return p.fail(ctx, "setup", err)
	}
	var after eventstore.Position
	if err := p.db.QueryRowContext(ctx, p.q.checkpoint, p.opts.Name, p.opts.Version).Scan(&after); err != nil {
		return p.fail(ctx, "read checkpoint", err)
	}
	active, err := Active(ctx, p.db, p.dialect, p.opts.Name)
	if err != nil && !errors.Is(err, ErrNoActiveVersion) {
		return p.fail(ctx, "read active version", err)
	}
	isActive := active == p.opts.Version
	// mayActivate: p's version is newer than the active one.
	mayActivate := active < p.opts.Version
	if isActive {
		p.markActivated()
	}
	p.setState(func(s *projectorState) { s.checkpoint = after })

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	notify := p.opts.Notify
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var head eventstore.Position
		if p.opts.Head != nil {
			if head, err = p.opts.Head(ctx); err != nil {
				return p.fail(ctx, "read head", err)
			}
			p.setState(func(s *projectorState) { s.head, s.headKnown = head, true })
		}
		events, err := p.r.ReadAll(ctx, after, p.opts.BatchSize)
		if err != nil {
			return p.fail(ctx, fmt.Sprintf("read after position %d", after), err)
		}
		full := len(events) >= p.opts.BatchSize
		last := after
		if len(events) > 0 {
			last = events[len(events)-1].Position
		}
		caughtUp := !full || (p.opts.Head != nil && head-last <= p.opts.SwitchLag)
		switchNow := caughtUp && mayActivate && !isActive

		if len(events) > 0 || switchNow {
			activated, err := p.commit(ctx, after, events, switchNow)
			var moved *movedError
			switch {
			case errors.As(err, &moved):
				after = moved.pos
				p.setState(func(s *projectorState) { s.checkpoint = after })
				continue
			case err != nil:
				return p.fail(ctx, fmt.Sprintf("apply events after position %d", after), err)
			}
			after = last
			if activated {
				isActive = true
				p.markActivated()
			} else if switchNow {
				mayActivate = false // a newer version is active
			}
			p.setState(func(s *projectorState) {
				s.checkpoint = after
				if len(events) > 0 {
					s.lastRecordedAt = events[len(events)-1].RecordedAt
				}
			})
		}
		p.setState(func(s *projectorState) { s.caughtUp = !full })
		if full {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(p.opts.PollInterval)
		} else {
			timer.Reset(p.opts.PollInterval)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case _, ok := <-notify:
			if !ok {
				notify = nil
			}
			timer.Stop()
		}
	}
}

// fail wraps err, unless it is ctx's end.
func (p *Projector) fail(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("cqrs: projector %s v%d: %s: %w", p.opts.Name, p.opts.Version, what, err)
}

func (p *Projector) markActivated() { p.activatedOnce.Do(func() { close(p.activated) }) }

func (p *Projector) setState(f func(*projectorState)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.state)
}

// maxCountedLag bounds the count of events behind a projection.
const maxCountedLag = 1_000_000

// observe reports the lag gauges.
func (p *Projector) observe(ctx context.Context, o metric.Observer) error {
	p.mu.Lock()
	s := p.state
	p.mu.Unlock()
	opt := metric.WithAttributeSet(p.attrs)
	if c, ok := p.r.(eventstore.Counter); ok {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		n, err := c.CountAfter(ctx, s.checkpoint, maxCountedLag)
		if err != nil {
			return fmt.Errorf("cqrs: projection %s lag: %w", p.opts.Name, err)
		}
		o.ObserveInt64(p.lag, n, opt)
	} else if s.headKnown {
		o.ObserveInt64(p.lag, int64(max(s.head-s.checkpoint, 0)), opt)
	}
	switch {
	case s.caughtUp:
		o.ObserveFloat64(p.lagSec, 0, opt)
	case !s.lastRecordedAt.IsZero():
		o.ObserveFloat64(p.lagSec, max(time.Since(s.lastRecordedAt).Seconds(), 0), opt)
	}
	return nil
}

// setup creates the tables and the checkpoint row.
func (p *Projector) setup(ctx context.Context) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := createTables(ctx, tx, p.dialect); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, p.q.insertCheckpoint, p.opts.Name, p.opts.Version); err != nil {
		return err
	}
	if err := p.p.Setup(ctx, tx); err != nil {
		return fmt.Errorf("projection setup: %w", err)
	}
	return tx.Commit()
}

// createTables creates cqrs_checkpoints and cqrs_projection_active.
func createTables(ctx context.Context, tx *sql.Tx, d Dialect) error {
	if err := d.lock(ctx, tx, "projections"); err != nil {
		return err
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS cqrs_checkpoints (
			name TEXT NOT NULL,
			version INTEGER NOT NULL,
			position BIGINT NOT NULL,
			PRIMARY KEY (name, version)
		)`,
		`CREATE TABLE IF NOT EXISTS cqrs_projection_active (
			name TEXT PRIMARY KEY,
			version INTEGER NOT NULL
		)`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// movedError reports a checkpoint found at pos, not where the batch was
// read from: another Projector applied it.
type movedError struct{ pos eventstore.Position }

func (e *movedError) Error() string { return fmt.Sprintf("checkpoint moved to %d", e.pos) }

// commit applies events, read after position after, and moves the
// checkpoint to the last of them, in one transaction; with activate, it
// also makes p's version the active one unless a newer one is. It returns
// whether p's version is active after the commit, and a *movedError if the
// checkpoint is not at after.
func (p *Projector) commit(ctx context.Context, after eventstore.Position, events []eventstore.RecordedEvent, activate bool) (activated bool, err error) {
	ctx, span := p.startSpan(ctx, events)
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()

	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var pos eventstore.Position
	if err := tx.QueryRowContext(ctx, p.q.checkpoint, p.opts.Name, p.opts.Version).Scan(&pos); err != nil {
		return false, fmt.Errorf("read checkpoint: %w", err)
	}
	if pos != after {
		return false, &movedError{pos: pos}
	}
	if len(events) > 0 {
		if err := p.p.Apply(ctx, tx, events); err != nil {
			return false, err
		}
		last := events[len(events)-1].Position
		res, err := tx.ExecContext(ctx, p.q.advance, last, p.opts.Name, p.opts.Version, after)
		if err != nil {
			return false, fmt.Errorf("write checkpoint: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return false, fmt.Errorf("write checkpoint: %w", err)
		} else if n != 1 {
			// Another Projector moved it since our read: re-read it.
			tx.Rollback()
			var now eventstore.Position
			if err := p.db.QueryRowContext(ctx, p.q.checkpoint, p.opts.Name, p.opts.Version).Scan(&now); err != nil {
				return false, fmt.Errorf("read checkpoint: %w", err)
			}
			return false, &movedError{pos: now}
		}
	}
	if activate {
		if _, err := tx.ExecContext(ctx, p.q.activate, p.opts.Name, p.opts.Version); err != nil {
			return false, fmt.Errorf("activate version: %w", err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, p.q.active, p.opts.Name).Scan(&v); err != nil {
			return false, fmt.Errorf("read active version: %w", err)
		}
		activated = v == p.opts.Version
	}
	if p.beforeCommit != nil {
		if err := p.beforeCommit(ctx); err != nil {
			return false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	if activate {
		span.AddEvent("activated", trace.WithAttributes(attribute.Bool("cqrs.projection.activated", activated)))
	}
	return activated, nil
}

// startSpan starts the span of a batch: the child of its event's trace
// context for a single event, else linked to every distinct one.
func (p *Projector) startSpan(ctx context.Context, events []eventstore.RecordedEvent) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{
		ProjectionKey.String(p.opts.Name),
		ProjectionVersionKey.Int(p.opts.Version),
		attribute.Int("cqrs.projection.batch.size", len(events)),
	}
	if len(events) > 0 {
		attrs = append(attrs,
			attribute.Int64("cqrs.projection.position.first", int64(events[0].Position)),
			attribute.Int64("cqrs.projection.position.last", int64(events[len(events)-1].Position)))
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(attrs...), trace.WithSpanKind(trace.SpanKindConsumer)}
	if len(events) == 1 {
		if sc := traceContext(events[0]); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	} else {
		type key struct {
			t trace.TraceID
			s trace.SpanID
		}
		seen := make(map[key]bool)
		for _, e := range events {
			sc := traceContext(e)
			k := key{sc.TraceID(), sc.SpanID()}
			if !sc.IsValid() || seen[k] {
				continue
			}
			seen[k] = true
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	return p.tracer.Start(ctx, "project "+p.opts.Name, opts...)
}

// traceContext returns the W3C trace context an event carries, if any.
func traceContext(e eventstore.RecordedEvent) trace.SpanContext {
	if e.Metadata.TraceParent == "" {
		return trace.SpanContext{}
	}
	carrier := propagation.MapCarrier{"traceparent": e.Metadata.TraceParent}
	if e.Metadata.TraceState != "" {
		carrier["tracestate"] = e.Metadata.TraceState
	}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
}
