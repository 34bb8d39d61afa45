// Package shopbus connects the reference shop's services to their message
// bus, NATS JetStream: to an embedded server that `cairn demo` runs in its
// own process, or to a NATS server given by URL (`cairn serve`). It makes
// sure the streams exist: EVENTS for the services' events ("events.>"),
// and DLQ for dead letters ("dlq.>").
package shopbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

// EventsStream is the stream of the shop's events, and EventSubjects its
// subjects.
const (
	EventsStream  = "EVENTS"
	EventSubjects = "events.>"
)

// Options configures a Bus.
type Options struct {
	// Name names the NATS connection (the service).
	Name           string
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// Bus is a connection to the shop's bus.
type Bus struct {
	// Publisher and Subscriber use the connection.
	Publisher  messaging.Publisher
	Subscriber messaging.Subscriber

	conn *nats.Conn

	mu       sync.Mutex // guards embedded
	embedded *natsjs.Embedded
	embedCfg natsjs.EmbeddedConfig
}

// Embedded starts a NATS server with JetStream in this process, storing
// its streams under dir, and connects to it.
func Embedded(ctx context.Context, dir string, opts Options) (*Bus, error) {
	srv, err := natsjs.RunEmbedded(ctx, natsjs.EmbeddedConfig{StoreDir: dir, ServerName: "cairn-demo"})
	if err != nil {
		return nil, fmt.Errorf("shopbus: embedded NATS: %w", err)
	}
	b, err := Connect(ctx, srv.ClientURL(), opts)
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	b.embedded = srv
	b.embedCfg = natsjs.EmbeddedConfig{StoreDir: dir, ServerName: "cairn-demo", Port: srv.Port()}
	return b, nil
}

// SetEmbedded stops (up false) or starts again (up true) the embedded
// server, on the same port and store, to simulate a broker outage: while
// it is down, publishes fail and the outbox relay keeps the events, and
// once it is up the connection reconnects by itself. It returns an error
// for a bus without an embedded server, or when the server does not
// start.
func (b *Bus) SetEmbedded(ctx context.Context, up bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.embedCfg.StoreDir == "" {
		return errors.New("shopbus: no embedded server to stop or start")
	}
	switch {
	case !up && b.embedded != nil:
		b.embedded.Shutdown()
		b.embedded = nil
	case up && b.embedded == nil:
		srv, err := natsjs.RunEmbedded(ctx, b.embedCfg)
		if err != nil {
			return fmt.Errorf("shopbus: restart embedded NATS: %w", err)
		}
		b.embedded = srv
	}
	return nil
}

// Connect connects to the NATS server at url and makes sure the shop's
// streams exist. The connection reconnects forever; a publish or a
// delivery during an outage fails and is retried by the outbox relay and
// the broker.
func Connect(ctx context.Context, url string, opts Options) (*Bus, error) {
	nc, err := nats.Connect(url, nats.Name(opts.Name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("shopbus: connect to %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("shopbus: JetStream at %s: %w", url, err)
	}
	if _, err := natsjs.EnsureStream(ctx, js, jetstream.StreamConfig{
		Name: EventsStream, Subjects: []string{EventSubjects}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute, MaxAge: 7 * 24 * time.Hour,
	}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("shopbus: stream %s at %s: %w", EventsStream, url, err)
	}
	if _, err := natsjs.EnsureDeadLetterStream(ctx, js); err != nil {
		nc.Close()
		return nil, fmt.Errorf("shopbus: dead-letter stream at %s: %w", url, err)
	}
	o := natsjs.Options{TracerProvider: opts.TracerProvider, MeterProvider: opts.MeterProvider}
	return &Bus{Publisher: natsjs.NewPublisher(js, o), Subscriber: natsjs.NewSubscriber(js, o), conn: nc}, nil
}

// URL returns the URL of the server the bus is connected to.
func (b *Bus) URL() string { return b.conn.ConnectedUrl() }

// Close closes the subscriber, the publisher and the connection, and
// stops the embedded server if there is one. Close the services that use
// the bus first.
func (b *Bus) Close() error {
	err := errors.Join(b.Subscriber.Close(), b.Publisher.Close())
	b.conn.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.embedded != nil {
		b.embedded.Shutdown()
		b.embedded = nil
	}
	return err
}
