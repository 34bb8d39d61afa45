package shed

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect returns the data points of the shedder's metrics: counters
// keyed by name, outcome and priority, gauges by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != scopeName {
			t.Errorf("scope = %q, want %q", sm.Scope.Name, scopeName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					checkName(t, m.Name, dp.Attributes)
					o, _ := dp.Attributes.Value(OutcomeKey)
					p, _ := dp.Attributes.Value(PriorityKey)
					got[m.Name+" "+o.AsString()+" "+p.AsString()] = float64(dp.Value)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					checkName(t, m.Name, dp.Attributes)
					got[m.Name] = float64(dp.Value)
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					checkName(t, m.Name, dp.Attributes)
					got[m.Name] = dp.Value
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return got
}

func checkName(t *testing.T, metric string, attrs attribute.Set) {
	t.Helper()
	if v, ok := attrs.Value(PolicyNameKey); !ok || v.AsString() != "api" {
		t.Errorf("%s: %s = %v, want api", metric, PolicyNameKey, v.AsString())
	}
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		cpu := &fakeCPU{}
		s, err := New(Config{Name: "api", Window: time.Second, Buckets: 10, CPU: cpu, MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		buildHistory(t, s, 100, 10*time.Millisecond)
		cpu.Set(0.95)
		held := hold(t, s, Critical, 100)
		hold(t, s, Sheddable, 100)
		got := collect(t, r)
		want := map[string]float64{
			CallsMetricName + " admitted critical": 110,
			CallsMetricName + " shed critical":     1,
			CallsMetricName + " shed sheddable":    1,
			InFlightMetricName:                     10,
			MaxInFlightMetricName:                  10,
			CPUMetricName:                          0.95,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("metrics mismatch (-want +got):\n%s", diff)
		}
		done(held)
	})
}
