package bulkhead

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// gaugePolicies returns the policy names of the data points of each gauge
// the reader collects, by metric name.
func gaugePolicies(t *testing.T, r *sdkmetric.ManualReader) map[string][]string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	add := func(metric string, attrs attribute.Set) {
		v, _ := attrs.Value(PolicyNameKey)
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

// wantGauges returns what gaugePolicies returns when each of metrics has
// one data point for each of names, sorted.
func wantGauges(metrics []string, names ...string) map[string][]string {
	want := map[string][]string{}
	for _, m := range metrics {
		want[m] = names
	}
	return want
}

func TestCloseUnregistersGauges(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	gauges := []string{InFlightMetricName, QueueMetricName}

	a := newBulkhead(t, Config{Name: "a", MaxConcurrent: 1, MeterProvider: mp})
	b := newBulkhead(t, Config{Name: "b", MaxConcurrent: 1, MeterProvider: mp})
	if diff := cmp.Diff(wantGauges(gauges, "a", "b"), gaugePolicies(t, r)); diff != "" {
		t.Fatalf("gauges before Close mismatch (-want +got):\n%s", diff)
	}
	for i := range 2 {
		if err := a.Close(); err != nil {
			t.Fatalf("Close #%d = %v, want nil", i+1, err)
		}
	}
	if diff := cmp.Diff(wantGauges(gauges, "b"), gaugePolicies(t, r)); diff != "" {
		t.Fatalf("gauges after Close mismatch (-want +got):\n%s", diff)
	}
	// The bulkhead keeps working without its gauges.
	p, ok := a.TryAcquire()
	if !ok {
		t.Fatal("TryAcquire() = false, want true")
	}
	if _, ok := a.TryAcquire(); ok {
		t.Fatal("second TryAcquire() = true, want false")
	}
	p.Release()
	if got := a.InFlight(); got != 0 {
		t.Fatalf("InFlight() = %d, want 0", got)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("b.Close() = %v, want nil", err)
	}
	if got := gaugePolicies(t, r); len(got) != 0 {
		t.Fatalf("gauges after closing both = %v, want none", got)
	}
}
