package degrade

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names and attribute keys the switches report.
const (
	LevelMetricName       = "resilience.degrade.level"
	PressureMetricName    = "resilience.degrade.pressure"
	TransitionsMetricName = "resilience.degrade.transitions"
	SkippedMetricName     = "resilience.degrade.skipped"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	// FromLevelKey and ToLevelKey are the levels, as integers, before and
	// after a transition.
	FromLevelKey = attribute.Key("resilience.degrade.from")
	ToLevelKey   = attribute.Key("resilience.degrade.to")
	// FeatureKey is the name of a feature found disabled.
	FeatureKey = attribute.Key("resilience.degrade.feature")

	// LevelChangeEventName is added by [Switch.Update] and [Switch.Force]
	// to the recording span of their context when they change the level,
	// with [PolicyNameKey], [FromLevelKey], [ToLevelKey], [PressureKey]
	// and [ForcedKey].
	LevelChangeEventName = "resilience.degrade.level_change"
	// PressureKey is the pressure last read from the signal.
	PressureKey = attribute.Key("resilience.degrade.pressure")
	// ForcedKey reports whether the change was made by [Switch.Force].
	ForcedKey = attribute.Key("resilience.degrade.forced")
)

const scopeName = "github.com/cairnhq/cairn/resilience/degrade"

// instruments holds a switch's instruments and the measurement options
// of every attribute set it records, built once so recording allocates
// nothing.
type instruments struct {
	transitions    metric.Int64Counter
	skipped        metric.Int64Counter
	transitionOpts [][][]metric.AddOption // [from][to]
	reg            metric.Registration    // of the gauge callback
	closeOnce      sync.Once
}

func (in *instruments) init(s *Switch, mp metric.MeterProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(scopeName)
	var err error
	in.transitions, err = m.Int64Counter(TransitionsMetricName,
		metric.WithDescription("Level changes of the graceful-degradation switch."),
		metric.WithUnit("{transition}"))
	if err != nil {
		return err
	}
	in.skipped, err = m.Int64Counter(SkippedMetricName,
		metric.WithDescription("Feature checks answered disabled by the graceful-degradation switch."),
		metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	name := PolicyNameKey.String(s.name)
	n := len(s.levels) + 1
	in.transitionOpts = make([][][]metric.AddOption, n)
	for from := range n {
		in.transitionOpts[from] = make([][]metric.AddOption, n)
		for to := range n {
			set := attribute.NewSet(name, FromLevelKey.Int(from), ToLevelKey.Int(to))
			in.transitionOpts[from][to] = []metric.AddOption{metric.WithAttributeSet(set)}
		}
	}
	for fname, f := range s.features {
		f.opts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(name, FeatureKey.String(fname)))}
	}
	nameOpt := metric.WithAttributeSet(attribute.NewSet(name))
	level, err := m.Int64ObservableGauge(LevelMetricName,
		metric.WithDescription("The current level of the graceful-degradation switch: 0 is full service."),
		metric.WithUnit("{level}"))
	if err != nil {
		return err
	}
	pressure, err := m.Float64ObservableGauge(PressureMetricName,
		metric.WithDescription("The pressure the graceful-degradation switch last read: 1 is at capacity."),
		metric.WithUnit("1"))
	if err != nil {
		return err
	}
	in.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(level, int64(s.Level()), nameOpt)
		o.ObserveFloat64(pressure, s.Pressure(), nameOpt)
		return nil
	}, level, pressure)
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
