package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestHandlerAndTransport(t *testing.T) {
	client := newHarness(t, func(c *Config) { c.ServiceName = "client" })
	server := newHarness(t, func(c *Config) { c.ServiceName = "server" })

	var gotBaggage string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		gotBaggage = baggage.FromContext(r.Context()).Member("tenant").Value()
		server.tel.Logger().InfoContext(r.Context(), "serving")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "short and stout")
	})
	srv := httptest.NewServer(server.tel.Handler(mux, "orders"))

	ctx, parent := client.tel.TracerProvider().Tracer("test").Start(t.Context(), "parent")
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx = baggage.ContextWithBaggage(ctx, bag)
	hc := &http.Client{Transport: client.tel.Transport(srv.Client().Transport)}
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/orders/42?x=1", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	parent.End()
	srv.Close() // waits for the handler, so the server span has ended

	if gotBaggage != "acme" {
		t.Errorf("server saw baggage tenant=%q, want acme", gotBaggage)
	}

	cspans := client.spans.GetSpans()
	if len(cspans) != 2 {
		t.Fatalf("client spans = %d, want client span and parent", len(cspans))
	}
	cs := cspans[0]
	if cs.SpanKind != trace.SpanKindClient || cs.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("client span kind %v parent %s, want client child of %s", cs.SpanKind, cs.Parent.SpanID(), parent.SpanContext().SpanID())
	}
	ca := attrs(cs)
	for k, want := range map[attribute.Key]string{
		"http.request.method":       "GET",
		"http.response.status_code": "418",
		"url.full":                  srv.URL + "/orders/42?x=1",
		"server.address":            "127.0.0.1",
	} {
		if got := ca[k].String(); got != want {
			t.Errorf("client span %s = %q, want %q", k, got, want)
		}
	}

	sspans := server.spans.GetSpans()
	if len(sspans) != 1 {
		t.Fatalf("server spans = %d, want 1", len(sspans))
	}
	ss := sspans[0]
	if ss.SpanKind != trace.SpanKindServer {
		t.Errorf("server span kind = %v", ss.SpanKind)
	}
	if ss.SpanContext.TraceID() != parent.SpanContext().TraceID() || ss.Parent.SpanID() != cs.SpanContext.SpanID() || !ss.Parent.IsRemote() {
		t.Errorf("server span trace %s parent %s, want trace %s remote parent %s (the client span)",
			ss.SpanContext.TraceID(), ss.Parent.SpanID(), parent.SpanContext().TraceID(), cs.SpanContext.SpanID())
	}
	sa := attrs(ss)
	for k, want := range map[attribute.Key]string{
		"http.request.method":       "GET",
		"http.response.status_code": "418",
		"url.path":                  "/orders/42",
		"url.scheme":                "http",
		"http.route":                "/orders/{id}",
	} {
		if got := sa[k].String(); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	if ss.Name != "GET /orders/{id}" {
		t.Errorf("server span name = %q, want \"GET /orders/{id}\"", ss.Name)
	}
	if v, _ := ss.Resource.Set().Value("service.name"); v.AsString() != "server" {
		t.Errorf("server span service.name = %q", v.AsString())
	}

	// The handler's log record is correlated with the server span.
	lines := jsonLines(t, server.out.String())
	if len(lines) != 1 || lines[0][SpanIDKey] != ss.SpanContext.SpanID().String() {
		t.Errorf("server log = %v, want span_id %s", lines, ss.SpanContext.SpanID())
	}
}
