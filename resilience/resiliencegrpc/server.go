package resiliencegrpc

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/shed"
)

// ServerConfig configures [UnaryServerInterceptor] and
// [StreamServerInterceptor]. The zero ServerConfig counts
// [DefaultFailureCodes] as failures.
type ServerConfig struct {
	// FailureCodes are the status codes of a handler's error that fail
	// the call inside the pipeline with a [*StatusError], so that a
	// circuit breaker counts them as failures; a handler's error with any
	// other code (INVALID_ARGUMENT, NOT_FOUND...) is a success for the
	// pipeline. An error without a status counts as UNKNOWN, or as
	// CANCELED or DEADLINE_EXCEEDED for a context's error. Default
	// [DefaultFailureCodes].
	FailureCodes []codes.Code
}

// errAgain fails an attempt that a stage (such as a retry) started after a
// stream handler had already run.
var errAgain = errors.New("resiliencegrpc: stream handler already ran")

// UnaryServerInterceptor returns an interceptor that runs each unary
// handler inside p, with the context p passes to the call. A nil p is a
// pipeline without stages. Before the pipeline runs, the shed priority in
// the request's cairn-priority metadata (shed.MetadataKey), if valid, is
// put in the context (shed.WithPriority), where a shedder reads it.
//
// A handler's error with a code in cfg.FailureCodes fails the call inside
// the pipeline with a [*StatusError], so a circuit breaker stage counts it
// as a failure; the client still receives the handler's own error. When
// the pipeline rejects or ends the call itself, the interceptor answers
// with a status whose message is safe to show clients:
//   - an error matching ratelimit.ErrLimited: RESOURCE_EXHAUSTED, with a
//     grpc-retry-pushback-ms trailer of the LimitedError's RetryAfter in
//     milliseconds, rounded up (-1, do not retry, when the limiter will
//     never allow the call);
//   - shed.ErrShed: the code shed.GRPCCodeName names (RESOURCE_EXHAUSTED),
//     with the ShedError's RetryAfter as pushback;
//   - circuitbreaker.ErrOpen: UNAVAILABLE, with pushback when the OpenError
//     knows how long the breaker stays open;
//   - bulkhead.ErrFull and adaptive.ErrLimitExceeded: UNAVAILABLE;
//   - resilience.ErrTimeout: DEADLINE_EXCEEDED;
//   - the request's context ending: CANCELED or DEADLINE_EXCEEDED.
//
// The returned error wraps the pipeline's, so an outer interceptor can
// still match it with errors.Is. Errors of a handler are not searched for
// those policies' errors: a handler that returns a downstream breaker's
// ErrOpen is answered with its own error, as gRPC would answer it.
//
// The Pipeline runs the handler synchronously, so a Timeout stage can only
// end the handler's context; the handler must return when it ends. A
// server pipeline should not retry, but a stage that runs the handler
// again gets it again. The interceptor is safe for concurrent use if p is.
func UnaryServerInterceptor(p resilience.Executor[struct{}], cfg ServerConfig) grpc.UnaryServerInterceptor {
	if pp, ok := p.(*resilience.Pipeline[struct{}]); p == nil || ok && pp == nil {
		p, _ = resilience.New[struct{}]() // no stages cannot fail
	}
	failures := newCodeSet(cfg.FailureCodes, DefaultFailureCodes)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx = incomingPriority(ctx)
		var (
			resp any
			herr error
		)
		_, err := p.Execute(ctx, func(ctx context.Context) (struct{}, error) {
			resp, herr = handler(ctx, req)
			return struct{}{}, failure(failures, herr)
		})
		if err == nil {
			return resp, herr
		}
		return nil, serverError(err, func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) })
	}
}

// StreamServerInterceptor returns an interceptor that runs each stream
// handler inside p, with the context p passes to the call in place of the
// stream's. It reads the shed priority and answers rejections as
// [UnaryServerInterceptor] does, setting the pushback trailer on the
// stream. The handler runs at most once: a stage that runs the call again
// (a retry, which a server pipeline should not have) gets the first run's
// outcome again. A bulkhead or breaker stage holds the call for the whole
// life of the stream. The interceptor is safe for concurrent use if p is.
func StreamServerInterceptor(p resilience.Executor[struct{}], cfg ServerConfig) grpc.StreamServerInterceptor {
	if pp, ok := p.(*resilience.Pipeline[struct{}]); p == nil || ok && pp == nil {
		p, _ = resilience.New[struct{}]() // no stages cannot fail
	}
	failures := newCodeSet(cfg.FailureCodes, DefaultFailureCodes)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := incomingPriority(ss.Context())
		var (
			ran     bool
			herr    error
			outcome error
		)
		_, err := p.Execute(ctx, func(ctx context.Context) (struct{}, error) {
			if ran {
				if outcome == nil {
					return struct{}{}, errAgain
				}
				return struct{}{}, outcome
			}
			ran = true
			herr = handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
			outcome = failure(failures, herr)
			return struct{}{}, outcome
		})
		if err == nil {
			return herr
		}
		if ran && errors.Is(err, errAgain) {
			return herr
		}
		return serverError(err, func(md metadata.MD) { ss.SetTrailer(md) })
	}
}

// failure returns the error a handler's error herr fails the pipeline's
// call with, or nil if herr is nil or not a failure.
func failure(failures codeSet, herr error) error {
	if herr == nil {
		return nil
	}
	if code := codeOf(herr); failures.has(code) {
		return &StatusError{Code: code, Err: herr}
	}
	return nil
}

// serverError returns the error a server interceptor answers a failed
// pipeline with, setting the pushback trailer with setTrailer.
func serverError(err error, setTrailer func(metadata.MD)) error {
	if r, ok := rejectionOf(err); ok {
		if md := r.pushbackMD(); md != nil {
			setTrailer(md)
		}
		return &statusError{err: err, s: status.New(r.code, r.msg)}
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Err
	}
	if code, ok := contextCode(err); ok {
		return &statusError{err: err, s: status.FromContextError(contextErr(code))}
	}
	return err
}

// contextErr returns the context error of a code from contextCode.
func contextErr(code codes.Code) error {
	if code == codes.Canceled {
		return context.Canceled
	}
	return context.DeadlineExceeded
}

// incomingPriority puts the shed priority of ctx's incoming metadata in
// ctx.
func incomingPriority(ctx context.Context) context.Context {
	v := metadata.ValueFromIncomingContext(ctx, shed.MetadataKey)
	if len(v) == 0 {
		return ctx
	}
	if p, ok := shed.ParsePriority(v[0]); ok {
		return shed.WithPriority(ctx, p)
	}
	return ctx
}

// serverStream replaces a stream's context with the pipeline's. It holds
// the context because a grpc.ServerStream carries its context: that is the
// only way to hand the pipeline's context to a stream handler.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the context the pipeline passed to the handler.
func (s *serverStream) Context() context.Context { return s.ctx }
