package natsjs_test

import (
	"context"
	"slices"
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

// TestConsumerLagGaugeDuringOutage: while the broker is unreachable the
// lag gauge is skipped at once, so the collection of every other metric
// of the MeterProvider goes on; before the fix, the gauge's request to
// the broker held the collection until it timed out, and a collection
// with a shorter deadline failed.
func TestConsumerLagGaugeDuringOutage(t *testing.T) {
	srv, js := embedded(t)
	subj := subject(t, js)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	other, _ := mp.Meter("other").Int64Counter("other.counter")
	other.Add(t.Context(), 1)
	sub := natsjs.NewSubscriber(js, natsjs.Options{MeterProvider: mp})
	defer sub.Close()
	mustSubscribe(t, sub, messaging.SubscribeConfig{Subject: subj, Group: "outage"}, func(context.Context, messaging.Delivery) error { return nil })

	srv.Shutdown()
	waitFor(t, 10*time.Second, "the connection to notice the outage", func() bool { return !js.Conn().IsConnected() })
	// A deadline far below the gauge's own request timeout.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatalf("Collect during the outage = %v, want the lag skipped and the rest collected", err)
	}
	var names []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
		}
	}
	if !slices.Contains(names, "other.counter") || slices.Contains(names, instrument.LagMetric) {
		t.Errorf("collected %v during the outage; want other.counter and no %s", names, instrument.LagMetric)
	}
	srv.Start()
}
