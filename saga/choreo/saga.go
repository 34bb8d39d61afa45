package choreo

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
)

// Headers that every message of a choreographed saga carries.
const (
	// HeaderSagaID is the correlation ID: the saga instance's ID.
	HeaderSagaID = "Cairn-Saga-Id"
	// HeaderSaga is the saga's name.
	HeaderSaga = "Cairn-Saga"
)

// ScopeName is the instrumentation scope of the package's spans and
// metrics.
const ScopeName = "github.com/cairnhq/cairn/saga/choreo"

// Attribute keys of spans and metrics.
const (
	// NameKey is the saga's name.
	NameKey = attribute.Key("cairn.saga.name")
	// InstanceKey is the instance (correlation) ID; on spans only.
	InstanceKey = attribute.Key("cairn.saga.instance.id")
	// StepKey is the step's name.
	StepKey = attribute.Key("cairn.saga.step")
	// EventKey is the subject of an event.
	EventKey = attribute.Key("cairn.saga.event")
	// StatusKey is the new status on a [StatusEventName] span event.
	StatusKey = attribute.Key("cairn.saga.status")
)

// Errors.
var (
	// ErrInvalidSaga is wrapped by the errors of [Saga.Validate].
	ErrInvalidSaga = errors.New("choreo: invalid saga")
	// ErrNoSagaID is wrapped, as a [messaging.Permanent] error, by the
	// error of a participant or tracker given a message without
	// [HeaderSagaID].
	ErrNoSagaID = errors.New("choreo: message has no " + HeaderSagaID + " header")
	// ErrNotFound is returned by [Tracker.Get] for an unknown instance.
	ErrNotFound = errors.New("choreo: saga instance not found")
)

// Step is one link of the chain: the participant that handles an event
// and the events it emits.
type Step struct {
	// Name names the step, unique in the saga ("reserve-stock").
	// Required.
	Name string
	// Participant names the service that runs the step; it is the
	// subscriber group. Required.
	Participant string
	// On holds the subjects of the events that trigger the step: one
	// or more ("payment.failed" and "payment.refunded" both make the
	// inventory release its reservation). Required.
	On []string
	// Success is the subject of the event emitted when the step
	// succeeds. Required.
	Success string
	// Failure is the subject of the event emitted when the step fails
	// for good (its handler returned a [messaging.Permanent] error).
	// Empty means the step cannot fail so: such an error dead-letters
	// the triggering message, and the instance stalls.
	Failure string
	// Compensates names the step whose effect this step undoes. Empty
	// for a forward step.
	Compensates string
}

// Saga declares a choreographed saga as its chain of steps. A Saga must
// not change once participants or a tracker use it; it is safe for
// concurrent use then.
type Saga struct {
	// Name names the saga. Required.
	Name string
	// Start is the subject of the event that starts an instance
	// ("order.placed"). Required.
	Start string
	// Steps is the chain, in any order.
	Steps []Step
	// TracerProvider makes the spans of [Saga.Publish] and of the
	// participants. Nil means the global provider.
	TracerProvider trace.TracerProvider
}

// Validate returns an error wrapping [ErrInvalidSaga] that names what is
// wrong with s, or nil. Every step's trigger must be the start event or
// an event another step emits, and no event may be emitted by two steps.
func (s *Saga) Validate() error {
	if s.Name == "" || s.Start == "" {
		return fmt.Errorf("%w: name %q and start event %q are both required", ErrInvalidSaga, s.Name, s.Start)
	}
	names := make(map[string]bool)
	emitted := map[string]string{s.Start: "start"}
	for _, st := range s.Steps {
		if st.Name == "" || st.Participant == "" || len(st.On) == 0 || st.Success == "" {
			return fmt.Errorf("%w: saga %s: step %q needs a name, a participant, an On and a Success event", ErrInvalidSaga, s.Name, st.Name)
		}
		if names[st.Name] {
			return fmt.Errorf("%w: saga %s: two steps are named %q", ErrInvalidSaga, s.Name, st.Name)
		}
		names[st.Name] = true
		for _, ev := range []string{st.Success, st.Failure} {
			if ev == "" {
				continue
			}
			if other, ok := emitted[ev]; ok {
				return fmt.Errorf("%w: saga %s: event %q is emitted by both %s and %s", ErrInvalidSaga, s.Name, ev, other, st.Name)
			}
			emitted[ev] = st.Name
		}
	}
	for _, st := range s.Steps {
		for _, on := range st.On {
			if _, ok := emitted[on]; !ok {
				return fmt.Errorf("%w: saga %s: step %s is triggered by %q, which nothing emits", ErrInvalidSaga, s.Name, st.Name, on)
			}
		}
		if st.Compensates != "" && !names[st.Compensates] {
			return fmt.Errorf("%w: saga %s: step %s compensates unknown step %q", ErrInvalidSaga, s.Name, st.Name, st.Compensates)
		}
	}
	return nil
}

// step returns the step named name.
func (s *Saga) step(name string) (Step, bool) {
	for _, st := range s.Steps {
		if st.Name == name {
			return st, true
		}
	}
	return Step{}, false
}

// Subjects returns every subject of the saga, each once: the start event
// and every event a step emits. A tracker subscribes to all of them.
func (s *Saga) Subjects() []string {
	seen := map[string]bool{s.Start: true}
	out := []string{s.Start}
	for _, st := range s.Steps {
		for _, ev := range []string{st.Success, st.Failure} {
			if ev != "" && !seen[ev] {
				seen[ev] = true
				out = append(out, ev)
			}
		}
	}
	return out
}

// classify returns what event ev says of an instance: its status and the
// stage it is at (the step it triggers, or else the step that emitted it).
func (s *Saga) classify(ev string) (Status, string) {
	var emitter Step
	found := false
	for _, st := range s.Steps {
		if st.Success == ev || st.Failure == ev {
			emitter, found = st, true
			break
		}
	}
	var next []Step
	for _, st := range s.Steps {
		if slices.Contains(st.On, ev) {
			next = append(next, st)
		}
	}
	stage := emitter.Name
	if len(next) > 0 {
		stage = next[0].Name
	}
	compensates := false
	for _, st := range next {
		if st.Compensates != "" {
			compensates = true
		}
	}
	switch {
	case !found: // the start event
		return StatusRunning, stage
	case compensates:
		return StatusCompensating, stage
	case emitter.Failure == ev:
		// A failure nothing compensates: a first step that failed, or a
		// compensation that failed.
		return StatusFailed, stage
	case len(next) > 0:
		if emitter.Compensates != "" {
			return StatusCompensating, stage
		}
		return StatusRunning, stage
	case emitter.Compensates != "":
		return StatusCompensated, stage
	}
	return StatusCompleted, stage
}

// Publish starts an instance: it publishes the saga's start event, with
// ID id+"/start", key id and the correlation header id, under a new span
// "choreo <saga>" that is the root of the instance's trace (a child of
// ctx's span, if any). Publishing the same id again is deduplicated by
// brokers and by the participants' inboxes.
func (s *Saga) Publish(ctx context.Context, pub messaging.Publisher, id string, data []byte) error {
	if id == "" {
		return fmt.Errorf("choreo: start saga %s: empty instance ID", s.Name)
	}
	ctx, span := tracer(s.TracerProvider).Start(ctx, "choreo "+s.Name,
		trace.WithAttributes(NameKey.String(s.Name), InstanceKey.String(id), EventKey.String(s.Start)))
	defer span.End()
	m := messaging.Message{
		ID: id + "/start", Subject: s.Start, Key: id, Data: data,
		Header: map[string]string{HeaderSagaID: id, HeaderSaga: s.Name},
	}
	messaging.InjectTraceContext(ctx, m.Header)
	if err := pub.Publish(ctx, m); err != nil {
		span.SetStatus(codes.Error, err.Error())
		return fmt.Errorf("choreo: start saga %s instance %s: %w", s.Name, id, err)
	}
	return nil
}

func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(ScopeName)
}
