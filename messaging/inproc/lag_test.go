package inproc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairnhq/cairn/messaging"
	"github.com/cairnhq/cairn/messaging/inproc"
	"github.com/cairnhq/cairn/messaging/internal/instrument"
)

// TestConsumerLagGauge: with the handler stuck on the first of 5
// messages of one key, the group's lag is 5 (4 not yet delivered, 1 in
// progress); once it is let go, 0; after Close, the gauge is gone.
func TestConsumerLagGauge(t *testing.T) {
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
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, ok := lag()
			if ok && n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("lag = %d (reported %v), want %d", n, ok, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	b := inproc.NewBroker()
	pub := inproc.NewPublisher(b, inproc.Options{})
	defer pub.Close()
	const subj = "lag.test"
	for i := range 5 {
		m := messaging.Message{ID: fmt.Sprint("m", i), Subject: subj, Key: "k", Data: []byte("x")}
		if err := pub.Publish(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	sub := inproc.NewSubscriber(b, inproc.Options{MeterProvider: mp})
	defer sub.Close()
	gate := make(chan struct{})
	started := make(chan struct{}, 5)
	s, err := sub.Subscribe(t.Context(), messaging.SubscribeConfig{Subject: subj, Group: "lag"}, func(ctx context.Context, _ messaging.Delivery) error {
		started <- struct{}{}
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started // the first message is in progress
	waitLag(5)
	close(gate)
	waitLag(0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := lag(); ok {
		t.Error("the lag gauge is still reported after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConsumerLagGaugeEndsWithContext: a subscription whose context ends
// stops reporting the gauge, without Close.
func TestConsumerLagGaugeEndsWithContext(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	points := func() int {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(t.Context(), &rm); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == instrument.LagMetric {
					n += len(g.DataPoints)
				}
			}
		}
		return n
	}
	b := inproc.NewBroker()
	sub := inproc.NewSubscriber(b, inproc.Options{MeterProvider: mp})
	defer sub.Close()
	ctx, cancel := context.WithCancel(t.Context())
	s, err := sub.Subscribe(ctx, messaging.SubscribeConfig{Subject: "lag.ctx", Group: "g"}, func(context.Context, messaging.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := points(); n != 1 {
		t.Fatalf("%d lag points while subscribed, want 1", n)
	}
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for points() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the lag gauge is still reported after the context ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
