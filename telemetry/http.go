package telemetry

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
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
//
// When the instance collects neither traces nor metrics (Disabled, or
// traces and metrics exporters "none" with NoPrometheus and no test
// readers), Handler only extracts the caller's trace context and
// baggage into the request context, so log records stay correlated, and
// costs next to nothing.
func (t *Telemetry) Handler(h http.Handler, operation string) http.Handler {
	if !t.tracing && !t.metering {
		return extractingHandler{h: h, prop: t.prop}
	}
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
//
// When the instance collects neither traces nor metrics, Transport only
// injects the trace context and baggage the request's context already
// holds. Either way the returned RoundTripper forwards CloseIdleConnections
// to base, so http.Client.CloseIdleConnections keeps working.
func (t *Telemetry) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if !t.tracing && !t.metering {
		return injectingTransport{base: base, prop: t.prop}
	}
	return instrumentedTransport{RoundTripper: otelhttp.NewTransport(base, t.httpOptions()...), base: base}
}

// instrumentedTransport is otelhttp's Transport, which does not forward
// CloseIdleConnections, with the forwarding added.
type instrumentedTransport struct {
	http.RoundTripper
	base http.RoundTripper
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has any.
func (t instrumentedTransport) CloseIdleConnections() { closeIdle(t.base) }

func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// extractingHandler is Handler with nothing collected: it keeps the
// caller's trace context and baggage for the handler and its logs.
type extractingHandler struct {
	h    http.Handler
	prop propagation.TextMapPropagator
}

func (e extractingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Looking the canonical keys up directly spares the untraced request
	// the allocations of canonicalising "traceparent" and "baggage".
	if r.Header["Traceparent"] != nil || r.Header["Baggage"] != nil {
		if ctx := e.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header)); ctx != r.Context() {
			r = r.WithContext(ctx)
		}
	}
	e.h.ServeHTTP(w, r)
}

// injectingTransport is Transport with nothing collected: it carries the
// request context's trace context and baggage to the server.
type injectingTransport struct {
	base http.RoundTripper
	prop propagation.TextMapPropagator
}

func (i injectingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	if !trace.SpanContextFromContext(ctx).IsValid() && baggage.FromContext(ctx).Len() == 0 {
		return i.base.RoundTrip(r)
	}
	r = r.Clone(ctx) // a RoundTripper must not modify the caller's request
	i.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	return i.base.RoundTrip(r)
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has any.
func (i injectingTransport) CloseIdleConnections() { closeIdle(i.base) }

func (t *Telemetry) httpOptions() []otelhttp.Option {
	return []otelhttp.Option{
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(t.mp),
		otelhttp.WithPropagators(t.prop),
	}
}
