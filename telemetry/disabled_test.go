package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func disabledTelemetry(t *testing.T) *Telemetry {
	t.Helper()
	tel, err := Setup(context.Background(), Config{Disabled: true, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	return tel
}

// With nothing collected, Handler still hands the caller's trace context to
// the handler, and Transport still sends the context's trace to the server.
func TestDisabledKeepsPropagation(t *testing.T) {
	tel := disabledTelemetry(t)

	var got trace.SpanContext
	h := tel.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = trace.SpanContextFromContext(r.Context())
	}), "op")
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("traceparent", incoming)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !got.IsRemote() {
		t.Errorf("handler's span context = %v, want the remote trace 4bf92f3577b34da6a3ce929d0e0e4736", got)
	}

	var sent *http.Request
	rt := tel.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}))

	plain := httptest.NewRequest("GET", "http://example.test/", nil)
	if _, err := rt.RoundTrip(plain); err != nil {
		t.Fatal(err)
	}
	if sent != plain {
		t.Errorf("a request without trace context was copied; want it passed through")
	}

	ctx := propagation.TraceContext{}.Extract(context.Background(), propagation.HeaderCarrier(req.Header))
	traced := httptest.NewRequest("GET", "http://example.test/", nil).WithContext(ctx)
	if _, err := rt.RoundTrip(traced); err != nil {
		t.Fatal(err)
	}
	if tp := sent.Header.Get("traceparent"); tp != incoming {
		t.Errorf("sent traceparent = %q, want %q", tp, incoming)
	}
	if traced.Header.Get("traceparent") != "" {
		t.Errorf("Transport modified the caller's request headers")
	}
}

// Disabled telemetry costs a request no allocation beyond the bare handler's.
func TestDisabledHandlerAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	tel := disabledTelemetry(t)
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tel.Logger().InfoContext(r.Context(), "served", "path", r.URL.Path)
	})
	h := tel.Handler(bare, "op")
	req := httptest.NewRequest("GET", "/orders/1", nil)
	rec := httptest.NewRecorder()
	want := testing.AllocsPerRun(100, func() { bare.ServeHTTP(rec, req) })
	if got := testing.AllocsPerRun(100, func() { h.ServeHTTP(rec, req) }); got != want {
		t.Errorf("disabled Handler allocates %v times per request, bare handler %v; want equal", got, want)
	}
}

type closeCounter struct {
	roundTripFunc
	closed int
}

func (c *closeCounter) CloseIdleConnections() { c.closed++ }

// Both kinds of Transport forward CloseIdleConnections to their base, which
// otelhttp's Transport alone does not.
func TestTransportClosesIdleConnections(t *testing.T) {
	for _, tel := range []*Telemetry{disabledTelemetry(t), newHarness(t, nil).tel} {
		base := &closeCounter{}
		client := &http.Client{Transport: tel.Transport(base)}
		client.CloseIdleConnections()
		if base.closed != 1 {
			t.Errorf("tracing=%v: base.CloseIdleConnections called %d times, want 1", tel.tracing, base.closed)
		}
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
