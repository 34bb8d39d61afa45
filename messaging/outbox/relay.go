package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/messaging"
)

// Config configures a [Relay].
type Config struct {
	// Name names the relay: its checkpoint is saved as "outbox/" + Name,
	// and its metrics carry it as cairn.outbox.name. Required.
	Name string
	// Store is the event store to relay from. It must implement
	// [eventstore.Checkpoints] unless Checkpoints is set. Required.
	Store eventstore.Reader
	// Checkpoints keeps the relay's position. Nil means Store's own.
	Checkpoints eventstore.Checkpoints
	// Publisher publishes the events. Required.
	Publisher messaging.Publisher
	// Subject maps an event to its subject. Nil means [DefaultSubject].
	Subject func(eventstore.RecordedEvent) string
	// BatchSize is the most events read and published at once. Zero
	// means 256.
	BatchSize int
	// PollInterval is how long the relay waits, once caught up, before it
	// reads the log again, unless Notify fires. Zero means 100ms.
	PollInterval time.Duration
	// Notify wakes the relay before PollInterval; see
	// [eventstore.SubscribeOptions.Notify].
	Notify <-chan struct{}
	// CheckpointInterval is how often, at most, the relay saves its
	// position: after a batch once this long has passed since the last
	// save, when it is idle, and when it stops. A relay that dies
	// publishes again what it published since its last save. Zero means
	// 1s; negative saves after every batch.
	CheckpointInterval time.Duration
	// Backoff is how long to wait after the attempt-th consecutive
	// failure to read, publish or checkpoint. Nil means
	// [messaging.DefaultBackoff].
	Backoff func(attempt int) time.Duration
	// TracerProvider and MeterProvider default to the global ones.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Logger logs failures, at warn level. Nil means slog.Default().
	Logger *slog.Logger
}

// Metric names of a relay.
const (
	// RelayedMetric counts the events published ({event}).
	RelayedMetric = "cairn.outbox.relayed"
	// ErrorsMetric counts failed reads, publishes and checkpoint saves
	// ({error}), with the attribute cairn.outbox.operation.
	ErrorsMetric = "cairn.outbox.errors"
	// AgeMetric is the age of the oldest event the relay has read and
	// not yet published (s); 0 when caught up. A broker outage shows as
	// a rising age.
	AgeMetric = "cairn.outbox.age"
	// DepthMetric is the number of events after the relay's position
	// ({event}), counted by the store up to a million when it implements
	// [eventstore.Counter], else the events read and not yet published.
	DepthMetric = "cairn.outbox.depth"
)

// maxDepth bounds the count behind [DepthMetric].
const maxDepth = 1_000_000

// Relay publishes the events of an event store's global log, in order,
// from a checkpoint. See the package documentation.
type Relay struct {
	cfg    Config
	cp     eventstore.Checkpoints
	log    *slog.Logger
	tracer trace.Tracer
	name   attribute.KeyValue

	relayed, errs metric.Int64Counter
	reg           metric.Registration

	// position is the last position the broker acknowledged.
	position atomic.Int64
	// oldest is the RecordedAt (Unix nanoseconds) of the oldest event read
	// and not yet published; 0 when there is none.
	oldest  atomic.Int64
	pending atomic.Int64

	closeOnce sync.Once
}

// NewRelay returns a relay; [Relay.Run] runs it. It returns an error
// naming the missing or wrong field of cfg.
func NewRelay(cfg Config) (*Relay, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("outbox: relay name is empty")
	case cfg.Store == nil:
		return nil, fmt.Errorf("outbox: relay %q: no store", cfg.Name)
	case cfg.Publisher == nil:
		return nil, fmt.Errorf("outbox: relay %q: no publisher", cfg.Name)
	}
	cp := cfg.Checkpoints
	if cp == nil {
		var ok bool
		if cp, ok = cfg.Store.(eventstore.Checkpoints); !ok {
			return nil, fmt.Errorf("outbox: relay %q: store %T keeps no checkpoints and Config.Checkpoints is nil", cfg.Name, cfg.Store)
		}
	}
	if err := eventstore.ValidateCheckpoint(checkpointName(cfg.Name), 0); err != nil {
		return nil, fmt.Errorf("outbox: relay %q: %w", cfg.Name, err)
	}
	if cfg.Subject == nil {
		cfg.Subject = DefaultSubject
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.Backoff == nil {
		cfg.Backoff = messaging.DefaultBackoff
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Second
	}
	r := &Relay{cfg: cfg, cp: cp, log: cfg.Logger, name: attribute.String("cairn.outbox.name", cfg.Name)}
	if r.log == nil {
		r.log = slog.Default()
	}
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	const scope = "github.com/cairnhq/cairn/messaging/outbox"
	r.tracer = tp.Tracer(scope)
	m := mp.Meter(scope)
	var err error
	if r.relayed, err = m.Int64Counter(RelayedMetric, metric.WithUnit("{event}"),
		metric.WithDescription("Events the relay published and the broker acknowledged.")); err != nil {
		return nil, err
	}
	if r.errs, err = m.Int64Counter(ErrorsMetric, metric.WithUnit("{error}"),
		metric.WithDescription("Failed reads of the log, publishes and checkpoint saves of the relay.")); err != nil {
		return nil, err
	}
	age, err := m.Float64ObservableGauge(AgeMetric, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest event read by the relay and not yet published; 0 when caught up."))
	if err != nil {
		return nil, err
	}
	depth, err := m.Int64ObservableGauge(DepthMetric, metric.WithUnit("{event}"),
		metric.WithDescription("Events after the relay's position, up to a million."))
	if err != nil {
		return nil, err
	}
	counter, _ := cfg.Store.(eventstore.Counter)
	r.reg, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		set := metric.WithAttributes(r.name)
		var a float64
		if t := r.oldest.Load(); t != 0 {
			a = max(time.Since(time.Unix(0, t)).Seconds(), 0)
		}
		o.ObserveFloat64(age, a, set)
		d := r.pending.Load()
		if counter != nil {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			n, err := counter.CountAfter(ctx, eventstore.Position(r.position.Load()), maxDepth)
			if err != nil {
				return fmt.Errorf("outbox: relay %q: depth: %w", r.cfg.Name, err)
			}
			d = n
		}
		o.ObserveInt64(depth, d, set)
		return nil
	}, age, depth)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func checkpointName(relay string) string { return "outbox/" + relay }

// Position returns the position of the last event the broker
// acknowledged (saved as the checkpoint, or about to be).
func (r *Relay) Position() eventstore.Position { return eventstore.Position(r.position.Load()) }

// Close unregisters the relay's metrics. It does not stop Run: cancel its
// context. Close is idempotent.
func (r *Relay) Close() error {
	var err error
	r.closeOnce.Do(func() { err = r.reg.Unregister() })
	return err
}

// Run relays until ctx ends, and returns ctx.Err(). It loads the
// checkpoint, then reads the log in batches and publishes each batch, and
// saves its position every [Config.CheckpointInterval], when idle, and
// when it stops. A failure to read, publish or
// save is logged, counted and retried after the backoff, from the same
// place: Run never skips an event and never publishes a stream's events
// out of order. An event published but not yet checkpointed when the
// relay stops is published again by the next Run.
//
// Run from one process at a time per relay name; two relays with the
// same name publish everything twice (harmless to an [Inbox], wasteful
// to the broker).
func (r *Relay) Run(ctx context.Context) error {
	var pos eventstore.Position
	err := r.retry(ctx, "load_checkpoint", func() error {
		var err error
		pos, err = r.cp.LoadCheckpoint(ctx, checkpointName(r.cfg.Name))
		return err
	})
	if err != nil {
		return err
	}
	r.position.Store(int64(pos))
	saved, savedAt := pos, time.Now()
	defer func() {
		// Save what was published before stopping, so that a restart
		// publishes as little as possible again.
		if pos != saved {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := r.cp.SaveCheckpoint(ctx, checkpointName(r.cfg.Name), pos); err != nil {
				r.failed(ctx, "save_checkpoint", err)
			}
		}
	}()

	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	notify := r.cfg.Notify
	for {
		var events []eventstore.RecordedEvent
		err := r.retry(ctx, "read", func() error {
			var err error
			events, err = r.cfg.Store.ReadAll(ctx, pos, r.cfg.BatchSize)
			return err
		})
		if err != nil {
			return err
		}
		if len(events) > 0 {
			if err := r.publish(ctx, events); err != nil {
				return err
			}
			pos = events[len(events)-1].Position
			r.position.Store(int64(pos))
		}
		if pos != saved && (r.cfg.CheckpointInterval < 0 || len(events) == 0 || time.Since(savedAt) >= r.cfg.CheckpointInterval) {
			// A failed save is retried later; meanwhile the broker has
			// the events, and a restart publishes them again, which is
			// allowed.
			if err := r.cp.SaveCheckpoint(ctx, checkpointName(r.cfg.Name), pos); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				r.failed(ctx, "save_checkpoint", err)
			} else {
				saved, savedAt = pos, time.Now()
			}
		}
		if len(events) == r.cfg.BatchSize {
			continue
		}
		if timer == nil {
			timer = time.NewTimer(r.cfg.PollInterval)
		} else {
			timer.Reset(r.cfg.PollInterval)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case _, ok := <-notify:
			if !ok {
				notify = nil
			}
		}
	}
}

// publish publishes events, retrying the whole batch until the broker
// acknowledges all of it.
func (r *Relay) publish(ctx context.Context, events []eventstore.RecordedEvent) error {
	r.oldest.Store(events[0].RecordedAt.UnixNano())
	r.pending.Store(int64(len(events)))
	defer func() {
		r.oldest.Store(0)
		r.pending.Store(0)
	}()
	msgs := make([]messaging.Message, len(events))
	links := make([]trace.Link, 0, min(len(events), 64))
	for i, e := range events {
		msgs[i] = Message(e, r.cfg.Subject(e))
		if len(links) < cap(links) {
			origin := messaging.ExtractTraceContext(ctx, msgs[i].Header)
			if sc := trace.SpanContextFromContext(origin); sc.IsValid() {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	ctx, span := r.tracer.Start(ctx, "outbox relay "+r.cfg.Name,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithLinks(links...),
		trace.WithAttributes(r.name,
			attribute.Int("cairn.outbox.batch.size", len(events)),
			attribute.Int64("cairn.outbox.position.first", int64(events[0].Position)),
			attribute.Int64("cairn.outbox.position.last", int64(events[len(events)-1].Position)),
		))
	defer span.End()
	attempts := 0
	err := r.retry(ctx, "publish", func() error {
		attempts++
		return r.cfg.Publisher.Publish(ctx, msgs...)
	})
	span.SetAttributes(attribute.Int("cairn.outbox.publish.attempts", attempts))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	r.relayed.Add(ctx, int64(len(events)), metric.WithAttributes(r.name))
	return nil
}

// retry calls f until it succeeds or ctx ends, waiting the backoff after
// each failure.
func (r *Relay) retry(ctx context.Context, op string, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.failed(ctx, op, err)
		t := time.NewTimer(r.cfg.Backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (r *Relay) failed(ctx context.Context, op string, err error) {
	r.errs.Add(ctx, 1, metric.WithAttributes(r.name, attribute.String("cairn.outbox.operation", op)))
	trace.SpanFromContext(ctx).AddEvent("outbox.retry", trace.WithAttributes(attribute.String("cairn.outbox.operation", op)))
	r.log.LogAttrs(ctx, slog.LevelWarn, "outbox relay failed, retrying",
		slog.String("relay", r.cfg.Name), slog.String("operation", op), slog.Any("error", err))
}
