package console

import (
	"context"
	"sync/atomic"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor so servers accept gzip-compressed exports
	"google.golang.org/grpc/stats"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
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
//
// Unlike a server the caller builds, it sheds exports over the in-flight
// bound before reading them: a tap handle takes the slot when the stream
// opens and refuses it with RESOURCE_EXHAUSTED at once, so refusing costs
// no decoding and no memory for the request, and a stats handler frees
// the slot when the call ends. Do not pass another grpc.InTapHandle in
// opts: gRPC keeps only one.
func (c *Console) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	all := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(c.maxBody)),
		grpc.InTapHandle(c.tapShed),
		grpc.StatsHandler(slotReleaser{c}),
	}, opts...)
	s := grpc.NewServer(all...)
	c.RegisterGRPC(s)
	return s
}

// otlpMethods are the gRPC methods of the OTLP export services.
var otlpMethods = map[string]bool{
	"/" + coltracepb.TraceService_ServiceDesc.ServiceName + "/Export":     true,
	"/" + colmetricspb.MetricsService_ServiceDesc.ServiceName + "/Export": true,
	"/" + collogspb.LogsService_ServiceDesc.ServiceName + "/Export":       true,
}

// slotKey marks the context of a call that holds an in-flight slot taken
// by tapShed.
type slotKey struct{}

// slot is the in-flight slot of one call; released makes its release
// happen once.
type slot struct{ released atomic.Bool }

// tapShed takes an in-flight slot for an OTLP export as its stream opens,
// before its message is read, or refuses it with RESOURCE_EXHAUSTED.
func (c *Console) tapShed(ctx context.Context, info *tap.Info) (context.Context, error) {
	if !otlpMethods[info.FullMethodName] {
		return ctx, nil
	}
	if !c.acquire() {
		return nil, c.errExhausted()
	}
	return context.WithValue(ctx, slotKey{}, &slot{}), nil
}

// takeSlot takes an in-flight slot for an export handled by ctx's call,
// or uses the one tapShed took. release frees the slot as the handler
// returns, before the response is sent, so that a client's next call
// finds it free; the stats handler frees a tapped slot only for a call
// that never reached its handler (a message that could not be decoded).
func (c *Console) takeSlot(ctx context.Context) (release func(), ok bool) {
	if sl, tapped := ctx.Value(slotKey{}).(*slot); tapped {
		return func() { c.releaseSlot(sl) }, true
	}
	if !c.acquire() {
		return nil, false
	}
	return c.release, true
}

// slotReleaser is the stats handler that frees the slot tapShed took
// when the call ends, if the handler has not already: a call whose
// message could not be decoded never reaches it.
type slotReleaser struct{ c *Console }

func (slotReleaser) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (slotReleaser) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (slotReleaser) HandleConn(context.Context, stats.ConnStats) {}

func (h slotReleaser) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, end := s.(*stats.End); !end {
		return
	}
	if sl, ok := ctx.Value(slotKey{}).(*slot); ok {
		h.c.releaseSlot(sl)
	}
}

// releaseSlot frees a slot taken by tapShed, once, whoever asks first.
func (c *Console) releaseSlot(sl *slot) {
	if sl.released.CompareAndSwap(false, true) {
		c.release()
	}
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
	release, ok := g.c.takeSlot(ctx)
	if !ok {
		return nil, g.c.errExhausted()
	}
	defer release()
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
	release, ok := g.c.takeSlot(ctx)
	if !ok {
		return nil, g.c.errExhausted()
	}
	defer release()
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
	release, ok := g.c.takeSlot(ctx)
	if !ok {
		return nil, g.c.errExhausted()
	}
	defer release()
	resp, err := g.c.consumeMetrics(ctx, req)
	if err != nil {
		return nil, grpcUnavailable(ctx, err)
	}
	return resp, nil
}
