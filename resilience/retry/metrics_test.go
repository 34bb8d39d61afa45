package retry

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairnhq/cairn/resilience/budget"
)

// collect returns the counters' data points keyed by metric name and
// outcome, checking every point names the policy "db".
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
			d, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Errorf("%s: unexpected data %T", m.Name, m.Data)
				continue
			}
			for _, dp := range d.DataPoints {
				if v, _ := dp.Attributes.Value(PolicyNameKey); v.AsString() != "db" {
					t.Errorf("%s point without %s=db: %v", m.Name, PolicyNameKey, dp.Attributes)
				}
				key := m.Name
				if v, ok := dp.Attributes.Value(OutcomeKey); ok {
					key += " " + v.AsString()
				}
				got[key] = dp.Value
			}
		}
	}
	return got
}

func TestMetrics(t *testing.T) {
	errFatal := errors.New("fatal")
	fixed := Backoff{Kind: KindConstant, Initial: time.Millisecond}
	tests := []struct {
		name   string
		errs   []error
		policy Policy
		cancel bool
		want   map[string]int64
	}{
		{"success", nil, Policy{}, false, map[string]int64{
			CallsMetricName + " success": 1}},
		{"success after retry", []error{errBoom, errBoom}, Policy{}, false, map[string]int64{
			CallsMetricName + " success_after_retry": 1, AttemptsMetricName: 2}},
		{"not retryable", []error{errFatal}, Policy{RetryIf: func(err error) bool { return err != errFatal }}, false, map[string]int64{
			CallsMetricName + " not_retryable": 1}},
		{"max attempts", []error{errBoom, errBoom, errBoom}, Policy{MaxAttempts: 2}, false, map[string]int64{
			CallsMetricName + " exhausted": 1, AttemptsMetricName: 1}},
		{"pushback", []error{errBoom}, Policy{Pushback: func(error) (time.Duration, bool, bool) { return 0, false, true }}, false, map[string]int64{
			CallsMetricName + " exhausted": 1}},
		{"budget", []error{errBoom, errBoom}, Policy{Budget: denyAll{}}, false, map[string]int64{
			CallsMetricName + " budget_denied": 1}},
		{"canceled", []error{errBoom}, Policy{}, true, map[string]int64{
			CallsMetricName + " canceled": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := sdkmetric.NewManualReader()
				p := tt.policy
				p.Name = "db"
				p.Backoff = fixed
				p.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				fn, _ := recorder(tt.errs...)
				_ = Do(ctx, p, func(ctx context.Context) error {
					if tt.cancel {
						cancel()
					}
					return fn(ctx)
				})
				if diff := cmp.Diff(tt.want, collect(t, r)); diff != "" {
					t.Fatalf("metrics mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestMetricsInstrumentsReused(t *testing.T) {
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	p := Policy{Name: "db", MeterProvider: mp}
	for range 3 {
		if err := Do(context.Background(), p, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := instrumentsFor(mp, "db"), instrumentsFor(mp, "db"); a != b {
		t.Fatalf("instrumentsFor made new instruments for the same provider and name")
	}
	if a, b := instrumentsFor(mp, "db"), instrumentsFor(mp, "other"); a == b {
		t.Fatalf("instrumentsFor shared instruments between names")
	}
	want := map[string]int64{CallsMetricName + " success": 3}
	if diff := cmp.Diff(want, collect(t, r)); diff != "" {
		t.Fatalf("metrics mismatch (-want +got):\n%s", diff)
	}
}

// denyAll is a budget that denies every retry and has a name.
type denyAll struct{}

func (denyAll) Withdraw() bool { return false }
func (denyAll) OnRequest()     {}
func (denyAll) OnSuccess()     {}
func (denyAll) OnFailure()     {}
func (denyAll) Name() string   { return "shared" }

// attrs returns an event's attributes by key, as their Go values.
func attrs(kvs []attribute.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func TestSpanEvents(t *testing.T) {
	type event struct {
		Name  string
		Attrs map[string]any
	}
	boom := map[string]any{"error.type": "*errors.errorString", "error.message": "boom"}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{"resilience.policy.name": "db"}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name   string
		errs   []error
		policy Policy
		want   []event
	}{
		{"success", nil, Policy{}, nil},
		{"retried", []error{errBoom}, Policy{}, []event{
			{AttemptEventName, with(boom, "resilience.retry.attempt_number", int64(2), "resilience.retry.delay", 0.25)},
		}},
		{"exhausted", []error{errBoom, errBoom}, Policy{MaxAttempts: 2}, []event{
			{AttemptEventName, with(boom, "resilience.retry.attempt_number", int64(2), "resilience.retry.delay", 0.25)},
			{ExhaustedEventName, with(boom, "resilience.retry.attempt_number", int64(2), "resilience.reason", ReasonMaxAttempts)},
		}},
		{"budget denied", []error{errBoom}, Policy{Budget: denyAll{}}, []event{
			{budget.DeniedEventName, with(nil, "resilience.retry.attempt_number", int64(2), "resilience.budget.name", "shared")},
			{ExhaustedEventName, with(boom, "resilience.retry.attempt_number", int64(1), "resilience.reason", ReasonBudget)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := tracetest.NewSpanRecorder()
				tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
				defer func() { _ = tp.Shutdown(context.Background()) }()
				ctx, span := tp.Tracer("test").Start(context.Background(), "call")
				p := tt.policy
				p.Name = "db"
				p.Backoff = Backoff{Kind: KindConstant, Initial: 250 * time.Millisecond}
				p.MeterProvider = noop.NewMeterProvider()
				fn, _ := recorder(tt.errs...)
				_ = Do(ctx, p, fn)
				span.End()
				var got []event
				for _, e := range rec.Ended()[0].Events() {
					got = append(got, event{e.Name, attrs(e.Attributes)})
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Fatalf("events mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestErrorMessageCut(t *testing.T) {
	long := errors.New(string(make([]byte, 300)) + "é")
	_, msg := errorAttrs(long)
	if n := len(msg.Value.AsString()); n != maxMessage {
		t.Fatalf("message length = %d, want %d", n, maxMessage)
	}
	_, msg = errorAttrs(errors.New(string(make([]byte, 255)) + "é"))
	if n := len(msg.Value.AsString()); n != 255 {
		t.Fatalf("message length = %d, want 255 (cut before the rune)", n)
	}
}

func TestDoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	ok := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name string
		p    Policy
	}{
		{"global", Policy{}},
		{"noop", Policy{MeterProvider: noop.NewMeterProvider()}},
		{"sdk", Policy{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))}},
	} {
		ctx := context.Background()
		_ = Do(ctx, tc.p, ok) // makes the instruments
		if a := testing.AllocsPerRun(1000, func() { _ = Do(ctx, tc.p, ok) }); a != 0 {
			t.Errorf("%s: Do allocates %v times per successful call, want 0", tc.name, a)
		}
	}
}

// TestInstrumentsForConcurrent makes instruments for a few names from many
// goroutines at once: every goroutine must get the same instruments per
// name (run it with -race).
func TestInstrumentsForConcurrent(t *testing.T) {
	mp := noop.NewMeterProvider()
	names := []string{"a", "b", "c", "d"}
	got := make([][]*instruments, 8)
	var wg sync.WaitGroup
	for g := range got {
		wg.Go(func() {
			for _, n := range names {
				got[g] = append(got[g], instrumentsFor(mp, n))
			}
		})
	}
	wg.Wait()
	for g := range got {
		for i, n := range names {
			if got[g][i] != got[0][i] {
				t.Errorf("goroutine %d got other instruments for %q", g, n)
			}
		}
	}
}
