package console

import (
	"context"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor so servers accept gzip-compressed exports
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// RegisterGRPC registers the OTLP/gRPC TraceService, MetricsService and
// LogsService on s. They store into the same Console as [Console.OTLPHandler],
// answer partial_success for rejected items like it, and share its
// Options.MaxInFlightExports bound: an export over it fails at once with
// RESOURCE_EXHAUSTED and a google.rpc.RetryInfo asking for a retry after
// one second. After [Console.Close] of a persisting Console, exports fail
// with UNAVAILABLE.
//
// The request size limit is the server's: create s with
// grpc.MaxRecvMsgSize(console.DefaultMaxBodyBytes) (gRPC's own default is
// 4 MiB), or use [Console.NewGRPCServer]. gzip-compressed requests are
// accepted, since this package registers gRPC's gzip compressor.
func (c *Console) RegisterGRPC(s *grpc.Server) {
	coltracepb.RegisterTraceServiceServer(s, grpcTraces{c: c})
	colmetricspb.RegisterMetricsServiceServer(s, grpcMetrics{c: c})
	collogspb.RegisterLogsServiceServer(s, grpcLogs{c: c})
}

// NewGRPCServer returns a gRPC server with the OTLP services registered
// (see [Console.RegisterGRPC]) and a receive limit of
// Options.MaxBodyBytes; opts are applied after that limit and may
// override it. The caller serves it on a listener (conventionally port
// 4317) and stops it.
func (c *Console) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	all := append([]grpc.ServerOption{grpc.MaxRecvMsgSize(int(c.maxBody))}, opts...)
	s := grpc.NewServer(all...)
	c.RegisterGRPC(s)
	return s
}

// errExhausted returns the gRPC error for an export shed over the
// in-flight bound: RESOURCE_EXHAUSTED with a RetryInfo of one second,
// which the OTLP specification makes retryable.
func (c *Console) errExhausted() error {
	st := grpcstatus.Newf(codes.ResourceExhausted, "console: more than %d exports in flight; retry later", cap(c.inflight))
	withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
	if err != nil {
		// WithDetails fails only for a message that cannot be marshalled.
		return st.Err()
	}
	return withInfo.Err()
}

// grpcUnavailable returns the gRPC error for an export that could not be
// persisted: the context's status when the client gave up, else
// UNAVAILABLE, which OTLP exporters retry.
func grpcUnavailable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return grpcstatus.FromContextError(ctx.Err()).Err()
	}
	return grpcstatus.Error(codes.Unavailable, err.Error())
}

// grpcTraces is the OTLP/gRPC TraceService of a Console.
type grpcTraces struct {
	coltracepb.UnimplementedTraceServiceServer
	c *Console
}

// Export stores the spans of req.
func (g grpcTraces) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if !g.c.acquire() {
		return nil, g.c.errExhausted()
	}
	defer g.c.release()
	resp, err := g.c.consumeTraces(ctx, req)
	if err != nil {
		return nil, grpcUnavailable(ctx, err)
	}
	return resp, nil
}

// grpcLogs is the OTLP/gRPC LogsService of a Console.
type grpcLogs struct {
	collogspb.UnimplementedLogsServiceServer
	c *Console
}

// Export stores the log records of req.
func (g grpcLogs) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	if !g.c.acquire() {
		return nil, g.c.errExhausted()
	}
	defer g.c.release()
	resp, err := g.c.consumeLogs(ctx, req)
	if err != nil {
		return nil, grpcUnavailable(ctx, err)
	}
	return resp, nil
}

// grpcMetrics is the OTLP/gRPC MetricsService of a Console.
type grpcMetrics struct {
	colmetricspb.UnimplementedMetricsServiceServer
	c *Console
}

// Export stores the metric data points of req.
func (g grpcMetrics) Export(ctx context.Context, req *colmetricspb.ExportMetricsServiceRequest) (*colmetricspb.ExportMetricsServiceResponse, error) {
	if !g.c.acquire() {
		return nil, g.c.errExhausted()
	}
	defer g.c.release()
	resp, err := g.c.consumeMetrics(ctx, req)
	if err != nil {
		return nil, grpcUnavailable(ctx, err)
	}
	return resp, nil
}
