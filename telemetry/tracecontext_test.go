package telemetry

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// TestTraceContextHeaders sends traceparent and tracestate headers, well
// formed and not, to a handler wrapped by Telemetry.Handler and checks
// what its server span continues: the W3C Trace Context rules (Level 1,
// section 4.3, and Level 2 for the flags) as cairn's services apply them.
func TestTraceContextHeaders(t *testing.T) {
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
		good    = "00-" + traceID + "-" + spanID + "-01"
	)
	for _, tc := range []struct {
		name        string
		traceparent []string
		tracestate  []string
		continues   bool   // the server span is a child of spanID in traceID
		wantState   string // the trace state it carries on
		wantSampled bool
	}{
		{name: "valid", traceparent: []string{good}, continues: true, wantSampled: true},
		{name: "with tracestate", traceparent: []string{good}, tracestate: []string{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
			continues: true, wantState: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", wantSampled: true},
		{name: "uppercase trace id", traceparent: []string{"00-4BF92F3577B34DA6A3CE929D0E0E4736-" + spanID + "-01"}},
		{name: "version ff", traceparent: []string{"ff-" + traceID + "-" + spanID + "-01"}},
		{name: "zero trace id", traceparent: []string{"00-00000000000000000000000000000000-" + spanID + "-01"}},
		{name: "zero parent id", traceparent: []string{"00-" + traceID + "-0000000000000000-01"}},
		{name: "short trace id", traceparent: []string{"00-" + traceID[:30] + "-" + spanID + "-01"}},
		{name: "version 00 with an extra field", traceparent: []string{good + "-extra"}},
		{name: "future version with an extra field", traceparent: []string{"01-" + traceID + "-" + spanID + "-01-extra"},
			continues: true, wantSampled: true},
		{name: "version 00 with a reserved flag", traceparent: []string{"00-" + traceID + "-" + spanID + "-04"}},
		{name: "future version, unknown flag bit", traceparent: []string{"cc-" + traceID + "-" + spanID + "-09"},
			continues: true, wantSampled: true},
		{name: "garbage", traceparent: []string{"hello"}},
		// The specification asks to join several tracestate lines; the
		// OpenTelemetry propagator keeps only the first.
		{name: "two tracestate lines", traceparent: []string{good}, tracestate: []string{"rojo=1", "congo=2"},
			continues: true, wantState: "rojo=1", wantSampled: true},
		{name: "tracestate without traceparent", tracestate: []string{"rojo=1"}},
		{name: "invalid tracestate keeps the traceparent", traceparent: []string{good}, tracestate: []string{"UPPER=1"},
			continues: true, wantSampled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.ServiceName = "server" })
			var got trace.SpanContext
			handler := h.tel.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = trace.SpanContextFromContext(r.Context())
			}), "op")
			req := httptest.NewRequest("GET", "/", nil)
			for _, v := range tc.traceparent {
				req.Header.Add("traceparent", v)
			}
			for _, v := range tc.tracestate {
				req.Header.Add("tracestate", v)
			}
			handler.ServeHTTP(httptest.NewRecorder(), req)

			spans := h.spans.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("%d server spans, want 1: a bad header is ignored, never refused", len(spans))
			}
			s := spans[0]
			if !got.IsValid() || got.SpanID() != s.SpanContext.SpanID() {
				t.Fatalf("handler saw span context %v, want the server span's", got)
			}
			continued := s.Parent.IsValid() && s.Parent.IsRemote() && s.Parent.TraceID().String() == traceID && s.Parent.SpanID().String() == spanID
			if continued != tc.continues {
				t.Errorf("continued the caller's trace = %v, want %v (parent %v)", continued, tc.continues, s.Parent)
			}
			if !tc.continues && (s.Parent.IsValid() || s.SpanContext.TraceID().String() == traceID) {
				t.Errorf("a rejected header still shaped the trace: parent %v, trace %s", s.Parent, s.SpanContext.TraceID())
			}
			if tc.continues && s.Parent.IsSampled() != tc.wantSampled {
				t.Errorf("parent sampled = %v, want %v", s.Parent.IsSampled(), tc.wantSampled)
			}
			if state := s.SpanContext.TraceState().String(); state != tc.wantState {
				t.Errorf("trace state = %q, want %q", state, tc.wantState)
			}
		})
	}

	// A caller that did not sample: the service follows its decision
	// (parent-based sampling), records nothing, and passes the trace on.
	t.Run("valid, not sampled", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.ServiceName = "server" })
		var got trace.SpanContext
		handler := h.tel.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = trace.SpanContextFromContext(r.Context())
		}), "op")
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("traceparent", "00-"+traceID+"-"+spanID+"-00")
		handler.ServeHTTP(httptest.NewRecorder(), req)
		if n := len(h.spans.GetSpans()); n != 0 {
			t.Errorf("%d spans recorded for an unsampled caller, want 0", n)
		}
		if got.TraceID().String() != traceID || got.IsSampled() {
			t.Errorf("handler context %v, want trace %s, not sampled", got, traceID)
		}
	})
}
