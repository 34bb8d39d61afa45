package outboxbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnhq/cairn/eventstore"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/natsjs"
	"github.com/cairnhq/cairn/messaging/outbox"
)

const (
	// numEvents events of eventType over numStreams streams are what every
	// variant moves to JetStream.
	numEvents  = 10000
	numStreams = 100
	eventType  = "order.placed"
	// batchSize is the relay's BatchSize and the natsjs variant's batch;
	// asyncWindow the publish-async variant's window.
	batchSize   = 256
	asyncWindow = 256
)

// payload is the data of every event: about 200 bytes of JSON.
var payload = []byte(`{"order":"order-000001","customer":"customer-4711","lines":[{"sku":"SKU-12345","quantity":2,"price_cents":1999},{"sku":"SKU-67890","quantity":1,"price_cents":4550}],"currency":"EUR","total_cents":8548,"channel":"web"}`)

// env is one benchmark's broker, stream and event store.
type env struct {
	js jetstream.JetStream
	nc *nats.Conn
	// stream is the stream's configuration, created afresh by reset.
	stream jetstream.StreamConfig
	// prefix is prepended to the events' default subjects: empty on the
	// embedded server, "outboxbench.<random>." on another.
	prefix string
	store  *sqlitestore.Store
	// last is the position of the last event; msgs are the messages the
	// relay makes of the events, and natsMsgs the NATS messages natsjs
	// makes of those.
	last     eventstore.Position
	msgs     []messaging.Message
	natsMsgs []*nats.Msg
	// relays numbers the relays, whose checkpoints must start at 0,
	// across the calls of a sub-benchmark's function on one env.
	relays int
}

func randHex(b *testing.B) string {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(r[:])
}

// newEnv starts the broker (or connects to CAIRN_BENCH_NATS), and fills a
// SQLite event store with the events. Everything is closed when b ends.
func newEnv(b *testing.B) *env {
	b.Helper()
	ctx := b.Context()
	e := &env{stream: jetstream.StreamConfig{Name: "OUTBOXBENCH", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage}}
	url := os.Getenv("CAIRN_BENCH_NATS")
	if url == "" {
		srv, err := natsjs.RunEmbedded(ctx, natsjs.EmbeddedConfig{StoreDir: filepath.Join(b.TempDir(), "jetstream")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(srv.Shutdown)
		url = srv.ClientURL()
	} else {
		r := randHex(b)
		e.prefix = "outboxbench." + r + "."
		e.stream.Name = "OUTBOXBENCH_" + r
		e.stream.Subjects = []string{e.prefix + "events.>"}
	}
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatalf("connect to NATS at %s: %v", url, err)
	}
	e.nc = nc
	b.Cleanup(nc.Close)
	if e.js, err = jetstream.New(nc); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.js.DeleteStream(ctx, e.stream.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			b.Errorf("delete stream %s: %v", e.stream.Name, err)
		}
	})

	e.store, err = sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "store.db"),
		sqlitestore.WithMeterProvider(metricnoop.NewMeterProvider()), sqlitestore.WithTracerProvider(tracenoop.NewTracerProvider()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := e.store.Close(); err != nil {
			b.Error(err)
		}
	})
	// One event per append, round-robin over the streams, as commands on
	// many aggregates would append them: a batch of the log holds about
	// numStreams keys, which natsjs publishes concurrently.
	for i := range numEvents {
		stream := "order-" + strconv.Itoa(i%numStreams)
		ev := eventstore.Event{ID: fmt.Sprintf("evt-%06d", i), Type: eventType, Data: payload,
			Metadata: eventstore.Metadata{CorrelationID: "corr-" + strconv.Itoa(i)}}
		if _, err := e.store.Append(ctx, stream, eventstore.Exact(int64(i/numStreams)), ev); err != nil {
			b.Fatal(err)
		}
	}
	for after := eventstore.Position(0); ; {
		page, err := e.store.ReadAll(ctx, after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, ev := range page {
			m := outbox.Message(ev, e.subject(ev))
			e.msgs = append(e.msgs, m)
			e.natsMsgs = append(e.natsMsgs, toNATS(m))
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Position
	}
	if len(e.msgs) != numEvents {
		b.Fatalf("read %d events back, want %d", len(e.msgs), numEvents)
	}
	e.last = eventstore.Position(len(e.msgs)) // positions start at 1 in a fresh store
	return e
}

// subject is the relay's subject of an event.
func (e *env) subject(ev eventstore.RecordedEvent) string {
	return e.prefix + outbox.DefaultSubject(ev)
}

// toNATS is the message natsjs publishes for m: its headers, plus
// Nats-Msg-Id and Cairn-Key.
func toNATS(m messaging.Message) *nats.Msg {
	h := make(nats.Header, len(m.Header)+2)
	for k, v := range m.Header {
		h[k] = []string{v}
	}
	h[jetstream.MsgIDHeader] = []string{m.ID}
	h[natsjs.HeaderKey] = []string{m.Key}
	return &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data}
}

// reset stops b's timer, deletes the stream (and with it the duplicate
// window's IDs) and creates it again, and restarts the timer.
func (e *env) reset(b *testing.B) {
	b.StopTimer()
	defer b.StartTimer()
	ctx := b.Context()
	if err := e.js.DeleteStream(ctx, e.stream.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		b.Fatal(err)
	}
	if _, err := natsjs.EnsureStream(ctx, e.js, e.stream); err != nil {
		b.Fatal(err)
	}
}

// check fails b unless the stream holds every message once.
func (e *env) check(b *testing.B) {
	b.StopTimer()
	defer b.StartTimer()
	s, err := e.js.Stream(b.Context(), e.stream.Name)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if info.State.Msgs != numEvents {
		b.Fatalf("stream %s holds %d messages, want %d", e.stream.Name, info.State.Msgs, numEvents)
	}
}

// reportMsgs reports msgs/s over the benchmark's measured time.
func reportMsgs(b *testing.B, msgs int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(msgs)/s, "msgs/s")
	}
}

func (e *env) publisher() *natsjs.Publisher {
	return natsjs.NewPublisher(e.js, natsjs.Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()})
}

// BenchmarkOutboxRelayJetStream moves 10,000 events to JetStream; see the
// package documentation for the variants.
func BenchmarkOutboxRelayJetStream(b *testing.B) {
	e := newEnv(b)
	b.Run("variant=relay", func(b *testing.B) {
		pub := e.publisher()
		defer pub.Close()
		msgs := int64(0)
		for b.Loop() {
			e.reset(b)
			e.relays++
			relay, err := outbox.NewRelay(outbox.Config{
				Name: "bench-" + strconv.Itoa(e.relays), Store: e.store, Publisher: pub, Subject: e.subject, BatchSize: batchSize,
				TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider(),
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			done := make(chan error, 1)
			go func() { done <- relay.Run(ctx) }()
			tick := time.NewTicker(time.Millisecond)
			for relay.Position() < e.last {
				select {
				case <-tick.C:
				case err := <-done:
					tick.Stop()
					cancel()
					b.Fatalf("relay stopped at position %d: %v", relay.Position(), err)
				}
			}
			tick.Stop()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				b.Fatal(err)
			}
			if err := relay.Close(); err != nil {
				b.Fatal(err)
			}
			msgs += numEvents
			e.check(b)
		}
		reportMsgs(b, msgs)
	})
	b.Run("variant=natsjs", func(b *testing.B) {
		ctx, pub := b.Context(), e.publisher()
		defer pub.Close()
		msgs := int64(0)
		for b.Loop() {
			e.reset(b)
			for i := 0; i < len(e.msgs); i += batchSize {
				if err := pub.Publish(ctx, e.msgs[i:min(i+batchSize, len(e.msgs))]...); err != nil {
					b.Fatal(err)
				}
			}
			msgs += numEvents
			e.check(b)
		}
		reportMsgs(b, msgs)
	})
	b.Run("variant=publish-loop", func(b *testing.B) {
		ctx, msgs := b.Context(), int64(0)
		for b.Loop() {
			e.reset(b)
			for _, m := range e.natsMsgs {
				if _, err := e.js.PublishMsg(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			msgs += numEvents
			e.check(b)
		}
		reportMsgs(b, msgs)
	})
	b.Run("variant=publish-async", func(b *testing.B) {
		js, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(asyncWindow))
		if err != nil {
			b.Fatal(err)
		}
		futures := make([]jetstream.PubAckFuture, len(e.natsMsgs))
		msgs := int64(0)
		for b.Loop() {
			e.reset(b)
			for i, m := range e.natsMsgs {
				if futures[i], err = js.PublishMsgAsync(m, jetstream.WithStallWait(10*time.Second)); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatalf("%d acknowledgements still pending after a minute", js.PublishAsyncPending())
			}
			for _, f := range futures {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				}
			}
			msgs += numEvents
			e.check(b)
		}
		reportMsgs(b, msgs)
	})
}
