package degrade

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// collect returns the data points of the switch's metrics: transitions
// keyed by name, from and to; skipped by name and feature; gauges by
// name.
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
					key := m.Name
					if f, ok := dp.Attributes.Value(FeatureKey); ok {
						key += " " + f.AsString()
					}
					if from, ok := dp.Attributes.Value(FromLevelKey); ok {
						to, _ := dp.Attributes.Value(ToLevelKey)
						key += fmt.Sprintf(" %d>%d", from.AsInt64(), to.AsInt64())
					}
					got[key] = float64(dp.Value)
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
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	sig := &fakeSignal{}
	s, err := New(Config{Name: "api", Levels: testLevels(), Features: testFeatures, Signal: sig, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	sig.Set(0.75)
	s.Update(t.Context(), fixedNow)
	s.Enabled("recommendations")
	s.Enabled("recommendations")
	s.Enabled("suggestions")
	if h, err := s.Feature("suggestions"); err != nil || h.Enabled() {
		t.Fatalf("Feature(suggestions) = %v, %v; want disabled", h, err)
	}
	s.Enabled("audit")   // on: not counted
	s.Enabled("unknown") // not configured: not counted
	s.Allow(1)           // not counted
	if err := s.Force(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	s.Enabled("recommendations") // on again
	got := collect(t, r)
	want := map[string]float64{
		LevelMetricName:                        0,
		PressureMetricName:                     0.75,
		TransitionsMetricName + " 0>2":         1,
		TransitionsMetricName + " 2>0":         1,
		SkippedMetricName + " recommendations": 2,
		SkippedMetricName + " suggestions":     2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics mismatch (-want +got):\n%s", diff)
	}
}

func TestSpanEvent(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	sig := &fakeSignal{}
	s := newTest(t, sig)

	ctx, span := tp.Tracer("test").Start(t.Context(), "evaluate")
	sig.Set(0.95)
	s.Update(ctx, fixedNow)
	s.Update(ctx, fixedNow) // no change: no event
	if err := s.Force(ctx, 1); err != nil {
		t.Fatal(err)
	}
	span.End()
	// Without a span, or with a non-recording one, nothing happens.
	s.Auto()
	sig.Set(0)
	s.Update(context.Background(), fixedNow.Add(DefaultMinDwell*10))
	s.Update(trace.ContextWithSpanContext(context.Background(), span.SpanContext()), fixedNow.Add(DefaultMinDwell*20))

	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans ended, want 1", len(spans))
	}
	type ev struct {
		Name  string
		Attrs map[attribute.Key]any
	}
	var got []ev
	for _, e := range spans[0].Events() {
		m := map[attribute.Key]any{}
		for _, kv := range e.Attributes {
			m[kv.Key] = kv.Value.AsInterface()
		}
		got = append(got, ev{e.Name, m})
	}
	want := []ev{
		{LevelChangeEventName, map[attribute.Key]any{PolicyNameKey: "api", FromLevelKey: int64(0), ToLevelKey: int64(3), PressureKey: 0.95, ForcedKey: false}},
		{LevelChangeEventName, map[attribute.Key]any{PolicyNameKey: "api", FromLevelKey: int64(3), ToLevelKey: int64(1), PressureKey: 0.95, ForcedKey: true}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("span events mismatch (-want +got):\n%s", diff)
	}
}
