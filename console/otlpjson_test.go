package console

import (
	"net/http"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

const (
	jsonTraceID = "5b8efff798038103d269b633813fc60c"
	jsonSpanID  = "eee19b7ec3c1b174"
	jsonChildID = "eee19b7ec3c1b175"
)

// Hand-written OTLP/JSON: hex ids, enums as integers, int64 as strings and
// as a number too large for a float64, and unknown fields.
const (
	jsonTraces = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
 "scopeSpans":[{"scope":{"name":"t"},"spans":[
  {"traceId":"` + jsonTraceID + `","spanId":"` + jsonSpanID + `","name":"GET /","kind":2,
   "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":1700000000500000001,
   "attributes":[{"key":"http.status_code","value":{"intValue":"200"}}],
   "status":{"code":2,"message":"boom"},"futureField":{"x":[1,2]}},
  {"traceId":"` + jsonTraceID + `","spanId":"` + jsonChildID + `","parentSpanId":"` + jsonSpanID + `","name":"child","kind":1,
   "startTimeUnixNano":"1700000000100000000","endTimeUnixNano":"1700000000200000000",
   "links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708"}]}
 ]}]}]}`
	jsonLogs = `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
 "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000150000000","severityNumber":13,"severityText":"WARN",
   "body":{"stringValue":"low stock"},"traceId":"` + jsonTraceID + `","spanId":"` + jsonChildID + `","unknownField":true}]}]}]}`
	jsonMetrics = `{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
 "scopeMetrics":[{"metrics":[{"name":"orders","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,
   "dataPoints":[{"timeUnixNano":"1700000000000000000","asInt":"5",
     "exemplars":[{"timeUnixNano":"1700000000000000000","asInt":"1","traceId":"` + jsonTraceID + `","spanId":"` + jsonSpanID + `"}]}]}}]}]}]}`
)

func TestJSONExport(t *testing.T) {
	c := New(Options{})
	for _, tt := range []struct{ path, body string }{
		{"/v1/traces", jsonTraces}, {"/v1/logs", jsonLogs}, {"/v1/metrics", jsonMetrics},
	} {
		rec := do(t, c.OTLPHandler(), http.MethodPost, tt.path, jsonType, []byte(tt.body))
		if rec.Code != http.StatusOK {
			t.Fatalf("POST %s = %d %s, want 200", tt.path, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != jsonType {
			t.Errorf("POST %s: Content-Type = %q, want %q", tt.path, ct, jsonType)
		}
		if body := strings.TrimSpace(rec.Body.String()); body != "{}" {
			t.Errorf("POST %s: body = %s, want {} (no partial_success)", tt.path, body)
		}
	}

	var got apiTrace
	getJSON(t, c, "/api/traces/"+jsonTraceID, http.StatusOK, &got)
	if len(got.Spans) != 2 {
		t.Fatalf("trace has %d spans, want 2: %+v", len(got.Spans), got.Spans)
	}
	for _, sp := range got.Spans {
		switch sp.SpanID {
		case jsonSpanID:
			if sp.Name != "GET /" || sp.Kind != "server" || sp.Status.Code != "error" || sp.ParentSpanID != "" || sp.Service != "web" {
				t.Errorf("root span = %+v, want GET / server error without parent, service web", sp)
			}
			if sp.DurationNS != 500_000_001 {
				t.Errorf("root span duration = %d ns, want 500000001 (int64 as a JSON number kept exact)", sp.DurationNS)
			}
			if v, ok := sp.Attributes["http.status_code"].(float64); !ok || v != 200 {
				t.Errorf("root span attributes = %v, want http.status_code 200", sp.Attributes)
			}
		case jsonChildID:
			if sp.ParentSpanID != jsonSpanID || sp.Kind != "internal" {
				t.Errorf("child span = %+v, want parent %s kind internal", sp, jsonSpanID)
			}
		default:
			t.Errorf("unexpected span id %q", sp.SpanID)
		}
	}
	if len(got.Logs) != 1 || got.Logs[0].SpanID != jsonChildID || got.Logs[0].Body != "low stock" {
		t.Errorf("trace logs = %+v, want one record of span %s with body %q", got.Logs, jsonChildID, "low stock")
	}

	metrics := c.store.metrics("web")
	if len(metrics) != 1 || metrics[0].Name != "orders" || metrics[0].Kind != kindSum || !metrics[0].Monotonic ||
		len(metrics[0].Points) != 1 || metrics[0].Points[0].Value != 5 {
		t.Errorf("metrics(web) = %+v, want one monotonic sum orders with value 5", metrics)
	}
	if st := c.Stats(); st.Spans.Stored != 2 || st.Logs.Stored != 1 || st.MetricPoints.Stored != 1 {
		t.Errorf("Stats() = %+v, want 2 spans, 1 log, 1 point stored", st)
	}
}

func TestJSONErrors(t *testing.T) {
	tests := []struct {
		name, path, body string
		wantCode         int
		wantMsg          string
	}{
		{"bad span id", "/v1/traces", strings.Replace(jsonTraces, `"spanId":"`+jsonChildID, `"spanId":"not-hex`, 1),
			400, `resourceSpans[0].scopeSpans[0].spans[1].spanId "not-hex"`},
		{"bad parent id", "/v1/traces", strings.Replace(jsonTraces, `"parentSpanId":"`+jsonSpanID, `"parentSpanId":"zz`, 1),
			400, "spans[1].parentSpanId"},
		{"bad link id", "/v1/traces", strings.Replace(jsonTraces, "0102030405060708090a0b0c0d0e0f10", "0x", 1),
			400, "links[0].traceId"},
		{"bad log trace id", "/v1/logs", strings.Replace(jsonLogs, jsonTraceID, "g"+jsonTraceID[1:], 1),
			400, "logRecords[0].traceId"},
		{"bad exemplar span id", "/v1/metrics", strings.Replace(jsonMetrics, `"spanId":"`+jsonSpanID, `"spanId":"abc`, 1),
			400, "exemplars[0].spanId"},
		{"not JSON", "/v1/logs", "{", 400, "decode ExportLogsServiceRequest: invalid JSON"},
		{"trailing data", "/v1/logs", "{}{}", 400, "data after"},
		{"wrong type", "/v1/traces", `{"resourceSpans":{}}`, 400, "decode ExportTraceServiceRequest"},
		{"GET", "/v1/traces", "", 405, "method GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{})
			method := http.MethodPost
			if tt.name == "GET" {
				method = http.MethodGet
			}
			rec := do(t, c.OTLPHandler(), method, tt.path, jsonType, []byte(tt.body))
			if rec.Code != tt.wantCode {
				t.Fatalf("POST %s = %d %s, want %d", tt.path, rec.Code, rec.Body, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != jsonType {
				t.Errorf("Content-Type = %q, want %q", ct, jsonType)
			}
			var st spb.Status
			if err := protojson.Unmarshal(rec.Body.Bytes(), &st); err != nil {
				t.Fatalf("error body %s is not a JSON google.rpc.Status: %v", rec.Body, err)
			}
			if !strings.Contains(st.GetMessage(), tt.wantMsg) || st.GetCode() == 0 {
				t.Errorf("Status = %v, want a code and a message containing %q", &st, tt.wantMsg)
			}
			if c.Stats().Spans.Received != 0 {
				t.Errorf("Stats().Spans.Received = %d after a failed export, want 0", c.Stats().Spans.Received)
			}
		})
	}
}

func TestJSONPartialSuccess(t *testing.T) {
	c := New(Options{})
	// A 2-byte trace id is valid hex but not a valid trace id: the span is
	// rejected and the sender told so.
	body := strings.Replace(jsonTraces, `"traceId":"`+jsonTraceID+`","spanId":"`+jsonChildID, `"traceId":"abcd","spanId":"`+jsonChildID, 1)
	rec := do(t, c.OTLPHandler(), http.MethodPost, "/v1/traces", jsonType, []byte(body))
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /v1/traces = %d %s, want 200", rec.Code, rec.Body)
	}
	var resp coltracepb.ExportTraceServiceResponse
	if err := protojson.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response %s is not a JSON ExportTraceServiceResponse: %v", rec.Body, err)
	}
	if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() != 1 || !strings.Contains(ps.GetErrorMessage(), "trace_id") {
		t.Errorf("partial_success = %v, want 1 rejected span with its trace_id named", ps)
	}
	if !strings.Contains(rec.Body.String(), `"partialSuccess"`) {
		t.Errorf("response %s does not use the OTLP/JSON field name partialSuccess", rec.Body)
	}
}
