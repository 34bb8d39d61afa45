package circuitbreaker

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestSpanEventOnTransition(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := newBreaker(t, Config{Name: "db", MinimumCalls: 2})
	fail := func(context.Context) error { return errBoom }
	for range 2 {
		ctx, span := tp.Tracer("test").Start(context.Background(), "call")
		_ = b.Execute(ctx, fail)
		span.End()
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	if n := len(spans[0].Events()); n != 0 {
		t.Fatalf("first call: %d events, want 0", n)
	}
	events := spans[1].Events()
	if len(events) != 1 || events[0].Name != "resilience.circuitbreaker.state_change" {
		t.Fatalf("second call events = %v, want one state_change", events)
	}
	got := map[string]string{}
	for _, kv := range events[0].Attributes {
		got[string(kv.Key)] = kv.Value.AsString()
	}
	want := map[string]string{string(PolicyNameKey): "db", string(FromStateKey): "closed", string(ToStateKey): "open"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("event attributes mismatch (-want +got):\n%s", diff)
	}
}
