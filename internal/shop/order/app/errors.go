package app

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnavailable is matched by the errors of a port whose dependency is
// unavailable for now and was not called: a circuit breaker is open, a
// bulkhead is full, a rate limit is reached or a call timed out. The
// request may succeed if retried later; adapters answer it as such (HTTP
// 503 with Retry-After) rather than as a server fault.
var ErrUnavailable = errors.New("order: temporarily unavailable")

// UnavailableError is an error of a port whose dependency is unavailable
// for now. It matches [ErrUnavailable] and wraps the cause.
type UnavailableError struct {
	// RetryAfter is when the dependency may be available again; zero if
	// unknown.
	RetryAfter time.Duration
	// Err is the cause, such as a circuit breaker's rejection.
	Err error
}

// Error names the cause.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("order: temporarily unavailable: %v", e.Err)
}

// Is reports whether target is [ErrUnavailable].
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// ErrUnsupported is matched by the error of a use case whose optional port
// the service was built without, such as watching an order without a
// repository that implements [Watcher].
var ErrUnsupported = errors.New("order: not supported by this service")
