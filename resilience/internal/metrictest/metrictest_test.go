package metrictest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

const key = attribute.Key("resilience.policy.name")

// policy is a stand-in for a resilience policy: an int64 and a float64
// gauge, both unregistered by Close, and a counter, which is not a gauge.
type policy struct {
	reg metric.Registration
}

func newPolicy(t *testing.T, name string, mp metric.MeterProvider) *policy {
	t.Helper()
	m := mp.Meter("metrictest")
	ints, err := m.Int64ObservableGauge("test.int")
	if err != nil {
		t.Fatal(err)
	}
	floats, err := m.Float64ObservableGauge("test.float")
	if err != nil {
		t.Fatal(err)
	}
	counter, err := m.Int64ObservableCounter("test.counter")
	if err != nil {
		t.Fatal(err)
	}
	attrs := metric.WithAttributes(key.String(name))
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(ints, 1, attrs)
		o.ObserveFloat64(floats, 0.5, attrs)
		o.ObserveInt64(counter, 1, attrs)
		return nil
	}, ints, floats, counter)
	if err != nil {
		t.Fatal(err)
	}
	return &policy{reg: reg}
}

func (p *policy) Close() error {
	if p.reg == nil {
		return nil
	}
	err := p.reg.Unregister()
	p.reg = nil
	return err
}

func TestGaugePolicies(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	if got := GaugePolicies(t, r, key); len(got) != 0 {
		t.Fatalf("GaugePolicies with no policies = %v, want none", got)
	}
	b := newPolicy(t, "b", mp)
	a := newPolicy(t, "a", mp)
	gauges := []string{"test.int", "test.float"}
	want := map[string][]string{"test.int": {"a", "b"}, "test.float": {"a", "b"}}
	if diff := cmp.Diff(want, GaugePolicies(t, r, key)); diff != "" {
		t.Fatalf("GaugePolicies mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, WantGauges(gauges, "a", "b")); diff != "" {
		t.Fatalf("WantGauges mismatch (-want +got):\n%s", diff)
	}
	for _, p := range []*policy{a, b} {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := GaugePolicies(t, r, key); len(got) != 0 {
		t.Fatalf("GaugePolicies after Close = %v, want none", got)
	}
	if got := WantGauges(gauges); len(got) != 0 {
		t.Fatalf("WantGauges with no names = %v, want none", got)
	}
}

func TestCloseTestRun(t *testing.T) {
	var used *policy
	CloseTest[*policy]{
		Key:    key,
		Gauges: []string{"test.int", "test.float"},
		New:    newPolicy,
		Use:    func(_ *testing.T, p *policy) { used = p },
	}.Run(t)
	if used == nil {
		t.Fatal("Run did not call Use")
	}
}
