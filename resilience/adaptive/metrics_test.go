package adaptive

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != scopeName {
			t.Errorf("scope = %q, want %q", sm.Scope.Name, scopeName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					if v, _ := dp.Attributes.Value(PolicyNameKey); v.AsString() != "db" {
						t.Errorf("%s point without %s=db", m.Name, PolicyNameKey)
					}
					o, _ := dp.Attributes.Value(OutcomeKey)
					got[m.Name+" "+o.AsString()] = dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					if v, _ := dp.Attributes.Value(PolicyNameKey); v.AsString() != "db" || dp.Attributes.Len() != 1 {
						t.Errorf("%s point attributes = %v", m.Name, dp.Attributes)
					}
					got[m.Name] = dp.Value
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return got
}

func TestMetrics(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	l := newLimiter(t, Config{Name: "db", InitialLimit: 2, MeterProvider: mp})
	p1, _ := l.Acquire()
	p2, _ := l.Acquire()
	_, _ = l.Acquire() // rejected
	got := collect(t, r)
	want := map[string]int64{
		CallsMetricName + " admitted": 2,
		CallsMetricName + " rejected": 1,
		LimitMetricName:               2,
		InFlightMetricName:            2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("metrics mismatch (-want +got):\n%s", diff)
	}
	p1.Dropped() // limit int(2*0.9) = 1
	p2.Done(nil) // admitted as 2nd: 2*2 >= 1, limit 2
	got = collect(t, r)
	want[CallsMetricName+" dropped"] = 1
	want[InFlightMetricName] = 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("metrics mismatch (-want +got):\n%s", diff)
	}
}
