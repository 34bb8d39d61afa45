package resilienceconfig_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/resilienceconfig"
)

// gauge is a data point of a gauge: the metric and its policy name.
type gauge struct{ metric, policy string }

// collectGauges returns the values of the gauges' data points the reader
// collects, all of them, so that two points for one metric and policy
// show as a value list of two.
func collectGauges(t *testing.T, r *sdkmetric.ManualReader) map[gauge][]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[gauge][]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(circuitbreaker.PolicyNameKey)
					k := gauge{m.Name, v.AsString()}
					got[k] = append(got[k], float64(dp.Value))
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(circuitbreaker.PolicyNameKey)
					k := gauge{m.Name, v.AsString()}
					got[k] = append(got[k], dp.Value)
				}
			}
		}
	}
	return got
}

// fullFile has a policy of every kind that reports gauges.
func fullFile() *resilienceconfig.File {
	f := overloadFile()
	s := sampleFile()
	f.Breakers = s.Breakers
	f.Bulkheads = s.Bulkheads
	f.RateLimits = s.RateLimits
	f.Retries = s.Retries
	maps.Copy(f.Pipelines, map[string][]resilienceconfig.Stage{"inventory-sync": s.Pipelines["inventory-client"]})
	return f
}

// countGauges returns how many data points each gauge has.
func countGauges(g map[gauge][]float64) map[gauge]int {
	out := make(map[gauge]int, len(g))
	for k, v := range g {
		out[k] = len(v)
	}
	return out
}

// After a reload that changes breaker "b", the state gauge has one data
// point for "b", the new breaker's, and none for the removed breaker "c";
// no callback of a replaced or removed breaker stays registered.
func TestReloadClosesReplacedBreaker(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	mp := &testProvider{MeterProvider: sdk}
	file := func(threshold float64, breakers ...string) *resilienceconfig.File {
		f := &resilienceconfig.File{
			Breakers:  map[string]circuitbreaker.Config{},
			Pipelines: map[string][]resilienceconfig.Stage{"p": {{Kind: "circuitbreaker", Policy: "b"}}},
		}
		for _, name := range breakers {
			f.Breakers[name] = circuitbreaker.Config{FailureRateThreshold: threshold}
		}
		return f
	}
	r := newReloader(t, file(0.5, "b", "c"), resilienceconfig.WithMeterProvider(mp))
	old := r.Current()
	oldBreaker := breaker(t, old, "b")
	oldBreaker.ForceOpen()
	forced, closed := float64(circuitbreaker.StateForcedOpen), float64(circuitbreaker.StateClosed)
	want := map[gauge][]float64{
		{circuitbreaker.StateMetricName, "b"}: {forced},
		{circuitbreaker.StateMetricName, "c"}: {closed},
	}
	if diff := cmp.Diff(want, collectGauges(t, rd)); diff != "" {
		t.Fatalf("gauges before the reload mismatch (-want +got):\n%s", diff)
	}
	if got := mp.live.Load(); got != 2 {
		t.Fatalf("%d callbacks registered before the reload, want 2", got)
	}

	if err := r.Apply(file(0.6, "b")); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if breaker(t, r.Current(), "b") == oldBreaker {
		t.Fatal("the changed breaker was reused")
	}
	want = map[gauge][]float64{{circuitbreaker.StateMetricName, "b"}: {closed}}
	if diff := cmp.Diff(want, collectGauges(t, rd)); diff != "" {
		t.Errorf("gauges after the reload mismatch (-want +got):\n%s", diff)
	}
	if got := mp.live.Load(); got != 1 {
		t.Errorf("%d callbacks registered after the reload, want 1", got)
	}

	// A call still running on the old Set's pipeline keeps working with
	// the replaced breaker.
	p, err := resilienceconfig.Pipeline[string](old, "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Execute(t.Context(), ok); !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Errorf("Execute on the old Set = %v, want %v", err, circuitbreaker.ErrOpen)
	}
}

// A reload that changes every policy leaves one data point per gauge and
// policy, and one that removes them leaves none.
func TestReloadClosesEveryReplacedPolicy(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	mp := &testProvider{MeterProvider: sdk}
	r := newReloader(t, fullFile(), resilienceconfig.WithMeterProvider(mp))
	want := countGauges(collectGauges(t, rd))
	live := mp.live.Load()
	for _, g := range []gauge{
		{circuitbreaker.StateMetricName, "inventory"},
		{bulkhead.InFlightMetricName, "inventory"},
		{hedge.DelayMetricName, "inventory"},
		{"resilience.budget.tokens", "inventory"},
		{"resilience.adaptive.limit", "db"},
		{"resilience.shed.cpu", "api"},
	} {
		if want[g] != 1 {
			t.Fatalf("%v has %d data points before the reload, want 1", g, want[g])
		}
	}

	f := fullFile()
	b := f.Breakers["inventory"]
	b.FailureRateThreshold = 0.9
	f.Breakers["inventory"] = b
	bh := f.Bulkheads["inventory"]
	bh.MaxConcurrent++
	f.Bulkheads["inventory"] = bh
	bu := f.Budgets["inventory"]
	bu.MaxTokens++
	f.Budgets["inventory"] = bu // replaces the hedger too
	a := f.Adaptive["db"]
	a.MaxLimit++
	f.Adaptive["db"] = a
	sh := f.Shedders["api"]
	sh.CPUThreshold = 0.7
	f.Shedders["api"] = sh
	if err := r.Apply(f); err != nil {
		t.Fatalf("Apply = %v", err)
	}
	if diff := cmp.Diff(want, countGauges(collectGauges(t, rd))); diff != "" {
		t.Errorf("data points per gauge after the reload mismatch (-want +got):\n%s", diff)
	}
	if got := mp.live.Load(); got != live {
		t.Errorf("%d callbacks registered after the reload, want %d as before", got, live)
	}

	// Closing the Reloader closes the current policies.
	if err := r.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if got := collectGauges(t, rd); len(got) != 0 {
		t.Errorf("gauges after Close = %v, want none", got)
	}
	if got := mp.live.Load(); got != 0 {
		t.Errorf("%d callbacks registered after Close, want 0", got)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// testProvider counts the callbacks registered and not unregistered with
// its meters, and fails to make the float64 gauge named fail, so that a
// build can fail after it built other policies.
type testProvider struct {
	metric.MeterProvider
	fail string
	live atomic.Int64
}

func (p *testProvider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return testMeter{p.MeterProvider.Meter(name, opts...), p}
}

type testMeter struct {
	metric.Meter
	p *testProvider
}

var errInjected = errors.New("injected")

func (m testMeter) Float64ObservableGauge(name string, opts ...metric.Float64ObservableGaugeOption) (metric.Float64ObservableGauge, error) {
	if m.p.fail != "" && name == m.p.fail {
		return nil, errInjected
	}
	return m.Meter.Float64ObservableGauge(name, opts...)
}

func (m testMeter) RegisterCallback(f metric.Callback, insts ...metric.Observable) (metric.Registration, error) {
	reg, err := m.Meter.RegisterCallback(f, insts...)
	if err != nil {
		return nil, err
	}
	m.p.live.Add(1)
	return &countedRegistration{Registration: reg, live: &m.p.live}, nil
}

type countedRegistration struct {
	metric.Registration
	live *atomic.Int64
	once sync.Once
}

func (r *countedRegistration) Unregister() error {
	r.once.Do(func() { r.live.Add(-1) })
	return r.Registration.Unregister()
}

// A reload that fails to build closes the policies it built, and the
// current Set's keep reporting.
func TestFailedReloadClosesBuiltPolicies(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	mp := &testProvider{MeterProvider: sdk, fail: hedge.DelayMetricName}
	f := sampleFile()
	r := newReloader(t, f, resilienceconfig.WithMeterProvider(mp))
	want := countGauges(collectGauges(t, rd))
	live := mp.live.Load()

	// Hedgers are built after the other policies: the changed breaker is
	// built, then the hedger fails.
	f = sampleFile()
	b := f.Breakers["inventory"]
	b.FailureRateThreshold = 0.9
	f.Breakers["inventory"] = b
	f.Hedges = map[string]resilienceconfig.Hedge{"h": {Config: hedge.Config{Delay: time.Millisecond}}}
	if err := r.Apply(f); !errors.Is(err, errInjected) {
		t.Fatalf("Apply = %v, want %v", err, errInjected)
	}
	if diff := cmp.Diff(want, countGauges(collectGauges(t, rd))); diff != "" {
		t.Errorf("data points per gauge after the failed reload mismatch (-want +got):\n%s", diff)
	}
	if got := mp.live.Load(); got != live {
		t.Errorf("%d callbacks registered after the failed reload, want %d as before", got, live)
	}
}

// Set.Close drops the gauges of every policy; the pipelines keep working.
func TestSetCloseUnregistersGauges(t *testing.T) {
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s, err := resilienceconfig.New(fullFile(), resilienceconfig.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	if got := collectGauges(t, rd); len(got) == 0 {
		t.Fatal("no gauges before Close")
	}
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d = %v, want nil", i+1, err)
		}
	}
	if got := collectGauges(t, rd); len(got) != 0 {
		t.Errorf("gauges after Close = %v, want none", got)
	}
	for _, name := range []string{"inventory-sync", "orders-server"} {
		p, err := resilienceconfig.Pipeline[string](s, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Execute(t.Context(), ok); err != nil {
			t.Errorf("%s: Execute after Close = %v, want nil", name, err)
		}
	}
}
