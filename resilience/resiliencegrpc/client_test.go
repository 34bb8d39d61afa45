package resiliencegrpc

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

func body(s string) *testpb.Payload { return &testpb.Payload{Body: []byte(s)} }

func TestUnaryRetryThenSuccess(t *testing.T) {
	srv := &testServer{unary: func(ctx context.Context, n int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if n < 3 {
			return nil, status.Error(codes.Unavailable, "not yet")
		}
		return &testpb.SimpleResponse{Payload: body("ok")}, nil
	}}
	var rec recorder
	p := mustPipeline(t, resilience.Retry(retryPolicy(5)), rec.stage())
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(UnaryClientInterceptor(p, ClientConfig{})))

	resp, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{})
	if err != nil {
		t.Fatalf("UnaryCall() error = %v", err)
	}
	if got := string(resp.GetPayload().GetBody()); got != "ok" {
		t.Errorf("UnaryCall() body = %q, want %q", got, "ok")
	}
	if n, _, _ := srv.counts(); n != 3 {
		t.Errorf("server calls = %d, want 3", n)
	}
	errs := rec.get()
	if len(errs) != 3 || errs[2] != nil {
		t.Fatalf("attempt errors = %v, want two failures and a success", errs)
	}
	for _, err := range errs[:2] {
		var se *StatusError
		if !errors.As(err, &se) || se.Code != codes.Unavailable || !se.Retryable {
			t.Errorf("attempt error = %#v, want a retryable *StatusError UNAVAILABLE", err)
		}
	}
}

func TestUnaryFailureAndAnswerCodes(t *testing.T) {
	tests := []struct {
		name        string
		code        codes.Code
		wantFailure bool // the pipeline sees a *StatusError
	}{
		{"failure code is not retried", codes.Internal, true},
		{"answer code is a success", codes.InvalidArgument, false},
		{"not found is a success", codes.NotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &testServer{unary: func(context.Context, int, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				return nil, status.Error(tt.code, "server says no")
			}}
			var rec recorder
			p := mustPipeline(t, resilience.Retry(retryPolicy(5)), rec.stage())
			client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(UnaryClientInterceptor(p, ClientConfig{})))

			_, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{})
			if s := status.Convert(err); s.Code() != tt.code || s.Message() != "server says no" {
				t.Errorf("UnaryCall() status = %v, want %v %q", s, tt.code, "server says no")
			}
			if n, _, _ := srv.counts(); n != 1 {
				t.Errorf("server calls = %d, want 1", n)
			}
			errs := rec.get()
			if len(errs) != 1 {
				t.Fatalf("attempts = %d, want 1", len(errs))
			}
			var se *StatusError
			if got := errors.As(errs[0], &se); got != tt.wantFailure {
				t.Errorf("attempt error = %v, want a *StatusError: %v", errs[0], tt.wantFailure)
			}
			if se != nil && se.Retryable {
				t.Errorf("StatusError.Retryable = true, want false")
			}
		})
	}
}

func TestUnaryRetriesExhausted(t *testing.T) {
	srv := &testServer{unary: func(context.Context, int, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return nil, status.Error(codes.Unavailable, "down")
	}}
	p := mustPipeline(t, resilience.Retry(retryPolicy(3)))
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(UnaryClientInterceptor(p, ClientConfig{})))

	_, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{})
	// The caller sees the server's own status, not the retry's error.
	if s := status.Convert(err); s.Code() != codes.Unavailable || s.Message() != "down" {
		t.Errorf("UnaryCall() status = %v, want UNAVAILABLE %q", s, "down")
	}
	var re *retry.Error
	if errors.As(err, &re) {
		t.Errorf("UnaryCall() error = %v, want the server's error unwrapped", err)
	}
	if n, _, _ := srv.counts(); n != 3 {
		t.Errorf("server calls = %d, want 3", n)
	}
}

func TestUnaryRetryableCodesConfigurable(t *testing.T) {
	srv := &testServer{unary: func(_ context.Context, n int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if n == 1 {
			return nil, status.Error(codes.ResourceExhausted, "busy")
		}
		return &testpb.SimpleResponse{}, nil
	}}
	p := mustPipeline(t, resilience.Retry(retryPolicy(3)))
	cfg := ClientConfig{RetryableCodes: []codes.Code{codes.Unavailable, codes.ResourceExhausted}}
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(UnaryClientInterceptor(p, cfg)))
	if _, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{}); err != nil {
		t.Fatalf("UnaryCall() error = %v", err)
	}
	if n, _, _ := srv.counts(); n != 2 {
		t.Errorf("server calls = %d, want 2", n)
	}
}

func TestUnaryPushback(t *testing.T) {
	tests := []struct {
		name      string
		pushback  string
		wantCalls int
		wantErr   bool
	}{
		// The backoff is an hour: only the pushback lets the call finish.
		{"delay replaces backoff", "1", 3, false},
		{"negative stops retrying", "-1", 1, true},
		{"malformed stops retrying", "soon", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &testServer{unary: func(ctx context.Context, n int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
				if n < 3 {
					_ = grpc.SetTrailer(ctx, metadata.Pairs(retry.PushbackKey, tt.pushback))
					return nil, status.Error(codes.Unavailable, "later")
				}
				return &testpb.SimpleResponse{}, nil
			}}
			pol := retryPolicy(3)
			pol.Backoff.Initial = time.Hour
			p := mustPipeline(t, resilience.Retry(pol))
			client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(UnaryClientInterceptor(p, ClientConfig{})))

			var trailer metadata.MD
			_, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
			if (err != nil) != tt.wantErr {
				t.Fatalf("UnaryCall() error = %v, want error: %v", err, tt.wantErr)
			}
			if tt.wantErr && status.Code(err) != codes.Unavailable {
				t.Errorf("UnaryCall() code = %v, want UNAVAILABLE", status.Code(err))
			}
			if n, _, _ := srv.counts(); n != tt.wantCalls {
				t.Errorf("server calls = %d, want %d", n, tt.wantCalls)
			}
			// The caller's own Trailer option sees the last attempt's trailer.
			if got := trailer.Get(retry.PushbackKey); tt.wantErr && (len(got) != 1 || got[0] != tt.pushback) {
				t.Errorf("caller's trailer %s = %q, want [%q]", retry.PushbackKey, got, tt.pushback)
			}
		})
	}
}

func TestPushbackFunc(t *testing.T) {
	tests := []struct {
		name                   string
		err                    error
		wantD                  time.Duration
		wantRetry, wantPresent bool
	}{
		{"other error", errors.New("x"), 0, false, false},
		{"retryable without pushback", &StatusError{Code: codes.Unavailable, Retryable: true}, 0, false, false},
		{"retryable with pushback", &StatusError{Code: codes.Unavailable, Retryable: true, Pushback: time.Second, HasPushback: true}, time.Second, true, true},
		{"not retryable", &StatusError{Code: codes.Internal}, 0, false, true},
		{"wrapped", &retry.Error{Err: &StatusError{Code: codes.Internal}}, 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, r, present := Pushback(tt.err)
			if d != tt.wantD || r != tt.wantRetry || present != tt.wantPresent {
				t.Errorf("Pushback() = %v, %v, %v, want %v, %v, %v", d, r, present, tt.wantD, tt.wantRetry, tt.wantPresent)
			}
		})
	}
}

func TestUnaryBreakerOpens(t *testing.T) {
	srv := &testServer{unary: func(context.Context, int, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		return nil, status.Error(codes.Internal, "broken")
	}}
	b, err := circuitbreaker.New(circuitbreaker.Config{WindowSize: 2, MinimumCalls: 2, OpenDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p := mustPipeline(t, resilience.CircuitBreaker(b))
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(UnaryClientInterceptor(p, ClientConfig{})))

	ctx := testCtx(t)
	for i := range 2 {
		if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); status.Code(err) != codes.Internal {
			t.Fatalf("call %d: UnaryCall() error = %v, want INTERNAL", i, err)
		}
	}
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{})
	if !errors.Is(err, circuitbreaker.ErrOpen) {
		t.Errorf("UnaryCall() error = %v, want circuitbreaker.ErrOpen", err)
	}
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("status.Code(UnaryCall()) = %v, want UNAVAILABLE", got)
	}
	if n, _, _ := srv.counts(); n != 2 {
		t.Errorf("server calls = %d, want 2", n)
	}
}

func TestUnaryTimeoutStage(t *testing.T) {
	// The server learns the deadline too, and may reset the call at its
	// deadline, before the client's context timer fires: the interceptor
	// must still report the stage's timeout.
	srv := &testServer{unary: func(ctx context.Context, _ int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}}
	p := mustPipeline(t, resilience.Timeout(10*time.Millisecond))
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(UnaryClientInterceptor(p, ClientConfig{})))

	_, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{})
	if !errors.Is(err, resilience.ErrTimeout) || status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("UnaryCall() error = %v (code %v), want resilience.ErrTimeout with DEADLINE_EXCEEDED", err, status.Code(err))
	}
}

func TestUnaryCanceledContext(t *testing.T) {
	srv := &testServer{}
	p := mustPipeline(t)
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(UnaryClientInterceptor(p, ClientConfig{})))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	if !errors.Is(err, context.Canceled) || status.Code(err) != codes.Canceled {
		t.Errorf("UnaryCall() error = %v (code %v), want context.Canceled with CANCELED", err, status.Code(err))
	}
}

func TestStreamEstablished(t *testing.T) {
	srv := &testServer{stream: func(_ int, _ *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
		for _, b := range []string{"a", "b", "c"} {
			if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: body(b)}); err != nil {
				return err
			}
		}
		return nil
	}}
	var rec recorder
	p := mustPipeline(t, resilience.Retry(retryPolicy(3)), rec.stage(), resilience.Timeout(time.Minute))
	client := dial(t, serve(t, srv), grpc.WithStreamInterceptor(StreamClientInterceptor(p, ClientConfig{})))

	stream, err := client.StreamingOutputCall(testCtx(t), &testpb.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatalf("StreamingOutputCall() error = %v", err)
	}
	var got string
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv() error = %v", err)
		}
		got += string(m.GetPayload().GetBody())
	}
	if got != "abc" {
		t.Errorf("received %q, want %q", got, "abc")
	}
	if errs := rec.get(); len(errs) != 1 || errs[0] != nil {
		t.Errorf("attempt errors = %v, want one success", errs)
	}
}

func TestStreamErrorAfterEstablishmentNotRetried(t *testing.T) {
	srv := &testServer{stream: func(int, *testpb.StreamingOutputCallRequest, grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
		return status.Error(codes.Unavailable, "gone")
	}}
	p := mustPipeline(t, resilience.Retry(retryPolicy(3)))
	client := dial(t, serve(t, srv), grpc.WithStreamInterceptor(StreamClientInterceptor(p, ClientConfig{})))

	stream, err := client.StreamingOutputCall(testCtx(t), &testpb.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatalf("StreamingOutputCall() error = %v", err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("Recv() error = %v, want UNAVAILABLE", err)
	}
	if _, n, _ := srv.counts(); n != 1 {
		t.Errorf("server streams = %d, want 1", n)
	}
}

func TestStreamEstablishmentRetried(t *testing.T) {
	// A port nobody listens on: establishment fails with UNAVAILABLE.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	var rec recorder
	p := mustPipeline(t, resilience.Retry(retryPolicy(3)), rec.stage())
	client := dial(t, addr, grpc.WithStreamInterceptor(StreamClientInterceptor(p, ClientConfig{})))

	_, err = client.StreamingOutputCall(testCtx(t), &testpb.StreamingOutputCallRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("StreamingOutputCall() error = %v, want UNAVAILABLE", err)
	}
	if errs := rec.get(); len(errs) != 3 {
		t.Errorf("attempts = %d (%v), want 3", len(errs), errs)
	}
}

func TestStreamBreakerOpen(t *testing.T) {
	srv := &testServer{}
	b, err := circuitbreaker.New(circuitbreaker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b.ForceOpen()
	p := mustPipeline(t, resilience.CircuitBreaker(b))
	client := dial(t, serve(t, srv), grpc.WithStreamInterceptor(StreamClientInterceptor(p, ClientConfig{})))

	_, err = client.StreamingOutputCall(testCtx(t), &testpb.StreamingOutputCallRequest{})
	if !errors.Is(err, circuitbreaker.ErrOpen) || status.Code(err) != codes.Unavailable {
		t.Errorf("StreamingOutputCall() error = %v, want circuitbreaker.ErrOpen with UNAVAILABLE", err)
	}
	if _, n, _ := srv.counts(); n != 0 {
		t.Errorf("server streams = %d, want 0", n)
	}
}

func TestPriorityPropagation(t *testing.T) {
	got := make(chan shed.Priority, 2)
	srv := &testServer{
		unary: func(ctx context.Context, _ int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
			got <- shed.PriorityFrom(ctx)
			return &testpb.SimpleResponse{}, nil
		},
		stream: func(_ int, _ *testpb.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
			got <- shed.PriorityFrom(s.Context())
			return nil
		},
	}
	addr := serve(t, srv,
		grpc.UnaryInterceptor(UnaryServerInterceptor(nil, ServerConfig{})),
		grpc.StreamInterceptor(StreamServerInterceptor(nil, ServerConfig{})))
	client := dial(t, addr,
		grpc.WithUnaryInterceptor(UnaryClientPriorityInterceptor()),
		grpc.WithStreamInterceptor(StreamClientPriorityInterceptor()))

	ctx := shed.WithPriority(testCtx(t), shed.Sheddable)
	if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != shed.Sheddable {
		t.Errorf("unary handler priority = %v, want %v", p, shed.Sheddable)
	}
	stream, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("Recv() error = %v, want io.EOF", err)
	}
	if p := <-got; p != shed.Sheddable {
		t.Errorf("stream handler priority = %v, want %v", p, shed.Sheddable)
	}
}

func TestStreamEstablishmentTimeout(t *testing.T) {
	// Nobody listens, and the call waits for a connection: only the
	// pipeline's Timeout stage ends each attempt.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	var rec recorder
	p := mustPipeline(t, resilience.Retry(retry.Policy{
		MaxAttempts: 2,
		Backoff:     retry.Backoff{Kind: retry.KindConstant, Initial: time.Millisecond},
		RetryIf:     func(error) bool { return true },
	}), rec.stage(), resilience.Timeout(10*time.Millisecond))
	client := dial(t, addr,
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true)),
		grpc.WithStreamInterceptor(StreamClientInterceptor(p, ClientConfig{})))

	_, err = client.StreamingOutputCall(testCtx(t), &testpb.StreamingOutputCallRequest{})
	if !errors.Is(err, resilience.ErrTimeout) || status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("StreamingOutputCall() error = %v (code %v), want resilience.ErrTimeout with DEADLINE_EXCEEDED", err, status.Code(err))
	}
	errs := rec.get()
	if len(errs) != 2 {
		t.Fatalf("attempts = %d (%v), want 2", len(errs), errs)
	}
	for _, err := range errs {
		if !errors.Is(err, resilience.ErrTimeout) {
			t.Errorf("attempt error = %v, want resilience.ErrTimeout", err)
		}
	}
}
