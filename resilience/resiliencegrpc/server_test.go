package resiliencegrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

// refuser is a rate limiter that refuses everything.
type refuser struct{ retryAfter time.Duration }

func (r refuser) Allow() bool { return false }
func (r refuser) AllowN(time.Time, int) ratelimit.Decision {
	return ratelimit.Decision{RetryAfter: r.retryAfter}
}

var rejectionTests = []struct {
	name         string
	stage        func(t *testing.T) resilience.Stage
	wantCode     codes.Code
	wantPushback string // "" for none
	wantIs       error
}{
	{
		name: "rate limit",
		stage: func(*testing.T) resilience.Stage {
			return resilience.RateLimit("api", refuser{1500 * time.Millisecond})
		},
		wantCode:     codes.ResourceExhausted,
		wantPushback: "1500",
		wantIs:       ratelimit.ErrLimited,
	},
	{
		name:         "rate limit never",
		stage:        func(*testing.T) resilience.Stage { return resilience.RateLimit("api", refuser{ratelimit.Never}) },
		wantCode:     codes.ResourceExhausted,
		wantPushback: "-1",
		wantIs:       ratelimit.ErrLimited,
	},
	{
		name: "breaker open",
		stage: func(t *testing.T) resilience.Stage {
			return failWith(&circuitbreaker.OpenError{Name: "db", State: circuitbreaker.StateOpen, RetryAfter: 2 * time.Second})
		},
		wantCode:     codes.Unavailable,
		wantPushback: "2000",
		wantIs:       circuitbreaker.ErrOpen,
	},
	{
		name: "breaker forced open",
		stage: func(t *testing.T) resilience.Stage {
			b, err := circuitbreaker.New(circuitbreaker.Config{})
			if err != nil {
				t.Fatal(err)
			}
			b.ForceOpen()
			return resilience.CircuitBreaker(b)
		},
		wantCode: codes.Unavailable,
		wantIs:   circuitbreaker.ErrOpen,
	},
	{
		name: "bulkhead full",
		stage: func(*testing.T) resilience.Stage {
			return failWith(&bulkhead.RejectedError{Name: "db", Reason: bulkhead.ReasonQueueFull})
		},
		wantCode: codes.Unavailable,
		wantIs:   bulkhead.ErrFull,
	},
	{
		name:     "adaptive limit",
		stage:    func(*testing.T) resilience.Stage { return failWith(adaptive.ErrLimitExceeded) },
		wantCode: codes.Unavailable,
		wantIs:   adaptive.ErrLimitExceeded,
	},
	{
		name: "shed",
		stage: func(*testing.T) resilience.Stage {
			return failWith(&shed.ShedError{Name: "api", Priority: shed.Sheddable, RetryAfter: 100 * time.Millisecond})
		},
		wantCode:     codes.ResourceExhausted,
		wantPushback: "100",
		wantIs:       shed.ErrShed,
	},
	{
		name:     "wrapped rejection",
		stage:    func(*testing.T) resilience.Stage { return failWith(fmt.Errorf("stage: %w", circuitbreaker.ErrOpen)) },
		wantCode: codes.Unavailable,
		wantIs:   circuitbreaker.ErrOpen,
	},
}

func TestUnaryServerRejections(t *testing.T) {
	for _, tt := range rejectionTests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &testServer{unary: func(context.Context, int, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				return &testpb.SimpleResponse{}, nil
			}}
			var serverErr error
			record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				resp, err := h(ctx, req)
				serverErr = err
				return resp, err
			}
			p := mustPipeline(t, tt.stage(t))
			addr := serve(t, srv, grpc.ChainUnaryInterceptor(record, UnaryServerInterceptor(p, ServerConfig{})))
			client := dial(t, addr)

			var trailer metadata.MD
			_, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("UnaryCall() code = %v, want %v (error %v)", got, tt.wantCode, err)
			}
			checkPushback(t, trailer, tt.wantPushback)
			if n, _, _ := srv.counts(); n != 0 {
				t.Errorf("handler calls = %d, want 0", n)
			}
			// An outer interceptor still sees the pipeline's error.
			if !errors.Is(serverErr, tt.wantIs) {
				t.Errorf("interceptor error = %v, want one matching %v", serverErr, tt.wantIs)
			}
		})
	}
}

func TestStreamServerRejections(t *testing.T) {
	for _, tt := range rejectionTests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &testServer{stream: func(int, *testpb.StreamingOutputCallRequest, grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
				return nil
			}}
			p := mustPipeline(t, tt.stage(t))
			client := dial(t, serve(t, srv, grpc.StreamInterceptor(StreamServerInterceptor(p, ServerConfig{}))))

			stream, err := client.StreamingOutputCall(testCtx(t), &testpb.StreamingOutputCallRequest{})
			if err != nil {
				t.Fatalf("StreamingOutputCall() error = %v", err)
			}
			_, err = stream.Recv()
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("Recv() code = %v, want %v (error %v)", got, tt.wantCode, err)
			}
			checkPushback(t, stream.Trailer(), tt.wantPushback)
			if _, n, _ := srv.counts(); n != 0 {
				t.Errorf("handler calls = %d, want 0", n)
			}
		})
	}
}

func checkPushback(t *testing.T, trailer metadata.MD, want string) {
	t.Helper()
	got := trailer.Get(retry.PushbackKey)
	switch {
	case want == "" && len(got) != 0:
		t.Errorf("trailer %s = %q, want none", retry.PushbackKey, got)
	case want != "" && (len(got) != 1 || got[0] != want):
		t.Errorf("trailer %s = %q, want [%q]", retry.PushbackKey, got, want)
	}
}

func TestUnaryServerTimeout(t *testing.T) {
	srv := &testServer{unary: func(ctx context.Context, _ int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	p := mustPipeline(t, resilience.Timeout(10*time.Millisecond))
	client := dial(t, serve(t, srv, grpc.UnaryInterceptor(UnaryServerInterceptor(p, ServerConfig{}))))

	_, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{})
	if s := status.Convert(err); s.Code() != codes.DeadlineExceeded || s.Message() != "request timed out" {
		t.Errorf("UnaryCall() status = %v, want DEADLINE_EXCEEDED %q", s, "request timed out")
	}
}

func TestUnaryServerHandlerErrors(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		cfg         ServerConfig
		wantFailure bool
	}{
		{"internal is a failure", status.Error(codes.Internal, "boom"), ServerConfig{}, true},
		{"unavailable is a failure", status.Error(codes.Unavailable, "boom"), ServerConfig{}, true},
		{"plain error is UNKNOWN, a failure", errors.New("boom"), ServerConfig{}, true},
		{"invalid argument is a success", status.Error(codes.InvalidArgument, "boom"), ServerConfig{}, false},
		{"not found is a success", status.Error(codes.NotFound, "boom"), ServerConfig{}, false},
		{"configured failure codes", status.Error(codes.NotFound, "boom"), ServerConfig{FailureCodes: []codes.Code{codes.NotFound}}, true},
		{"configured failure codes exclude", status.Error(codes.Internal, "boom"), ServerConfig{FailureCodes: []codes.Code{codes.NotFound}}, false},
		{"success", nil, ServerConfig{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &testServer{unary: func(context.Context, int, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				if tt.err != nil {
					return nil, tt.err
				}
				return &testpb.SimpleResponse{Payload: body("ok")}, nil
			}}
			var rec recorder
			p := mustPipeline(t, rec.stage())
			client := dial(t, serve(t, srv, grpc.UnaryInterceptor(UnaryServerInterceptor(p, tt.cfg))))

			resp, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{})
			// The client gets the handler's own answer either way.
			if want := status.Convert(tt.err); status.Code(err) != want.Code() || status.Convert(err).Message() != want.Message() {
				t.Errorf("UnaryCall() error = %v, want %v", err, tt.err)
			}
			if tt.err == nil && string(resp.GetPayload().GetBody()) != "ok" {
				t.Errorf("UnaryCall() body = %q, want %q", resp.GetPayload().GetBody(), "ok")
			}
			errs := rec.get()
			if len(errs) != 1 {
				t.Fatalf("pipeline calls = %d, want 1", len(errs))
			}
			var se *StatusError
			if got := errors.As(errs[0], &se); got != tt.wantFailure {
				t.Errorf("pipeline saw %v, want a *StatusError: %v", errs[0], tt.wantFailure)
			}
		})
	}
}

func TestServerBreakerOpensOnHandlerFailures(t *testing.T) {
	srv := &testServer{unary: func(context.Context, int, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return nil, status.Error(codes.Internal, "broken")
	}}
	b, err := circuitbreaker.New(circuitbreaker.Config{WindowSize: 2, MinimumCalls: 2, OpenDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p := mustPipeline(t, resilience.CircuitBreaker(b))
	client := dial(t, serve(t, srv, grpc.UnaryInterceptor(UnaryServerInterceptor(p, ServerConfig{}))))

	ctx := testCtx(t)
	for i := range 2 {
		if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); status.Code(err) != codes.Internal {
			t.Fatalf("call %d: UnaryCall() error = %v, want INTERNAL", i, err)
		}
	}
	var trailer metadata.MD
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("UnaryCall() error = %v, want UNAVAILABLE", err)
	}
	if got := trailer.Get(retry.PushbackKey); len(got) != 1 {
		t.Errorf("trailer %s = %q, want the breaker's open time", retry.PushbackKey, got)
	}
	if n, _, _ := srv.counts(); n != 2 {
		t.Errorf("handler calls = %d, want 2", n)
	}
}

func TestStreamServerHandler(t *testing.T) {
	srv := &testServer{stream: func(_ int, _ *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: body("x")}); err != nil {
			return err
		}
		return status.Error(codes.Internal, "after one")
	}}
	var rec recorder
	// A retry in a server pipeline does not run the stream handler twice.
	p := mustPipeline(t, resilience.Retry(retry.Policy{MaxAttempts: 3, Backoff: retry.Backoff{Initial: time.Millisecond}}), rec.stage())
	client := dial(t, serve(t, srv, grpc.StreamInterceptor(StreamServerInterceptor(p, ServerConfig{}))))

	stream, err := client.StreamingOutputCall(testCtx(t), &testpb.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || string(m.GetPayload().GetBody()) != "x" {
		t.Fatalf("Recv() = %v, %v, want x", m, err)
	}
	if _, err := stream.Recv(); err == io.EOF || status.Convert(err).Message() != "after one" {
		t.Errorf("Recv() error = %v, want the handler's INTERNAL", err)
	}
	if _, n, _ := srv.counts(); n != 1 {
		t.Errorf("handler calls = %d, want 1", n)
	}
	if errs := rec.get(); len(errs) != 3 {
		t.Errorf("pipeline attempts = %d, want 3", len(errs))
	}
}

func TestServerErrorContext(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{&bulkhead.RejectedError{Reason: bulkhead.ReasonContext, Err: context.Canceled}, codes.Canceled},
		{&resilience.TimeoutError{After: time.Second, Err: context.DeadlineExceeded}, codes.DeadlineExceeded},
		{&StatusError{Code: codes.NotFound, Err: status.Error(codes.NotFound, "x")}, codes.NotFound},
		// A handler's error is not searched for rejections.
		{&StatusError{Code: codes.Unknown, Err: circuitbreaker.ErrOpen}, codes.Unknown},
	}
	for _, tt := range tests {
		err := serverError(tt.err, func(metadata.MD) {})
		if got := status.Code(err); got != tt.want {
			t.Errorf("serverError(%v) code = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestMillis(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0"},
		{time.Microsecond, "1"},
		{time.Millisecond, "1"},
		{1500 * time.Microsecond, "2"},
		{-time.Second, "-1"},
		{ratelimit.Never, "-1"},
	}
	for _, tt := range tests {
		if got := millis(tt.d); got != tt.want {
			t.Errorf("millis(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
