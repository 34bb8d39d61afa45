package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxLevelBody bounds the body of PUT /loglevel.
const maxLevelBody = 1 << 10

// AdminHandler returns the instance's admin endpoints on a new mux:
//
//	GET     /metrics         Prometheus exposition of Gatherer (OpenMetrics when the scraper asks for it)
//	GET     /debug/pprof/... the net/http/pprof profiles
//	GET     /loglevel        the current level as JSON: {"level":"INFO"}
//	PUT     /loglevel        set the level: a body such as debug, INFO, warn, -4 or {"level":"debug"};
//	                         answers with the new level, or 400 naming the bad value
//	GET     /healthz         200 {"status":"ok"} while the process serves
//
// The endpoints expose profiles and change behaviour, so serve them on a
// loopback or otherwise protected listener, such as [DefaultAdminAddr]:
//
//	ln, err := net.Listen("tcp", telemetry.DefaultAdminAddr)
//	if err != nil { ... }
//	go tel.ServeAdmin(ctx, ln) // returns when ctx is done
//
// Errors are answered as application/problem+json and logged with Logger.
// The pprof handlers are registered on this mux only; note that importing
// net/http/pprof also registers them on http.DefaultServeMux, which cairn
// never serves.
func (t *Telemetry) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.Gatherer(), promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
		ErrorLog:          promLogger{t.logger},
	}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /loglevel", t.errorHandler(t.getLevel))
	mux.Handle("PUT /loglevel", t.errorHandler(t.putLevel))
	mux.Handle("GET /healthz", t.errorHandler(func(w http.ResponseWriter, _ *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	return mux
}

// ServeAdmin serves AdminHandler on ln until ctx is done, then shuts the
// server down, giving open requests (whose contexts are canceled with ctx)
// up to five seconds, and closes ln. It
// returns nil after a shutdown caused by ctx, or the error that stopped the
// server.
func (t *Telemetry) ServeAdmin(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           t.AdminHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(t.logger.Handler(), slog.LevelWarn),
		// Requests see ctx, so a long pprof profile stops when ctx is done
		// instead of holding up the shutdown.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("telemetry: admin server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("telemetry: admin server shutdown: %w", err)
	}
	return nil
}

type levelBody struct {
	Level json.RawMessage `json:"level"`
}

func (t *Telemetry) getLevel(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"level": t.level.Level().String()})
}

func (t *Telemetry) putLevel(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLevelBody))
	if err != nil {
		return &httpError{Code: http.StatusRequestEntityTooLarge, Msg: "body too large", Err: err}
	}
	raw := strings.TrimSpace(string(body))
	if strings.HasPrefix(raw, "{") {
		var b levelBody
		if err := json.Unmarshal([]byte(raw), &b); err != nil || b.Level == nil {
			return &httpError{Code: http.StatusBadRequest, Msg: fmt.Sprintf(`bad body %q: want a level or {"level":"debug"}`, raw), Err: err}
		}
		// Accept both {"level":"debug"} and {"level":-4}.
		var s string
		if json.Unmarshal(b.Level, &s) != nil {
			s = string(b.Level)
		}
		raw = s
	}
	l, err := parseLevel(raw)
	if err != nil {
		return &httpError{Code: http.StatusBadRequest, Msg: err.Error()}
	}
	old := t.level.Level()
	t.level.Set(l)
	t.logger.LogAttrs(r.Context(), slog.LevelInfo, "log level changed",
		slog.String("from", old.String()), slog.String("to", l.String()))
	return writeJSON(w, http.StatusOK, map[string]string{"level": l.String()})
}

// httpError is an error with the status code and the message safe to show
// the client; Err, if any, is logged but not shown.
type httpError struct {
	Code int
	Msg  string
	Err  error
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Code, e.Msg, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Msg)
}

func (e *httpError) Unwrap() error { return e.Err }

// errorHandler adapts a handler that returns an error: an *httpError is
// answered with its code and message, anything else with 500 and a generic
// message; both as application/problem+json, and logged with the request's
// trace context.
func (t *Telemetry) errorHandler(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		he, ok := errors.AsType[*httpError](err)
		if !ok {
			he = &httpError{Code: http.StatusInternalServerError, Msg: "internal error", Err: err}
		}
		level := slog.LevelWarn
		if he.Code >= 500 {
			level = slog.LevelError
		}
		t.logger.LogAttrs(r.Context(), level, "admin request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", he.Code), slog.Any("error", err))
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(he.Code)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"title":  http.StatusText(he.Code),
			"status": he.Code,
			"detail": he.Msg,
		})
	})
}

// writeJSON answers with v. It always returns nil: once the header is
// written, a failed write (the client went away) cannot be answered.
func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return nil
}

// promLogger adapts Logger to promhttp's error log.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn("prometheus exposition", "error", fmt.Sprint(v...)) }
