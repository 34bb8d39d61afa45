package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// collector records what a fake OTLP receiver got.
type collector struct {
	mu      sync.Mutex
	spans   []string // span names
	logs    []string // log bodies
	metrics []string // metric names
	headers []string // "tenant" header of each request
	service []string // service.name of each resource
}

func (c *collector) traces(req *coltrace.ExportTraceServiceRequest, tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.headers = append(c.headers, tenant)
	for _, rs := range req.GetResourceSpans() {
		c.service = append(c.service, serviceName(rs.GetResource().GetAttributes()))
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, s.GetName())
			}
		}
	}
}

func (c *collector) logRecords(req *collogs.ExportLogsServiceRequest, tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.headers = append(c.headers, tenant)
	for _, rl := range req.GetResourceLogs() {
		for _, sl := range rl.GetScopeLogs() {
			for _, l := range sl.GetLogRecords() {
				c.logs = append(c.logs, l.GetBody().GetStringValue())
			}
		}
	}
}

func (c *collector) metricData(req *colmetrics.ExportMetricsServiceRequest, tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.headers = append(c.headers, tenant)
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				c.metrics = append(c.metrics, m.GetName())
			}
		}
	}
}

// emitAll produces one span, one log record and one counter increment, then
// shuts tel down, which flushes all three.
func emitAll(t *testing.T, tel *Telemetry) {
	t.Helper()
	ctx, span := tel.TracerProvider().Tracer("e2e").Start(t.Context(), "e2e-span")
	tel.Logger().InfoContext(ctx, "e2e-log")
	c, err := tel.MeterProvider().Meter("e2e").Int64Counter("e2e.count")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(ctx, 1)
	span.End()
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func (c *collector) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.spans, "e2e-span") {
		t.Errorf("spans received = %v, want e2e-span", c.spans)
	}
	if !slices.Contains(c.logs, "e2e-log") {
		t.Errorf("logs received = %v, want e2e-log", c.logs)
	}
	if !slices.Contains(c.metrics, "e2e.count") {
		t.Errorf("metrics received = %v, want e2e.count", c.metrics)
	}
	for _, h := range c.headers {
		if h != "acme" {
			t.Errorf("request tenant header = %q, want acme", h)
		}
	}
	if !slices.Contains(c.service, "e2e") {
		t.Errorf("service names = %v, want e2e", c.service)
	}
}

func TestOTLPHTTP(t *testing.T) {
	var c collector
	handle := func(msg proto.Message, record func(string), resp proto.Message) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			if err := proto.Unmarshal(body, msg); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			record(r.Header.Get("tenant"))
			out, _ := proto.Marshal(resp)
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Write(out)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		req := &coltrace.ExportTraceServiceRequest{}
		handle(req, func(h string) { c.traces(req, h) }, &coltrace.ExportTraceServiceResponse{})(w, r)
	})
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		req := &collogs.ExportLogsServiceRequest{}
		handle(req, func(h string) { c.logRecords(req, h) }, &collogs.ExportLogsServiceResponse{})(w, r)
	})
	mux.HandleFunc("POST /v1/metrics", func(w http.ResponseWriter, r *http.Request) {
		req := &colmetrics.ExportMetricsServiceRequest{}
		handle(req, func(h string) { c.metricData(req, h) }, &colmetrics.ExportMetricsServiceResponse{})(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// The environment says grpc and another endpoint; Config wins.
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	tel, err := Setup(t.Context(), Config{
		ServiceName: "e2e",
		Protocol:    ProtocolHTTPProtobuf,
		Endpoint:    srv.URL + "/",
		Headers:     map[string]string{"tenant": "acme"},
		LogOutput:   io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	emitAll(t, tel)
	c.check(t)
}

type grpcCollector struct {
	coltrace.UnimplementedTraceServiceServer
	c *collector
}

func tenant(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("tenant"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (g grpcCollector) Export(ctx context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	g.c.traces(req, tenant(ctx))
	return &coltrace.ExportTraceServiceResponse{}, nil
}

type grpcLogs struct {
	collogs.UnimplementedLogsServiceServer
	c *collector
}

func (g grpcLogs) Export(ctx context.Context, req *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	g.c.logRecords(req, tenant(ctx))
	return &collogs.ExportLogsServiceResponse{}, nil
}

type grpcMetrics struct {
	colmetrics.UnimplementedMetricsServiceServer
	c *collector
}

func (g grpcMetrics) Export(ctx context.Context, req *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	g.c.metricData(req, tenant(ctx))
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

func TestOTLPGRPC(t *testing.T) {
	var c collector
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(s, grpcCollector{c: &c})
	collogs.RegisterLogsServiceServer(s, grpcLogs{c: &c})
	colmetrics.RegisterMetricsServiceServer(s, grpcMetrics{c: &c})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	defer func() {
		s.Stop()
		<-served
	}()

	// Protocol from the environment, endpoint and headers from Config.
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "tenant=from-env")
	tel, err := Setup(t.Context(), Config{
		ServiceName: "e2e",
		Endpoint:    "http://" + ln.Addr().String(),
		Headers:     map[string]string{"tenant": "acme"},
		LogOutput:   io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	emitAll(t, tel)
	c.check(t)
}

func serviceName(attrs []*commonpb.KeyValue) string {
	for _, kv := range attrs {
		if kv.GetKey() == "service.name" {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}
