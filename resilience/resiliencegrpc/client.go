package resiliencegrpc

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/retry"
	"github.com/cairnhq/cairn/resilience/shed"
)

// ClientConfig configures [UnaryClientInterceptor] and
// [StreamClientInterceptor]. The zero ClientConfig retries UNAVAILABLE only
// and counts [DefaultFailureCodes] as failures.
type ClientConfig struct {
	// RetryableCodes are the status codes that fail an attempt with a
	// Retryable [*StatusError], which a retry stage using [Pushback]
	// retries. They count as failures whether or not they are listed in
	// FailureCodes. Default [DefaultRetryableCodes] (UNAVAILABLE).
	RetryableCodes []codes.Code
	// FailureCodes are the status codes that fail an attempt with a
	// [*StatusError] that is not Retryable: a circuit breaker counts them
	// as failures, and [Pushback] stops a retry. Any other code is an
	// answer, a success for the pipeline, returned to the caller as it is.
	// Default [DefaultFailureCodes].
	FailureCodes []codes.Code
}

// classifier sorts the outcome of a client attempt.
type classifier struct {
	retryable, failure codeSet
}

func newClassifier(cfg ClientConfig) classifier {
	r := newCodeSet(cfg.RetryableCodes, DefaultRetryableCodes)
	return classifier{retryable: r, failure: newCodeSet(cfg.FailureCodes, DefaultFailureCodes) | r}
}

// attempt returns the error an attempt that ended with err and trailer
// fails with inside the pipeline, or, for an error with a code that is
// neither retryable nor a failure, nil and that error as the answer.
func (c classifier) attempt(err error, trailer metadata.MD) (failure, answer error) {
	if err == nil {
		return nil, nil
	}
	code := codeOf(err)
	switch {
	case c.retryable.has(code):
		se := &StatusError{Code: code, Err: err, Retryable: true}
		if d, ok, present := retry.Pushback(trailer.Get(retry.PushbackKey)); present {
			se.Retryable = ok
			se.Pushback, se.HasPushback = d, ok
		}
		return se, nil
	case c.failure.has(code):
		return &StatusError{Code: code, Err: err}, nil
	}
	return nil, err
}

// result returns what an interceptor returns for a pipeline that ended
// with err, the last attempt's answer being answer.
func result(err, answer error) error {
	if err == nil {
		return answer
	}
	if r, ok := rejectionOf(err); ok {
		return &statusError{err: err, s: status.New(r.code, err.Error())}
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Err
	}
	if code, ok := contextCode(err); ok {
		return &statusError{err: err, s: status.New(code, err.Error())}
	}
	return err
}

// UnaryClientInterceptor returns an interceptor that runs each unary call
// through p, each attempt with the invoker. A nil p is a pipeline without
// stages.
//
// An attempt that ends with a code in cfg.RetryableCodes or
// cfg.FailureCodes fails inside the pipeline with a [*StatusError], so
// retry and circuit breaker stages see a failure; set the retry policy's
// Pushback to [Pushback] so that it retries only the retryable codes and
// honours the server's grpc-retry-pushback-ms trailer, as gRPC proposal A6
// describes. An attempt that ends with any other code (INVALID_ARGUMENT,
// NOT_FOUND...) is a success for the pipeline: the call is answered.
//
// The interceptor returns:
//   - nil, or the last attempt's error with a code that is not a failure;
//   - when the pipeline itself rejected or ended the call (an open breaker,
//     a full bulkhead, a rate limit, a Timeout stage...), the pipeline's
//     error, given a status: errors.Is(err, circuitbreaker.ErrOpen) holds
//     and status.Code(err) is UNAVAILABLE. Rate limits and shedding give
//     RESOURCE_EXHAUSTED, bulkheads and breakers UNAVAILABLE, timeouts
//     DEADLINE_EXCEEDED;
//   - otherwise, when an attempt failed with a failure code, the last such
//     attempt's error unchanged, so the caller sees the server's real
//     status, message and details;
//   - otherwise the pipeline's error (a context's error given the status
//     CANCELED or DEADLINE_EXCEEDED).
//
// Each attempt passes the caller's call options plus a grpc.Trailer option
// of its own, to read the pushback; the caller's grpc.Header and
// grpc.Trailer options see the last attempt's metadata. The attempt's
// context is the one the pipeline passes, so a Timeout stage bounds each
// attempt. gRPC notices a deadline by the clock, and the server may reset
// the call at its deadline, a moment before the context's timer fires; an
// attempt that ends with DEADLINE_EXCEEDED after its context's deadline has
// passed therefore waits for the context to end, so that a Timeout stage
// reports the timeout (resilience.ErrTimeout).
//
// The pipeline must run attempts one after the other, as the built-in
// stages do: every attempt unmarshals into the caller's reply. Use
// [UnaryClientHedgeInterceptor] for concurrent attempts. The interceptor is
// safe for concurrent use if p is.
func UnaryClientInterceptor(p resilience.Executor[struct{}], cfg ClientConfig) grpc.UnaryClientInterceptor {
	if pp, ok := p.(*resilience.Pipeline[struct{}]); p == nil || ok && pp == nil {
		p, _ = resilience.New[struct{}]() // no stages cannot fail
	}
	c := newClassifier(cfg)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var answer error
		_, err := p.Execute(ctx, func(ctx context.Context) (struct{}, error) {
			var trailer metadata.MD
			err := invoker(ctx, method, req, reply, cc, append(slices.Clip(opts), grpc.Trailer(&trailer))...)
			settle(ctx, err)
			var failure error
			failure, answer = c.attempt(err, trailer)
			return struct{}{}, failure
		})
		return result(err, answer)
	}
}

// StreamClientInterceptor returns an interceptor that runs the
// establishment of each stream through p. A nil p is a pipeline without
// stages.
//
// Only establishment is covered: the attempt is the streamer's call, which
// returns once the stream is set up (for most streams, before the server's
// handler has answered anything). Retries happen only before the stream is
// returned to the caller; an error the stream reports later, in RecvMsg or
// SendMsg, is the caller's to handle and is not seen by the pipeline, so a
// circuit breaker records the establishment's outcome only, and a bulkhead
// holds its slot only during establishment. Establishment errors are
// sorted as in [UnaryClientInterceptor], and the interceptor returns the
// same errors.
//
// The stream's context derives from the caller's context, not from the one
// the pipeline passes to the attempt: a Timeout stage bounds the
// establishment, not the stream, and values the stages add to the context
// are not seen by the streamer. That derived context is cancelled when the
// stream ends, that is when RecvMsg returns an error (io.EOF included) or,
// for a stream whose server does not stream, its single message; the
// caller must, as always with gRPC, read the stream to its end or cancel
// its own context. The interceptor is safe for concurrent use if p is.
func StreamClientInterceptor(p resilience.Executor[struct{}], cfg ClientConfig) grpc.StreamClientInterceptor {
	if pp, ok := p.(*resilience.Pipeline[struct{}]); p == nil || ok && pp == nil {
		p, _ = resilience.New[struct{}]() // no stages cannot fail
	}
	c := newClassifier(cfg)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		var (
			answer error
			cs     *clientStream
		)
		_, err := p.Execute(ctx, func(actx context.Context) (struct{}, error) {
			if cs != nil { // a custom stage runs the call again after a success
				cs.cancel()
				cs = nil
			}
			sctx, cancel := context.WithCancel(ctx)
			stop := context.AfterFunc(actx, cancel)
			var trailer metadata.MD
			s, err := streamer(sctx, desc, cc, method, append(slices.Clip(opts), grpc.Trailer(&trailer))...)
			if !stop() && err == nil {
				// The attempt's context ended while the stream was being
				// set up, and cancelled it: report that to the pipeline.
				err = status.FromContextError(actx.Err()).Err()
			}
			if err != nil {
				cancel()
				settle(actx, err)
				var failure error
				failure, answer = c.attempt(err, trailer)
				if failure == nil && actx.Err() != nil && ctx.Err() == nil {
					// A stage (a Timeout) ended the attempt, not the
					// caller: let it see a failure.
					failure, answer = &StatusError{Code: codeOf(err), Err: err}, nil
				}
				return struct{}{}, failure
			}
			answer = nil
			cs = &clientStream{ClientStream: s, cancel: cancel, single: !desc.ServerStreams}
			return struct{}{}, nil
		})
		if err == nil && answer == nil && cs != nil {
			return cs, nil
		}
		if cs != nil { // a stage failed the call after the stream was set up
			cs.cancel()
		}
		if err == nil && answer == nil {
			return nil, errors.New("resiliencegrpc: pipeline returned neither a stream nor an error")
		}
		return nil, result(err, answer)
	}
}

// clientStream cancels its context when the stream ends.
type clientStream struct {
	grpc.ClientStream
	cancel context.CancelFunc
	single bool // the server sends one message, then the stream ends
}

// RecvMsg receives a message and ends the stream's context when the stream
// is over.
func (s *clientStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil || s.single {
		s.cancel()
	}
	return err
}

// settle waits, after an attempt that ended with DEADLINE_EXCEEDED once
// ctx's deadline had passed, for ctx to end, which its timer is about to
// do: a Timeout stage reports a timeout only if its context has ended.
func settle(ctx context.Context, err error) {
	if err == nil || ctx.Err() != nil || codeOf(err) != codes.DeadlineExceeded {
		return
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		<-ctx.Done()
	}
}

// UnaryClientPriorityInterceptor returns an interceptor that sends the
// shed priority of the call's context (shed.WithPriority) to the server in
// the cairn-priority metadata key (shed.MetadataKey), where
// [UnaryServerInterceptor] reads it. Calls of the default priority, and
// calls whose outgoing metadata already has the key, are left unchanged.
func UnaryClientPriorityInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(outgoingPriority(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClientPriorityInterceptor is the stream counterpart of
// [UnaryClientPriorityInterceptor].
func StreamClientPriorityInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(outgoingPriority(ctx), desc, cc, method, opts...)
	}
}

// outgoingPriority adds ctx's shed priority to its outgoing metadata.
func outgoingPriority(ctx context.Context) context.Context {
	p := shed.PriorityFrom(ctx)
	if p == shed.DefaultPriority {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(shed.MetadataKey)) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, shed.MetadataKey, p.String())
}
