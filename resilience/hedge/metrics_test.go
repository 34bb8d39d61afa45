package hedge

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// collect returns the data points of the hedger's metrics, keyed by name
// and outcome; the delay gauge is in seconds.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					if name, _ := dp.Attributes.Value(PolicyNameKey); name.AsString() != "db" {
						t.Errorf("%s point without %s=db: %v", m.Name, PolicyNameKey, dp.Attributes)
					}
					key := m.Name
					if v, ok := dp.Attributes.Value(OutcomeKey); ok {
						key += " " + v.AsString()
					}
					got[key] = float64(dp.Value)
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					if name, _ := dp.Attributes.Value(PolicyNameKey); name.AsString() != "db" {
						t.Errorf("%s point without %s=db: %v", m.Name, PolicyNameKey, dp.Attributes)
					}
					got[m.Name] = dp.Value
				}
			}
		}
	}
	return got
}

func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
		defer func() { _ = mp.Shutdown(context.Background()) }()
		fb := &fakeBudget{grants: 1}
		h := newHedger(t, Config{Name: "db", Delay: 10 * time.Millisecond, MeterProvider: mp}, fb)
		run := func(steps ...step) {
			s := newScript(steps...)
			_, _ = Do(t.Context(), h, s.fn)
		}
		run(step{d: 50 * time.Millisecond}, step{d: 5 * time.Millisecond}) // hedge wins
		run(step{d: 5 * time.Millisecond})                                 // primary wins, no hedge
		run(step{d: 50 * time.Millisecond})                                // hedge denied, primary wins
		run(step{d: 1 * time.Millisecond, err: errPrimary})                // fails, no win
		synctest.Wait()
		want := map[string]float64{
			AttemptsMetricName + " primary": 4,
			AttemptsMetricName + " hedge":   1,
			WinsMetricName + " primary":     2,
			WinsMetricName + " hedge":       1,
			DeniedMetricName:                1,
			DelayMetricName:                 0.01,
		}
		if diff := cmp.Diff(want, collect(t, r)); diff != "" {
			t.Fatalf("metrics mismatch (-want +got):\n%s", diff)
		}
	})
}
