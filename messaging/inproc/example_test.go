package inproc_test

import (
	"context"
	"fmt"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/inproc"
)

// A broker, a publisher and a subscriber in one process. Publishing the
// same ID twice within the duplicate window stores the message once.
func Example() {
	ctx := context.Background()
	b := inproc.NewBroker()
	pub := inproc.NewPublisher(b, inproc.Options{})
	defer pub.Close()
	sub := inproc.NewSubscriber(b, inproc.Options{})
	defer sub.Close()

	got := make(chan messaging.Delivery)
	_, err := sub.Subscribe(ctx, messaging.SubscribeConfig{Subject: "orders.placed", Group: "billing"},
		func(ctx context.Context, d messaging.Delivery) error {
			got <- d
			return nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}

	m := messaging.Message{ID: "order-1", Subject: "orders.placed", Key: "customer-7", Data: []byte(`{"total":42}`)}
	for range 2 { // a retry after a lost acknowledgement
		if err := pub.Publish(ctx, m); err != nil {
			fmt.Println(err)
			return
		}
	}
	d := <-got
	fmt.Printf("%s %s attempt %d in %s\n", d.ID, d.Data, d.Attempt, d.Group)
	fmt.Printf("%+v\n", b.Stats("orders.placed"))
	// Output:
	// order-1 {"total":42} attempt 1 in billing
	// {Messages:1 FirstSeq:1 LastSeq:1 Trimmed:0 Duplicates:1}
}
