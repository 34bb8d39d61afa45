package hedge

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/resilience/budget"
)

// Metric names, span event name and attribute keys the hedgers report.
const (
	AttemptsMetricName = "resilience.hedge.attempts"
	WinsMetricName     = "resilience.hedge.wins"
	DeniedMetricName   = "resilience.hedge.denied"
	DelayMetricName    = "resilience.hedge.delay"

	SentEventName = "resilience.hedge.sent"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	OutcomeKey    = attribute.Key("resilience.outcome")
	// AttemptKey is the number of the attempt a span event reports, the
	// first being 1 and the first hedge 2.
	AttemptKey = attribute.Key("resilience.hedge.attempt")
)

// Kinds of attempt, the values of [OutcomeKey] on the attempts and wins
// counters.
const (
	OutcomePrimary = "primary"
	OutcomeHedge   = "hedge"
)

const scopeName = "github.com/cairnhq/cairn/resilience/hedge"

const (
	kindPrimary = iota
	kindHedge
	numKinds
)

var kindNames = [numKinds]string{OutcomePrimary, OutcomeHedge}

// instruments holds a hedger's instruments and the measurement options of
// every attribute set it records, built once so recording allocates
// nothing.
type instruments struct {
	attempts  metric.Int64Counter
	wins      metric.Int64Counter
	denied    metric.Int64Counter
	kindOpts  [numKinds][]metric.AddOption
	nameOpts  []metric.AddOption
	nameAttr  attribute.KeyValue
	reg       metric.Registration // of the gauge callback
	closeOnce sync.Once
}

func (in *instruments) init(h *Hedger, mp metric.MeterProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scopeName)
	var err error
	in.attempts, err = m.Int64Counter(AttemptsMetricName,
		metric.WithDescription("Attempts started by the hedger, primary or hedge."),
		metric.WithUnit("{attempt}"))
	if err != nil {
		return err
	}
	in.wins, err = m.Int64Counter(WinsMetricName,
		metric.WithDescription("Calls won by the primary or a hedged attempt."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	in.denied, err = m.Int64Counter(DeniedMetricName,
		metric.WithDescription("Hedged attempts the budget denied."),
		metric.WithUnit("{attempt}"))
	if err != nil {
		return err
	}
	in.nameAttr = PolicyNameKey.String(h.name)
	for k := range kindNames {
		set := attribute.NewSet(in.nameAttr, OutcomeKey.String(kindNames[k]))
		in.kindOpts[k] = []metric.AddOption{metric.WithAttributeSet(set)}
	}
	nameSet := attribute.NewSet(in.nameAttr)
	in.nameOpts = []metric.AddOption{metric.WithAttributeSet(nameSet)}
	delayOpt := metric.WithAttributeSet(nameSet)
	delay, err := m.Float64ObservableGauge(DelayMetricName,
		metric.WithDescription("Current hedging delay."),
		metric.WithUnit("s"))
	if err != nil {
		return err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(delay, h.Delay().Seconds(), delayOpt)
		return nil
	}, delay)
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

// budgetDenied adds the budget's denied event to span for the hedge that
// would have been attempt number attempt.
func (h *Hedger) budgetDenied(span trace.Span, attempt int) {
	attrs := []attribute.KeyValue{h.inst.nameAttr, AttemptKey.Int(attempt)}
	if n, ok := h.budget.(interface{ Name() string }); ok {
		attrs = append(attrs, budget.NameKey.String(n.Name()))
	}
	span.AddEvent(budget.DeniedEventName, trace.WithAttributes(attrs...))
}
