package bulkhead

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect returns the data points of the bulkhead's metrics: counters and
// histogram counts keyed by name and outcome, gauges by name, and the
// histogram sums as name+" sum".
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
					checkName(t, m.Name, dp.Attributes.Value)
					o, _ := dp.Attributes.Value(OutcomeKey)
					got[m.Name+" "+o.AsString()] = float64(dp.Value)
				}
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					checkName(t, m.Name, dp.Attributes.Value)
					got[m.Name] = float64(dp.Value)
				}
			case metricdata.Histogram[float64]:
				if m.Unit != "s" {
					t.Errorf("%s unit = %q, want s", m.Name, m.Unit)
				}
				for _, dp := range d.DataPoints {
					checkName(t, m.Name, dp.Attributes.Value)
					o, _ := dp.Attributes.Value(OutcomeKey)
					got[m.Name+" "+o.AsString()] = float64(dp.Count)
					got[m.Name+" "+o.AsString()+" sum"] = dp.Sum
				}
			default:
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return got
}

func checkName(t *testing.T, metric string, value func(attribute.Key) (attribute.Value, bool)) {
	t.Helper()
	if v, _ := value(PolicyNameKey); v.AsString() != "db" {
		t.Errorf("%s point without %s=db", metric, PolicyNameKey)
	}
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		b := newBulkhead(t, Config{Name: "db", MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second, MeterProvider: mp})
		p := acquire(t, b) // admitted
		done := make(chan Permit)
		go func() {
			p, err := b.Acquire(context.Background()) // admitted after 250ms
			if err != nil {
				t.Error(err)
			}
			done <- p
		}()
		synctest.Wait()
		_, _ = b.Acquire(context.Background()) // rejected_queue_full
		if got := collect(t, r); got[InFlightMetricName] != 1 || got[QueueMetricName] != 1 {
			t.Fatalf("gauges = %v, %v; want 1, 1", got[InFlightMetricName], got[QueueMetricName])
		}
		time.Sleep(250 * time.Millisecond)
		p.Release()
		p = <-done
		_, _ = b.Acquire(context.Background()) // rejected_max_wait after 1s
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, _ = b.Acquire(ctx) // rejected_context after 500ms
		want := map[string]float64{
			CallsMetricName + " admitted":             2,
			CallsMetricName + " rejected_queue_full":  1,
			CallsMetricName + " rejected_max_wait":    1,
			CallsMetricName + " rejected_context":     1,
			WaitMetricName + " admitted":              1,
			WaitMetricName + " admitted sum":          0.25,
			WaitMetricName + " rejected_max_wait":     1,
			WaitMetricName + " rejected_max_wait sum": 1,
			WaitMetricName + " rejected_context":      1,
			WaitMetricName + " rejected_context sum":  0.5,
			InFlightMetricName:                        1,
			QueueMetricName:                           0,
		}
		if diff := cmp.Diff(want, collect(t, r)); diff != "" {
			t.Fatalf("metrics mismatch (-want +got):\n%s", diff)
		}
		p.Release()
		if got := collect(t, r)[InFlightMetricName]; got != 0 {
			t.Fatalf("inflight gauge = %v, want 0", got)
		}
	})
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
		{"sdk queue", Config{MeterProvider: sdk, MaxQueue: 4, MaxWait: time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBulkhead(t, tt.cfg)
			ctx := context.Background()
			allocs := testing.AllocsPerRun(1000, func() {
				p, err := b.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				p.Release()
			})
			if allocs != 0 {
				t.Errorf("Acquire+Release allocs = %v, want 0", allocs)
			}
			if allocs := testing.AllocsPerRun(1000, func() {
				p, _ := b.TryAcquire()
				p.Release()
			}); allocs != 0 {
				t.Errorf("TryAcquire+Release allocs = %v, want 0", allocs)
			}
			fn := func(context.Context) error { return nil }
			if allocs := testing.AllocsPerRun(1000, func() { _ = b.Execute(ctx, fn) }); allocs != 0 {
				t.Errorf("Execute allocs = %v, want 0", allocs)
			}
		})
	}
}
