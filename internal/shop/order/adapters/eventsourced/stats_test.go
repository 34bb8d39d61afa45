package eventsourced

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/shop/order/domain"
	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/inproc"
	"github.com/cairnhq/cairn/messaging/outbox"
)

// TestCustomerStatsFromTheBus runs the relay and the statistics consumer
// over an in-process broker: each order counts once though the relay
// publishes everything twice, and a malformed message goes to the dead-
// letter subject instead of stopping the consumer.
func TestCustomerStatsFromTheBus(t *testing.T) {
	for name, b := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			broker := inproc.NewBroker(inproc.WithDuplicateWindow(0)) // let duplicates through, as after a long outage
			pub, sub := inproc.NewPublisher(broker, inproc.Options{}), inproc.NewSubscriber(broker, inproc.Options{})
			defer pub.Close()
			defer sub.Close()
			stats, err := NewCustomerStats(ctx, b.write, b.read, b.dialect, noop.NewTracerProvider())
			if err != nil {
				t.Fatal(err)
			}
			subject := SubjectPlaced
			if got := outbox.DefaultSubject(eventstore.RecordedEvent{Event: eventstore.Event{Type: EventPlaced}}); got != subject {
				t.Fatalf("the relay publishes order.placed to %q, not to SubjectPlaced %q", got, subject)
			}
			s, err := sub.Subscribe(ctx, messaging.SubscribeConfig{Subject: subject, Group: StatsConsumer,
				Backoff: func(int) time.Duration { return time.Millisecond }}, stats.Handler())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			dead := make(chan messaging.Delivery, 3)
			ds, err := sub.Subscribe(ctx, messaging.SubscribeConfig{Subject: messaging.DeadLetterSubject(subject, StatsConsumer), Group: "test"},
				func(_ context.Context, d messaging.Delivery) error { dead <- d; return nil })
			if err != nil {
				t.Fatal(err)
			}
			defer ds.Close()

			repo := NewRepository(b.events, NewReadModel(b.read, b.dialect, noop.NewTracerProvider()))
			base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
			for i, id := range []string{"s1", "s2", "s3"} {
				o := order(id, base.Add(time.Duration(i)*time.Minute))
				o.CustomerID = "alice"
				if err := repo.Save(ctx, o); err != nil {
					t.Fatal(err)
				}
			}
			// Two relays of different names publish every event twice.
			for _, relay := range []string{"a", "b"} {
				r, err := outbox.NewRelay(outbox.Config{Name: name + relay, Store: b.events, Publisher: pub, PollInterval: time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- r.Run(rctx) }()
				eventually(t, "relay "+relay+" to catch up", func() bool {
					all, _ := b.events.ReadAll(ctx, r.Position(), 1)
					return r.Position() > 0 && len(all) == 0
				})
				cancel()
				<-done
				_ = r.Close()
			}
			// A malformed message on each order's key: it is dead-lettered,
			// and once it is, every message of that key before it (the
			// duplicates included) has been handled.
			for _, id := range []string{"s1", "s2", "s3"} {
				if err := pub.Publish(ctx, messaging.Message{ID: "garbage-" + id, Subject: subject, Key: Stream(id), Data: []byte("{")}); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				select {
				case d := <-dead:
					if d.Header[messaging.HeaderDeadLetterReason] == "" {
						t.Errorf("dead letter %+v has no reason", d.Message)
					}
				case <-time.After(15 * time.Second):
					t.Fatal("a malformed message was not dead-lettered")
				}
			}
			var st domain.CustomerStats
			if st, err = stats.CustomerStats(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			if st.Orders != 3 || st.Total != 3*399 || !st.LastOrderAt.Equal(base.Add(2*time.Minute)) {
				t.Errorf("stats = %+v, want 3 orders, total %d, last at %v (each order once)", st, 3*399, base.Add(2*time.Minute))
			}
			if _, err := stats.CustomerStats(ctx, "bob"); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("stats of bob = %v, want ErrNotFound", err)
			}
		})
	}
}
