package saga

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the package's spans and
// metrics.
const ScopeName = "github.com/cairnhq/cairn/saga"

// Metric names. Every metric has the attribute [NameKey];
// StepDurationMetricName has [StepKey] and [OutcomeKey] too.
const (
	// StartedMetricName counts the instances started ("{instance}"): a
	// Start that created its instance, not an idempotent repeat.
	StartedMetricName = "cairn.saga.started"
	// CompletedMetricName counts the instances that completed.
	CompletedMetricName = "cairn.saga.completed"
	// CompensatedMetricName counts the instances that ended compensated.
	CompensatedMetricName = "cairn.saga.compensated"
	// StuckMetricName is a gauge of the instances that this orchestrator
	// runs and that are [StatusStuck].
	StuckMetricName = "cairn.saga.stuck"
	// StepDurationMetricName is a histogram of the duration of step
	// actions and compensation attempts, in seconds ("s"). Runs interrupted
	// because the orchestrator lost the instance or closed are not
	// recorded.
	StepDurationMetricName = "cairn.saga.step.duration"
	// RecoveryRunsMetricName counts the recovery passes of [Orchestrator.Run]
	// ("{run}"), with [OutcomeKey] "ok" or "error" and no [NameKey].
	RecoveryRunsMetricName = "cairn.saga.recovery.runs"
	// RecoveredMetricName counts the instances that recovery claimed and
	// resumed.
	RecoveredMetricName = "cairn.saga.recovered"
)

// Attribute keys of spans, span events and metrics.
const (
	// NameKey is the definition's name.
	NameKey = attribute.Key("cairn.saga.name")
	// InstanceKey is the instance ID; on spans only, as IDs are unbounded.
	InstanceKey = attribute.Key("cairn.saga.instance.id")
	// StepKey is the step's name.
	StepKey = attribute.Key("cairn.saga.step")
	// OutcomeKey is the outcome of a step run: [OutcomeSucceeded],
	// [OutcomeFailed] or [OutcomeTimeout] for an action,
	// [OutcomeCompensated] or [OutcomeCompensationFailed] for a
	// compensation attempt.
	OutcomeKey = attribute.Key("cairn.saga.outcome")
	// StatusKey is the new status on a [TransitionEventName] event, an
	// instance [Status] or, with [StepKey], a [StepStatus].
	StatusKey = attribute.Key("cairn.saga.status")
	// AttemptKey is the attempt number on the span of an action or a
	// compensation: [StepInfo.Attempt].
	AttemptKey = attribute.Key("cairn.saga.attempt")
)

// Values of [OutcomeKey].
const (
	OutcomeSucceeded          = "succeeded"
	OutcomeFailed             = "failed"
	OutcomeTimeout            = "timeout"
	OutcomeCompensated        = "compensated"
	OutcomeCompensationFailed = "compensation_failed"
)

// Span names are "saga <definition>" for the root span, started by Start
// and ended when the starting process stops running the instance;
// "saga <definition> resume" for a resumption by recovery, a child of the
// root span (its context is persisted with the instance); "saga step
// <step>" for an action and "saga compensate <step>" for each attempt of a
// compensation, children of one of those.
//
// TransitionEventName is the span event added to the root or resume span
// at every change of status, of the instance ([StatusKey]) or of a step
// ([StepKey] and [StatusKey]).
const TransitionEventName = "saga.transition"

// StoppedEventName is the span event added to the root or resume span when
// the orchestrator stops running an unfinished instance, because it lost
// the lease or closed, with the cause in [CauseKey].
const StoppedEventName = "saga.stopped"

// CauseKey is the cause on a [StoppedEventName] event.
const CauseKey = attribute.Key("cairn.saga.cause")

// telemetry holds an orchestrator's instruments.
type telemetry struct {
	tracer                          trace.Tracer
	started, completed, compensated metric.Int64Counter
	recoveryRuns, recovered         metric.Int64Counter
	stepDuration                    metric.Float64Histogram
	stuckGauge                      metric.Int64ObservableGauge
	reg                             metric.Registration
	mu                              sync.Mutex
	stuck                           map[string]int64 // by definition
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	t := &telemetry{tracer: tp.Tracer(ScopeName), stuck: make(map[string]int64)}
	m := mp.Meter(ScopeName)
	var err error
	counter := func(name, desc, unit string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
		return c
	}
	t.started = counter(StartedMetricName, "Saga instances started.", "{instance}")
	t.completed = counter(CompletedMetricName, "Saga instances completed.", "{instance}")
	t.compensated = counter(CompensatedMetricName, "Saga instances compensated.", "{instance}")
	t.recoveryRuns = counter(RecoveryRunsMetricName, "Recovery passes.", "{run}")
	t.recovered = counter(RecoveredMetricName, "Saga instances resumed by recovery.", "{instance}")
	if err != nil {
		return nil, err
	}
	if t.stepDuration, err = m.Float64Histogram(StepDurationMetricName, metric.WithUnit("s"),
		metric.WithDescription("Duration of saga step actions and compensation attempts.")); err != nil {
		return nil, err
	}
	if t.stuckGauge, err = m.Int64ObservableGauge(StuckMetricName, metric.WithUnit("{instance}"),
		metric.WithDescription("Saga instances stuck compensating, run by this orchestrator.")); err != nil {
		return nil, err
	}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		t.mu.Lock()
		defer t.mu.Unlock()
		for name, n := range t.stuck {
			o.ObserveInt64(t.stuckGauge, n, metric.WithAttributes(NameKey.String(name)))
		}
		return nil
	}, t.stuckGauge)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// addStuck adds n to the stuck gauge of definition name.
func (t *telemetry) addStuck(name string, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stuck[name] += n
}
