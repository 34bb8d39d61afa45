package postgres

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Metric names, span names and attribute keys the store reports.
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
	// AppendedMetricName counts the events appended (retries answered
	// from the stored events are not counted).
	AppendedMetricName = "eventstore.postgres.events.appended"
	// DurationMetricName is a histogram of operation durations in
	// seconds, by [OperationKey] and [OutcomeKey].
	DurationMetricName = "eventstore.postgres.operation.duration"

	// SchemaKey is the attribute of every metric: the store's schema.
	SchemaKey = attribute.Key("db.namespace")
	// OperationKey names the operation: append, read_stream, read_all,
	// version, delete_stream.
	OperationKey = attribute.Key("db.operation.name")
	// OutcomeKey is "ok" or "error".
	OutcomeKey = attribute.Key("eventstore.outcome")
	// StreamKey is the span attribute naming the stream.
	StreamKey = attribute.Key("eventstore.stream")
)

const scopeName = "github.com/cairnhq/cairn/eventstore/postgres"

// lagTimeout bounds the query behind the watermark gauges.
const lagTimeout = 5 * time.Second

type telemetry struct {
	tracer    trace.Tracer
	appendedC metric.Int64Counter
	duration  metric.Float64Histogram
	schema    attribute.KeyValue
	addOpt    metric.AddOption
	reg       metric.Registration
	closeOnce sync.Once
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
	t.addOpt = metric.WithAttributeSet(attribute.NewSet(t.schema))
	m := mp.Meter(scopeName)
	var err error
	if t.appendedC, err = m.Int64Counter(AppendedMetricName,
		metric.WithDescription("Events appended."), metric.WithUnit("{event}")); err != nil {
		return err
	}
	if t.duration, err = m.Float64Histogram(DurationMetricName,
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

// start starts the span of operation op and returns the function that
// ends it and records the operation's duration.
func (t *telemetry) start(ctx context.Context, op, stream string) (context.Context, func(error)) {
	attrs := append(spanAttrs[:len(spanAttrs):len(spanAttrs)], OperationKey.String(op), t.schema)
	if stream != "" {
		attrs = append(attrs, StreamKey.String(stream))
	}
	ctx, span := t.tracer.Start(ctx, "eventstore.postgres "+op,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	begin := time.Now()
	return ctx, func(err error) {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		recordErr(span, err)
		span.End()
		t.duration.Record(ctx, time.Since(begin).Seconds(), metric.WithAttributes(t.schema, OperationKey.String(op), OutcomeKey.String(outcome)))
	}
}

func (t *telemetry) appended(ctx context.Context, n int) {
	t.appendedC.Add(ctx, int64(n), t.addOpt)
}
