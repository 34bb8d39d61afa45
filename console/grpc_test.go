package console

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	grpcstatus "google.golang.org/grpc/status"
)

// serveGRPC serves c's OTLP/gRPC services on a loopback listener and
// returns a gzip-compressing client connection; both are stopped when the
// test ends.
func serveGRPC(t *testing.T, c *Console) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := c.NewGRPCServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn
}

func TestGRPCExport(t *testing.T) {
	c := New(Options{})
	conn := serveGRPC(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	tresp, err := coltracepb.NewTraceServiceClient(conn).Export(ctx, traceRequest(
		testSpan{service: "grpc", trace: 7, id: 1, name: "root"},
		testSpan{service: "grpc", trace: 7, id: 2, parent: 1, name: "child"},
		testSpan{service: "grpc", trace: 0, id: 3, name: "no trace id"},
	))
	if err != nil {
		t.Fatalf("TraceService.Export: %v", err)
	}
	if ps := tresp.GetPartialSuccess(); ps.GetRejectedSpans() != 1 {
		t.Errorf("traces partial_success = %v, want 1 rejected span", ps)
	}

	lresp, err := collogspb.NewLogsServiceClient(conn).Export(ctx, &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
			{TimeUnixNano: 1, Body: strAttr("", "hello").Value, TraceId: fill[[]byte](7, 16), SpanId: fill[[]byte](2, 8)},
			{TimeUnixNano: 1, TraceId: []byte{1}},
		}}},
	}}})
	if err != nil {
		t.Fatalf("LogsService.Export: %v", err)
	}
	if ps := lresp.GetPartialSuccess(); ps.GetRejectedLogRecords() != 1 {
		t.Errorf("logs partial_success = %v, want 1 rejected record", ps)
	}

	mresp, err := colmetricspb.NewMetricsServiceClient(conn).Export(ctx, &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: traceRequest(testSpan{service: "grpc"}).ResourceSpans[0].Resource,
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: "queue", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
				{TimeUnixNano: 1, Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 4}},
			}}}},
		}}},
	}}})
	if err != nil {
		t.Fatalf("MetricsService.Export: %v", err)
	}
	if mresp.GetPartialSuccess() != nil {
		t.Errorf("metrics partial_success = %v, want none", mresp.GetPartialSuccess())
	}

	var got apiTrace
	getJSON(t, c, "/api/traces/07070707070707070707070707070707", 200, &got)
	if len(got.Spans) != 2 || len(got.Logs) != 1 || got.Logs[0].Body != "hello" {
		t.Errorf("trace = %d spans, logs %+v; want 2 spans and the log %q", len(got.Spans), got.Logs, "hello")
	}
	if m := c.store.metrics("grpc"); len(m) != 1 || m[0].Name != "queue" || m[0].Points[0].Value != 4 {
		t.Errorf("metrics(grpc) = %+v, want gauge queue = 4", m)
	}
}

func TestGRPCLoadShedding(t *testing.T) {
	c := New(Options{MaxInFlightExports: 1})
	conn := serveGRPC(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if !c.acquire() { // hold the only slot, as an export in flight would
		t.Fatal("acquire on an idle console = false")
	}
	_, err := coltracepb.NewTraceServiceClient(conn).Export(ctx, traceRequest(testSpan{service: "a", trace: 1, id: 1}))
	st := grpcstatus.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("Export while the bound is reached: %v, want RESOURCE_EXHAUSTED", err)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != time.Second {
		t.Errorf("RetryInfo.retry_delay = %v (details %v), want 1s", delay, st.Details())
	}
	if got := c.Stats().Shed; got != 1 {
		t.Errorf("Stats().Shed = %d, want 1", got)
	}
	c.release()
	if _, err := coltracepb.NewTraceServiceClient(conn).Export(ctx, traceRequest(testSpan{service: "a", trace: 1, id: 1})); err != nil {
		t.Errorf("Export after the slot was freed: %v", err)
	}
}

// garbageCodec sends bytes that are not an OTLP message, so the server
// fails to decode the request.
type garbageCodec struct{}

func (garbageCodec) Marshal(any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer{0xff, 0xff, 0xff}}, nil
}
func (garbageCodec) Unmarshal(mem.BufferSlice, any) error { return nil }
func (garbageCodec) Name() string                         { return "proto" }

// TestGRPCShedsBeforeReading checks that NewGRPCServer refuses an export
// over the in-flight bound before reading its message (a message over the
// size limit is refused for the bound, not for its size), and that every
// call frees its slot however it ends: success, a message that cannot be
// decoded, a refusal for size.
func TestGRPCShedsBeforeReading(t *testing.T) {
	c := New(Options{MaxInFlightExports: 1, MaxBodyBytes: 1 << 10})
	conn := serveGRPC(t, c)
	client := coltracepb.NewTraceServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	huge := traceRequest(testSpan{service: "a", trace: 1, id: 1, name: strings.Repeat("x", 4<<10)})

	if !c.acquire() {
		t.Fatal("acquire on an idle console = false")
	}
	_, err := client.Export(ctx, huge)
	if st := grpcstatus.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "in flight") {
		t.Fatalf("Export of an oversized message while the bound is reached: %v, want RESOURCE_EXHAUSTED for the in-flight bound", err)
	}
	c.release()

	// With the slot free, the same message is refused for its size...
	if _, err := client.Export(ctx, huge); grpcstatus.Code(err) != codes.ResourceExhausted || strings.Contains(err.Error(), "in flight") {
		t.Fatalf("oversized Export with a free slot: %v, want RESOURCE_EXHAUSTED for the size", err)
	}
	// ... a message that cannot be decoded fails ...
	if err := conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", struct{}{}, new(struct{}), grpc.ForceCodecV2(garbageCodec{})); grpcstatus.Code(err) != codes.Internal {
		t.Fatalf("undecodable Export: %v, want INTERNAL", err)
	}
	// ... and neither kept the only slot. A call that never reached its
	// handler frees it when gRPC reports its end, just after the status
	// was sent: wait for that.
	deadline := time.Now().Add(5 * time.Second)
	for len(c.inflight) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slot of the undecodable export was never freed")
		}
		time.Sleep(time.Millisecond)
	}
	// A handled call frees its slot before its response is sent: 20
	// exports in a row succeed at once.
	for i := range 20 {
		if _, err := client.Export(ctx, traceRequest(testSpan{service: "a", trace: 2, id: byte(i + 1)})); err != nil {
			t.Fatalf("export %d after refusals and failures: %v (a slot leaked)", i, err)
		}
	}
	if got := c.Stats().Shed; got != 1 {
		t.Errorf("Stats().Shed = %d, want 1", got)
	}
}
