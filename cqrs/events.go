package cqrs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/cairnhq/cairn/eventstore"
)

// ErrDecode is matched by a [*DecodeError].
var ErrDecode = errors.New("cqrs: cannot decode event")

// DecodeError reports an event whose data does not decode into the Go type
// its handler wants.
type DecodeError struct {
	// Position, ID and Type name the event.
	Position eventstore.Position
	ID       string
	Type     string
	// Target is the Go type the data was decoded into.
	Target string
	// Err is the error of encoding/json.
	Err error
}

// Error names the event and the target type.
func (e *DecodeError) Error() string {
	return fmt.Sprintf("cqrs: decode event %s (type %s) at position %d into %s: %v", e.ID, e.Type, e.Position, e.Target, e.Err)
}

// Unwrap returns the error of encoding/json.
func (e *DecodeError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrDecode].
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// Decode decodes the JSON data of e into an E. It returns a [*DecodeError]
// naming the event if the data is not an E. Empty data decodes to the zero
// E.
func Decode[E any](e eventstore.RecordedEvent) (E, error) {
	var v E
	if len(e.Data) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(e.Data, &v); err != nil {
		return v, &DecodeError{Position: e.Position, ID: e.ID, Type: e.Type, Target: fmt.Sprintf("%T", v), Err: err}
	}
	return v, nil
}

// EventHandlers routes recorded events by their Type to handlers registered
// with [On]. Its Handle method has the signature of an
// [eventstore.Subscribe] handler. It is safe for concurrent use,
// registration included; the zero value has no handlers.
type EventHandlers struct {
	mu       sync.RWMutex
	handlers map[string]func(context.Context, eventstore.RecordedEvent) error
}

// On registers h for the events of type eventType, whose data decodes
// from JSON into an E. It panics if eventType already has a handler on hs.
func On[E any](hs *EventHandlers, eventType string, h func(ctx context.Context, e eventstore.RecordedEvent, data E) error) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if _, dup := hs.handlers[eventType]; dup {
		panic(fmt.Sprintf("cqrs: event type %s already has a handler", eventType))
	}
	if hs.handlers == nil {
		hs.handlers = make(map[string]func(context.Context, eventstore.RecordedEvent) error)
	}
	hs.handlers[eventType] = func(ctx context.Context, e eventstore.RecordedEvent) error {
		data, err := Decode[E](e)
		if err != nil {
			return err
		}
		return h(ctx, e, data)
	}
}

// Handle decodes e and runs the handler of its type, returning its error.
// It ignores an event whose type has no handler, and returns a
// [*DecodeError] for data that does not decode.
func (hs *EventHandlers) Handle(ctx context.Context, e eventstore.RecordedEvent) error {
	hs.mu.RLock()
	h, ok := hs.handlers[e.Type]
	hs.mu.RUnlock()
	if !ok {
		return nil
	}
	return h(ctx, e)
}

// Handles reports whether events of type eventType have a handler.
func (hs *EventHandlers) Handles(eventType string) bool {
	hs.mu.RLock()
	defer hs.mu.RUnlock()
	_, ok := hs.handlers[eventType]
	return ok
}
