package natsjs_test

import (
	"context"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
	"github.com/cairnhq/cairn/messaging/natsjs"
)

// TestConsumerLagGauge: with the handler stuck on the first of 5
// messages, the group's lag is 5 (4 undelivered, 1 in progress); once it
// is let go, 0; after Close, the gauge is gone.
func TestConsumerLagGauge(t *testing.T) {
	_, js := embedded(t)
	subj := subject(t, js)
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
	pub := natsjs.NewPublisher(js, natsjs.Options{})
	defer pub.Close()
	for i := range 5 {
		if err := pub.Publish(t.Context(), msg(subj, "k", i)); err != nil {
			t.Fatal(err)
		}
	}
	sub := natsjs.NewSubscriber(js, natsjs.Options{MeterProvider: mp})
	defer sub.Close()
	gate := make(chan struct{})
	s := mustSubscribe(t, sub, messaging.SubscribeConfig{Subject: subj, Group: "lag"}, func(ctx context.Context, _ messaging.Delivery) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	waitFor(t, 10*time.Second, "a lag of 5", func() bool { n, ok := lag(); return ok && n == 5 })
	close(gate)
	waitFor(t, 10*time.Second, "a lag of 0", func() bool { n, ok := lag(); return ok && n == 0 })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := lag(); ok {
		t.Error("the lag gauge is still reported after Close")
	}
}
