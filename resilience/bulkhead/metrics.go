package bulkhead

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names and attribute keys the bulkheads report.
const (
	CallsMetricName    = "resilience.bulkhead.calls"
	InFlightMetricName = "resilience.bulkhead.inflight"
	QueueMetricName    = "resilience.bulkhead.queue"
	WaitMetricName     = "resilience.bulkhead.wait"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	OutcomeKey    = attribute.Key("resilience.outcome")
)

// Span event names and attribute keys, added to the span of the context
// given to [Bulkhead.Acquire] or [Bulkhead.Execute] when it is recording.
const (
	// QueuedEventName is added when a caller that had to queue gets a
	// slot, with [WaitKey].
	QueuedEventName = "resilience.bulkhead.queued"
	// RejectedEventName is added when a call is rejected, with
	// [ReasonKey] and, unless the queue was full, [WaitKey].
	RejectedEventName = "resilience.bulkhead.rejected"

	// ReasonKey is why the call was rejected: "queue_full", "max_wait"
	// or "context", the [RejectedError.Reason] in snake case.
	ReasonKey = attribute.Key("resilience.reason")
	// WaitKey is how long the caller was queued, in seconds.
	WaitKey = attribute.Key("resilience.bulkhead.wait_duration")
)

const scopeName = "github.com/cairnhq/cairn/resilience/bulkhead"

// outcome is the resilience.outcome of an Acquire.
type outcome int

const (
	outAdmitted outcome = iota
	outQueueFull
	outMaxWait
	outContext
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"admitted", "rejected_queue_full", "rejected_max_wait", "rejected_context"}

// eventReasons are the [ReasonKey] values of the rejecting outcomes.
var eventReasons = [numOutcomes]string{outQueueFull: "queue_full", outMaxWait: "max_wait", outContext: "context"}

// waitBuckets are the wait histogram's bucket boundaries in seconds.
var waitBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// instruments holds a bulkhead's instruments and the measurement options
// of every attribute set it records, built once so recording allocates
// nothing.
type instruments struct {
	calls     metric.Int64Counter
	wait      metric.Float64Histogram
	addOpts   [numOutcomes][]metric.AddOption
	waitOpts  [numOutcomes][]metric.RecordOption
	reg       metric.Registration // of the gauge callback
	closeOnce sync.Once
}

func (in *instruments) init(b *Bulkhead, mp metric.MeterProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scopeName)
	var err error
	in.calls, err = m.Int64Counter(CallsMetricName,
		metric.WithDescription("Calls through the bulkhead by outcome."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	in.wait, err = m.Float64Histogram(WaitMetricName,
		metric.WithDescription("Time queued callers waited for a slot, by outcome."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(waitBuckets...))
	if err != nil {
		return err
	}
	name := PolicyNameKey.String(b.name)
	for o := range outcomeNames {
		set := attribute.NewSet(name, OutcomeKey.String(outcomeNames[o]))
		in.addOpts[o] = []metric.AddOption{metric.WithAttributeSet(set)}
		in.waitOpts[o] = []metric.RecordOption{metric.WithAttributeSet(set)}
	}
	nameOpt := metric.WithAttributeSet(attribute.NewSet(name))
	inflight, err := m.Int64ObservableGauge(InFlightMetricName,
		metric.WithDescription("Calls holding a slot of the bulkhead."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	queue, err := m.Int64ObservableGauge(QueueMetricName,
		metric.WithDescription("Callers queued for a slot of the bulkhead."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(inflight, int64(b.InFlight()), nameOpt)
		o.ObserveInt64(queue, int64(b.QueueLen()), nameOpt)
		return nil
	}, inflight, queue)
	return err
}

// close unregisters the gauge callback, once; later calls return nil.
func (in *instruments) close() error {
	var err error
	in.closeOnce.Do(func() {
		if in.reg != nil {
			err = in.reg.Unregister()
		}
	})
	return err
}
