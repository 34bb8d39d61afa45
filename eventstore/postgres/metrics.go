package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/eventstore"
)

// Metric names and attribute keys the store reports beside those every
// backend shares, which package eventstore names:
// [eventstore.OperationDurationMetricName],
// [eventstore.AppendedEventsMetricName] and [eventstore.ConflictsMetricName],
// by [eventstore.OperationKey] and [eventstore.OutcomeKey].
const (
	// WatermarkLagMetricName is an observable gauge: how many committed
	// events are not yet readable by ReadAll because a transaction below
	// them (anywhere in the cluster) is still open.
	WatermarkLagMetricName = "eventstore.postgres.watermark.lag"
	// WatermarkAgeMetricName is an observable gauge: the age in seconds of
	// the oldest open transaction that holds a transaction ID (the
	// candidates for holding the watermark back), prepared transactions
	// included; 0 when there is none. Sessions of other roles count only
	// if the store's role may see their xact_start (pg_read_all_stats).
	WatermarkAgeMetricName = "eventstore.postgres.watermark.age"

	// SchemaKey is the attribute of every metric and span: the store's
	// schema.
	SchemaKey = attribute.Key("db.namespace")
)

const scopeName = "github.com/cairnhq/cairn/eventstore/postgres"

// lagTimeout bounds the query behind the watermark gauges.
const lagTimeout = 5 * time.Second

// op is an operation of the store, an index into opNames.
type op int

const (
	opAppend op = iota
	opReadStream
	opReadAll
	opVersion
	opDeleteStream
	opSaveSnapshot
	opLoadSnapshot
	numOps
)

var opNames = [numOps]string{eventstore.OpAppend, eventstore.OpReadStream, eventstore.OpReadAll, eventstore.OpVersion, eventstore.OpDeleteStream, eventstore.OpSaveSnapshot, eventstore.OpLoadSnapshot}

// outcome is the outcome of an operation, an index into outcomeNames.
type outcome int

const (
	outcomeOK outcome = iota
	outcomeIdempotent
	outcomeConflict
	outcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{eventstore.OutcomeOK, eventstore.OutcomeIdempotent, eventstore.OutcomeConflict, eventstore.OutcomeError}

// outcomeOf returns the outcome of an operation that returned err: a
// conflict for a *VersionConflictError, an error for any other error.
func outcomeOf(err error) outcome {
	if err == nil {
		return outcomeOK
	}
	var ce *eventstore.VersionConflictError
	if errors.As(err, &ce) {
		return outcomeConflict
	}
	return outcomeError
}

// systemAttr is the db.system.name of every span and measurement.
var systemAttr = attribute.String("db.system.name", "postgresql")

type telemetry struct {
	tracer    trace.Tracer
	appendedC metric.Int64Counter
	conflicts metric.Int64Counter
	duration  metric.Float64Histogram
	schema    attribute.KeyValue
	addOpts   []metric.AddOption
	// Computed once, so that operations allocate nothing for them.
	spanNames    [numOps]string
	spanOpts     [numOps][]trace.SpanStartOption
	durationOpts [numOps][numOutcomes][]metric.RecordOption
	outcomeAttrs [numOutcomes]attribute.KeyValue
	reg          metric.Registration
	closeOnce    sync.Once
}

func (t *telemetry) init(s *Store, mp metric.MeterProvider, tp trace.TracerProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	t.tracer = tp.Tracer(scopeName)
	t.schema = SchemaKey.String(s.schema)
	t.addOpts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(systemAttr, t.schema))}
	for i, name := range outcomeNames {
		t.outcomeAttrs[i] = eventstore.OutcomeKey.String(name)
	}
	for o, name := range opNames {
		opAttr := eventstore.OperationKey.String(name)
		t.spanNames[o] = "eventstore.postgres " + name
		t.spanOpts[o] = []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(systemAttr, opAttr, t.schema),
		}
		for i := range outcomeNames {
			t.durationOpts[o][i] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(systemAttr, t.schema, opAttr, t.outcomeAttrs[i]))}
		}
	}
	m := mp.Meter(scopeName)
	var err error
	if t.appendedC, err = m.Int64Counter(eventstore.AppendedEventsMetricName,
		metric.WithDescription("Events appended to the event store."), metric.WithUnit("{event}")); err != nil {
		return err
	}
	if t.conflicts, err = m.Int64Counter(eventstore.ConflictsMetricName,
		metric.WithDescription("Appends refused because the stream's version did not match the expected version."),
		metric.WithUnit("{append}")); err != nil {
		return err
	}
	if t.duration, err = m.Float64Histogram(eventstore.OperationDurationMetricName,
		metric.WithDescription("Duration of event store operations."), metric.WithUnit("s")); err != nil {
		return err
	}
	lag, err := m.Int64ObservableGauge(WatermarkLagMetricName,
		metric.WithDescription("Committed events not yet readable from the global log, held back by an open transaction below them."),
		metric.WithUnit("{event}"))
	if err != nil {
		return err
	}
	age, err := m.Float64ObservableGauge(WatermarkAgeMetricName,
		metric.WithDescription("Age of the oldest open transaction holding a transaction ID, which may hold the global log's watermark back."),
		metric.WithUnit("s"))
	if err != nil {
		return err
	}
	t.reg, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, lagTimeout)
		defer cancel()
		n, secs, err := s.watermarkLag(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(lag, n, metric.WithAttributeSet(attribute.NewSet(t.schema)))
		o.ObserveFloat64(age, secs, metric.WithAttributeSet(attribute.NewSet(t.schema)))
		return nil
	}, lag, age)
	return err
}

// watermarkLag returns the number of committed events above the watermark
// and the age of the oldest transaction holding an ID.
func (s *Store) watermarkLag(ctx context.Context) (events int64, age float64, err error) {
	err = s.db.QueryRow(ctx, s.q.lag).Scan(&events, &age)
	return events, age, err
}

func (t *telemetry) close() error {
	var err error
	t.closeOnce.Do(func() {
		if t.reg != nil {
			err = t.reg.Unregister()
		}
	})
	return err
}

// call is an operation under way: its span and when it began.
type call struct {
	t     *telemetry
	op    op
	span  trace.Span
	begin time.Time
}

// start starts the span of operation o, naming stream when the span
// records, and returns the call to end.
func (t *telemetry) start(ctx context.Context, o op, stream string) (context.Context, call) {
	if o == opReadAll && !trace.SpanContextFromContext(ctx).IsValid() {
		// A follower polling the log with no trace of its own (a
		// projector, a relay) would start a new trace at every poll.
		return ctx, call{t: t, op: o, span: trace.SpanFromContext(ctx), begin: time.Now()}
	}
	ctx, span := t.tracer.Start(ctx, t.spanNames[o], t.spanOpts[o]...)
	if stream != "" && span.IsRecording() {
		span.SetAttributes(eventstore.StreamKey.String(stream))
	}
	return ctx, call{t: t, op: o, span: span, begin: time.Now()}
}

// end ends the call's span, which ended with outcome oc and err, records
// its duration and, for a conflict, counts it.
func (c call) end(ctx context.Context, oc outcome, err error) {
	if c.span.IsRecording() {
		c.span.SetAttributes(c.t.outcomeAttrs[oc])
	}
	recordErr(c.span, err)
	c.span.End()
	c.t.duration.Record(ctx, time.Since(c.begin).Seconds(), c.t.durationOpts[c.op][oc]...)
	if oc == outcomeConflict {
		c.t.conflicts.Add(ctx, 1, c.t.addOpts...)
	}
}

func (t *telemetry) appended(ctx context.Context, n int) {
	t.appendedC.Add(ctx, int64(n), t.addOpts...)
}
