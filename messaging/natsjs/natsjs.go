// Package natsjs is the NATS JetStream transport of package messaging: a
// [Publisher] that waits for JetStream's acknowledgement of every message,
// and a [Subscriber] that consumes through durable pull consumers, one per
// group and subject.
//
// # Wire format
//
// A message is published to its Subject with its Data as payload and its
// headers as NATS headers, plus:
//
//   - "Nats-Msg-Id": the message ID, so that JetStream drops a publish it
//     has already stored within the stream's duplicate window. IDs must
//     therefore be unique within a stream, not only within a subject;
//   - "Cairn-Key": the message key, when not empty;
//   - "Cairn-Id": the message ID, on dead letters only, whose
//     Nats-Msg-Id is "<dead-letter subject>|<ID>" so that one message
//     dead-lettered by two groups into one stream is stored twice.
//
// A consumed message takes its ID from Cairn-Id, else Nats-Msg-Id, else
// (a message published by a plain NATS client without one) it gets the ID
// "<stream>:<stream sequence>", which is stable across redeliveries: such a
// message is delivered like any other, never dropped.
//
// # Streams
//
// The caller owns its streams: create them with [EnsureStream], and the
// stream of the dead-letter subjects with [EnsureDeadLetterStream].
// Subscribe refuses, with an error wrapping [messaging.ErrInvalidConfig],
// a subject or dead-letter subject that no stream stores.
//
// # Ordering and throughput
//
// Each subscription's consumer has MaxAckPending 1 by default
// ([Options.MaxAckPending]): the broker hands out one message at a time per
// group and subject, and the next only once the previous one is
// acknowledged or dead-lettered. That is what keeps messages of a key in
// order across redeliveries, but it caps a group's throughput at one
// message per handler round trip, whatever the number of members. Raise
// MaxAckPending only for subjects whose handlers do not need key order.
package natsjs

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Header names this transport adds to NATS messages.
const (
	// HeaderKey carries [messaging.Message.Key].
	HeaderKey = "Cairn-Key"
	// HeaderID carries the message ID of a dead letter, whose
	// Nats-Msg-Id is made unique per dead-letter subject.
	HeaderID = "Cairn-Id"
	// headerMsgID is JetStream's deduplication header.
	headerMsgID = "Nats-Msg-Id"
)

// DeadLetterStream is the name of the stream [EnsureDeadLetterStream]
// creates, and DeadLetterSubjects the subjects it stores.
const (
	DeadLetterStream   = "DLQ"
	DeadLetterSubjects = "dlq.>"
)

// Options configures a [Publisher] or a [Subscriber]. The zero value is a
// valid configuration.
type Options struct {
	// TracerProvider makes the spans. Nil means the global provider.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider

	// MaxMessageSize limits a message's Data plus headers, in bytes.
	// Zero means the server's max payload less 1 KiB for the headers
	// this transport adds. Publisher only.
	MaxMessageSize int
	// MaxInFlight is how many publishes of one Publish call may await
	// their acknowledgement at once (messages with different keys; those
	// with one key go one after the other). Zero means 256. Publisher
	// only.
	MaxInFlight int
	// PublishTimeout bounds the wait for one message's acknowledgement
	// when the context has no deadline. Zero means 10s.
	PublishTimeout time.Duration

	// AckWait is how long the broker waits for a delivered message's
	// acknowledgement before it delivers it again: what a crashed
	// consumer's messages wait. A running handler extends it with
	// progress heartbeats every AckWait/3. Zero means 30s. Subscriber
	// only.
	AckWait time.Duration
	// MaxAckPending is how many messages of one group and subject may
	// be delivered and not yet acknowledged. Zero means 1, which keeps
	// key order; see the package documentation. Subscriber only.
	MaxAckPending int
	// PollWait is how long one pull request waits for a message. It
	// bounds how long a subscription takes to notice a broker restart.
	// Zero means 5s. Subscriber only.
	PollWait time.Duration
	// RetryWait is how long a subscription waits after a failed pull
	// (broker down, say) before it tries again. Zero means 250ms.
	// Subscriber only.
	RetryWait time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 10 * time.Second
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 1
	}
	if o.PollWait <= 0 {
		o.PollWait = 5 * time.Second
	}
	if o.RetryWait <= 0 {
		o.RetryWait = 250 * time.Millisecond
	}
	return o
}

const scope = "github.com/cairnhq/cairn/messaging/natsjs"

// DurableName returns the name of the durable consumer of group on subject:
// the two, with every character JetStream forbids in a name replaced by
// "_", shortened, and followed by a hash of both that keeps names that
// sanitise alike apart. It is deterministic, so that every member of a
// group, in any process, shares one consumer.
func DurableName(group, subject string) string {
	sum := sha256.Sum256([]byte(group + "\x00" + subject))
	return sanitizeName(group, 40) + "-" + sanitizeName(subject, 40) + "-" + hex.EncodeToString(sum[:6])
}

func sanitizeName(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= max {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// sanitizeSubject returns s with the characters NATS forbids in a
// publishable subject (wildcards, white space, empty tokens) replaced by
// "_".
func sanitizeSubject(s string) string {
	toks := strings.Split(s, ".")
	for i, t := range toks {
		if t == "" || t == "*" || t == ">" {
			toks[i] = "_"
			continue
		}
		toks[i] = strings.Map(func(r rune) rune {
			switch r {
			case ' ', '\t', '\r', '\n', '*', '>':
				return '_'
			}
			return r
		}, t)
	}
	return strings.Join(toks, ".")
}

// validSubject reports whether s is a subject one can publish to.
func validSubject(s string) bool {
	return s != "" && sanitizeSubject(s) == s
}
