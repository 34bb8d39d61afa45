package console

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// httpError is an error with the HTTP status to answer and a message that
// is safe to show the client. Err, if set, is the underlying cause; it is
// logged but not sent.
type httpError struct {
	Code int
	Msg  string
	Err  error
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *httpError) Unwrap() error { return e.Err }

// errorf returns an httpError with code and a formatted client message;
// the message should start with "console: ".
func errorf(code int, format string, args ...any) *httpError {
	return &httpError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// asHTTPError classifies err: an httpError keeps its code and message,
// anything else becomes a 500 with a generic message.
func asHTTPError(err error) *httpError {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he
	}
	return &httpError{Code: http.StatusInternalServerError, Msg: "console: internal error", Err: err}
}

// handlerFunc is an HTTP handler that reports failure by returning an
// error instead of writing a response. It must not write anything when it
// returns an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// logError records a failed request: client errors at debug level, since
// they say more about the sender than about the console, server errors at
// error level.
func logError(log *slog.Logger, r *http.Request, he *httpError) {
	level := slog.LevelDebug
	if he.Code >= 500 {
		level = slog.LevelError
	}
	log.LogAttrs(r.Context(), level, "console: request failed",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", he.Code),
		slog.String("error", he.Error()))
}
