package circuitbreaker

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names and attribute keys the breakers report.
const (
	CallsMetricName       = "resilience.circuitbreaker.calls"
	StateMetricName       = "resilience.circuitbreaker.state"
	TransitionsMetricName = "resilience.circuitbreaker.transitions"

	// StateChangeEventName is added to the span of the context given to
	// AllowContext, DoneContext or Execute when the call moves the breaker
	// to another state, with [FromStateKey] and [ToStateKey].
	StateChangeEventName = "resilience.circuitbreaker.state_change"
	// RejectedEventName is added to that span when the breaker rejects a
	// call, with [StateKey].
	RejectedEventName = "resilience.circuitbreaker.rejected"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	OutcomeKey    = attribute.Key("resilience.outcome")
	FromStateKey  = attribute.Key("resilience.circuitbreaker.from")
	ToStateKey    = attribute.Key("resilience.circuitbreaker.to")
	// StateKey is the state of a breaker that rejected a call: "open",
	// "half-open" or "forced-open".
	StateKey = attribute.Key("resilience.circuitbreaker.current_state")
)

const scopeName = "github.com/cairnhq/cairn/resilience/circuitbreaker"

// instruments holds a breaker's instruments and the measurement options of
// every attribute set it records, built once so recording allocates
// nothing.
type instruments struct {
	calls          metric.Int64Counter
	transitions    metric.Int64Counter
	outcomeOpts    [numOutcomes][]metric.AddOption
	transitionOpts [numStates][numStates][]metric.AddOption
	reg            metric.Registration // of the gauge callback
	closeOnce      sync.Once
}

func (in *instruments) init(b *Breaker, mp metric.MeterProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scopeName)
	var err error
	in.calls, err = m.Int64Counter(CallsMetricName,
		metric.WithDescription("Calls through the circuit breaker by outcome."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	in.transitions, err = m.Int64Counter(TransitionsMetricName,
		metric.WithDescription("State transitions of the circuit breaker."),
		metric.WithUnit("{transition}"))
	if err != nil {
		return err
	}
	name := PolicyNameKey.String(b.name)
	for o := range outcomeNames {
		set := attribute.NewSet(name, OutcomeKey.String(outcomeNames[o]))
		in.outcomeOpts[o] = []metric.AddOption{metric.WithAttributeSet(set)}
	}
	for from := range State(numStates) {
		for to := range State(numStates) {
			set := attribute.NewSet(name, FromStateKey.String(from.String()), ToStateKey.String(to.String()))
			in.transitionOpts[from][to] = []metric.AddOption{metric.WithAttributeSet(set)}
		}
	}
	stateOpt := metric.WithAttributeSet(attribute.NewSet(name))
	state, err := m.Int64ObservableGauge(StateMetricName,
		metric.WithDescription("State of the circuit breaker: 0 closed, 1 open, 2 half-open, 3 forced-open, 4 disabled."),
		metric.WithUnit("{state}"))
	if err != nil {
		return err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(state, int64(b.State()), stateOpt)
		return nil
	}, state)
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
