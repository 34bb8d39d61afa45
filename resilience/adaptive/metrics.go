package adaptive

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names and attribute keys the limiters report.
const (
	CallsMetricName    = "resilience.adaptive.calls"
	LimitMetricName    = "resilience.adaptive.limit"
	InFlightMetricName = "resilience.adaptive.inflight"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	OutcomeKey    = attribute.Key("resilience.outcome")

	// RejectedEventName is added by [Limiter.AcquireContext] to the span
	// of its context when it rejects a call, with [LimitKey].
	RejectedEventName = "resilience.adaptive.rejected"
	// LimitKey is the concurrency limit in force when the call was
	// rejected; that many calls were in flight.
	LimitKey = attribute.Key("resilience.adaptive.current_limit")
)

const scopeName = "github.com/cairnhq/cairn/resilience/adaptive"

// outcome is the resilience.outcome of a call.
type outcome int

const (
	outAdmitted outcome = iota
	outRejected
	outDropped
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"admitted", "rejected", "dropped"}

// instruments holds a limiter's instruments and the measurement options of
// every attribute set it records, built once so recording allocates
// nothing.
type instruments struct {
	calls     metric.Int64Counter
	addOpts   [numOutcomes][]metric.AddOption
	nameAttr  attribute.KeyValue
	reg       metric.Registration // of the gauge callback
	closeOnce sync.Once
}

func (in *instruments) init(l *Limiter, mp metric.MeterProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scopeName)
	var err error
	in.calls, err = m.Int64Counter(CallsMetricName,
		metric.WithDescription("Calls through the adaptive limiter by outcome."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	name := PolicyNameKey.String(l.name)
	in.nameAttr = name
	for o := range outcomeNames {
		set := attribute.NewSet(name, OutcomeKey.String(outcomeNames[o]))
		in.addOpts[o] = []metric.AddOption{metric.WithAttributeSet(set)}
	}
	nameOpt := metric.WithAttributeSet(attribute.NewSet(name))
	limit, err := m.Int64ObservableGauge(LimitMetricName,
		metric.WithDescription("Current concurrency limit of the adaptive limiter."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	inflight, err := m.Int64ObservableGauge(InFlightMetricName,
		metric.WithDescription("Calls in flight through the adaptive limiter."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(limit, int64(l.Limit()), nameOpt)
		o.ObserveInt64(inflight, int64(l.InFlight()), nameOpt)
		return nil
	}, limit, inflight)
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
