package eventstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/eventstore"
)

func ExampleValidate() {
	err := eventstore.Validate("order-42", []eventstore.Event{
		{ID: "7f9c", Type: "order.placed", Data: []byte(`{"total":12}`)},
		{ID: "7f9d", Data: []byte(`{"sku":"A1"}`)},
	})
	var ie *eventstore.InvalidEventError
	if errors.As(err, &ie) {
		fmt.Println(ie.Index, ie.Field, ie.Reason)
	}
	fmt.Println(errors.Is(err, eventstore.ErrInvalidEvent))
	fmt.Println(err)
	// Output:
	// 1 Type is empty
	// true
	// eventstore: invalid event 1: Type is empty
}

func ExampleVersionConflictError() {
	// What Store.Append returns when another writer appended first: the
	// caller loaded version 7, the stream is at 8.
	var err error = &eventstore.VersionConflictError{Stream: "order-42", Expected: eventstore.Exact(7), Actual: 8}
	err = fmt.Errorf("place order: %w", err)

	if errors.Is(err, eventstore.ErrVersionConflict) {
		var vc *eventstore.VersionConflictError
		errors.As(err, &vc)
		fmt.Printf("reload %s at version %d and decide again\n", vc.Stream, vc.Actual)
	}
	fmt.Println(err)
	// Output:
	// reload order-42 at version 8 and decide again
	// place order: eventstore: version conflict on stream "order-42": expected 7, stream is at 8
}

// fixedLog is a Reader over a fixed global log, standing in for a backend.
type fixedLog []eventstore.RecordedEvent

func (l fixedLog) ReadStream(context.Context, string, int64, eventstore.Direction, int) ([]eventstore.RecordedEvent, error) {
	return nil, nil
}

func (l fixedLog) ReadAll(_ context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	var out []eventstore.RecordedEvent
	for _, e := range l {
		if e.Position > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func ExampleSubscribe() {
	log := fixedLog{
		{Event: eventstore.Event{ID: "a", Type: "order.placed"}, StreamID: "order-1", Version: 1, Position: 1},
		{Event: eventstore.Event{ID: "b", Type: "order.placed"}, StreamID: "order-2", Version: 1, Position: 2},
		{Event: eventstore.Event{ID: "c", Type: "order.paid"}, StreamID: "order-1", Version: 2, Position: 4},
	}
	// The projection's checkpoint: it has handled position 1 already.
	checkpoint := eventstore.Position(1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := eventstore.Subscribe(ctx, log, checkpoint, func(ctx context.Context, e eventstore.RecordedEvent) error {
		fmt.Printf("%d %s %s v%d\n", e.Position, e.Type, e.StreamID, e.Version)
		checkpoint = e.Position // in real code: saved with the projection's state
		if checkpoint == 4 {
			cancel() // for the example: stop once caught up
		}
		return nil
	}, eventstore.SubscribeOptions{})
	fmt.Println(err, checkpoint)
	// Output:
	// 2 order.placed order-2 v1
	// 4 order.paid order-1 v2
	// context canceled 4
}
