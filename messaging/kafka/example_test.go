package kafka_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/kafka"
)

func Example() {
	// An in-process cluster stands in for Kafka here.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	seeds := c.ListenAddrs()

	// The caller builds the producing client: franz-go's defaults are an
	// idempotent producer, acks from all in-sync replicas and a key-hash
	// partitioner.
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	pub := kafka.NewPublisher(cl, kafka.Options{})
	defer pub.Close()

	ctx := context.Background()
	err = pub.Publish(ctx, messaging.Message{ID: "order-1", Subject: "orders", Key: "customer-7", Data: []byte("2 apples")})
	if err != nil {
		panic(err)
	}

	sub := kafka.NewSubscriber(seeds, kafka.Options{})
	defer sub.Close()
	got := make(chan messaging.Delivery, 1)
	s, err := sub.Subscribe(ctx, messaging.SubscribeConfig{Subject: "orders", Group: "billing"},
		func(_ context.Context, d messaging.Delivery) error {
			got <- d
			return nil
		})
	if err != nil {
		panic(err)
	}
	d := <-got
	s.Close()
	fmt.Printf("%s %s %s attempt %d\n", d.ID, d.Key, d.Data, d.Attempt)
	// Output: order-1 customer-7 2 apples attempt 1
}
