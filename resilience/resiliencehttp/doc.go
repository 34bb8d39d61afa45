// Package resiliencehttp runs HTTP traffic through a resilience.Pipeline,
// on both sides of the wire.
//
// On the client side, [NewTransport] wraps an http.RoundTripper so that
// every request is executed by a Pipeline[*http.Response]. Responses with a
// retryable status code (429, 502, 503 and 504 by default) become a
// [*StatusError] inside the pipeline, so a retry stage retries them and a
// circuit breaker counts them as failures. Each attempt sends a clone of the
// caller's request, with a fresh body from Request.GetBody; the caller's
// request is never modified. When the pipeline gives up after such
// responses, the caller receives the last response unchanged, so it sees the
// server's real 503 rather than an error. [RetryAfterPushback] lets a
// retry.Policy honour the server's Retry-After header.
//
// On the server side, [Middleware] runs a handler inside a
// Pipeline[struct{}] (typically a rate limit, a bulkhead, a circuit breaker
// and a timeout) and answers the pipeline's rejections with RFC 9457 problem
// details: 429 with Retry-After for a rate limit, 503 for a full bulkhead, an
// open breaker (with Retry-After when known) or a timeout. A handler's own
// 5xx responses count as failures for the pipeline's breaker.
package resiliencehttp
