package shred_test

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/shred"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
)

func Example() {
	ctx := context.Background()
	events, err := sqlitestore.Open(ctx, sqlitestore.MemoryPath)
	if err != nil {
		panic(err)
	}
	defer events.Close()
	store, err := shred.New(events, &shred.MemoryKeys{}, shred.Policy{
		"customer.registered": {Subject: "customer_id", Fields: []string{"email"}},
	})
	if err != nil {
		panic(err)
	}

	_, err = store.Append(ctx, "customer-42", eventstore.NoStream, eventstore.Event{
		ID: "evt-1", Type: "customer.registered",
		Data: []byte(`{"customer_id":"42","email":"ann@example.com","plan":"gold"}`),
	})
	if err != nil {
		panic(err)
	}
	read := func() {
		got, err := store.ReadStream(ctx, "customer-42", 0, eventstore.Forwards, 10)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s shredded=%t\n", got[0].Data, got[0].Metadata.Extra[shred.ShreddedKey] == "true")
	}
	read()
	if err := store.Forget(ctx, "42"); err != nil {
		panic(err)
	}
	read()
	// Output:
	// {"customer_id":"42","email":"ann@example.com","plan":"gold"} shredded=false
	// {"customer_id":"42","email":null,"plan":"gold"} shredded=true
}
