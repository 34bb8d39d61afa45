// Package metrictest helps the tests of the resilience policies check their
// OpenTelemetry gauges: it collects a [sdkmetric.ManualReader] and reports
// which policies each gauge has data points for, and [CloseTest] runs the
// check, shared by every policy with gauges, that Close unregisters a
// policy's gauge callbacks. It is for tests only.
package metrictest

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// GaugePolicies collects r and returns, by metric name, the values of key
// (the attribute naming the policy) on the data points of each int64 or
// float64 gauge, sorted. A gauge with no data points is left out, so the
// result is empty when no gauge callback is registered.
func GaugePolicies(t testing.TB, r *sdkmetric.ManualReader, key attribute.Key) map[string][]string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	add := func(metric string, attrs attribute.Set) {
		v, _ := attrs.Value(key)
		got[metric] = append(got[metric], v.AsString())
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					add(m.Name, dp.Attributes)
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					add(m.Name, dp.Attributes)
				}
			}
		}
	}
	for _, names := range got {
		slices.Sort(names)
	}
	return got
}

// WantGauges returns what [GaugePolicies] returns when each of metrics has
// one data point for each of names, which must be sorted. With no names it
// returns an empty map: no gauge has data points.
func WantGauges(metrics []string, names ...string) map[string][]string {
	want := map[string][]string{}
	if len(names) == 0 {
		return want
	}
	for _, m := range metrics {
		want[m] = names
	}
	return want
}

// CloseTest describes the check that a policy's Close unregisters its gauge
// callbacks; [CloseTest.Run] runs it.
type CloseTest[P io.Closer] struct {
	// Key is the attribute naming the policy on its gauges' data points.
	Key attribute.Key
	// Gauges are the names of the policy's gauges.
	Gauges []string
	// New returns a policy of the given name reporting to mp.
	New func(t *testing.T, name string, mp metric.MeterProvider) P
	// Use checks that a closed policy still works without its gauges.
	Use func(t *testing.T, p P)
}

// Run makes policies "a" and "b" reporting to one meter provider and checks
// that every gauge has a data point for each; that closing a twice returns
// nil both times and leaves only b's data points; that a still works, by
// c.Use; and that closing b leaves no gauge with data points.
func (c CloseTest[P]) Run(t *testing.T) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	a := c.New(t, "a", mp)
	b := c.New(t, "b", mp)
	if diff := cmp.Diff(WantGauges(c.Gauges, "a", "b"), GaugePolicies(t, r, c.Key)); diff != "" {
		t.Fatalf("gauges before Close mismatch (-want +got):\n%s", diff)
	}
	for i := range 2 {
		if err := a.Close(); err != nil {
			t.Fatalf("Close #%d = %v, want nil", i+1, err)
		}
	}
	if diff := cmp.Diff(WantGauges(c.Gauges, "b"), GaugePolicies(t, r, c.Key)); diff != "" {
		t.Fatalf("gauges after Close mismatch (-want +got):\n%s", diff)
	}
	c.Use(t, a)
	if err := b.Close(); err != nil {
		t.Fatalf("b.Close() = %v, want nil", err)
	}
	if got := GaugePolicies(t, r, c.Key); len(got) != 0 {
		t.Fatalf("gauges after closing both = %v, want none", got)
	}
}
