package inproc_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/inproc"
	"github.com/cairnhq/cairn/messaging/messagingtest"
)

func TestConformance(t *testing.T) {
	b := inproc.NewBroker()
	var n atomic.Int64
	messagingtest.Run(t, messagingtest.Harness{
		NewPublisher: func(t *testing.T) messaging.Publisher {
			return inproc.NewPublisher(b, inproc.Options{})
		},
		NewSubscriber: func(t *testing.T) messaging.Subscriber {
			return inproc.NewSubscriber(b, inproc.Options{})
		},
		Subject: func(t *testing.T) string {
			return fmt.Sprintf("test.%d", n.Add(1))
		},
		MaxMessageSize: b.MaxMessageSize(),
		NewPublisherWithTracer: func(t *testing.T, tp trace.TracerProvider) messaging.Publisher {
			return inproc.NewPublisher(b, inproc.Options{TracerProvider: tp})
		},
		NewSubscriberWithTracer: func(t *testing.T, tp trace.TracerProvider) messaging.Subscriber {
			return inproc.NewSubscriber(b, inproc.Options{TracerProvider: tp})
		},
	})
}
