package degrade

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/cairnhq/cairn/problem"
)

// maxBody bounds the body of a PUT to [Switch.Handler].
const maxBody = 1 << 10

// Handler returns an admin endpoint for the switch, to mount on a path of
// a protected admin mux, in the style of telemetry's /loglevel:
//
//	GET  the [Status] as JSON
//	PUT  {"level":2}   force level 2 ([Switch.Force])
//	     {"auto":true} hand the level back to the signal ([Switch.Auto])
//
// A PUT answers with the new Status, or 400 naming the bad body or level,
// or 413 for a body over 1 KiB; other methods get 405. Errors are
// answered as application/problem+json. Every change is logged at Warn
// on logger, with the request's context; a nil logger discards the
// records (and the logging of failed requests by [problem.Handler]).
// The endpoint changes how the service behaves: serve it only to
// operators.
func (s *Switch) Handler(logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	get := problem.Handler(logger, func(w http.ResponseWriter, _ *http.Request) error {
		return writeJSON(w, s.Status())
	})
	put := problem.Handler(logger, func(w http.ResponseWriter, r *http.Request) error {
		return s.put(w, r, logger)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			get.ServeHTTP(w, r)
		case http.MethodPut:
			put.ServeHTTP(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT")
			problem.Write(w, r, problem.Errorf(http.StatusMethodNotAllowed, "method %s not allowed: use GET or PUT", r.Method))
		}
	})
}

// putBody is the body of a PUT: exactly one of Level and Auto.
type putBody struct {
	Level *int `json:"level"`
	Auto  bool `json:"auto"`
}

func (s *Switch) put(w http.ResponseWriter, r *http.Request, logger *slog.Logger) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &problem.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("body exceeds %d bytes", mbe.Limit), Err: err}
	}
	if err != nil {
		return &problem.Error{Status: http.StatusBadRequest, Detail: "cannot read body", Err: err}
	}
	var b putBody
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil || dec.More() || (b.Level == nil) == !b.Auto {
		return &problem.Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf(`bad body %q: want {"level":N} or {"auto":true}`, bytes.TrimSpace(data)), Err: err}
	}
	from := s.Level()
	if b.Auto {
		s.Auto()
		logger.LogAttrs(r.Context(), slog.LevelWarn, "degradation level handed back to the signal",
			slog.String("switch", s.name), slog.Int("level", from))
		return writeJSON(w, s.Status())
	}
	if err := s.Force(r.Context(), *b.Level); err != nil {
		return &problem.Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf("no level %d: want 0 to %d", *b.Level, len(s.levels)), Err: err}
	}
	logger.LogAttrs(r.Context(), slog.LevelWarn, "degradation level forced",
		slog.String("switch", s.name), slog.Int("from", from), slog.Int("to", *b.Level))
	return writeJSON(w, s.Status())
}

// writeJSON answers 200 with v. It always returns nil: once the header is
// written, a failed write (the client went away) cannot be answered.
func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}
