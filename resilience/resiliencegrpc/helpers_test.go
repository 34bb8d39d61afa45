package resiliencegrpc

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/retry"
)

// testServer implements the interop TestService with functions the tests
// set; it counts the calls of each method.
type testServer struct {
	testpb.UnimplementedTestServiceServer

	unary  func(ctx context.Context, n int, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error)
	stream func(n int, req *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error

	mu              sync.Mutex
	unaryN, streamN int
	emptyN          int
	emptyCall       func(ctx context.Context) error
}

func (s *testServer) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.mu.Lock()
	s.unaryN++
	n := s.unaryN
	s.mu.Unlock()
	return s.unary(ctx, n, req)
}

func (s *testServer) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, ss grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	s.mu.Lock()
	s.streamN++
	n := s.streamN
	s.mu.Unlock()
	return s.stream(n, req, ss)
}

func (s *testServer) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	s.mu.Lock()
	s.emptyN++
	s.mu.Unlock()
	if s.emptyCall != nil {
		if err := s.emptyCall(ctx); err != nil {
			return nil, err
		}
	}
	return &testpb.Empty{}, nil
}

func (s *testServer) counts() (unary, stream, empty int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unaryN, s.streamN, s.emptyN
}

// serve starts srv on a loopback port and returns its address; the server
// stops with t.
func serve(t *testing.T, srv *testServer, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(s, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	return lis.Addr().String()
}

// dial returns a client of addr, closed with t.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) testpb.TestServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testpb.NewTestServiceClient(conn)
}

func mustPipeline(t *testing.T, stages ...resilience.Stage) *resilience.Pipeline[struct{}] {
	t.Helper()
	p, err := resilience.New[struct{}](stages...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func retryPolicy(attempts int) retry.Policy {
	return retry.Policy{
		MaxAttempts: attempts,
		Backoff:     retry.Backoff{Kind: retry.KindConstant, Initial: time.Millisecond},
		Pushback:    Pushback,
	}
}

// policyFunc is a custom pipeline stage.
type policyFunc func(ctx context.Context, next resilience.Next[struct{}]) (struct{}, error)

func (f policyFunc) Execute(ctx context.Context, next resilience.Next[struct{}]) (struct{}, error) {
	return f(ctx, next)
}

// recorder is a stage that records the errors the rest of the pipeline
// returns.
type recorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *recorder) stage() resilience.Stage {
	return resilience.Custom[struct{}](policyFunc(func(ctx context.Context, next resilience.Next[struct{}]) (struct{}, error) {
		v, err := next.Run(ctx)
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		return v, err
	}))
}

func (r *recorder) get() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// failWith is a stage that fails every call with err.
func failWith(err error) resilience.Stage {
	return resilience.Custom[struct{}](policyFunc(func(context.Context, resilience.Next[struct{}]) (struct{}, error) {
		return struct{}{}, err
	}))
}

// testCtx returns a context that ends with t or after a generous bound
// that only a broken implementation reaches.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }
