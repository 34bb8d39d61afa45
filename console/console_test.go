package console

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// do sends a request straight to h and returns the recorded response.
func do(t testing.TB, h http.Handler, method, target, contentType string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// postProto marshals m and posts it to the OTLP handler at path.
func postProto(t testing.TB, c *Console, path string, m proto.Message) *httptest.ResponseRecorder {
	t.Helper()
	body, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c.OTLPHandler(), http.MethodPost, path, protobufType, body)
}

// getJSON fetches target from the UI handler and decodes the JSON answer
// into v, failing unless the status is want.
func getJSON(t testing.TB, c *Console, target string, want int, v any) {
	t.Helper()
	rec := do(t, c.UIHandler(), http.MethodGet, target, "", nil)
	if rec.Code != want {
		t.Fatalf("GET %s = %d %s, want %d", target, rec.Code, rec.Body, want)
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: decode %q: %v", target, rec.Body, err)
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testSpan describes a span for traceRequest.
type testSpan struct {
	service string
	trace   byte // trace id is 16 copies of this byte
	id      byte // span id is 8 copies of this byte
	parent  byte // 0 for none
	name    string
	startMS uint64 // start, in ms after a fixed epoch
	durMS   uint64
	err     bool
	attrs   map[string]string
}

func fill[T ~[]byte](b byte, n int) T { return T(bytes.Repeat([]byte{b}, n)) }

// traceRequest builds an export request with one ResourceSpans per span.
func traceRequest(spans ...testSpan) *coltracepb.ExportTraceServiceRequest {
	const epoch = uint64(1_700_000_000_000_000_000)
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, s := range spans {
		ps := &tracepb.Span{
			TraceId:           fill[[]byte](s.trace, 16),
			SpanId:            fill[[]byte](s.id, 8),
			Name:              s.name,
			Kind:              tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: epoch + s.startMS*1e6,
			EndTimeUnixNano:   epoch + (s.startMS+s.durMS)*1e6,
		}
		if s.parent != 0 {
			ps.ParentSpanId = fill[[]byte](s.parent, 8)
		}
		if s.err {
			ps.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"}
		}
		for k, v := range s.attrs {
			ps.Attributes = append(ps.Attributes, strAttr(k, v))
		}
		req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", s.service)}},
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "test"}, Spans: []*tracepb.Span{ps}}},
		})
	}
	return req
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func hexID(b byte, n int) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*n)
	for range n {
		out = append(out, digits[b>>4], digits[b&15])
	}
	return string(out)
}
