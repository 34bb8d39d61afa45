package resiliencegrpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/hedge"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/resiliencegrpc"
	"github.com/cairnhq/cairn/resilience/retry"
)

// flaky answers UnaryCall with UNAVAILABLE twice, then with "hello".
type flaky struct {
	testpb.UnimplementedTestServiceServer
	calls atomic.Int32
}

func (f *flaky) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if f.calls.Add(1) <= 2 {
		// Ask the client to wait 1ms before retrying (gRPC proposal A6).
		_ = grpc.SetTrailer(ctx, metadata.Pairs(retry.PushbackKey, "1"))
		return nil, status.Error(codes.Unavailable, "warming up")
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: []byte("hello")}}, nil
}

// start serves srv on a loopback port with opts; stop stops it.
func start(srv testpb.TestServiceServer, opts ...grpc.ServerOption) (addr string, stop func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(s, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	return lis.Addr().String(), func() { s.Stop(); <-done }
}

func ExampleUnaryClientInterceptor() {
	srv := &flaky{}
	addr, stop := start(srv)
	defer stop()

	breaker, err := circuitbreaker.New(circuitbreaker.Config{Name: "greeter"})
	if err != nil {
		log.Fatal(err)
	}
	p, err := resilience.New[struct{}](
		// Retry UNAVAILABLE only, honouring the server's pushback.
		resilience.Retry(retry.Policy{MaxAttempts: 5, Pushback: resiliencegrpc.Pushback}),
		resilience.CircuitBreaker(breaker),
		resilience.Timeout(5*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(resiliencegrpc.UnaryClientInterceptor(p, resiliencegrpc.ClientConfig{})),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	resp, err := testpb.NewTestServiceClient(conn).UnaryCall(context.Background(), &testpb.SimpleRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s after %d calls\n", resp.GetPayload().GetBody(), srv.calls.Load())
	// Output: hello after 3 calls
}

// never is a rate limiter that refuses every call for a second.
type never struct{}

func (never) Allow() bool { return false }
func (never) AllowN(time.Time, int) ratelimit.Decision {
	return ratelimit.Decision{RetryAfter: time.Second}
}

func ExampleUnaryServerInterceptor() {
	p, err := resilience.New[struct{}](resilience.RateLimit("api", never{}))
	if err != nil {
		log.Fatal(err)
	}
	addr, stop := start(&flaky{}, grpc.UnaryInterceptor(resiliencegrpc.UnaryServerInterceptor(p, resiliencegrpc.ServerConfig{})))
	defer stop()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	var trailer metadata.MD
	_, err = testpb.NewTestServiceClient(conn).UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	s := status.Convert(err)
	fmt.Println(s.Code(), s.Message())
	fmt.Println(retry.PushbackKey, trailer.Get(retry.PushbackKey))
	// Output:
	// ResourceExhausted rate limit exceeded
	// grpc-retry-pushback-ms [1000]
}

func ExampleUnaryClientHedgeInterceptor() {
	h, err := hedge.New(hedge.Config{Name: "search", MaxHedges: 2}, nil)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("dns:///search.example:443",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(
			// Only idempotent methods may be hedged.
			resiliencegrpc.UnaryClientHedgeInterceptor(h, resiliencegrpc.HedgeConfig{
				Hedgeable: resiliencegrpc.Methods("/search.Search/Query"),
			}),
		),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
}
