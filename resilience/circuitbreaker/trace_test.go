package circuitbreaker

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// event is a span event's name and attributes, for comparison.
type event struct {
	Name  string
	Attrs map[string]string
}

func events(evs []sdktrace.Event) []event {
	var out []event
	for _, e := range evs {
		out = append(out, event{e.Name, attrs(e.Attributes)})
	}
	return out
}

func attrs(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func TestSpanEventOnTransition(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := newBreaker(t, Config{Name: "db", MinimumCalls: 2})
	fail := func(context.Context) error { return errBoom }
	for range 3 {
		ctx, span := tp.Tracer("test").Start(context.Background(), "call")
		_ = b.Execute(ctx, fail)
		span.End()
	}
	b.ForceOpen()
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")
	_ = b.Execute(ctx, fail)
	span.End()

	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("got %d spans, want 4", len(spans))
	}
	want := [][]event{
		nil,
		{{StateChangeEventName, map[string]string{string(PolicyNameKey): "db", string(FromStateKey): "closed", string(ToStateKey): "open"}}},
		{{RejectedEventName, map[string]string{string(PolicyNameKey): "db", string(StateKey): "open"}}},
		{{RejectedEventName, map[string]string{string(PolicyNameKey): "db", string(StateKey): "forced-open"}}},
	}
	for i, s := range spans {
		if diff := cmp.Diff(want[i], events(s.Events())); diff != "" {
			t.Errorf("call %d: events mismatch (-want +got):\n%s", i+1, diff)
		}
	}
}
