package resiliencegrpc

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/resilience/hedge"
)

const unaryMethod = "/grpc.testing.TestService/UnaryCall"

func newHedger(t *testing.T, delay time.Duration) *hedge.Hedger {
	t.Helper()
	h, err := hedge.New(hedge.Config{Delay: delay, MaxHedges: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHedgeWins(t *testing.T) {
	cancelled := make(chan struct{})
	srv := &testServer{unary: func(ctx context.Context, n int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if n == 1 { // the first attempt stalls until it is cancelled
			<-ctx.Done()
			close(cancelled)
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		_ = grpc.SetHeader(ctx, metadata.Pairs("attempt", "hedge"))
		return &testpb.SimpleResponse{Payload: body("hedge")}, nil
	}}
	h := newHedger(t, 5*time.Millisecond)
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(
		UnaryClientHedgeInterceptor(h, HedgeConfig{Hedgeable: Methods(unaryMethod)})))

	var header metadata.MD
	ctx := testCtx(t)
	resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Header(&header))
	if err != nil {
		t.Fatalf("UnaryCall() error = %v", err)
	}
	if got := string(resp.GetPayload().GetBody()); got != "hedge" {
		t.Errorf("UnaryCall() body = %q, want %q", got, "hedge")
	}
	if got := header.Get("attempt"); len(got) != 1 || got[0] != "hedge" {
		t.Errorf("header attempt = %q, want the winner's [hedge]", got)
	}
	select {
	case <-cancelled:
	case <-ctx.Done():
		t.Fatal("the losing attempt was not cancelled")
	}
	if n, _, _ := srv.counts(); n != 2 {
		t.Errorf("server calls = %d, want 2", n)
	}
}

// TestHedgeReplyIsWinners checks that the caller's reply holds the
// winner's message only, through the interceptor alone (grpc.Invoke with a
// reply that already has fields set).
func TestHedgeReplyIsWinners(t *testing.T) {
	srv := &testServer{unary: func(ctx context.Context, n int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if n == 1 {
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return &testpb.SimpleResponse{Payload: body("winner")}, nil
	}}
	h := newHedger(t, time.Millisecond)
	conn, err := grpc.NewClient(serve(t, srv), dialOpts(UnaryClientHedgeInterceptor(h, HedgeConfig{Hedgeable: Methods(unaryMethod)}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	reply := &testpb.SimpleResponse{Username: "stale", Payload: body("stale")}
	if err := conn.Invoke(testCtx(t), unaryMethod, &testpb.SimpleRequest{}, reply); err != nil {
		t.Fatalf("Invoke() error = %v", err)
	}
	if reply.GetUsername() != "" || string(reply.GetPayload().GetBody()) != "winner" {
		t.Errorf("reply = %v, want only the winner's payload", reply)
	}
}

func TestHedgeNotHedgeable(t *testing.T) {
	srv := &testServer{unary: func(context.Context, int, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		// Far longer than the hedging delay: a hedge would be sent.
		time.Sleep(50 * time.Millisecond)
		return &testpb.SimpleResponse{}, nil
	}}
	h := newHedger(t, time.Millisecond)
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(
		UnaryClientHedgeInterceptor(h, HedgeConfig{Hedgeable: Methods("/grpc.testing.TestService/EmptyCall")})))

	if _, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{}); err != nil {
		t.Fatalf("UnaryCall() error = %v", err)
	}
	if n, _, _ := srv.counts(); n != 1 {
		t.Errorf("server calls = %d, want 1", n)
	}
}

func TestHedgeFatalCodeEndsCall(t *testing.T) {
	cancelled := make(chan struct{})
	srv := &testServer{unary: func(ctx context.Context, n int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if n == 1 {
			<-ctx.Done()
			close(cancelled)
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Error(codes.InvalidArgument, "bad")
	}}
	h := newHedger(t, time.Millisecond)
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(
		UnaryClientHedgeInterceptor(h, HedgeConfig{Hedgeable: Methods(unaryMethod)})))

	ctx := testCtx(t)
	_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	if s := status.Convert(err); s.Code() != codes.InvalidArgument || s.Message() != "bad" {
		t.Errorf("UnaryCall() status = %v, want INVALID_ARGUMENT %q", s, "bad")
	}
	select {
	case <-cancelled:
	case <-ctx.Done():
		t.Fatal("the other attempt was not cancelled")
	}
}

func TestHedgeNonFatalCodeContinues(t *testing.T) {
	hedgeFailed := make(chan struct{})
	srv := &testServer{unary: func(ctx context.Context, n int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if n == 1 {
			select {
			case <-hedgeFailed:
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			time.Sleep(10 * time.Millisecond) // let the client see the hedge's failure first
			return &testpb.SimpleResponse{Payload: body("first")}, nil
		}
		defer close(hedgeFailed)
		return nil, status.Error(codes.Unavailable, "hedge failed")
	}}
	h := newHedger(t, time.Millisecond)
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(
		UnaryClientHedgeInterceptor(h, HedgeConfig{Hedgeable: Methods(unaryMethod)})))

	resp, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{})
	if err != nil {
		t.Fatalf("UnaryCall() error = %v", err)
	}
	if got := string(resp.GetPayload().GetBody()); got != "first" {
		t.Errorf("UnaryCall() body = %q, want %q", got, "first")
	}
}

func TestHedgeAllFail(t *testing.T) {
	srv := &testServer{unary: func(ctx context.Context, n int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		if n == 1 {
			time.Sleep(20 * time.Millisecond)
		}
		return nil, status.Error(codes.Unavailable, "down")
	}}
	h := newHedger(t, time.Millisecond)
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(
		UnaryClientHedgeInterceptor(h, HedgeConfig{Hedgeable: Methods(unaryMethod)})))

	_, err := client.UnaryCall(testCtx(t), &testpb.SimpleRequest{})
	if s := status.Convert(err); s.Code() != codes.Unavailable || s.Message() != "down" {
		t.Errorf("UnaryCall() status = %v, want UNAVAILABLE %q", s, "down")
	}
}

func TestHedgeCallerContextEnds(t *testing.T) {
	srv := &testServer{unary: func(ctx context.Context, _ int, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}}
	h := newHedger(t, time.Millisecond)
	client := dial(t, serve(t, srv), grpc.WithUnaryInterceptor(
		UnaryClientHedgeInterceptor(h, HedgeConfig{Hedgeable: Methods(unaryMethod)})))

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
	if got := status.Code(err); got != codes.DeadlineExceeded {
		t.Errorf("UnaryCall() error = %v, want DEADLINE_EXCEEDED", err)
	}
}

func dialOpts(i grpc.UnaryClientInterceptor) []grpc.DialOption {
	return []grpc.DialOption{grpc.WithTransportCredentials(insecureCreds()), grpc.WithUnaryInterceptor(i)}
}
