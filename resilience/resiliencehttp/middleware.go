package resiliencehttp

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnhq/cairn/problem"
	"github.com/cairnhq/cairn/resilience"
	"github.com/cairnhq/cairn/resilience/adaptive"
	"github.com/cairnhq/cairn/resilience/bulkhead"
	"github.com/cairnhq/cairn/resilience/circuitbreaker"
	"github.com/cairnhq/cairn/resilience/ratelimit"
	"github.com/cairnhq/cairn/resilience/shed"
)

// errWritten fails an attempt that a stage (such as a retry) started after
// the handler had already written its response.
var errWritten = errors.New("resiliencehttp: response already written")

// Middleware returns a handler that runs next inside p (a
// [*resilience.Pipeline], or a handle that swaps pipelines on reload), with the request's
// context replaced by the one p passes to the call. A nil p is a pipeline
// without stages.
//
// A response status of 500 or more written by next fails the call with a
// [*StatusError] (Response nil), so a circuit breaker stage counts it as a
// failure; the response has been written already and is left alone. When
// next returns without writing anything after its context ended, the call
// fails with the context's error, so a Timeout stage reports a timeout.
//
// When p fails the call before next has written anything, the middleware
// answers with problem details ([problem.Write]):
//   - an error matching ratelimit.ErrLimited: 429 with a Retry-After of the
//     LimitedError's RetryAfter rounded up to whole seconds, at least 1
//     (none when the limiter will never allow the request);
//   - bulkhead.ErrFull, adaptive.ErrLimitExceeded (an Adaptive stage) and
//     resilience.ErrThrottled (a Throttle stage): 503;
//   - shed.ErrShed (a Shed stage): 503, with a Retry-After of the
//     ShedError's RetryAfter rounded up to whole seconds, at least 1;
//   - circuitbreaker.ErrOpen: 503, with Retry-After when the OpenError
//     knows how long the breaker stays open;
//   - resilience.ErrTimeout: 503;
//   - the request's own context ending (the client left): nothing;
//   - a [*problem.Error]: its status; any other error: 500.
//
// The middleware wraps the ResponseWriter to see whether next has written
// the header (by WriteHeader, Write or Flush). Once it has, the middleware
// never writes: a timeout that fires after next started its response only
// ends the context, and next's partial response stands. A stage that runs
// the call again after next wrote (a retry stage, which a server pipeline
// should not have) gets an error instead of a second call of next. The
// wrapper supports http.ResponseController through Unwrap.
//
// The Pipeline runs next synchronously, so a Timeout stage can only end
// next's context; next must return when it ends. The returned handler is
// safe for concurrent use if p and next are.
func Middleware(p resilience.Executor[struct{}], next http.Handler) http.Handler {
	if pp, ok := p.(*resilience.Pipeline[struct{}]); p == nil || ok && pp == nil {
		p, _ = resilience.New[struct{}]() // no stages cannot fail
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &responseWriter{ResponseWriter: w}
		_, err := p.Execute(r.Context(), func(ctx context.Context) (struct{}, error) {
			if rw.wrote {
				return struct{}{}, errWritten
			}
			next.ServeHTTP(rw, r.WithContext(ctx))
			if rw.status >= 500 {
				return struct{}{}, &StatusError{StatusCode: rw.status}
			}
			if !rw.wrote && ctx.Err() != nil {
				// next gave up when its context ended: let a Timeout
				// stage report it.
				return struct{}{}, ctx.Err()
			}
			return struct{}{}, nil
		})
		if err == nil || rw.wrote {
			return
		}
		writeError(w, r, err)
	})
}

// writeError answers r for a pipeline's rejection err.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		limited *ratelimit.LimitedError
		open    *circuitbreaker.OpenError
		shedErr *shed.ShedError
	)
	switch {
	case errors.As(err, &limited):
		if d := limited.RetryAfter; d >= 0 {
			w.Header().Set("Retry-After", seconds(d))
		}
		problem.Write(w, r, &problem.Error{Status: http.StatusTooManyRequests, Detail: "rate limit exceeded", Err: err})
	case errors.Is(err, bulkhead.ErrFull), errors.Is(err, adaptive.ErrLimitExceeded):
		problem.Write(w, r, &problem.Error{Status: http.StatusServiceUnavailable, Detail: "too many concurrent requests", Err: err})
	case errors.As(err, &shedErr):
		w.Header().Set("Retry-After", seconds(shedErr.RetryAfter))
		problem.Write(w, r, &problem.Error{Status: http.StatusServiceUnavailable, Detail: "server overloaded", Err: err})
	case errors.Is(err, shed.ErrShed):
		problem.Write(w, r, &problem.Error{Status: http.StatusServiceUnavailable, Detail: "server overloaded", Err: err})
	case errors.Is(err, resilience.ErrThrottled):
		problem.Write(w, r, &problem.Error{Status: http.StatusServiceUnavailable, Detail: "service unavailable", Err: err})
	case errors.As(err, &open):
		if open.RetryAfter > 0 {
			w.Header().Set("Retry-After", seconds(open.RetryAfter))
		}
		problem.Write(w, r, &problem.Error{Status: http.StatusServiceUnavailable, Detail: "service unavailable", Err: err})
	case errors.Is(err, circuitbreaker.ErrOpen):
		problem.Write(w, r, &problem.Error{Status: http.StatusServiceUnavailable, Detail: "service unavailable", Err: err})
	case errors.Is(err, resilience.ErrTimeout):
		problem.Write(w, r, &problem.Error{Status: http.StatusServiceUnavailable, Detail: "request timed out", Err: err})
	case r.Context().Err() != nil:
		// The client left; nobody reads an answer.
	default:
		problem.Write(w, r, problem.From(err))
	}
}

// seconds renders d as delay-seconds for Retry-After, rounded up, at
// least 1.
func seconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if d > time.Duration(1<<63-1)-time.Second {
		s = int64(d / time.Second)
	}
	return strconv.FormatInt(max(s, 1), 10)
}

// responseWriter records whether and with which status the handler wrote
// its response header.
type responseWriter struct {
	http.ResponseWriter
	wrote  bool
	status int
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.wrote = true
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.wrote = true
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends the header, as http.Flusher does, if the underlying writer
// can flush.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wrote {
			w.wrote = true
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
