package ratelimit

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Span event name, attribute keys and reasons of a refusal. A [Limiter]
// has no context, so [TokenBucket.Wait] and the rate limit stage of a
// resilience.Pipeline add the event; callers of AllowN that have a span
// may add it the same way.
const (
	// RejectedEventName is added to the span of the caller's context
	// when a limiter refuses a request, with [PolicyNameKey], [ReasonKey]
	// and [RetryAfterKey].
	RejectedEventName = "resilience.ratelimit.rejected"

	PolicyNameKey = attribute.Key("resilience.policy.name")
	// OutcomeKey is the decisions counter's attribute: "allowed" or
	// "limited".
	OutcomeKey = attribute.Key("resilience.outcome")
	// ReasonKey is why the request was refused: [ReasonLimited],
	// [ReasonExceedsBurst] or [ReasonContext].
	ReasonKey = attribute.Key("resilience.reason")
	// RetryAfterKey is the refusal's RetryAfter in seconds; -1 for
	// [Never].
	RetryAfterKey = attribute.Key("resilience.ratelimit.retry_after")
)

// Reasons for a refusal, the values of [ReasonKey].
const (
	ReasonLimited      = "limited"       // no tokens or room in the window now
	ReasonExceedsBurst = "exceeds_burst" // the request is larger than Burst
	ReasonContext      = "context"       // the context ended or its deadline comes too soon
)

// rejected adds the rejected event of e to the span of ctx.
func rejected(ctx context.Context, e *LimitedError, reason string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	retry := e.RetryAfter.Seconds()
	if e.RetryAfter == Never {
		retry = -1
	}
	span.AddEvent(RejectedEventName, trace.WithAttributes(
		PolicyNameKey.String(e.Limit), ReasonKey.String(reason), RetryAfterKey.Float64(retry)))
}
