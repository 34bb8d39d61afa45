package shopbus

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cairnhq/cairn/internal/testenv"
	"github.com/cairnhq/cairn/messaging"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// roundTrip publishes an event and receives it as a new group.
func roundTrip(t *testing.T, b *Bus) {
	t.Helper()
	ctx := t.Context()
	id := "shopbus-" + time.Now().Format("150405.000000000")
	got := make(chan messaging.Delivery, 1)
	// One group for every run, so that runs on the machine's NATS leave
	// one durable consumer behind, not one each.
	sub, err := b.Subscriber.Subscribe(ctx, messaging.SubscribeConfig{Subject: "events.shopbus.test", Group: "shopbus-test"}, func(_ context.Context, d messaging.Delivery) error {
		if d.ID == id {
			select {
			case got <- d:
			default:
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := b.Publisher.Publish(ctx, messaging.Message{ID: id, Subject: "events.shopbus.test", Key: "k", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if string(d.Data) != "x" || d.Key != "k" {
			t.Errorf("delivered %+v", d.Message)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the message did not arrive")
	}
}

func TestEmbedded(t *testing.T) {
	b, err := Embedded(t.Context(), t.TempDir(), Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConnect(t *testing.T) {
	url := testenv.Require(t, testenv.NATS)
	b, err := Connect(t.Context(), url, Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Connect(t.Context(), "nats://127.0.0.1:1", Options{}); err == nil {
		t.Error("Connect to a closed port succeeded")
	}
}
