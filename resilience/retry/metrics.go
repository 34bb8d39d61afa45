package retry

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/resilience/budget"
)

// Metric names, span event names and attribute keys [Do] reports.
const (
	CallsMetricName    = "resilience.retry.calls"
	AttemptsMetricName = "resilience.retry.attempts"

	// AttemptEventName is added to the span of Do's context before each
	// retry, with the attempt about to start, the delay before it and the
	// error that caused it.
	AttemptEventName = "resilience.retry.attempt"
	// ExhaustedEventName is added when Do gives up retrying a retryable
	// failure, with the number of attempts made and the reason.
	ExhaustedEventName = "resilience.retry.exhausted"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	OutcomeKey    = attribute.Key("resilience.outcome")
	// ReasonKey is why Do gave up, a [Error.Reason] value.
	ReasonKey = attribute.Key("resilience.reason")
	// AttemptKey is, on the attempt event, the number of the attempt about
	// to start (2 for the first retry) and, on the exhausted event, the
	// number of attempts made.
	AttemptKey = attribute.Key("resilience.retry.attempt_number")
	// DelayKey is the wait before the retry, in seconds.
	DelayKey = attribute.Key("resilience.retry.delay")
	// ErrorTypeKey and ErrorMessageKey describe the error of the last
	// attempt: its Go type and its message, cut to 256 bytes.
	ErrorTypeKey    = attribute.Key("error.type")
	ErrorMessageKey = attribute.Key("error.message")
)

// Outcomes of a call to Do, the values of [OutcomeKey] on the calls
// counter.
const (
	OutcomeSuccess           = "success"             // first attempt succeeded
	OutcomeSuccessAfterRetry = "success_after_retry" // a retry succeeded
	OutcomeNotRetryable      = "not_retryable"       // RetryIf rejected the error
	OutcomeExhausted         = "exhausted"           // max attempts, max elapsed or pushback
	OutcomeBudgetDenied      = "budget_denied"       // the budget denied a retry
	OutcomeCanceled          = "canceled"            // the context ended the retries
)

const scopeName = "github.com/cairnhq/cairn/resilience/retry"

type outcome int

const (
	outSuccess outcome = iota
	outSuccessAfterRetry
	outNotRetryable
	outExhausted
	outBudgetDenied
	outCanceled
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	OutcomeSuccess, OutcomeSuccessAfterRetry, OutcomeNotRetryable,
	OutcomeExhausted, OutcomeBudgetDenied, OutcomeCanceled,
}

// reasonOutcome maps a give-up reason to its outcome.
func reasonOutcome(reason string) outcome {
	switch reason {
	case ReasonBudget:
		return outBudgetDenied
	case ReasonContext:
		return outCanceled
	}
	return outExhausted
}

// instruments holds the instruments of one policy name on one
// MeterProvider and the measurement options of every attribute set they
// record, built once so recording allocates nothing.
type instruments struct {
	mp          metric.MeterProvider // the key of the instruments, with name
	name        string
	calls       metric.Int64Counter
	attempts    metric.Int64Counter
	outcomeOpts [numOutcomes][]metric.AddOption
	nameOpts    []metric.AddOption
	nameAttr    attribute.KeyValue
}

func newInstruments(mp metric.MeterProvider, name string) *instruments {
	m := mp.Meter(scopeName)
	in := &instruments{mp: mp, name: name, nameAttr: PolicyNameKey.String(name)}
	var err error
	in.calls, err = m.Int64Counter(CallsMetricName,
		metric.WithDescription("Calls through the retry policy by outcome."),
		metric.WithUnit("{call}"))
	if err != nil {
		otel.Handle(err)
	}
	in.attempts, err = m.Int64Counter(AttemptsMetricName,
		metric.WithDescription("Retries sent: attempts after the first."),
		metric.WithUnit("{attempt}"))
	if err != nil {
		otel.Handle(err)
	}
	for o := range outcomeNames {
		set := attribute.NewSet(in.nameAttr, OutcomeKey.String(outcomeNames[o]))
		in.outcomeOpts[o] = []metric.AddOption{metric.WithAttributeSet(set)}
	}
	in.nameOpts = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(in.nameAttr))}
	return in
}

func (in *instruments) call(ctx context.Context, o outcome) {
	in.calls.Add(ctx, 1, in.outcomeOpts[o]...)
}

// providerCache holds the instruments made on one MeterProvider, by
// policy name. Readers load the map without locking; writers copy it
// under mu.
type providerCache struct {
	mu     sync.Mutex
	byName atomic.Pointer[map[string]*instruments]
}

// caches maps a MeterProvider to its *providerCache. Policy is a value
// type, so Do finds its instruments here: once made, a lookup allocates
// nothing. Entries live as long as the process; there is one per provider
// and policy name.
var caches sync.Map

// newest is the instruments made last, checked before caches: a program
// with one retry policy finds its instruments without a map lookup. It is
// written only when instruments are made, so lookups never contend on it.
var newest atomic.Pointer[instruments]

// instrumentsFor returns the instruments of name on mp (the global
// provider when nil), making them on first use.
func instrumentsFor(mp metric.MeterProvider, name string) *instruments {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if t := reflect.TypeOf(mp); !t.Comparable() {
		// Cannot key a map: make the instruments each time.
		return newInstruments(mp, name)
	}
	if in := newest.Load(); in != nil && in.name == name && in.mp == mp {
		return in
	}
	c, ok := caches.Load(mp)
	if !ok {
		c, _ = caches.LoadOrStore(mp, new(providerCache))
	}
	pc := c.(*providerCache)
	if m := pc.byName.Load(); m != nil {
		if in, ok := (*m)[name]; ok {
			return in
		}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	old := pc.byName.Load()
	if old != nil {
		if in, ok := (*old)[name]; ok {
			return in
		}
	}
	in := newInstruments(mp, name)
	m := make(map[string]*instruments, 1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[name] = in
	pc.byName.Store(&m)
	newest.Store(in)
	return in
}

// maxMessage bounds the error message recorded on span events.
const maxMessage = 256

// errorAttrs returns the error.type and error.message attributes of err.
func errorAttrs(err error) (attribute.KeyValue, attribute.KeyValue) {
	msg := err.Error()
	if len(msg) > maxMessage {
		n := maxMessage
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n]
	}
	return ErrorTypeKey.String(fmt.Sprintf("%T", err)), ErrorMessageKey.String(msg)
}

// eventAttempt adds the attempt event to span.
func (in *instruments) eventAttempt(span trace.Span, next int, delay time.Duration, err error) {
	et, em := errorAttrs(err)
	span.AddEvent(AttemptEventName, trace.WithAttributes(
		in.nameAttr, AttemptKey.Int(next), DelayKey.Float64(delay.Seconds()), et, em))
}

// eventExhausted adds the exhausted event to span.
func (in *instruments) eventExhausted(span trace.Span, e *Error) {
	et, em := errorAttrs(e.Err)
	span.AddEvent(ExhaustedEventName, trace.WithAttributes(
		in.nameAttr, AttemptKey.Int(e.Attempts), ReasonKey.String(e.Reason), et, em))
}

// eventBudgetDenied adds the budget's denied event to span.
func (in *instruments) eventBudgetDenied(span trace.Span, b budget.Budget, attempt int) {
	attrs := []attribute.KeyValue{in.nameAttr, AttemptKey.Int(attempt)}
	if n, ok := b.(interface{ Name() string }); ok {
		attrs = append(attrs, budget.NameKey.String(n.Name()))
	}
	span.AddEvent(budget.DeniedEventName, trace.WithAttributes(attrs...))
}
