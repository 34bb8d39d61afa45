package resiliencegrpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
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

// DefaultRetryableCodes are the status codes a client interceptor turns into
// a retryable [*StatusError] when ClientConfig.RetryableCodes is empty:
// UNAVAILABLE only, as gRPC proposal A6 recommends, since it is the one code
// that promises the server did not process the call.
var DefaultRetryableCodes = []codes.Code{codes.Unavailable}

// DefaultFailureCodes are the status codes that count as failures for a
// pipeline (and so for its circuit breaker) when ClientConfig.FailureCodes
// or ServerConfig.FailureCodes is empty: UNAVAILABLE, INTERNAL, UNKNOWN,
// DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED, the codes that say the server
// is unwell or overloaded rather than that the request was wrong.
var DefaultFailureCodes = []codes.Code{
	codes.Unavailable,
	codes.Internal,
	codes.Unknown,
	codes.DeadlineExceeded,
	codes.ResourceExhausted,
}

// StatusError is the error an attempt fails with inside the pipeline when
// the call ended with a failure code: on the client side (see
// [UnaryClientInterceptor]) a code in ClientConfig.RetryableCodes or
// ClientConfig.FailureCodes, on the server side (see
// [UnaryServerInterceptor]) a handler's error whose code is in
// ServerConfig.FailureCodes. The interceptors never return a StatusError:
// once the pipeline is done, the caller gets the original error, Err.
type StatusError struct {
	// Code is the call's status code.
	Code codes.Code
	// Err is the original error: the status error the invoker returned on
	// the client side, the handler's error on the server side.
	Err error
	// Retryable reports whether the attempt may be retried: its code is
	// one of ClientConfig.RetryableCodes and the server did not forbid a
	// retry with a negative or malformed grpc-retry-pushback-ms trailer.
	// It is always false on the server side.
	Retryable bool
	// Pushback is the delay the server asked for in the
	// grpc-retry-pushback-ms trailer of a retryable attempt; 0 when
	// HasPushback is false.
	Pushback time.Duration
	// HasPushback reports whether the attempt's trailer carried a valid
	// pushback (which may ask for a delay of 0).
	HasPushback bool
}

// Error names the package and the original error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("resiliencegrpc: %v", e.Err)
}

// Unwrap returns the original error.
func (e *StatusError) Unwrap() error { return e.Err }

// GRPCStatus returns the status of the original error, so that
// status.FromError and status.Code see through a StatusError.
func (e *StatusError) GRPCStatus() *status.Status {
	if s, ok := status.FromError(e.Err); ok {
		return s
	}
	return status.New(e.Code, e.Err.Error())
}

// Pushback extracts the server's retry pushback from err, with the results
// retry.Policy.Pushback expects; set it there so that a pipeline's retry
// stage follows gRPC proposal A6. For a [*StatusError] in err's chain that
// is not Retryable (a failure code outside ClientConfig.RetryableCodes, or a
// server that asked not to be retried), present is true and retry is false,
// which stops retrying. For a retryable one whose trailer carried
// grpc-retry-pushback-ms, present and retry are true and d is the delay,
// which replaces the backoff delay. Any other error reports present =
// false: the policy's RetryIf and backoff apply.
func Pushback(err error) (d time.Duration, retry bool, present bool) {
	var se *StatusError
	if !errors.As(err, &se) {
		return 0, false, false
	}
	if !se.Retryable {
		return 0, false, true
	}
	if se.HasPushback {
		return se.Pushback, true, true
	}
	return 0, false, false
}

// codeSet is a set of status codes; codes are below 17, so a bit set holds
// them.
type codeSet uint64

func newCodeSet(cs, def []codes.Code) codeSet {
	if len(cs) == 0 {
		cs = def
	}
	var s codeSet
	for _, c := range cs {
		if c < 64 {
			s |= 1 << c
		}
	}
	return s
}

func (s codeSet) has(c codes.Code) bool { return c < 64 && s&(1<<c) != 0 }

// codeOf returns the status code of an error as a gRPC server would send
// it: the error's own status, or the context's code for a context error,
// or UNKNOWN.
func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return status.FromContextError(err).Code()
}

// shedCode is the code of shed.GRPCCodeName.
var shedCode = func() codes.Code {
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(strconv.Quote(shed.GRPCCodeName))); err != nil {
		return codes.ResourceExhausted
	}
	return c
}()

// rejection is the status a pipeline's own rejection of a call maps to.
type rejection struct {
	code codes.Code
	msg  string // the message a server sends, safe for clients
	// pushback is the delay for the grpc-retry-pushback-ms trailer, valid
	// if hasPushback; a negative one asks the client not to retry.
	pushback    time.Duration
	hasPushback bool
}

// rejectionOf finds, in err's chain but not inside a [*StatusError], an
// error of one of the policies, and returns the status it maps to.
func rejectionOf(err error) (rejection, bool) {
	var r rejection
	found := walk(err, func(e error) bool {
		var ok bool
		r, ok = rejectionOne(e)
		return ok
	})
	return r, found
}

func rejectionOne(err error) (rejection, bool) {
	switch e := err.(type) {
	case *ratelimit.LimitedError:
		if e.Err != nil {
			return contextRejection(e.Err), true
		}
		r := rejection{code: codes.ResourceExhausted, msg: "rate limit exceeded", pushback: e.RetryAfter, hasPushback: true}
		if e.RetryAfter < 0 {
			r.pushback = -1 // the limiter will never allow it
		}
		return r, true
	case *shed.ShedError:
		return rejection{code: shedCode, msg: "server overloaded", pushback: max(e.RetryAfter, 0), hasPushback: true}, true
	case *circuitbreaker.OpenError:
		return rejection{code: codes.Unavailable, msg: "service unavailable", pushback: e.RetryAfter, hasPushback: e.RetryAfter > 0}, true
	case *bulkhead.RejectedError:
		if e.Reason == bulkhead.ReasonContext && e.Err != nil {
			return contextRejection(e.Err), true
		}
		return rejection{code: codes.Unavailable, msg: "too many concurrent requests"}, true
	case *resilience.TimeoutError:
		return rejection{code: codes.DeadlineExceeded, msg: "request timed out"}, true
	}
	switch {
	case is(err, ratelimit.ErrLimited):
		return rejection{code: codes.ResourceExhausted, msg: "rate limit exceeded"}, true
	case is(err, shed.ErrShed):
		return rejection{code: shedCode, msg: "server overloaded"}, true
	case is(err, circuitbreaker.ErrOpen):
		return rejection{code: codes.Unavailable, msg: "service unavailable"}, true
	case is(err, bulkhead.ErrFull):
		return rejection{code: codes.Unavailable, msg: "too many concurrent requests"}, true
	case is(err, adaptive.ErrLimitExceeded):
		return rejection{code: codes.Unavailable, msg: "concurrency limit exceeded"}, true
	case is(err, resilience.ErrTimeout):
		return rejection{code: codes.DeadlineExceeded, msg: "request timed out"}, true
	}
	return rejection{}, false
}

func contextRejection(err error) rejection {
	s := status.FromContextError(err)
	return rejection{code: s.Code(), msg: s.Message()}
}

// is reports whether err itself, not its chain, matches target.
func is(err, target error) bool {
	if err == target {
		return true
	}
	x, ok := err.(interface{ Is(error) bool })
	return ok && x.Is(target)
}

// walk calls f on err and its chain, depth first as errors.Is does, until f
// returns true; it does not descend into a [*StatusError], whose chain is a
// server's or a handler's error, not the pipeline's.
func walk(err error, f func(error) bool) bool {
	for err != nil {
		if _, ok := err.(*StatusError); ok {
			return false
		}
		if f(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			return slices.ContainsFunc(u.Unwrap(), func(e error) bool { return walk(e, f) })
		default:
			return false
		}
	}
	return false
}

// pushbackMD returns the grpc-retry-pushback-ms trailer for r, or nil.
func (r rejection) pushbackMD() metadata.MD {
	if !r.hasPushback {
		return nil
	}
	return metadata.Pairs(retry.PushbackKey, millis(r.pushback))
}

// millis renders d for grpc-retry-pushback-ms: whole milliseconds rounded
// up, or -1 (do not retry) for a negative d.
func millis(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	ms := d / time.Millisecond
	if d%time.Millisecond != 0 {
		ms++
	}
	return strconv.FormatInt(int64(ms), 10)
}

// statusError is a pipeline's error given a gRPC status: status.FromError
// and status.Code see the status, errors.Is and errors.As the pipeline's
// error.
type statusError struct {
	err error
	s   *status.Status
}

func (e *statusError) Error() string              { return e.err.Error() }
func (e *statusError) Unwrap() error              { return e.err }
func (e *statusError) GRPCStatus() *status.Status { return e.s }

// contextCode reports the status code of a context error in err's chain.
func contextCode(err error) (codes.Code, bool) {
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled, true
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, true
	}
	return codes.OK, false
}
