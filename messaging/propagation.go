package messaging

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// propagator carries the W3C trace context and baggage in headers. It is
// fixed, not the global propagator, so that every transport writes the
// same headers whatever the process configured.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// InjectTraceContext writes the W3C trace context (traceparent,
// tracestate) and baggage of ctx into h and returns h, allocating it if it
// is nil. Publishers call it; use it to stamp a message by hand.
func InjectTraceContext(ctx context.Context, h map[string]string) map[string]string {
	if h == nil {
		h = make(map[string]string, 2)
	}
	propagator.Inject(ctx, propagation.MapCarrier(h))
	return h
}

// ExtractTraceContext returns ctx with the remote span context and baggage
// read from h, as a consumer's parent.
func ExtractTraceContext(ctx context.Context, h map[string]string) context.Context {
	return propagator.Extract(ctx, propagation.MapCarrier(h))
}
