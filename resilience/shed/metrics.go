package shed

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names and attribute keys the shedders report.
const (
	CallsMetricName       = "resilience.shed.calls"
	InFlightMetricName    = "resilience.shed.inflight"
	MaxInFlightMetricName = "resilience.shed.max_inflight"
	CPUMetricName         = "resilience.shed.cpu"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	OutcomeKey    = attribute.Key("resilience.outcome")
	PriorityKey   = attribute.Key("resilience.shed.priority")

	// RejectedEventName is added by [Shedder.Allow] to the span of its
	// context when it sheds a request, with [PriorityKey] and
	// [RetryAfterKey].
	RejectedEventName = "resilience.shed.rejected"
	// RetryAfterKey is the shed's suggested retry delay, in seconds.
	RetryAfterKey = attribute.Key("resilience.shed.retry_after")
)

const scopeName = "github.com/cairnhq/cairn/resilience/shed"

// outcome is the resilience.outcome of an Allow.
type outcome int

const (
	outAdmitted outcome = iota
	outShed
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"admitted", "shed"}

// instruments holds a shedder's instruments and the measurement options
// of every attribute set it records, built once so recording allocates
// nothing.
type instruments struct {
	calls     metric.Int64Counter
	addOpts   [numOutcomes][numPriorities][]metric.AddOption
	reg       metric.Registration // of the gauge callback
	closeOnce sync.Once
}

func (in *instruments) count(o outcome, p Priority) {
	in.calls.Add(context.Background(), 1, in.addOpts[o][p.index()]...)
}

func (in *instruments) init(s *Shedder, mp metric.MeterProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scopeName)
	var err error
	in.calls, err = m.Int64Counter(CallsMetricName,
		metric.WithDescription("Requests through the shedder by outcome and priority."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	name := PolicyNameKey.String(s.name)
	for o := range outcomeNames {
		for p := range priorityNames {
			set := attribute.NewSet(name, OutcomeKey.String(outcomeNames[o]), PriorityKey.String(priorityNames[p]))
			in.addOpts[o][p] = []metric.AddOption{metric.WithAttributeSet(set)}
		}
	}
	nameOpt := metric.WithAttributeSet(attribute.NewSet(name))
	inflight, err := m.Int64ObservableGauge(InFlightMetricName,
		metric.WithDescription("Requests admitted by the shedder and not yet done."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	maxInflight, err := m.Int64ObservableGauge(MaxInFlightMetricName,
		metric.WithDescription("The shedder's Little's-law estimate of the requests the server can have in flight."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	cpu, err := m.Float64ObservableGauge(CPUMetricName,
		metric.WithDescription("The CPU usage the shedder sees, from 0 to 1."),
		metric.WithUnit("1"))
	if err != nil {
		return err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(inflight, int64(s.InFlight()), nameOpt)
		o.ObserveInt64(maxInflight, int64(s.MaxInFlight()), nameOpt)
		o.ObserveFloat64(cpu, s.CPUUsage(), nameOpt)
		return nil
	}, inflight, maxInflight, cpu)
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
