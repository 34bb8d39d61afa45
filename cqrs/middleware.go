package cqrs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the package's spans and
// metrics.
const ScopeName = "github.com/cairnhq/cairn/cqrs"

// Telemetry of the buses and projectors.
const (
	// CommandDurationMetricName is a histogram of the duration of commands,
	// in seconds ("s"), with the attributes [NameKey] and [OutcomeKey].
	CommandDurationMetricName = "cqrs.command.duration"
	// QueryDurationMetricName is a histogram of the duration of queries,
	// in seconds ("s"), with the attributes [NameKey] and [OutcomeKey].
	QueryDurationMetricName = "cqrs.query.duration"
	// ProjectionLagMetricName is an observable gauge of how far a
	// projector is behind the head of the global log ("{event}"), with
	// the attributes [ProjectionKey] and [ProjectionVersionKey]. When the
	// Projector's Reader implements [eventstore.Counter] (both cairn
	// backends do), it is the number of events after the checkpoint,
	// counted up to a million. Otherwise, with [ProjectorOptions.Head], it
	// is the head position minus the checkpoint: the number of events left
	// on a backend whose positions are contiguous, an upper bound on
	// others. Without either it is not reported.
	ProjectionLagMetricName = "cqrs.projection.lag"
	// ProjectionLagSecondsMetricName is an observable gauge of how old the
	// read model is, in seconds ("s"): now minus the RecordedAt of the last
	// applied event while the projector is behind, zero once a read of the
	// log found nothing more. Same attributes as ProjectionLagMetricName.
	ProjectionLagSecondsMetricName = "cqrs.projection.lag.seconds"
)

// Attribute keys of the telemetry.
const (
	// NameKey is the name of a command or query.
	NameKey = attribute.Key("cqrs.message.name")
	// CommandIDKey is the ID of a command (span attribute only).
	CommandIDKey = attribute.Key("cqrs.command.id")
	// OutcomeKey is [OutcomeOK], [OutcomeInvalid] or [OutcomeError].
	OutcomeKey = attribute.Key("cqrs.outcome")
	// ProjectionKey is the name of a projection.
	ProjectionKey = attribute.Key("cqrs.projection.name")
	// ProjectionVersionKey is the version of a projection.
	ProjectionVersionKey = attribute.Key("cqrs.projection.version")
)

// Values of [OutcomeKey].
const (
	OutcomeOK      = "ok"
	OutcomeInvalid = "invalid"
	OutcomeError   = "error"
)

// outcome classifies err for [OutcomeKey].
func outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrInvalidCommand), errors.Is(err, ErrInvalidQuery):
		return OutcomeInvalid
	}
	return OutcomeError
}

// Logging returns middleware that logs every message on logger when its
// handler returns: at Debug level on success, at Warn level with the error
// otherwise. It panics if logger is nil.
func Logging(logger *slog.Logger) Middleware {
	if logger == nil {
		panic("cqrs: Logging: nil logger")
	}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m Message) (any, error) {
			begin := time.Now()
			res, err := next(ctx, m)
			attrs := []slog.Attr{
				slog.String("kind", string(m.Kind)),
				slog.String("name", m.Name),
				slog.Duration("duration", time.Since(begin)),
			}
			if m.ID != "" {
				attrs = append(attrs, slog.String("id", m.ID))
			}
			if err != nil {
				logger.LogAttrs(ctx, slog.LevelWarn, string(m.Kind)+" failed", append(attrs, slog.Any("error", err))...)
			} else {
				logger.LogAttrs(ctx, slog.LevelDebug, string(m.Kind)+" handled", attrs...)
			}
			return res, err
		}
	}
}

// Tracing returns middleware that runs every handler in a span named
// "command <name>" or "query <name>", with the attributes [NameKey] and,
// for a command, [CommandIDKey]; a failed handler sets the span's status
// to Error. A nil tp means otel.GetTracerProvider().
func Tracing(tp trace.TracerProvider) Middleware {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	tracer := tp.Tracer(ScopeName)
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m Message) (any, error) {
			attrs := []attribute.KeyValue{NameKey.String(m.Name)}
			if m.ID != "" {
				attrs = append(attrs, CommandIDKey.String(m.ID))
			}
			ctx, span := tracer.Start(ctx, string(m.Kind)+" "+m.Name, trace.WithAttributes(attrs...), trace.WithSpanKind(trace.SpanKindInternal))
			defer span.End()
			res, err := next(ctx, m)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			return res, err
		}
	}
}

// Metrics returns middleware that records the duration of every command
// in the histogram [CommandDurationMetricName] and of every query in
// [QueryDurationMetricName], with [NameKey] and [OutcomeKey]. A nil mp
// means otel.GetMeterProvider(). It returns an error if an instrument
// cannot be created.
func Metrics(mp metric.MeterProvider) (Middleware, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName)
	cmd, err := meter.Float64Histogram(CommandDurationMetricName, metric.WithUnit("s"), metric.WithDescription("Duration of commands."))
	if err != nil {
		return nil, fmt.Errorf("cqrs: metrics: %w", err)
	}
	qry, err := meter.Float64Histogram(QueryDurationMetricName, metric.WithUnit("s"), metric.WithDescription("Duration of queries."))
	if err != nil {
		return nil, fmt.Errorf("cqrs: metrics: %w", err)
	}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m Message) (any, error) {
			begin := time.Now()
			res, err := next(ctx, m)
			h := cmd
			if m.Kind == KindQuery {
				h = qry
			}
			h.Record(ctx, time.Since(begin).Seconds(), metric.WithAttributes(NameKey.String(m.Name), OutcomeKey.String(outcome(err))))
			return res, err
		}
	}, nil
}

// Errors of [Validation] and [Idempotency].
var (
	// ErrInvalidCommand is matched by the error of a command refused
	// before its handler ran: its Validate method failed, or it has no ID
	// under [Idempotency].
	ErrInvalidCommand = errors.New("cqrs: invalid command")
	// ErrInvalidQuery is matched by the error of a query whose Validate
	// method failed.
	ErrInvalidQuery = errors.New("cqrs: invalid query")
	// ErrCommandInProgress is returned by [Idempotency] for a command
	// whose ID another, still running, dispatch holds: the caller should
	// retry later, when it will get the first dispatch's outcome.
	ErrCommandInProgress = errors.New("cqrs: command in progress")
)

// Validation returns middleware that refuses a message with a
// Validate() error method that returns an error: for a command with an
// error matching [ErrInvalidCommand], for a query [ErrInvalidQuery], both
// also matching the Validate error and naming the message.
func Validation() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m Message) (any, error) {
			if v, ok := m.Body.(interface{ Validate() error }); ok {
				if err := v.Validate(); err != nil {
					sentinel := ErrInvalidCommand
					if m.Kind == KindQuery {
						sentinel = ErrInvalidQuery
					}
					return nil, fmt.Errorf("%w: %s %s: %w", sentinel, m.Kind, m.Name, err)
				}
			}
			return next(ctx, m)
		}
	}
}

// Idempotency returns middleware that runs each command ID's handler at
// most once to success, with store remembering the IDs: a command whose ID
// already succeeded returns nil, the stored outcome, without running the
// handler; a command whose ID another dispatch is running returns an
// error matching [ErrCommandInProgress]; a command whose handler fails
// gives its ID back, so that a retry runs again. A command with an empty
// ID is refused with an error matching [ErrInvalidCommand]. Queries pass
// through.
func Idempotency(store IdempotencyStore) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, m Message) (any, error) {
			if m.Kind != KindCommand {
				return next(ctx, m)
			}
			if m.ID == "" {
				return nil, fmt.Errorf("%w: command %s has no ID", ErrInvalidCommand, m.Name)
			}
			state, err := store.Claim(ctx, m.ID)
			if err != nil {
				return nil, fmt.Errorf("cqrs: command %s %s: claim: %w", m.Name, m.ID, err)
			}
			switch state {
			case Done:
				return nil, nil
			case InProgress:
				return nil, fmt.Errorf("%w: command %s %s", ErrCommandInProgress, m.Name, m.ID)
			}
			res, err := next(ctx, m)
			// The outcome is recorded even if ctx has ended with the handler.
			sctx := context.WithoutCancel(ctx)
			if err != nil {
				if rerr := store.Release(sctx, m.ID); rerr != nil {
					return res, errors.Join(err, fmt.Errorf("cqrs: command %s %s: release: %w", m.Name, m.ID, rerr))
				}
				return res, err
			}
			if err := store.Complete(sctx, m.ID); err != nil {
				return res, fmt.Errorf("cqrs: command %s %s succeeded but was not recorded: %w", m.Name, m.ID, err)
			}
			return res, nil
		}
	}
}
