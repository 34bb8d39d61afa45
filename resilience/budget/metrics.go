package budget

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names and attribute keys the budgets report.
const (
	WithdrawalsMetricName = "resilience.budget.withdrawals"
	TokensMetricName      = "resilience.budget.tokens"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	OutcomeKey    = attribute.Key("resilience.outcome")
)

// Span event and attribute key for denials. A Budget has no context, so the
// policies that spend it (retry.Do, hedge.Do) add the event to their span
// when Withdraw denies them, with [PolicyNameKey] naming themselves and
// NameKey naming the budget when it has a Name method, as [GRPC] and
// [Percent] do.
const (
	DeniedEventName = "resilience.budget.denied"
	NameKey         = attribute.Key("resilience.budget.name")
)

// Outcomes of Withdraw, the values of [OutcomeKey].
const (
	OutcomeGranted = "granted"
	OutcomeDenied  = "denied"
)

const scopeName = "github.com/cairnhq/cairn/resilience/budget"

const (
	outcomeGranted = iota
	outcomeDenied
	numOutcomes
)

var outcomeNames = [numOutcomes]string{OutcomeGranted, OutcomeDenied}

// instruments holds a budget's instruments and the measurement options of
// every attribute set it records, built once so recording allocates
// nothing.
type instruments struct {
	withdrawals metric.Int64Counter
	outcomeOpts [numOutcomes][]metric.AddOption
	reg         metric.Registration // of the gauge callback
	closeOnce   sync.Once
}

func (in *instruments) init(name string, mp metric.MeterProvider, tokens func() float64) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scopeName)
	var err error
	in.withdrawals, err = m.Int64Counter(WithdrawalsMetricName,
		metric.WithDescription("Retry budget withdrawals by outcome."),
		metric.WithUnit("{withdrawal}"))
	if err != nil {
		return err
	}
	nameAttr := PolicyNameKey.String(name)
	for o := range outcomeNames {
		set := attribute.NewSet(nameAttr, OutcomeKey.String(outcomeNames[o]))
		in.outcomeOpts[o] = []metric.AddOption{metric.WithAttributeSet(set)}
	}
	opt := metric.WithAttributeSet(attribute.NewSet(nameAttr))
	gauge, err := m.Float64ObservableGauge(TokensMetricName,
		metric.WithDescription("Tokens (grpc) or retries (percent) the budget holds."),
		metric.WithUnit("{token}"))
	if err != nil {
		return err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(gauge, tokens(), opt)
		return nil
	}, gauge)
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
