package ratelimit

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestMetrics(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer mp.Shutdown(context.Background())
			l := mustNew(t, Config{Name: "api", Algorithm: alg, Rate: 2, MeterProvider: mp})
			for range 5 {
				l.AllowN(t0, 1)
			}
			var rm metricdata.ResourceMetrics
			if err := reader.Collect(context.Background(), &rm); err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name != DecisionsMetricName {
						continue
					}
					sum, ok := m.Data.(metricdata.Sum[int64])
					if !ok || !sum.IsMonotonic {
						t.Fatalf("%s data = %T, want a monotonic Sum[int64]", m.Name, m.Data)
					}
					for _, dp := range sum.DataPoints {
						name, _ := dp.Attributes.Value("resilience.policy.name")
						outcome, _ := dp.Attributes.Value("resilience.outcome")
						got[name.AsString()+"/"+outcome.AsString()] = dp.Value
					}
				}
			}
			want := map[string]int64{"api/allowed": 2, "api/limited": 3}
			if len(got) != len(want) || got["api/allowed"] != 2 || got["api/limited"] != 3 {
				t.Errorf("decisions = %v, want %v", got, want)
			}
		})
	}
}

func TestAllowNAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	reader := sdkmetric.NewManualReader()
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer sdk.Shutdown(context.Background())
	for _, mp := range []struct {
		name string
		mp   metric.MeterProvider
	}{{"noop", noop.NewMeterProvider()}, {"sdk", sdk}} {
		for _, alg := range algorithms {
			t.Run(mp.name+"/"+alg, func(t *testing.T) {
				l := mustNew(t, Config{Algorithm: alg, Rate: 1000, Burst: 10, MeterProvider: mp.mp})
				now := t0
				allocs := testing.AllocsPerRun(1000, func() {
					now = now.Add(time.Millisecond / 3)
					l.AllowN(now, 1)
				})
				if allocs != 0 {
					t.Errorf("AllowN allocates %v times per call, want 0", allocs)
				}
				if allocs := testing.AllocsPerRun(100, func() { l.Allow() }); allocs != 0 {
					t.Errorf("Allow allocates %v times per call, want 0", allocs)
				}
			})
		}
	}
}
