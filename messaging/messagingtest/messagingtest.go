// Package messagingtest is the conformance suite of the [messaging]
// transports: every transport runs [Run] from its tests, with a [Harness]
// that builds its publishers and subscribers, and passes it before it is
// used.
//
// The suite checks the contract written in the messaging package: a round
// trip keeps a message's ID, key, headers and data; the trace context goes
// from the publisher's span to the consumer's; messages of a key are
// delivered in order, across many keys and across handler errors and
// redeliveries; a message not acknowledged when its subscriber closes is
// delivered again in its group; the members of a group share its messages
// and every group gets them all; redeliveries count their attempts; a
// message is dead-lettered, with the dead-letter headers, after
// MaxDeliveries or at once on a [messaging.Permanent] error; invalid
// messages and configurations are refused; a closed publisher or
// subscriber says [messaging.ErrClosed]; and Close leaves no goroutine
// behind.
//
// Each check is also available on its own through [Checks]. Every wait of
// a check is bounded (see [Timeout]), and the checks use short backoffs,
// so that the suite takes seconds, not minutes.
package messagingtest

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
)

// Timeout bounds each wait of a check: for a message to arrive, for a
// Close to return. A check that waits longer fails.
const Timeout = 20 * time.Second

// Harness is what a transport gives the suite.
type Harness struct {
	// NewPublisher returns a new publisher. The suite closes it.
	NewPublisher func(t *testing.T) messaging.Publisher
	// NewSubscriber returns a new, independent subscriber: to the broker
	// it is a new consumer process. The suite closes it.
	NewSubscriber func(t *testing.T) messaging.Subscriber
	// Subject returns a fresh subject (or topic) unique to the calling
	// test, ready to publish to and to subscribe to, and such that its
	// default dead-letter subjects (messaging.DeadLetterSubject(subject,
	// group) for any group) can be subscribed to as well.
	Subject func(t *testing.T) string
	// MaxMessageSize is the transport's limit on a message's size, or 0
	// if it has none.
	MaxMessageSize int
	// NewPublisherWithTracer returns a new publisher whose spans go to
	// tp. Optional: when nil, the TraceContext check is skipped. The
	// suite closes the publisher.
	NewPublisherWithTracer func(t *testing.T, tp trace.TracerProvider) messaging.Publisher
	// NewSubscriberWithTracer returns a new subscriber whose spans go to
	// tp. Optional: when nil, the TraceContext check is skipped. The
	// suite closes the subscriber.
	NewSubscriberWithTracer func(t *testing.T, tp trace.TracerProvider) messaging.Subscriber
}

// A Check is one conformance check of a transport.
type Check struct {
	// Name is the check's subtest name in [Run], such as "RoundTrip".
	Name string
	// Run runs the check with h, reporting failures on t. It uses fresh
	// subjects from h.Subject, closes what it opens, and returns with
	// every goroutine it started finished (unless a wait timed out).
	Run func(t *testing.T, h Harness)
}

// Checks returns the conformance checks, in the order [Run] runs them.
// Each call returns a new slice.
func Checks() []Check {
	return []Check{
		{"RoundTrip", checkRoundTrip},
		{"TraceContext", checkTraceContext},
		{"KeyOrdering", checkKeyOrdering},
		{"OrderingAcrossRedelivery", checkOrderingAcrossRedelivery},
		{"AtLeastOnceAfterCrash", checkAtLeastOnceAfterCrash},
		{"Groups", checkGroups},
		{"Redelivery", checkRedelivery},
		{"DeadLetterAfterMaxDeliveries", checkDeadLetterAfterMax},
		{"DeadLetterPermanent", checkDeadLetterPermanent},
		{"InvalidMessage", checkInvalidMessage},
		{"InvalidConfig", checkInvalidConfig},
		{"Closed", checkClosed},
		{"NoGoroutineLeak", checkNoGoroutineLeak},
	}
}

// Run runs every check of [Checks] as a subtest of t, in order and not in
// parallel. The NoGoroutineLeak check compares the goroutines before and
// after it, so nothing else in the test binary may start or stop
// goroutines while Run runs: do not call it from a parallel test.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.NewPublisher == nil || h.NewSubscriber == nil || h.Subject == nil {
		t.Fatal("messagingtest: Harness needs NewPublisher, NewSubscriber and Subject")
	}
	for _, c := range Checks() {
		t.Run(c.Name, func(t *testing.T) { c.Run(t, h) })
	}
}
