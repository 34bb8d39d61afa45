package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
	"github.com/cairnhq/cairn/messaging/kafka"
)

// TestConsumerLagGauge: with the handler stuck on the first of 5 records
// of one key, the subscription's lag is 5 (the record being handled is not
// handled yet); once it is let go, 0; after Close, the gauge is gone.
func TestConsumerLagGauge(t *testing.T) {
	seeds := cluster(t, 2)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	lag := func() (int64, bool) {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == instrument.LagMetric && len(g.DataPoints) == 1 {
					return g.DataPoints[0].Value, true
				}
			}
		}
		return 0, false
	}
	waitLag := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			n, ok := lag()
			if ok && n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lag = %d (reported %v), want %d", n, ok, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	p := newPublisher(t, seeds, kafka.Options{})
	s := newSubscriber(t, seeds, kafka.Options{MeterProvider: mp})
	subj := subject(t)
	var msgs []messaging.Message
	for i := range 5 {
		msgs = append(msgs, messaging.Message{ID: fmt.Sprint("m", i), Subject: subj, Key: "k", Data: []byte("x")})
	}
	publish(t, p, msgs...)
	gate := make(chan struct{})
	sub := subscribe(t, s, messaging.SubscribeConfig{Subject: subj, Group: "lag"}, func(ctx context.Context, _ messaging.Delivery) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	waitLag(5)
	close(gate)
	waitLag(0)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := lag(); ok {
		t.Error("the lag gauge is still reported after Close")
	}
}
