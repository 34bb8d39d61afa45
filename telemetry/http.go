package telemetry

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Handler wraps h with OpenTelemetry server instrumentation that uses this
// instance's tracer and meter providers and propagator, never the globals:
// each request gets a server span (a child of the caller's span when the
// request carries W3C trace context) named after operation, with the
// semantic-convention attributes (http.request.method,
// http.response.status_code, url.path, url.scheme, server.address, ...), and the
// http.server.* metrics. The request context passed to h holds the span, so
// Logger records made with it are correlated.
//
// When h is an http.ServeMux (or anything else that sets
// http.Request.Pattern), the span is renamed "{method} {route}" and gets the
// http.route attribute once the route is known, as the semantic conventions
// ask.
func (t *Telemetry) Handler(h http.Handler, operation string) http.Handler {
	routed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		// r is the request otelhttp made, whose context holds the server
		// span; a ServeMux inside h has set its Pattern.
		if route := httpRoute(r.Pattern); route != "" {
			trace.SpanFromContext(r.Context()).SetAttributes(semconv.HTTPRoute(route))
		}
	})
	return otelhttp.NewHandler(routed, operation, append(t.httpOptions(), otelhttp.WithSpanNameFormatter(serverSpanName))...)
}

// serverSpanName names a server span: operation until the request has been
// routed, then "{method} {route}".
func serverSpanName(operation string, r *http.Request) string {
	if route := httpRoute(r.Pattern); route != "" {
		return r.Method + " " + route
	}
	return operation
}

// httpRoute returns the path part of a ServeMux pattern such as
// "GET example.com/orders/{id}", or "" for no pattern.
func httpRoute(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}

// Transport wraps base (nil means http.DefaultTransport) with OpenTelemetry
// client instrumentation that uses this instance's providers and
// propagator: each request gets a client span, a child of the span in the
// request's context, and carries W3C trace context and baggage headers to
// the server. The returned RoundTripper is safe for concurrent use as long
// as base is.
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base, t.httpOptions()...)
}

func (t *Telemetry) httpOptions() []otelhttp.Option {
	return []otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(t.mp),
		otelhttp.WithPropagators(t.prop),
	}
}
