package circuitbreaker

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect returns the data points of the breaker's metrics: for the calls
// and transitions counters keyed by their distinguishing attributes, for the
// state gauge by "state".
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					if name, _ := dp.Attributes.Value(PolicyNameKey); name.AsString() != "db" {
						t.Errorf("%s point without %s=db: %v", m.Name, PolicyNameKey, dp.Attributes)
					}
					key := m.Name
					for _, k := range []attribute.Key{OutcomeKey, FromStateKey, ToStateKey} {
						if v, ok := dp.Attributes.Value(k); ok {
							key += " " + v.AsString()
						}
					}
					got[key] = dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					got[m.Name] = dp.Value
				}
			}
		}
	}
	return got
}

func TestMetrics(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	b := newBreaker(t, Config{Name: "db", MinimumCalls: 4, MeterProvider: mp})
	call(t, b, nil)
	call(t, b, context.Canceled)
	call(t, b, errBoom)
	call(t, b, errBoom)
	call(t, b, errBoom) // trips
	_, _ = b.Allow()    // rejected
	_, _ = b.Allow()    // rejected
	want := map[string]int64{
		CallsMetricName + " success":           1,
		CallsMetricName + " excluded":          1,
		CallsMetricName + " failure":           3,
		CallsMetricName + " rejected":          2,
		TransitionsMetricName + " closed open": 1,
		StateMetricName:                        int64(StateOpen),
	}
	if diff := cmp.Diff(want, collect(t, r)); diff != "" {
		t.Fatalf("metrics mismatch (-want +got):\n%s", diff)
	}
	b.ForceOpen()
	if got := collect(t, r)[StateMetricName]; got != 3 {
		t.Fatalf("state gauge = %d, want 3", got)
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	r := sdkmetric.NewManualReader()
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"noop", Config{MeterProvider: noop.NewMeterProvider()}},
		{"sdk", Config{MeterProvider: sdk}},
		{"noop time window slow calls", Config{MeterProvider: noop.NewMeterProvider(), Window: WindowTime, SlowCallDuration: time.Hour}},
		{"sdk time window slow calls", Config{MeterProvider: sdk, Window: WindowTime, SlowCallDuration: time.Hour}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBreaker(t, tt.cfg)
			allocs := testing.AllocsPerRun(1000, func() {
				p, err := b.Allow()
				if err != nil {
					t.Fatal(err)
				}
				p.Done(nil)
			})
			if allocs != 0 {
				t.Errorf("Allow+Done allocs = %v, want 0", allocs)
			}
			ctx := context.Background()
			fn := func(context.Context) error { return nil }
			if allocs := testing.AllocsPerRun(1000, func() { _ = b.Execute(ctx, fn) }); allocs != 0 {
				t.Errorf("Execute allocs = %v, want 0", allocs)
			}
		})
	}
}
