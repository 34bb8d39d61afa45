// Package shoprpc builds the gRPC servers and client connections of the
// reference shop's services, with the interceptors every call between
// them carries:
//
//   - OpenTelemetry's stats handlers (otelgrpc): a server span and a client
//     span per call, the W3C trace context in the gRPC metadata, so one
//     checkout is one trace across the services, and the RPC metrics of
//     the semantic conventions;
//   - the resilience pipelines (resiliencegrpc): on the client, the
//     pipeline of the dependency (retry of UNAVAILABLE with the server's
//     pushback, a circuit breaker, a timeout); on the server, admission
//     control (a bulkhead, a timeout).
package shoprpc

import (
	"fmt"
	"math"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/resiliencegrpc"
)

// Telemetry is what the interceptors need of a service's telemetry;
// *telemetry.Telemetry implements it.
type Telemetry interface {
	TracerProvider() trace.TracerProvider
	MeterProvider() metric.MeterProvider
	Propagator() propagation.TextMapPropagator
}

func otelOptions(tel Telemetry) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tel.TracerProvider()),
		otelgrpc.WithMeterProvider(tel.MeterProvider()),
		otelgrpc.WithPropagators(tel.Propagator()),
	}
}

// NewServer returns a gRPC server whose calls are traced and measured
// with tel and admitted through pipeline (nil admits every call).
func NewServer(tel Telemetry, pipeline resilience.Executor[struct{}], opts ...grpc.ServerOption) *grpc.Server {
	base := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelOptions(tel)...)),
		grpc.ChainUnaryInterceptor(resiliencegrpc.UnaryServerInterceptor(pipeline, resiliencegrpc.ServerConfig{})),
		grpc.ChainStreamInterceptor(resiliencegrpc.StreamServerInterceptor(pipeline, resiliencegrpc.ServerConfig{})),
	}
	return grpc.NewServer(append(base, opts...)...)
}

// Dial returns a connection to the service at target (host:port, no
// TLS: the shop's services talk over loopback or a cluster network that
// a mesh secures), whose unary calls go through pipeline (nil: none) and
// whose calls are traced and measured with tel. The connection connects
// lazily, at its first call.
func Dial(target string, tel Telemetry, pipeline resilience.Executor[struct{}], opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelOptions(tel)...)),
		grpc.WithChainUnaryInterceptor(resiliencegrpc.UnaryClientInterceptor(pipeline, resiliencegrpc.ClientConfig{})),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	}
	conn, err := grpc.NewClient(target, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("shoprpc: dial %s: %w", target, err)
	}
	return conn, nil
}
