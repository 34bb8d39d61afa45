package sqlitestore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/eventstore"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
)

// Example appends to a stream, hits a version conflict, retries an append
// idempotently and reads the stream back.
func Example() {
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, sqlitestore.MemoryPath)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	placed := eventstore.Event{ID: "evt-1", Type: "order.placed", Data: []byte(`{"total":1299}`)}
	res, err := s.Append(ctx, "order-42", eventstore.NoStream, placed)
	fmt.Println(res.NextExpectedVersion, err)

	paid := eventstore.Event{ID: "evt-2", Type: "order.paid"}
	_, err = s.Append(ctx, "order-42", eventstore.NoStream, paid)
	fmt.Println(errors.Is(err, eventstore.ErrVersionConflict))

	again, err := s.Append(ctx, "order-42", eventstore.NoStream, placed) // a retry
	fmt.Println(again == res, err)

	_, err = s.Append(ctx, "order-42", eventstore.Exact(res.NextExpectedVersion), paid)
	fmt.Println(err)

	events, _ := s.ReadStream(ctx, "order-42", 0, eventstore.Forwards, 10)
	for _, e := range events {
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
	// Output:
	// 1 <nil>
	// true
	// true <nil>
	// <nil>
	// 1 order.placed {"total":1299}
	// 2 order.paid
}
