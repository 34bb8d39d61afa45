package resiliencehttp

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// StatusError is the error an attempt fails with inside the pipeline when
// the server answered with a retryable status code (client side, see
// [NewTransport]), or when a handler answered with a 5xx status (server
// side, see [Middleware]).
type StatusError struct {
	// StatusCode is the response's HTTP status code.
	StatusCode int
	// RetryAfter is the delay the response's Retry-After header asked for,
	// parsed with retry.RetryAfter when the attempt ended; 0 when
	// HasRetryAfter is false.
	RetryAfter time.Duration
	// HasRetryAfter reports whether the response carried a valid
	// Retry-After header (which may ask for a delay of 0).
	HasRetryAfter bool
	// Response is the response itself on the client side, nil on the
	// server side. The transport owns it: it closes the body of every
	// response it does not return to the caller, so code that sees a
	// StatusError inside the pipeline must not read or close its body.
	Response *http.Response
}

// Error names the status code.
func (e *StatusError) Error() string {
	return fmt.Sprintf("resiliencehttp: status %d %s", e.StatusCode, http.StatusText(e.StatusCode))
}

// RetryAfterPushback extracts the Retry-After delay of a [*StatusError] in
// err's chain, with the results retry.Policy.Pushback expects: when the
// response carried a Retry-After header, present is true, retry is true and
// d is the delay, which replaces the backoff delay. An error of a request
// that cannot be sent again (see [NewTransport]) reports present = true
// and retry = false, which stops retrying. Any other error reports present =
// false: the policy's backoff applies.
func RetryAfterPushback(err error) (d time.Duration, retry bool, present bool) {
	var nr *noReplayError
	if errors.As(err, &nr) {
		return 0, false, true
	}
	var se *StatusError
	if errors.As(err, &se) && se.HasRetryAfter {
		return se.RetryAfter, true, true
	}
	return 0, false, false
}

// noReplayError wraps the error of the only attempt of a request whose body
// cannot be sent again, so that RetryAfterPushback stops a retry.
type noReplayError struct{ err error }

func (e *noReplayError) Error() string {
	return e.err.Error() + " (request not retried: its method is not idempotent or its body cannot be replayed)"
}

func (e *noReplayError) Unwrap() error { return e.err }
