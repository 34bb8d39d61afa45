package kafka_test

import (
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/kafka"
	"github.com/cairnhq/cairn/messaging/messagingtest"
)

// TestConformance runs the messaging conformance suite against an
// in-process cluster whose topics have four partitions.
func TestConformance(t *testing.T) {
	seeds := cluster(t, 4)
	messagingtest.Run(t, messagingtest.Harness{
		NewPublisher: func(t *testing.T) messaging.Publisher {
			return kafka.NewPublisher(newClient(t, seeds), kafka.Options{})
		},
		NewSubscriber: func(t *testing.T) messaging.Subscriber {
			return kafka.NewSubscriber(seeds, kafka.Options{ClientOptions: clientOpts})
		},
		// Topics are created on first use, dead-letter topics included.
		Subject:        subject,
		MaxMessageSize: kafka.DefaultMaxMessageSize,
		NewPublisherWithTracer: func(t *testing.T, tp trace.TracerProvider) messaging.Publisher {
			return kafka.NewPublisher(newClient(t, seeds), kafka.Options{TracerProvider: tp})
		},
		NewSubscriberWithTracer: func(t *testing.T, tp trace.TracerProvider) messaging.Subscriber {
			return kafka.NewSubscriber(seeds, kafka.Options{TracerProvider: tp, ClientOptions: clientOpts})
		},
	})
}
