package outbox

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/natstest"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

// TestRelayThroughBrokerRestart runs the relay to a real NATS JetStream
// server (embedded, with its store on disk) while writers append, stops
// the server mid-stream, appends more while it is down, and starts it
// again: the consumer gets every event, each stream in version order, and
// nothing is lost.
func TestRelayThroughBrokerRestart(t *testing.T) {
	srv := natstest.Start(t)
	js := natstest.JetStream(t, srv.URL())
	ctx := t.Context()
	if _, err := natsjs.EnsureStream(ctx, js, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsjs.EnsureDeadLetterStream(ctx, js); err != nil {
		t.Fatal(err)
	}
	opts := natsjs.Options{PublishTimeout: time.Second, RetryWait: 50 * time.Millisecond, PollWait: 200 * time.Millisecond, AckWait: 2 * time.Second}
	pub := natsjs.NewPublisher(js, opts)
	defer pub.Close()
	sub := natsjs.NewSubscriber(js, opts)
	defer sub.Close()

	var (
		mu   sync.Mutex
		got  []messaging.Message
		seen = map[string]bool{}
	)
	s, err := sub.Subscribe(ctx, messaging.SubscribeConfig{Subject: "events.order.placed", Group: "check"}, func(_ context.Context, d messaging.Delivery) error {
		mu.Lock()
		defer mu.Unlock()
		if !seen[d.ID] { // an inbox would drop the duplicates
			seen[d.ID] = true
			got = append(got, d.Message)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}

	store := openStore(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	_, stop := startRelay(t, Config{Name: "orders", Store: store, Publisher: pub, BatchSize: 16, PollInterval: 5 * time.Millisecond,
		Backoff: func(int) time.Duration { return 20 * time.Millisecond }, MeterProvider: mp, Logger: discard})
	defer stop()

	streams := []string{"order-a", "order-b", "order-c", "order-d"}
	appendSome := func(from, to int) {
		for i := from; i < to; i++ {
			st := streams[i%len(streams)]
			e := eventstore.Event{ID: fmt.Sprintf("e-%03d", i), Type: "order.placed", Data: []byte(`{}`)}
			if _, err := store.Append(ctx, st, eventstore.Any, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendSome(0, 100)
	waitFor(t, "some events through the bus", func() bool { return count() >= 20 })
	srv.Shutdown()
	appendSome(100, 200) // while the broker is down
	waitFor(t, "the relay to fail", func() bool { return sumInt(collect(t, reader), ErrorsMetric) >= 2 })
	srv.Start()
	appendSome(200, 240)
	waitFor(t, "all 240 events through the bus", func() bool { return count() >= 240 })

	mu.Lock()
	defer mu.Unlock()
	want := map[string][]string{}
	for i := range 240 {
		st := streams[i%len(streams)]
		want[st] = append(want[st], fmt.Sprintf("e-%03d", i))
	}
	if by := byStream(t, got); !equal(by, want) {
		t.Errorf("through the restart, the bus delivered (first copies) %v, want %v", by, want)
	}
}
