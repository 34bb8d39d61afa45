// Package problem answers failed HTTP requests with RFC 9457 problem
// details (application/problem+json) and lets handlers report failure by
// returning an error, so that one adapter per service maps errors to a
// status code, a message that is safe to show the client, and a log record
// that carries the request's trace context.
//
// A handler returns an [*Error] to choose the status and the detail the
// client sees; any other error becomes a 500 whose cause is logged but never
// shown. [Handler] adapts such a handler to http.Handler.
package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/trace"
)

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem details object, with the W3C trace id of
// the failed request as an extension member so a client can quote it.
type Details struct {
	// Type is a URI reference identifying the problem type; "about:blank"
	// when the status code says it all.
	Type string `json:"type"`
	// Title is the status code's text, such as "Bad Request".
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence to the client.
	Detail string `json:"detail"`
	// TraceID is the W3C trace id of the request, when it was traced.
	TraceID string `json:"trace_id,omitempty"`
}

// Error is an error a handler returns to choose the response's status code
// and the detail shown to the client. Err, if set, is the cause: it is
// logged, never shown.
type Error struct {
	// Status is the HTTP status code of the response.
	Status int
	// Detail is the message shown to the client.
	Detail string
	// Err is the underlying cause, or nil.
	Err error
}

// Errorf returns an *Error with status and a formatted detail. The detail
// must be safe to show the client; put causes in Err instead.
func Errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Detail: fmt.Sprintf(format, args...)}
}

// Error returns the status, the detail and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("http %d: %s: %v", e.Status, e.Detail, e.Err)
	}
	return fmt.Sprintf("http %d: %s", e.Status, e.Detail)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// From classifies err: the first *Error in its chain, or else a 500 with the
// generic detail "internal error" and err as the cause.
func From(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error", Err: err}
}

// New returns the problem details of e for the request whose context is
// given by r: type about:blank, the status text as title, and the trace id
// of the span in r's context, if any.
func New(r *http.Request, e *Error) Details {
	d := Details{
		Type:   "about:blank",
		Title:  http.StatusText(e.Status),
		Status: e.Status,
		Detail: e.Detail,
	}
	if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
		d.TraceID = sc.TraceID().String()
	}
	return d
}

// Write answers r with e as problem details. It must be called before
// anything else is written to w.
func Write(w http.ResponseWriter, r *http.Request, e *Error) {
	body, _ := json.Marshal(New(r, e)) // Details always marshals
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(body, '\n')) // the status is sent; a failed write means the client left
}

// Log records the failure of r on logger with r's context, so a trace-aware
// handler correlates it: server errors (5xx) at Error, others at the given
// level for client errors. cause is the error the handler returned.
func Log(logger *slog.Logger, clientLevel slog.Level, r *http.Request, e *Error, cause error) {
	level := clientLevel
	if e.Status >= 500 {
		level = slog.LevelError
	}
	logger.LogAttrs(r.Context(), level, "request failed",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", e.Status),
		slog.Any("error", cause))
}

// HandlerFunc is an HTTP handler that reports failure by returning an error
// instead of writing a response. It must write nothing when it returns an
// error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler adapts fn to http.Handler: an error fn returns is classified with
// [From], logged with [Log] (client errors at Debug, since they say more
// about the caller than the server) and answered with [Write]. A nil logger
// discards the records.
func Handler(logger *slog.Logger, fn HandlerFunc) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			e := From(err)
			Log(logger, slog.LevelDebug, r, e, err)
			Write(w, r, e)
		}
	})
}
