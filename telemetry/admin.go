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

	"github.com/cairnhq/cairn/problem"
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
	mux.Handle("GET /loglevel", problem.Handler(t.logger, t.getLevel))
	mux.Handle("PUT /loglevel", problem.Handler(t.logger, t.putLevel))
	mux.Handle("GET /healthz", problem.Handler(t.logger, func(w http.ResponseWriter, _ *http.Request) error {
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
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &problem.Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("body exceeds %d bytes", mbe.Limit), Err: err}
	}
	if err != nil {
		return &problem.Error{Status: http.StatusBadRequest, Detail: "cannot read body", Err: err}
	}
	raw := strings.TrimSpace(string(body))
	if strings.HasPrefix(raw, "{") {
		var b levelBody
		if err := json.Unmarshal([]byte(raw), &b); err != nil || b.Level == nil {
			return &problem.Error{Status: http.StatusBadRequest, Detail: fmt.Sprintf(`bad body %q: want a level or {"level":"debug"}`, raw), Err: err}
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
		return &problem.Error{Status: http.StatusBadRequest, Detail: err.Error()}
	}
	old := t.level.Level()
	t.level.Set(l)
	// Recorded at Info, or at the new level when that is higher, so the
	// change itself always passes the level it sets.
	t.logger.LogAttrs(r.Context(), max(slog.LevelInfo, l), "log level changed",
		slog.String("from", old.String()), slog.String("to", l.String()))
	return writeJSON(w, http.StatusOK, map[string]string{"level": l.String()})
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
