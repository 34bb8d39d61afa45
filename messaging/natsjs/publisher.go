package natsjs

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
)

// maxIDAndKey bounds the bytes of ID plus key, which travel in headers
// outside the limit [messaging.Validate] checks.
const maxIDAndKey = 512

// headroom is what the default MaxMessageSize leaves of the server's max
// payload for the headers this transport adds.
const headroom = 1024

// Publisher publishes messages to JetStream and waits for the broker's
// acknowledgement of each. It is safe for concurrent use. Close it when
// done; it does not close the connection.
type Publisher struct {
	js   jetstream.JetStream
	opts Options
	in   *instrument.Instruments

	mu     sync.RWMutex
	closed bool
}

var _ messaging.Publisher = (*Publisher)(nil)

// NewPublisher returns a publisher on js, whose connection the caller
// owns.
func NewPublisher(js jetstream.JetStream, opts Options) *Publisher {
	return &Publisher{
		js:   js,
		opts: opts.withDefaults(),
		in:   instrument.New("nats", scope, opts.TracerProvider, opts.MeterProvider),
	}
}

// MaxMessageSize returns the limit on a message's Data plus headers that
// Publish enforces: [Options.MaxMessageSize], else the server's max payload
// less 1 KiB, or 0 when neither is known.
func (p *Publisher) MaxMessageSize() int {
	return maxMessageSize(p.js, p.opts)
}

func maxMessageSize(js jetstream.JetStream, o Options) int {
	if o.MaxMessageSize > 0 {
		return o.MaxMessageSize
	}
	if mp := int(js.Conn().MaxPayload()); mp > headroom {
		return mp - headroom
	}
	return 0
}

// Publish publishes msgs and returns once JetStream has stored every one
// of them. Messages with the same key are sent one after the other, each
// once the previous one is acknowledged, so that a failure cannot reorder
// them; messages with different keys are in flight together, up to
// [Options.MaxInFlight]. On error, some messages may have been stored (for
// each key, a prefix of its messages); publishing all again is safe within
// the stream's duplicate window. A message without ID or subject, with a
// subject containing wildcards or white space, or larger than
// [Publisher.MaxMessageSize] is refused with an error wrapping
// [messaging.ErrInvalidMessage] before anything is sent. After Close it
// returns [messaging.ErrClosed].
func (p *Publisher) Publish(ctx context.Context, msgs ...messaging.Message) error {
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return fmt.Errorf("natsjs: publish: %w", messaging.ErrClosed)
	}
	limit := p.MaxMessageSize()
	for _, m := range msgs {
		if err := validate(m, limit); err != nil {
			return err
		}
	}
	// Queues of message indexes by key, in first-seen key order.
	var keys []string
	queues := make(map[string][]int)
	for i, m := range msgs {
		if _, ok := queues[m.Key]; !ok {
			keys = append(keys, m.Key)
		}
		queues[m.Key] = append(queues[m.Key], i)
	}
	for {
		// A wave: the first unsent message of each key.
		var wave []int
		for _, k := range keys {
			if q := queues[k]; len(q) > 0 {
				wave = append(wave, q[0])
				queues[k] = q[1:]
			}
		}
		if len(wave) == 0 {
			return nil
		}
		if err := p.publishWave(ctx, msgs, wave); err != nil {
			return err
		}
	}
}

func (p *Publisher) publishWave(ctx context.Context, msgs []messaging.Message, wave []int) error {
	if len(wave) == 1 {
		return p.publishOne(ctx, msgs[wave[0]])
	}
	errs := make([]error, len(wave))
	sem := make(chan struct{}, p.opts.MaxInFlight)
	var wg sync.WaitGroup
	for j, i := range wave {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[j] = p.publishOne(ctx, msgs[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publishOne(ctx context.Context, m messaging.Message) error {
	return publish(ctx, p.js, p.in, p.opts, m, m.ID, false)
}

// publish sends m with the given deduplication ID, within its own span.
// withID adds the Cairn-Id header, for dead letters.
func publish(ctx context.Context, js jetstream.JetStream, in *instrument.Instruments, o Options, m messaging.Message, dedupID string, withID bool) (err error) {
	ctx, end := in.StartPublish(ctx, &m)
	defer func() { end(err) }()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.PublishTimeout)
		defer cancel()
	}
	nm := toNATS(m, dedupID, withID)
	if _, err := js.PublishMsg(ctx, nm); err != nil {
		return fmt.Errorf("natsjs: publish %q to %q: %w", m.ID, m.Subject, err)
	}
	return nil
}

func validate(m messaging.Message, limit int) error {
	if err := messaging.Validate(m, limit); err != nil {
		return fmt.Errorf("natsjs: %w", err)
	}
	if !validSubject(m.Subject) {
		return fmt.Errorf("natsjs: %w: message %q: subject %q is not one NATS can publish to (wildcard, white space or empty token)", messaging.ErrInvalidMessage, m.ID, m.Subject)
	}
	if len(m.ID)+len(m.Key) > maxIDAndKey {
		return fmt.Errorf("natsjs: %w: message %q to %q: ID and key are %d bytes together, more than %d", messaging.ErrInvalidMessage, m.ID, m.Subject, len(m.ID)+len(m.Key), maxIDAndKey)
	}
	return nil
}

func toNATS(m messaging.Message, dedupID string, withID bool) *nats.Msg {
	h := make(nats.Header, len(m.Header)+3)
	for k, v := range m.Header {
		h[k] = []string{v}
	}
	h[headerMsgID] = []string{dedupID}
	if withID {
		h[HeaderID] = []string{m.ID}
	} else {
		delete(h, HeaderID)
	}
	if m.Key != "" {
		h[HeaderKey] = []string{m.Key}
	} else {
		delete(h, HeaderKey)
	}
	return &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data}
}

// fromNATS returns the message in a delivered NATS message; stream and
// seq name it when it has no ID header.
func fromNATS(subject string, h nats.Header, data []byte, stream string, seq uint64) messaging.Message {
	m := messaging.Message{Subject: subject, Data: data}
	if len(h) > 0 {
		m.Header = make(map[string]string, len(h))
	}
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case headerMsgID:
			if m.ID == "" {
				m.ID = vs[0]
			}
		case HeaderID:
			m.ID = vs[0]
		case HeaderKey:
			m.Key = vs[0]
		default:
			m.Header[k] = vs[0]
		}
	}
	if m.ID == "" {
		m.ID = fmt.Sprintf("%s:%d", stream, seq)
	}
	return m
}

// Close makes later calls to Publish return [messaging.ErrClosed]. Calls
// under way finish. It does not close the connection and always returns
// nil.
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}
