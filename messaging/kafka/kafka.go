// Package kafka is the Kafka transport of package messaging, on franz-go
// (github.com/twmb/franz-go/pkg/kgo).
//
// A [Publisher] produces each [messaging.Message] as one record: the
// message's Subject is the topic, its Key the record key (Kafka partitions
// by it, so one key maps to one partition and keeps its order), its ID the
// record header [HeaderMessageID], and its headers the record headers.
// Publish returns once every record is acknowledged by the broker.
//
// A [Subscriber] gives each subscription its own consumer-group client.
// Each subscription handles the records of its partitions one at a time,
// in offset order; a record whose handler fails is retried in place after
// the backoff, so the record after it (and so the next message of the same
// key) waits, until the handler succeeds or the record is dead-lettered.
// Offsets are committed only for records that were acknowledged or
// dead-lettered, after their outcome. A record delivered to a subscription
// that is closed (or crashes) before its outcome is not committed, and is
// consumed again by the group's next owner of its partition.
//
// [Transform] is exactly-once consume-transform-produce: it reads committed
// records of an input topic, and produces a function's output and commits
// the input offsets in one Kafka transaction.
package kafka

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
)

// HeaderMessageID is the record header that carries [messaging.Message.ID].
const HeaderMessageID = "Cairn-Message-Id"

// DefaultMaxMessageSize is the MaxMessageSize of a zero [Options]: a little
// less than Kafka's default limit on a record batch (message.max.bytes,
// 1 MiB), to leave room for the key, the ID and the record overhead.
const DefaultMaxMessageSize = 1000 * 1000

// scope is the instrumentation scope of this package's telemetry.
const scope = "github.com/cairnhq/cairn/messaging/kafka"

// Options configures a [Publisher], a [Subscriber] or a [Transform]. The
// zero value is valid.
type Options struct {
	// TracerProvider makes the spans. Nil means the global provider.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the metrics. Nil means the global provider.
	MeterProvider metric.MeterProvider
	// MaxMessageSize is the largest message (data plus headers, in
	// bytes) that Publish accepts. Zero means [DefaultMaxMessageSize]; it
	// must not exceed the broker's message.max.bytes or the client's
	// ProducerBatchMaxBytes.
	MaxMessageSize int
	// ClientOptions are added to the options of every client a
	// [Subscriber] or [Transform] makes: TLS, SASL, logging, timeouts.
	// Options the transport depends on (the group, the topics, offset
	// committing, the isolation level, the revoke and lost callbacks, the
	// transactional ID) override these. Nil means none.
	ClientOptions []kgo.Opt
}

func (o Options) maxSize() int {
	if o.MaxMessageSize <= 0 {
		return DefaultMaxMessageSize
	}
	return o.MaxMessageSize
}

func (o Options) instruments() *instrument.Instruments {
	return instrument.New("kafka", scope, o.TracerProvider, o.MeterProvider)
}

// Topic returns the Kafka topic of a subject: the subject with every
// character that Kafka does not allow in a topic name (anything but ASCII
// letters, digits, '.', '_' and '-') replaced by '_'. Publishers and
// subscribers apply it, so a subject such as a default dead-letter subject
// made from a group name with a '/' maps to the same topic on both sides.
func Topic(subject string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, subject)
}

// record returns the record of m, which has been validated.
func record(m messaging.Message) *kgo.Record {
	r := &kgo.Record{
		Topic: Topic(m.Subject),
		// A non-nil key, even empty, is hashed by the partitioner, so
		// messages without a key share one partition and keep their order.
		Key:   []byte(m.Key),
		Value: m.Data,
	}
	keys := make([]string, 0, len(m.Header))
	for k := range m.Header {
		if k != HeaderMessageID {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	r.Headers = make([]kgo.RecordHeader, 0, len(keys)+1)
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderMessageID, Value: []byte(m.ID)})
	for _, k := range keys {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(m.Header[k])})
	}
	return r
}

// message returns the message of a consumed record.
func message(r *kgo.Record) messaging.Message {
	m := messaging.Message{Subject: r.Topic, Key: string(r.Key), Data: r.Value}
	if len(r.Headers) > 0 {
		m.Header = make(map[string]string, len(r.Headers))
	}
	for _, h := range r.Headers {
		if h.Key == HeaderMessageID {
			m.ID = string(h.Value)
			continue
		}
		m.Header[h.Key] = string(h.Value)
	}
	return m
}

// Publisher publishes messages with a [kgo.Client]. It is safe for
// concurrent use.
type Publisher struct {
	cl      *kgo.Client
	in      *instrument.Instruments
	maxSize int

	mu     sync.RWMutex
	closed bool
}

var _ messaging.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher that produces with client, which the
// caller builds and closes. The recommended client options are franz-go's
// defaults for production: an idempotent producer (the default; do not set
// DisableIdempotentWrite), RequiredAcks(AllISRAcks()) (the default), and
// the default partitioner (UniformBytesPartitioner), which hashes a
// record's key the way the Java client does, so that one key maps to one
// partition. Add AllowAutoTopicCreation only where topics are not made by
// hand.
func NewPublisher(client *kgo.Client, opts Options) *Publisher {
	return &Publisher{cl: client, in: opts.instruments(), maxSize: opts.maxSize()}
}

// Publish produces msgs and returns once the broker has acknowledged every
// one of them (with the client's RequiredAcks). Messages with the same key
// go to the same partition in the order given. It returns an error
// wrapping [messaging.ErrInvalidMessage] before producing anything if a
// message is invalid, and [messaging.ErrClosed] after Close.
func (p *Publisher) Publish(ctx context.Context, msgs ...messaging.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return fmt.Errorf("kafka: publish: %w", messaging.ErrClosed)
	}
	for _, m := range msgs {
		if err := messaging.Validate(m, p.maxSize); err != nil {
			return fmt.Errorf("kafka: publish: %w", err)
		}
	}
	return produce(ctx, p.cl, p.in, msgs)
}

// produce produces msgs with cl, each in its own producer span, and waits
// for every acknowledgement.
func produce(ctx context.Context, cl *kgo.Client, in *instrument.Instruments, msgs []messaging.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(msgs))
	ends := make([]func(error), len(msgs))
	for i := range msgs {
		m := msgs[i]
		_, ends[i] = in.StartPublish(ctx, &m)
		recs[i] = record(m)
	}
	res := cl.ProduceSync(ctx, recs...)
	var first error
	for i, r := range res {
		ends[i](r.Err)
		if r.Err != nil && first == nil {
			first = fmt.Errorf("kafka: publish message %q to topic %q: %w", msgs[i].ID, r.Record.Topic, r.Err)
		}
	}
	return first
}

// Close marks the publisher closed; it does not close the client passed
// to [NewPublisher]. Publish after Close returns [messaging.ErrClosed].
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}
