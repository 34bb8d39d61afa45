// Package instrument is the telemetry every messaging transport reports,
// under the same names: spans and metrics after the OpenTelemetry
// messaging semantic conventions, plus cairn's dead-letter and redelivery
// counters.
package instrument

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
)

// Metric names.
const (
	SentMetric        = "messaging.client.sent.messages"
	ConsumedMetric    = "messaging.client.consumed.messages"
	PublishDuration   = "messaging.client.operation.duration"
	ProcessDuration   = "messaging.process.duration"
	DeadLettersMetric = "cairn.messaging.dead_letters"
	RedeliveryMetric  = "cairn.messaging.redeliveries"
	LagMetric         = "cairn.messaging.consumer.lag"
)

const traceparent = "traceparent"

// Attribute keys.
const (
	SystemKey      = attribute.Key("messaging.system")
	DestinationKey = attribute.Key("messaging.destination.name")
	OperationKey   = attribute.Key("messaging.operation.name")
	OpTypeKey      = attribute.Key("messaging.operation.type")
	GroupKey       = attribute.Key("messaging.consumer.group.name")
	MessageIDKey   = attribute.Key("messaging.message.id")
	KeyKey         = attribute.Key("cairn.messaging.message.key")
	AttemptKey     = attribute.Key("cairn.messaging.delivery.attempt")
	OutcomeKey     = attribute.Key("cairn.messaging.outcome")
	ErrorTypeKey   = attribute.Key("error.type")
)

// Instruments reports one transport's telemetry.
type Instruments struct {
	system     string
	meter      metric.Meter
	lag        metric.Int64ObservableGauge
	tracer     trace.Tracer
	sent       metric.Int64Counter
	consumed   metric.Int64Counter
	pubDur     metric.Float64Histogram
	procDur    metric.Float64Histogram
	deadLetter metric.Int64Counter
	redeliver  metric.Int64Counter
}

// New returns the instruments of a transport whose messaging.system is
// system ("nats", "kafka", "inproc"), reporting under the instrumentation
// scope name. Nil providers mean the global ones.
func New(system, scope string, tp trace.TracerProvider, mp metric.MeterProvider) *Instruments {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scope)
	in := &Instruments{system: system, tracer: tp.Tracer(scope), meter: m}
	// Errors from instrument creation only come from bad names, which are
	// constants here; the no-op instrument returned with them is fine.
	in.sent, _ = m.Int64Counter(SentMetric, metric.WithUnit("{message}"),
		metric.WithDescription("Messages the broker accepted from this publisher."))
	in.consumed, _ = m.Int64Counter(ConsumedMetric, metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered to handlers, redeliveries included."))
	in.pubDur, _ = m.Float64Histogram(PublishDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of a publish until the broker's acknowledgement."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	in.procDur, _ = m.Float64Histogram(ProcessDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of a handler's processing of a message."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	in.deadLetter, _ = m.Int64Counter(DeadLettersMetric, metric.WithUnit("{message}"),
		metric.WithDescription("Messages moved to a dead-letter subject."))
	in.redeliver, _ = m.Int64Counter(RedeliveryMetric, metric.WithUnit("{message}"),
		metric.WithDescription("Messages handed back for redelivery after a handler error."))
	in.lag, _ = m.Int64ObservableGauge(LagMetric, metric.WithUnit("{message}"),
		metric.WithDescription("Messages of a subscription's subject not yet acknowledged: not yet delivered, or delivered and in progress. A Kafka member counts its own partitions."))
	return in
}

// ErrLagUnknown is returned by a lag function that cannot know the lag
// now (the broker is unreachable): the collection skips the measurement
// without reporting an error.
var ErrLagUnknown = errors.New("consumer lag unknown")

// RegisterLag reports lag, at each collection, as the consumer lag of
// group on subject. Unregister the returned registration when the
// subscription closes. An error of lag is returned to the SDK, which
// reports it and skips the measurement; [ErrLagUnknown] skips it
// quietly.
//
// lag runs inside the collection of every metric of the MeterProvider,
// so it must return quickly: a slow lag delays every other instrument's
// export.
func (in *Instruments) RegisterLag(subject, group string, lag func(context.Context) (int64, error)) (metric.Registration, error) {
	set := metric.WithAttributes(SystemKey.String(in.system), DestinationKey.String(subject), GroupKey.String(group))
	return in.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		n, err := lag(ctx)
		if errors.Is(err, ErrLagUnknown) {
			return nil
		}
		if err != nil {
			return err
		}
		o.ObserveInt64(in.lag, n, set)
		return nil
	}, in.lag)
}

// StartPublish starts the producer span of publishing m and stamps m's
// headers with its trace context. It copies m.Header before writing to it,
// so the caller's map is not changed. The returned function ends the span
// and records the metrics; call it with the publish's error.
//
// A message that already carries a trace context in its headers (an event
// relayed from the outbox, stamped with the context of the request that
// appended it) keeps its origin: the span is a child of that context and
// links to the span of ctx, if any. Otherwise it is a child of ctx's span.
func (in *Instruments) StartPublish(ctx context.Context, m *messaging.Message) (context.Context, func(error)) {
	start := time.Now()
	var opts []trace.SpanStartOption
	if m.Header[traceparent] != "" {
		origin := messaging.ExtractTraceContext(ctx, m.Header)
		if sc := trace.SpanContextFromContext(origin); sc.IsValid() {
			if caller := trace.SpanContextFromContext(ctx); caller.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: caller}))
			}
			ctx = origin
		}
	}
	ctx, span := in.tracer.Start(ctx, "send "+m.Subject, append(opts,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			SystemKey.String(in.system),
			DestinationKey.String(m.Subject),
			OperationKey.String("send"),
			OpTypeKey.String("send"),
			MessageIDKey.String(m.ID),
			KeyKey.String(m.Key),
		))...)
	h := make(map[string]string, len(m.Header)+2)
	for k, v := range m.Header {
		h[k] = v
	}
	m.Header = messaging.InjectTraceContext(ctx, h)
	return ctx, func(err error) {
		attrs := []attribute.KeyValue{SystemKey.String(in.system), DestinationKey.String(m.Subject), OperationKey.String("send")}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			attrs = append(attrs, ErrorTypeKey.String(errorType(err)))
		} else {
			in.sent.Add(context.Background(), 1, metric.WithAttributes(attrs...))
		}
		in.pubDur.Record(context.Background(), time.Since(start).Seconds(), metric.WithAttributes(attrs...))
		span.End()
	}
}

// StartProcess starts the consumer span of handling d, as a child of the
// publisher's span read from d's headers. The returned function ends the
// span and records the metrics, given what became of the message and the
// handler's error.
func (in *Instruments) StartProcess(ctx context.Context, d messaging.Delivery) (context.Context, func(messaging.Outcome, error)) {
	start := time.Now()
	ctx = messaging.ExtractTraceContext(ctx, d.Header)
	ctx, span := in.tracer.Start(ctx, "process "+d.Subject,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			SystemKey.String(in.system),
			DestinationKey.String(d.Subject),
			OperationKey.String("process"),
			OpTypeKey.String("process"),
			GroupKey.String(d.Group),
			MessageIDKey.String(d.ID),
			KeyKey.String(d.Key),
			AttemptKey.Int(d.Attempt),
		))
	return ctx, func(o messaging.Outcome, err error) {
		attrs := []attribute.KeyValue{SystemKey.String(in.system), DestinationKey.String(d.Subject),
			GroupKey.String(d.Group), OperationKey.String("process")}
		in.consumed.Add(context.Background(), 1, metric.WithAttributes(attrs...))
		span.SetAttributes(OutcomeKey.String(o.String()))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			attrs = append(attrs, ErrorTypeKey.String(errorType(err)))
		}
		switch o {
		case messaging.Redeliver:
			in.redeliver.Add(context.Background(), 1, metric.WithAttributes(attrs[:3]...))
		case messaging.DeadLetterIt:
			span.AddEvent("dead_letter")
			in.deadLetter.Add(context.Background(), 1, metric.WithAttributes(attrs[:3]...))
		}
		in.procDur.Record(context.Background(), time.Since(start).Seconds(), metric.WithAttributes(attrs...))
		span.End()
	}
}

func errorType(err error) string {
	switch {
	case messaging.IsPermanent(err):
		return "permanent"
	case ctxErr(err):
		return "canceled"
	}
	return "error"
}

func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
