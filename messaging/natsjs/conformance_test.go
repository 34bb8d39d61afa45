package natsjs_test

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/messagingtest"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

func TestConformanceEmbedded(t *testing.T) {
	_, js := embedded(t)
	messagingtest.Run(t, harness(js))
}

func TestConformanceNATS(t *testing.T) {
	messagingtest.Run(t, harness(machine(t)))
}

// harness is the conformance harness on js.
func harness(js jetstream.JetStream) messagingtest.Harness {
	newPub := func(t *testing.T, tp trace.TracerProvider) messaging.Publisher {
		o := testOpts
		o.TracerProvider = tp
		return natsjs.NewPublisher(js, o)
	}
	newSub := func(t *testing.T, tp trace.TracerProvider) messaging.Subscriber {
		o := testOpts
		o.TracerProvider = tp
		return natsjs.NewSubscriber(js, o)
	}
	return messagingtest.Harness{
		NewPublisher:            func(t *testing.T) messaging.Publisher { return newPub(t, nil) },
		NewSubscriber:           func(t *testing.T) messaging.Subscriber { return newSub(t, nil) },
		NewPublisherWithTracer:  newPub,
		NewSubscriberWithTracer: newSub,
		Subject:                 func(t *testing.T) string { return subject(t, js) },
		MaxMessageSize:          natsjs.NewPublisher(js, testOpts).MaxMessageSize(),
	}
}
