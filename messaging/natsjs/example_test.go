package natsjs_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

// Example runs an embedded NATS server, creates the stream of "orders.>"
// and the dead-letter stream, and sends one message from a publisher to a
// subscriber group.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "natsjs-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsjs.RunEmbedded(ctx, natsjs.EmbeddedConfig{StoreDir: dir})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		panic(err)
	}
	if _, err := natsjs.EnsureStream(ctx, js, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		panic(err)
	}
	if _, err := natsjs.EnsureDeadLetterStream(ctx, js); err != nil {
		panic(err)
	}

	sub := natsjs.NewSubscriber(js, natsjs.Options{})
	defer sub.Close()
	got := make(chan messaging.Delivery, 1)
	_, err = sub.Subscribe(ctx, messaging.SubscribeConfig{Subject: "orders.placed", Group: "billing"},
		func(ctx context.Context, d messaging.Delivery) error {
			got <- d
			return nil
		})
	if err != nil {
		panic(err)
	}

	pub := natsjs.NewPublisher(js, natsjs.Options{})
	defer pub.Close()
	err = pub.Publish(ctx, messaging.Message{ID: "order-1-placed", Subject: "orders.placed", Key: "order-1", Data: []byte(`{"total":42}`)})
	if err != nil {
		panic(err)
	}
	d := <-got
	fmt.Printf("%s %s key=%s attempt=%d %s\n", d.Group, d.ID, d.Key, d.Attempt, d.Data)
	// Output: billing order-1-placed key=order-1 attempt=1 {"total":42}
}
