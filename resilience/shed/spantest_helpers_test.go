package shed

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// spanEvent is a span event's name and attributes, for comparison.
type spanEvent struct {
	Name  string
	Attrs map[string]string
}

// traced runs fn with the context of a recording span and returns the
// events the span got.
func traced(t *testing.T, fn func(ctx context.Context)) []spanEvent {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("test").Start(context.Background(), "call")
	fn(ctx)
	span.End()
	var out []spanEvent
	for _, e := range rec.Ended()[0].Events() {
		m := map[string]string{}
		for _, kv := range e.Attributes {
			m[string(kv.Key)] = kv.Value.String()
		}
		out = append(out, spanEvent{e.Name, m})
	}
	return out
}
