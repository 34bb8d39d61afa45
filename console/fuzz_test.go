package console

import (
	"net/http"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// fuzzExport posts body to path as contentType, plain and as gzip, and
// checks that the console answers a defined status and can still serve
// what it stored.
func fuzzExport(t *testing.T, c *Console, path, contentType string, body []byte) {
	for _, enc := range []string{"", "gzip"} {
		b := body
		if enc == "gzip" {
			b = gzipBytes(t, body)
		}
		rec := do(t, c.OTLPHandler(), http.MethodPost, path, contentType, b, "Content-Encoding", enc)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("POST %s (encoding %q) = %d, want 200, 400 or 413", path, enc, rec.Code)
		}
	}
	for _, sum := range c.store.recentTraces("", 5) {
		for _, target := range []string{"/traces/" + sum.TraceID.String(), "/api/traces/" + sum.TraceID.String()} {
			if rec := do(t, c.UIHandler(), http.MethodGet, target, "", nil); rec.Code != http.StatusOK {
				t.Fatalf("GET %s = %d %s, want 200", target, rec.Code, rec.Body)
			}
		}
	}
	for _, target := range []string{"/", "/api/logs", "/api/metrics", "/api/stats"} {
		if rec := do(t, c.UIHandler(), http.MethodGet, target, "", nil); rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d %s, want 200", target, rec.Code, rec.Body)
		}
	}
}

func marshal(f *testing.F, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func FuzzTracesDecode(f *testing.F) {
	f.Add(marshal(f, traceRequest(
		testSpan{service: "gateway", trace: 1, id: 1, name: "root", durMS: 10, attrs: map[string]string{"k": "v"}},
		testSpan{service: "order", trace: 1, id: 2, parent: 1, name: "child", startMS: 2, durMS: 5, err: true},
		testSpan{service: "order", trace: 1, id: 3, parent: 3, name: "self parent"},
	)))
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	// One console for all inputs: later inputs meet earlier ones' data and
	// evictions, and the templates are parsed once.
	c := New(Options{MaxSpans: 8, MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzExport(t, c, "/v1/traces", protobufType, body)
	})
}

func FuzzLogsDecode(f *testing.F) {
	nested := &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
		Values: []*commonpb.KeyValue{strAttr("inner", "v")},
	}}}
	f.Add(marshal(f, &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
			TimeUnixNano:   1,
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
			Body:           nested,
			TraceId:        fill[[]byte](1, 16),
			SpanId:         fill[[]byte](2, 8),
			Attributes:     []*commonpb.KeyValue{strAttr("a", "b"), {Key: "nested", Value: nested}},
		}}}},
	}}}))
	f.Add([]byte{})
	// One console for all inputs: later inputs meet earlier ones' data and
	// evictions, and the templates are parsed once.
	c := New(Options{MaxLogs: 8, MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzExport(t, c, "/v1/logs", protobufType, body)
	})
}

func FuzzMetricsDecode(f *testing.F) {
	f.Add(marshal(f, &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: "g", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
				{Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 1.5}},
			}}}},
			{Name: "h", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{DataPoints: []*metricspb.HistogramDataPoint{
				{Count: 2, ExplicitBounds: []float64{1}, BucketCounts: []uint64{1, 1}},
			}}}},
			{Name: "s", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{
				{Count: 1, QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{{Quantile: 0.5, Value: 2}}},
			}}}},
		}}},
	}}}))
	f.Add([]byte{})
	// One console for all inputs: later inputs meet earlier ones' data and
	// evictions, and the templates are parsed once.
	c := New(Options{MaxPoints: 8, MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzExport(t, c, "/v1/metrics", protobufType, body)
	})
}

// The OTLP/JSON fuzz targets start from hand-written OTLP/JSON (hex ids,
// integer enums, int64 as strings and numbers, unknown fields).

func FuzzTracesJSONDecode(f *testing.F) {
	f.Add([]byte(jsonTraces))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`))
	f.Add([]byte(`{}`))
	c := New(Options{MaxSpans: 8, MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzExport(t, c, "/v1/traces", jsonType, body)
	})
}

func FuzzLogsJSONDecode(f *testing.F) {
	f.Add([]byte(jsonLogs))
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"kvlistValue":{"values":[{"key":"k","value":{"arrayValue":{"values":[{"intValue":"1"}]}}}]}}}]}]}]}`))
	f.Add([]byte(`{}`))
	c := New(Options{MaxLogs: 8, MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzExport(t, c, "/v1/logs", jsonType, body)
	})
}

func FuzzMetricsJSONDecode(f *testing.F) {
	f.Add([]byte(jsonMetrics))
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"dataPoints":[{"count":"2","explicitBounds":[1],"bucketCounts":["1","1"]}]}}]}]}]}`))
	f.Add([]byte(`{}`))
	c := New(Options{MaxPoints: 8, MaxBodyBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzExport(t, c, "/v1/metrics", jsonType, body)
	})
}
