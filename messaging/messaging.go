// Package messaging publishes messages to a broker and consumes them, with
// acknowledgement, redelivery and dead-lettering, and with the W3C trace
// context carried in message headers.
//
// A [Publisher] returns once the broker has durably accepted a message. A
// [Subscriber] delivers the messages of a subject to a [Handler], as one
// member of a named group (a durable consumer, a consumer group): each
// message goes to one member of the group. Delivery is at least once:
//
//   - the handler returns nil: the message is acknowledged and not
//     delivered again;
//   - it returns an error: the message is delivered again, after
//     [SubscribeConfig.Backoff], up to [SubscribeConfig.MaxDeliveries]
//     times in all, and then moved to the dead-letter subject;
//   - it returns an error wrapped with [Permanent] (a message it cannot
//     decode, say): the message goes to the dead-letter subject at once;
//   - the process dies or the subscription closes before the handler
//     returns: the message is delivered again, to this or another member.
//
// Messages with the same [Message.Key] are delivered in the order they
// were published, and a message is not delivered before the one published
// before it with the same key has been acknowledged or dead-lettered.
// A message is never dropped silently: a dead letter carries the original
// message with headers saying why ([HeaderDeadLetterReason]) and where
// from ([HeaderOriginalSubject]).
//
// Because delivery is at least once, handlers deduplicate by [Message.ID]
// (an inbox, see the outbox package) when their effects must happen
// exactly once.
//
// The transports are subpackages: inproc (in memory, for tests and the
// single-process demo), natsjs (NATS JetStream) and kafka (franz-go).
// messagingtest is the conformance suite every transport runs.
package messaging

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Message is a message to publish or a message delivered.
type Message struct {
	// ID identifies the message uniquely. Required. Brokers that can
	// deduplicate publishes use it (JetStream's Nats-Msg-Id), and
	// consumers deduplicate by it. The outbox relay uses the event's ID.
	ID string
	// Subject is where the message goes: a NATS subject, a Kafka topic.
	// Required.
	Subject string
	// Key orders messages: messages with the same Key are delivered in
	// publish order. The outbox relay uses the event's stream ID. Kafka
	// partitions by it. Optional; messages without a key are ordered
	// among themselves as if they shared one.
	Key string
	// Header holds the message's headers. Publishers add the trace
	// context ("traceparent", "tracestate") of the publishing span.
	Header map[string]string
	// Data is the payload.
	Data []byte
}

// Delivery is a message as a [Handler] receives it.
type Delivery struct {
	Message
	// Attempt is 1 on the first delivery and counts redeliveries after.
	Attempt int
	// Group is the subscriber group the message was delivered to.
	Group string
}

// Handler handles one delivered message. See the package documentation
// for what its result means. The context carries the trace context of the
// message's publisher, and ends when the subscription closes.
type Handler func(ctx context.Context, d Delivery) error

// Publisher publishes messages.
type Publisher interface {
	// Publish sends msgs, in order, and returns once the broker has
	// durably accepted every one of them. On error, a prefix of msgs may
	// have been published; publishing them again is safe, since brokers
	// and consumers deduplicate by ID. It returns an error wrapping
	// [ErrInvalidMessage] for a message without an ID or subject, or too
	// large for the transport, before it sends anything.
	Publish(ctx context.Context, msgs ...Message) error
	// Close releases the publisher's resources. It does not close a
	// connection that was passed in.
	Close() error
}

// Subscriber consumes messages.
type Subscriber interface {
	// Subscribe starts delivering the messages of cfg.Subject to h, as a
	// member of cfg.Group, and returns at once. Delivery goes on until the
	// subscription is closed or ctx ends.
	Subscribe(ctx context.Context, cfg SubscribeConfig, h Handler) (Subscription, error)
	// Close closes every subscription and releases the subscriber's
	// resources.
	Close() error
}

// Subscription is a running subscription.
type Subscription interface {
	// Close stops delivery and waits for a running handler to return
	// (its context is canceled). A message delivered but not yet
	// acknowledged is delivered again, to another member of the group or
	// after the next Subscribe.
	Close() error
}

// SubscribeConfig says what to consume and how to treat failures.
type SubscribeConfig struct {
	// Subject is the subject or topic to consume. Required.
	Subject string
	// Group names the subscriber group: its members share the messages
	// and its position survives restarts. Required.
	Group string
	// MaxDeliveries is how many times a message is delivered before it
	// is dead-lettered. Zero means [DefaultMaxDeliveries].
	MaxDeliveries int
	// DeadLetterSubject is where messages go that were delivered
	// MaxDeliveries times, or failed with a [Permanent] error. Empty
	// means [DeadLetterSubject](Subject, Group).
	DeadLetterSubject string
	// Backoff is how long to wait before delivering a failed message
	// again, given the attempt that failed (1 for the first). Nil means
	// [DefaultBackoff].
	Backoff func(attempt int) time.Duration
}

// DefaultMaxDeliveries is the MaxDeliveries of a zero [SubscribeConfig].
const DefaultMaxDeliveries = 5

// DefaultBackoff doubles from 100ms, up to 5s.
func DefaultBackoff(attempt int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < attempt && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// DeadLetterSubject is the default dead-letter subject of a group:
// "dlq.<group>.<subject>". Names are sanitised by each transport where the
// broker restricts them.
func DeadLetterSubject(subject, group string) string {
	return "dlq." + group + "." + subject
}

// Normalize returns cfg with defaults filled in, or an error naming the
// field that is missing or wrong.
func (cfg SubscribeConfig) Normalize() (SubscribeConfig, error) {
	switch {
	case cfg.Subject == "":
		return cfg, fmt.Errorf("%w: subscribe: subject is empty", ErrInvalidConfig)
	case cfg.Group == "":
		return cfg, fmt.Errorf("%w: subscribe to %q: group is empty", ErrInvalidConfig, cfg.Subject)
	case cfg.MaxDeliveries < 0:
		return cfg, fmt.Errorf("%w: subscribe to %q: max deliveries %d is negative", ErrInvalidConfig, cfg.Subject, cfg.MaxDeliveries)
	}
	if cfg.MaxDeliveries == 0 {
		cfg.MaxDeliveries = DefaultMaxDeliveries
	}
	if cfg.DeadLetterSubject == "" {
		cfg.DeadLetterSubject = DeadLetterSubject(cfg.Subject, cfg.Group)
	}
	if cfg.DeadLetterSubject == cfg.Subject {
		return cfg, fmt.Errorf("%w: subscribe to %q: dead-letter subject is the subject itself", ErrInvalidConfig, cfg.Subject)
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	return cfg, nil
}

// Validate checks a message before it is published: it returns an error
// wrapping [ErrInvalidMessage] that names what is wrong, or nil. maxSize is
// the transport's limit on Data plus headers, in bytes; zero means none.
func Validate(m Message, maxSize int) error {
	switch {
	case m.ID == "":
		return fmt.Errorf("%w: message to %q has no ID", ErrInvalidMessage, m.Subject)
	case m.Subject == "":
		return fmt.Errorf("%w: message %q has no subject", ErrInvalidMessage, m.ID)
	}
	if maxSize > 0 {
		size := len(m.Data)
		for k, v := range m.Header {
			size += len(k) + len(v)
		}
		if size > maxSize {
			return fmt.Errorf("%w: message %q to %q is %d bytes, more than the transport's limit of %d", ErrInvalidMessage, m.ID, m.Subject, size, maxSize)
		}
	}
	return nil
}

// Headers that transports set on dead letters.
const (
	// HeaderDeadLetterReason is the error that dead-lettered the message.
	HeaderDeadLetterReason = "Cairn-Dead-Letter-Reason"
	// HeaderOriginalSubject is the subject the message was published to.
	HeaderOriginalSubject = "Cairn-Original-Subject"
	// HeaderDeliveries is how many times the message was delivered
	// before it was dead-lettered.
	HeaderDeliveries = "Cairn-Deliveries"
	// HeaderGroup is the group that dead-lettered the message.
	HeaderGroup = "Cairn-Group"
)

// DeadLetter returns the message to publish to cfg.DeadLetterSubject for
// d, which failed with err: d's message, with the headers above added. Its
// ID is d's ID, so that a dead letter published twice is deduplicated.
func DeadLetter(d Delivery, cfg SubscribeConfig, err error) Message {
	h := make(map[string]string, len(d.Header)+4)
	for k, v := range d.Header {
		h[k] = v
	}
	reason := "unknown"
	if err != nil {
		reason = err.Error()
	}
	if len(reason) > 1024 {
		reason = reason[:1024]
	}
	h[HeaderDeadLetterReason] = reason
	h[HeaderOriginalSubject] = d.Subject
	h[HeaderDeliveries] = fmt.Sprint(d.Attempt)
	h[HeaderGroup] = cfg.Group
	return Message{ID: d.ID, Subject: cfg.DeadLetterSubject, Key: d.Key, Header: h, Data: d.Data}
}

// Errors.
var (
	// ErrInvalidMessage is wrapped by the error of a Publish refused
	// before anything was sent.
	ErrInvalidMessage = errors.New("messaging: invalid message")
	// ErrInvalidConfig is wrapped by the error of a Subscribe with a
	// wrong [SubscribeConfig].
	ErrInvalidConfig = errors.New("messaging: invalid subscribe config")
	// ErrClosed is returned by a publisher or subscriber used after Close.
	ErrClosed = errors.New("messaging: closed")
)

// permanentError marks an error that redelivery cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that a [Handler] returning it dead-letters the
// message at once, without redelivery: for a message it cannot decode, or
// one that names something that does not exist. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was made by
// [Permanent].
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Decide returns what a transport does with a delivery whose handler
// returned err, given the delivery's attempt and cfg.MaxDeliveries: ack
// (err is nil), redeliver, or dead-letter.
func Decide(err error, attempt int, cfg SubscribeConfig) Outcome {
	switch {
	case err == nil:
		return Ack
	case IsPermanent(err), attempt >= cfg.MaxDeliveries:
		return DeadLetterIt
	}
	return Redeliver
}

// Outcome is what happens to a delivered message.
type Outcome int

// Outcomes of [Decide].
const (
	// Ack acknowledges the message.
	Ack Outcome = iota
	// Redeliver delivers it again after the backoff.
	Redeliver
	// DeadLetterIt publishes it to the dead-letter subject, then
	// acknowledges it.
	DeadLetterIt
)

// String returns "ack", "redeliver" or "dead_letter".
func (o Outcome) String() string {
	switch o {
	case Ack:
		return "ack"
	case Redeliver:
		return "redeliver"
	case DeadLetterIt:
		return "dead_letter"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}
