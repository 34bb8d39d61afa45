package saga_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

// providers returns an SDK tracer provider recording its spans and a
// meter provider with a manual reader.
func providers(t *testing.T) (*tracetest.SpanRecorder, trace.TracerProvider, *sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	return rec, tp, reader, mp
}

// collect returns the int64 sums and gauges collected from reader, by
// metric name and then by a label of their attributes (the values, the
// saga's name last), and the histogram counts of the step durations by
// "outcome/step/saga".
func collect(t *testing.T, reader *sdkmetric.ManualReader) (map[string]map[string]int64, map[string]uint64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	label := func(set attribute.Set) string {
		var s string
		for _, kv := range set.ToSlice() {
			if kv.Key != saga.NameKey {
				s += kv.Value.String() + "/"
			}
		}
		if v, ok := set.Value(saga.NameKey); ok {
			s += v.AsString()
		}
		return s
	}
	nums, hist := map[string]map[string]int64{}, map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != saga.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, saga.ScopeName)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				nums[m.Name] = map[string]int64{}
				for _, p := range d.DataPoints {
					nums[m.Name][label(p.Attributes)] = p.Value
				}
			case metricdata.Gauge[int64]:
				nums[m.Name] = map[string]int64{}
				for _, p := range d.DataPoints {
					nums[m.Name][label(p.Attributes)] = p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					hist[label(p.Attributes)] = p.Count
				}
			}
		}
	}
	return nums, hist
}

func TestTelemetryCompletedAndCompensated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, tp, reader, mp := providers(t)
		j := &journal{}
		defs := []saga.Definition[order]{{Name: "checkout", Stages: []saga.Stage[order]{
			{step(j, "pay", nil)},
			{step(j, "ship", func() error {
				if len(j.get()) > 3 {
					return errors.New("no truck")
				}
				return nil
			})},
		}}}
		o := newOrch(t, sagatest.NewMemStore(), defs, saga.WithTracerProvider(tp), saga.WithMeterProvider(mp))
		caller, span := tp.Tracer("test").Start(t.Context(), "request")
		if _, err := o.Start(caller, "checkout", "ok", order{}); err != nil {
			t.Fatal(err)
		}
		span.End()
		if _, err := o.Wait(t.Context(), "ok"); err != nil {
			t.Fatal(err)
		}
		startWait(t, o, "checkout", "bad", order{})
		startWait(t, o, "checkout", "ok", order{}) // idempotent: not counted
		o.Close()

		nums, hist := collect(t, reader)
		want := map[string]map[string]int64{
			saga.StartedMetricName:     {"checkout": 2},
			saga.CompletedMetricName:   {"checkout": 1},
			saga.CompensatedMetricName: {"checkout": 1},
		}
		if diff := cmp.Diff(want, nums); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
		wantHist := map[string]uint64{
			"succeeded/pay/checkout": 2, "succeeded/ship/checkout": 1, "failed/ship/checkout": 1,
			"compensated/pay/checkout": 1, "compensated/ship/checkout": 1,
		}
		if diff := cmp.Diff(wantHist, hist); diff != "" {
			t.Errorf("step durations by step/outcome (-want +got):\n%s", diff)
		}

		// One trace per instance, under the caller's span for "ok".
		byName := map[string][]sdktrace.ReadOnlySpan{}
		for _, s := range rec.Ended() {
			byName[s.Name()] = append(byName[s.Name()], s)
		}
		roots := byName["saga checkout"]
		if len(roots) != 3 {
			t.Fatalf("%d root spans, want 3 (two instances and an idempotent Start)", len(roots))
		}
		root := roots[0]
		if root.Parent().SpanID() != span.SpanContext().SpanID() {
			t.Errorf("root span's parent %v, want the caller's span", root.Parent().SpanID())
		}
		for _, name := range []string{"saga step pay", "saga step ship"} {
			if s := byName[name][0]; s.Parent().SpanID() != root.SpanContext().SpanID() || s.SpanContext().TraceID() != root.SpanContext().TraceID() {
				t.Errorf("span %q is not a child of the instance's root span", name)
			}
		}
		if n := len(byName["saga compensate pay"]) + len(byName["saga compensate ship"]); n != 2 {
			t.Errorf("%d compensation spans, want 2", n)
		}
		var got []string
		for _, e := range root.Events() {
			if e.Name != saga.TransitionEventName {
				continue
			}
			var s string
			for _, kv := range e.Attributes {
				s += kv.Value.String() + " "
			}
			got = append(got, s)
		}
		wantEvents := []string{"running ", "pay running ", "pay succeeded ", "ship running ", "ship succeeded ", "completed "}
		if diff := cmp.Diff(wantEvents, got); diff != "" {
			t.Errorf("transition events of the root span (-want +got):\n%s", diff)
		}
	})
}

func TestTelemetryResumeAndStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec, tp, reader, mp := providers(t)
		store := sagatest.NewMemStore()
		j := &journal{}
		entered, gate := make(chan string, 4), make(chan struct{})
		failing := true
		var mu sync.Mutex
		undo := step(j, "reserve", nil)
		undo.Compensate = func(ctx context.Context, d *order) error {
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return errors.New("still down")
			}
			return nil
		}
		defs := []saga.Definition[order]{{Name: "checkout", Stages: []saga.Stage[order]{
			{undo}, {gated(j, "ship", false, entered, gate)},
		}}}
		opts := []saga.Option{saga.WithLease(10 * time.Second), saga.WithPollInterval(time.Second),
			saga.WithTracerProvider(tp), saga.WithMeterProvider(mp),
			saga.WithStuckAfter(3, 0), saga.WithCompensationBackoff(retry.Backoff{Kind: retry.KindConstant, Initial: time.Second})}
		a := newOrch(t, store, defs, opts...)
		if _, err := a.Start(t.Context(), "checkout", "o1", order{}); err != nil {
			t.Fatal(err)
		}
		<-entered
		a.Close()

		b := newOrch(t, store, defs, opts...)
		runRecovery(t, b)
		<-entered // b resumed ship
		close(gate)
		if _, err := b.Wait(t.Context(), "o1"); err != nil {
			t.Fatal(err)
		}

		// The resumption joined the instance's trace.
		var root, resume sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "saga checkout":
				root = s
			case "saga checkout resume":
				resume = s
			}
		}
		if root == nil || resume == nil {
			t.Fatalf("root span %v, resume span %v; want both", root != nil, resume != nil)
		}
		if resume.SpanContext().TraceID() != root.SpanContext().TraceID() || resume.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("resume span: trace %v parent %v; want a child of the root span %v/%v",
				resume.SpanContext().TraceID(), resume.Parent().SpanID(), root.SpanContext().TraceID(), root.SpanContext().SpanID())
		}
		stopped := slices.ContainsFunc(root.Events(), func(e sdktrace.Event) bool {
			return e.Name == saga.StoppedEventName && slices.Contains(e.Attributes, saga.CauseKey.String(saga.ErrClosed.Error()))
		})
		if !stopped {
			t.Errorf("root span events %v, want %s with the cause %q", root.Events(), saga.StoppedEventName, saga.ErrClosed)
		}
		for _, s := range rec.Ended() {
			if s.Name() == "saga step ship" && s.SpanContext().TraceID() != root.SpanContext().TraceID() {
				t.Errorf("a ship span is in trace %v, want %v", s.SpanContext().TraceID(), root.SpanContext().TraceID())
			}
		}

		// A compensation that keeps failing makes the instance stuck.
		stuckDefs := []saga.Definition[order]{{Name: "stuck", Stages: []saga.Stage[order]{
			{undo}, {step(j, "fail", func() error { return errors.New("no") })},
		}}}
		c := newOrch(t, store, stuckDefs, opts...)
		if _, err := c.Start(t.Context(), "stuck", "s1", order{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second) // fake clock: five attempts, stuck after three
		synctest.Wait()
		nums, _ := collect(t, reader)
		if got := nums[saga.StuckMetricName]["stuck"]; got != 1 {
			t.Errorf("stuck gauge = %d, want 1", got)
		}
		if inst, _ := store.Get(t.Context(), "s1"); inst.Status != saga.StatusStuck {
			t.Errorf("status %s, want stuck", inst.Status)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		if inst, err := c.Wait(t.Context(), "s1"); err != nil || inst.Status != saga.StatusCompensated {
			t.Errorf("Wait = %s, %v; want compensated", inst.Status, err)
		}
		nums, _ = collect(t, reader)
		if got := nums[saga.StuckMetricName]["stuck"]; got != 0 {
			t.Errorf("stuck gauge after compensation = %d, want 0", got)
		}
		if nums[saga.RecoveredMetricName]["checkout"] != 1 || nums[saga.RecoveryRunsMetricName]["ok/"] < 1 {
			t.Errorf("recovered %v, recovery runs %v; want 1 recovered and at least one run", nums[saga.RecoveredMetricName], nums[saga.RecoveryRunsMetricName])
		}
	})
}
