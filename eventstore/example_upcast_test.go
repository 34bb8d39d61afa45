package eventstore_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cairnhq/cairn/eventstore"
)

func ExampleUpcasting() {
	// Version 1 of "order.placed" said "total"; version 2 says "amount",
	// and version 3 adds a currency. Stored events stay as they were
	// written; readers see version 3.
	ups, err := eventstore.NewUpcasters(
		eventstore.Upcaster{Type: "order.placed", From: 1, Up: func(data []byte, _ eventstore.Metadata) ([]byte, error) {
			return bytes.Replace(data, []byte(`"total"`), []byte(`"amount"`), 1), nil
		}},
		eventstore.Upcaster{Type: "order.placed", From: 2, Up: func(data []byte, _ eventstore.Metadata) ([]byte, error) {
			return append(bytes.TrimSuffix(data, []byte("}")), `,"currency":"EUR"}`...), nil
		}},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	stored := newSliceReader(
		eventstore.Event{ID: "e1", Type: "order.placed", SchemaVersion: 1, Data: []byte(`{"total":12}`)},
		eventstore.Event{ID: "e2", Type: "order.placed", SchemaVersion: 3, Data: []byte(`{"amount":5,"currency":"USD"}`)},
		eventstore.Event{ID: "e3", Type: "order.shipped", SchemaVersion: 1, Data: []byte(`{}`)},
	)

	r := eventstore.Upcasting(stored, ups)
	events, err := r.ReadAll(context.Background(), 0, 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range events {
		fmt.Println(e.ID, e.Type, e.SchemaVersion, string(e.Data))
	}
	fmt.Println("append new order.placed events at schema version", ups.Current("order.placed"))
	// Output:
	// e1 order.placed 3 {"amount":12,"currency":"EUR"}
	// e2 order.placed 3 {"amount":5,"currency":"USD"}
	// e3 order.shipped 1 {}
	// append new order.placed events at schema version 3
}
